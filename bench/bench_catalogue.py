"""How long the whole catalogue takes, and how much story time it packs in.

Runs `accord-rig run scenarios/` (the real CLI, `-n 2` by default) at the default
timescale (or `--timescale F`) and prints, per run: the wall time, the sum of the
scenarios' own durations, and that sum in real-client time (each duration / F:
what the client lived through, e.g. 30 s of REST timeout at F=0.05 is 1.5 s of
wall time). The speed-up is real-client time / wall time. Durations come from the
JUnit XML (pytest's per-test time, setup included), so process starts and TLS
handshakes, which do not scale, are counted too: the real-client figure is an
upper bound of the story time, the wall time is what CI pays.

    .venv/bin/python bench/bench_catalogue.py [--timescale F] [--runs N] [-n W] [PATHS...]
        [--per-scenario] [--latencies]

`--latencies` keeps every run's timelines and prints how long the unscaled work
took while the catalogue ran (2xx REST round trips on fresh TLS connections;
gateway open -> HELLO), beside the client timeouts they must stay under at this
timescale: the margin that decides whether a timescale can flake.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from scenarios.timescale import DEFAULT_TIMESCALE

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    name: str
    seconds: float
    passed: bool


@dataclass
class Latencies:
    rest: list[float]  # request -> 2xx response, seconds (wall)
    hello: list[float]  # OpenSocket -> HELLO, seconds (wall)


def collect_latencies(out: Path) -> Latencies:
    """From every kept timeline: REST round trips answered 2xx, and socket open to HELLO."""
    found = Latencies([], [])
    for path in out.glob("*/timeline.jsonl"):
        sent: dict[int, float] = {}
        opened: dict[int, float] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["src"] != "client":
                continue
            name, data = r["name"], r["data"]
            if name == "HttpRequest":
                sent[int(data["req"])] = r["t"]
            elif name == "HttpResponse" and 200 <= int(data.get("status", 0)) < 300:
                if int(data["req"]) in sent:
                    found.rest.append(r["t"] - sent.pop(int(data["req"])))
            elif name == "OpenSocket":
                opened[int(data["conn"])] = r["t"]
            elif (
                name == "SocketText"
                and "heartbeat_interval" in str(data.get("text", ""))
                and int(data["conn"]) in opened
            ):
                found.hello.append(r["t"] - opened.pop(int(data["conn"])))
    return found


def _quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, int(p * len(v)))]

    return f"n={len(v)} p50={q(0.5):.3f}s p95={q(0.95):.3f}s p99={q(0.99):.3f}s max={v[-1]:.3f}s"


def print_latencies(found: Latencies, timescale: float) -> None:
    # client-behaviour.md s.1: REST 30 s per request; open 10 s + HELLO 10 s.
    rest_timeout, hello_timeout = 30 * timescale, 10 * timescale
    print(f"      REST 2xx round trip   {_quantiles(found.rest)}  (timeout {rest_timeout:.2f}s)")
    print(f"      open -> HELLO         {_quantiles(found.hello)}  (timeout {hello_timeout:.2f}s)")
    # Faults that delay answers on purpose (latency toxics, held requests) are in
    # these samples too: the max is an upper bound of the machine's own delay.


def run_once(
    paths: list[str], timescale: float, workers: str, keep: Path | None = None
) -> tuple[int, float, list[Case]]:
    with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "scenarios.cli", "run", *paths]
        command += ["--timescale", repr(timescale), "--junitxml", str(junit)]
        if keep is not None:
            command += ["--out", str(keep)]
        if workers not in ("", "0", "1"):
            command += ["-n", workers]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        cases = []
        if junit.exists():
            for case in ET.parse(junit).getroot().iter("testcase"):
                failed = case.find("failure") is not None or case.find("error") is not None
                cases.append(Case(case.get("name", ""), float(case.get("time", 0)), not failed))
    return proc.returncode, wall, cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["scenarios"])
    parser.add_argument("--timescale", type=float, default=DEFAULT_TIMESCALE)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("-n", dest="workers", default="2", help="pytest-xdist workers")
    parser.add_argument("--per-scenario", action="store_true", help="print each scenario")
    parser.add_argument(
        "--latencies", action="store_true", help="REST and gateway handshake times vs timeouts"
    )
    args = parser.parse_args()
    f = args.timescale
    print(f"catalogue {' '.join(args.paths)} at timescale {f:g}, -n {args.workers}")
    print(
        f"{'run':>3} {'exit':>4} {'scen':>4} {'fail':>4} {'wall s':>8} "
        f"{'sum s':>8} {'real-client s':>14} {'speed-up':>9}"
    )
    worst = 0
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-catalogue-out-") as keep:
            out = Path(keep) if args.latencies else None
            code, wall, cases = run_once(args.paths, f, args.workers, out)
            found = collect_latencies(out) if out is not None else None
        total = sum(c.seconds for c in cases)
        story = total / f
        failed = [c.name for c in cases if not c.passed]
        print(
            f"{run:>3} {code:>4} {len(cases):>4} {len(failed):>4} {wall:>8.1f} "
            f"{total:>8.1f} {story:>14.1f} {story / wall if wall else 0:>8.1f}x"
        )
        for name in failed:
            print(f"      FAILED {name}")
        if args.per_scenario:
            for c in sorted(cases, key=lambda c: -c.seconds):
                print(f"      {c.seconds:7.2f}s  {c.seconds / f:8.1f}s real-client  {c.name}")
        if found is not None:
            print_latencies(found, f)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
