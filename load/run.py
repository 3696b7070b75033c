"""Run a plain crowd (no faults) headless and return Locust's numbers beside what
the server stored: `bench/bench_load.py` (numbers) and the smoke test use it.

It is a load file built in code, played by the conductor like any other: the
same fake server, Toxiproxy proxies, Locust process and client summaries.
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass, field
from pathlib import Path

from load.conductor import LoadOptions, LoadRun, play_load
from load.loader import LoadedLoad
from load.schema import LoadFile
from scenarios.yaml_lines import LineMap


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
    exit_code: int | None
    stats: dict[str, Stat]
    stored_messages: int  # rows in the server's messages table after the run
    client_accepted: dict[str, int]  # per user: sends the client saw accepted
    failures: list[str] = field(default_factory=list)  # Locust's failure lines
    run: LoadRun | None = None


def _stats(path: Path | None) -> dict[str, Stat]:
    stats: dict[str, Stat] = {}
    if path is None:
        return stats
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


def _failures(work: Path) -> list[str]:
    path = work / "locust_failures.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [f"{r['Name']}: {r['Error']} x{r['Occurrences']}" for r in csv.DictReader(f)]


def crowd_file(users: int, seconds: float, spawn_rate: float, send_every: float) -> LoadedLoad:
    load = LoadFile.model_validate(
        {
            "name": f"crowd of {users}",
            "crowd": {
                "clients": users,
                "spawn_rate": spawn_rate,
                "servers": {"alpha": {"rate_limit": "off"}},
                "send_every": send_every,
            },
            "run_for": seconds,
        }
    )
    return LoadedLoad(Path("<built in code>"), load, LineMap())


def run_load(
    users: int,
    seconds: int,
    work: Path,
    spawn_rate: float | None = None,
    workers: int = 0,
    driver: str = LoadOptions.driver,
) -> LoadResult:
    """`users` clients for `seconds` against a fresh fake server in `work`."""
    loaded = crowd_file(users, seconds, spawn_rate or users, send_every=1.0)
    options = LoadOptions(work_dir=work, workers=workers, driver=driver)
    run = asyncio.run(play_load(loaded, options))
    return LoadResult(
        exit_code=run.locust_exit,
        stats=_stats(run.locust_stats),
        stored_messages=sum(len(rows) for rows in run.stored.values()),
        client_accepted={str(s["user"]): len(s.get("accepted", [])) for s in run.summaries},
        failures=_failures(work) + ([run.error] if run.error else []) + run.problems,
        run=run,
    )
