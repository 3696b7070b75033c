"""Heartbeat-to-ACK round trip of the client driver on loopback over TLS.

    .venv/bin/python bench/bench_driver.py [--beats 300] [--interval-ms 20]

The real ClientCore runs under AsyncClientDriver against the fake server (in
this process, TLS with its trustme CA, 127.0.0.1 only). Each round trip is read
from the timeline: the driver's time when the core emitted a HEARTBEAT (`op 1`)
until the driver's time when the ACK (`op 4`) came back in. Also prints how far
each beat landed from its nominal interval (the driver's timer precision).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client.core.actions import ConfigureServer, ConnectServer, ServerConfig  # noqa: E402
from client.core.client import ClientCore  # noqa: E402
from client.core.timings import Timings  # noqa: E402
from client.driver import AsyncClientDriver  # noqa: E402
from client.timeline import Timeline  # noqa: E402
from fake_server.app import FakeServer  # noqa: E402
from fake_server.config import ServerConfig as FakeServerConfig  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(label: str, values_ms: list[float]) -> str:
    return (
        f"{label}: n={len(values_ms)} p50={percentile(values_ms, 0.50):.3f} ms "
        f"p90={percentile(values_ms, 0.90):.3f} ms p99={percentile(values_ms, 0.99):.3f} ms "
        f"max={max(values_ms):.3f} ms mean={statistics.fmean(values_ms):.3f} ms"
    )


async def run(beats: int, interval_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        server_config = FakeServerConfig(
            db=Path(tmp) / "bench.db", control_port=None, heartbeat_interval_ms=interval_ms
        )
        async with FakeServer(server_config) as server:
            info = server.info
            origin = info.rest.removesuffix("/api/v1")
            timings = Timings(scale=0.05)
            core = ClientCore(timings=timings, seed=1, bugs=())
            timeline = Timeline()
            async with AsyncClientDriver(
                core, ca_file=info.ca, timeline=timeline, timings=timings
            ) as driver:
                config = ServerConfig("alpha", origin, "alice", "password", "accord")
                await driver.act(ConfigureServer(config))
                await driver.act(ConnectServer("alpha"))
                await driver.wait_for(lambda: core.status("alpha") == "connected", 10, "connect")
                started = time.perf_counter()
                budget = 30 + beats * interval_ms / 1000 * 3

                def acked() -> int:
                    return sum(
                        1
                        for r in timeline.select(kind="input", name="SocketText")
                        if r.data["text"] == '{"op":4}'
                    )

                await driver.wait_for(lambda: acked() >= beats + 1, budget, f"{beats} ACKs")
                elapsed = time.perf_counter() - started
                status = core.status("alpha")

    sends = [
        r.t
        for r in timeline.select(kind="effect", name="SendText")
        if r.data["text"].startswith('{"op":1,')
    ]
    acks = [
        r.t
        for r in timeline.select(kind="input", name="SocketText")
        if r.data["text"] == '{"op":4}'
    ]
    # Loopback never loses an ACK: the n-th beat pairs with the n-th ACK. The first
    # beat is a warm-up (fresh connection, cold caches).
    round_trips = [(ack - beat) * 1000 for beat, ack in zip(sends, acks, strict=False)][1:]
    late = [(b - a) * 1000 - interval_ms for a, b in itertools.pairwise(sends)]
    print("driver heartbeat round trip over TLS on 127.0.0.1 (fake server in-process)")
    print(
        f"interval {interval_ms} ms, {len(round_trips)} beats in {elapsed:.2f} s, status {status}"
    )
    print(summary("beat -> ACK", round_trips))
    print(summary("beat lateness vs interval", late))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=300)
    parser.add_argument("--interval-ms", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.beats, args.interval_ms))


if __name__ == "__main__":
    main()
