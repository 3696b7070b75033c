"""The cost of waiting: N greenlets each wait 2 s for an asyncio future, through
the polling bridge and the notify bridge; prints the process CPU time spent.

    .venv/bin/python bench/bench_bridge.py [--waiters 100 1000 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import gevent

from load.bridge import NotifyBridge, PollingBridge

WAIT = 2.0


async def _wait() -> None:
    await asyncio.sleep(WAIT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    bridges = {"poll": PollingBridge(), "notify": NotifyBridge()}
    print("waiters | bridge | wall s | cpu s (for 2 s of waiting)")
    for n in args.waiters:
        for name, bridge in bridges.items():
            wall0, cpu0 = time.monotonic(), time.process_time()
            jobs = [gevent.spawn(bridge.run, _wait(), 60) for _ in range(n)]
            gevent.joinall(jobs)
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            assert all(j.successful() for j in jobs)
            print(f"{n} | {name} | {wall:.2f} | {cpu:.2f}", flush=True)


if __name__ == "__main__":
    main()
