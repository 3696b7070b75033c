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
"""

from __future__ import annotations

import argparse
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


def run_once(paths: list[str], timescale: float, workers: str) -> tuple[int, float, list[Case]]:
    with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "scenarios.cli", "run", *paths]
        command += ["--timescale", repr(timescale), "--junitxml", str(junit)]
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
    args = parser.parse_args()
    f = args.timescale
    print(f"catalogue {' '.join(args.paths)} at timescale {f:g}, -n {args.workers}")
    print(
        f"{'run':>3} {'exit':>4} {'scen':>4} {'fail':>4} {'wall s':>8} "
        f"{'sum s':>8} {'real-client s':>14} {'speed-up':>9}"
    )
    worst = 0
    for run in range(1, args.runs + 1):
        code, wall, cases = run_once(args.paths, f, args.workers)
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
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
