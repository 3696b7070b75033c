"""Measures what the deadline floor (scenarios.timescale.DEADLINE_FLOOR) must cover:
the real time of things a timescale cannot shrink. Prints numbers; asserts nothing.

    python -m scenarios.measure_floor [RUNS]

Per run, on loopback through the real Toxiproxy: the fake server's start, the
client's first connect (probe, login, 4 REST calls, TLS WebSocket, IDENTIFY ->
READY, refetch -> synced), and a kill -9 + restart of the fake server.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chaos import ToxiproxyServer
from scenarios.loader import load_scenario
from scenarios.runner import RunOptions, ScenarioRun
from scenarios.timescale import DEADLINE_FLOOR

SCENARIO = """\
name: floor measurement
setup: {servers: [alpha], timescale: 0.05}
steps:
  - connect: alpha
  - wait_for: {status: {alpha: connected}, within: 1m}
  - kill_server: alpha
  - restart_server: alpha
  - wait_for: {status: {alpha: connected}, within: 1m}
"""


def _row(name: str, values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return (
        f"{name:<34} n={len(values):<3} p50={statistics.median(values):.3f}s "
        f"p95={p95:.3f}s max={values[-1]:.3f}s"
    )


async def _one(toxiproxy: ToxiproxyServer, work: Path, path: Path) -> dict[str, float]:
    started = time.monotonic()
    run = ScenarioRun(load_scenario(path), RunOptions(toxiproxy, work))
    result = await run.run()
    if not result.passed:
        raise SystemExit(f"measurement run failed: {result.error or result.failures}")
    steps = {s.index: s for s in result.steps}
    return {
        "setup (servers + proxies + client)": steps[0].start,
        "first connect -> connected": steps[1].end - steps[0].start,
        "restart (kill -9, start again)": steps[3].end - steps[3].start,
        "restart -> connected again": steps[4].end - steps[4].start,
        "whole run": time.monotonic() - started,
    }


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 10
    numbers: dict[str, list[float]] = {}
    toxiproxy = ToxiproxyServer.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "floor.scenario.yaml"
            path.write_text(SCENARIO)
            for index in range(runs):
                row = asyncio.run(_one(toxiproxy, Path(tmp) / f"run{index}", path))
                for key, value in row.items():
                    numbers.setdefault(key, []).append(value)
    finally:
        toxiproxy.stop()
    for key, values in numbers.items():
        print(_row(key, values))
    print(f"current DEADLINE_FLOOR = {DEADLINE_FLOOR}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
