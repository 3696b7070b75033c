"""Run the Locust load test headless against a fake server the run starts itself.

Both `bench/bench_load.py` (numbers) and the smoke test (correctness) call
`run_load`: start `python -m fake_server` on 127.0.0.1, run `locust` in its own
process for a bounded time, read Locust's CSV stats, and count what the server
stored, so "accepted" can be checked against the database, not only Locust's view.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from chaos.lifetime import die_with_parent
from chaos.processes import FakeServerProcess

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass
class Stat:
    name: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float


@dataclass
class LoadResult:
    exit_code: int
    stats: dict[str, Stat]
    stored_messages: int  # rows in the server's messages table after the run
    client_accepted: dict[str, int]  # per user: sends the client saw accepted
    failures: list[str] = field(default_factory=list)  # Locust's failure lines
    output: str = ""


def _stats(prefix: Path) -> dict[str, Stat]:
    stats: dict[str, Stat] = {}
    path = prefix.with_name(prefix.name + "_stats.csv")
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                continue
            stats[row["Name"]] = Stat(
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                p50_ms=float(row["50%"] or 0),
                p95_ms=float(row["95%"] or 0),
                p99_ms=float(row["99%"] or 0),
                rps=float(row["Requests/s"] or 0),
            )
    return stats


def _failures(prefix: Path) -> list[str]:
    path = prefix.with_name(prefix.name + "_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [f"{r['Name']}: {r['Error']} x{r['Occurrences']}" for r in csv.DictReader(f)]


def _accepted(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {str(r["user"]): int(r["accepted"]) for r in rows}


def run_load(users: int, seconds: int, work: Path, spawn_rate: float | None = None) -> LoadResult:
    """`users` Locust users for `seconds` against a fresh fake server in `work`."""
    work.mkdir(parents=True, exist_ok=True)
    # The fake's default REST limiter (70 per minute per token, one shared bucket for
    # logins) would turn a load test into a 429 test: it runs with the limiter off.
    server = FakeServerProcess(work / "load.db", log_path=work / "fake_server.log",
                               extra_args=["--rate-limit", "off"])
    info = server.start()
    try:
        host = info.rest.rsplit("/api/", 1)[0]
        prefix = work / "locust"
        argv = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(users), "-r", str(spawn_rate or users), "-t", f"{seconds}s",
            "--host", host, "--csv", str(prefix), "--only-summary", "--stop-timeout", "10",
        ]  # fmt: skip
        report = work / "accepted.jsonl"
        env = {**os.environ, "ACCORD_RIG_CA": info.ca, "ACCORD_LOAD_REPORT": str(report)}
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=seconds + 120,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        with sqlite3.connect(work / "load.db") as db:
            stored = int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
        return LoadResult(
            exit_code=done.returncode,
            stats=_stats(prefix),
            stored_messages=stored,
            client_accepted=_accepted(report),
            failures=_failures(prefix),
            output=done.stdout + done.stderr,
        )
    finally:
        server.stop()
