"""How many gateway frames per second the pure client core processes.

A connected core (driven on virtual time by the fake peer) is fed N
`message.create` frames directly, the way a driver would hand them over; we time
`handle()` + `take_effects()` and print frames/s and effects/s. A second run
measures a reconnect-heavy mix (drop, backoff, open, HELLO, RESUME, resumed,
refetch) per cycle.

    .venv/bin/python bench/bench_core.py [--frames 200000]
"""

from __future__ import annotations

import argparse
import json
import time

from client.core.actions import ConfigureServer, ConnectServer, SelectChannel, ServerConfig
from client.core.client import ClientCore
from client.core.io import SocketText
from client.core.timings import Timings
from client.virtual import FakePeer, VirtualRunner


def connected_core() -> tuple[ClientCore, VirtualRunner, FakePeer]:
    core = ClientCore(Timings(), seed=1, bugs=(), environ={})
    peer = FakePeer()
    runner = VirtualRunner(core, [peer])
    runner.do(ConfigureServer(ServerConfig("alpha", peer.base_url, "alice", "password", "accord")))
    runner.do(SelectChannel("alpha", "general"))
    runner.do(ConnectServer("alpha"))
    runner.run_until(lambda: core.status("alpha") == "connected" and not core.syncing("alpha"))
    return core, runner, peer


def bench_frames(n: int) -> None:
    core, runner, peer = connected_core()
    (conn,) = peer.live_conns()
    frames = [
        SocketText(
            conn,
            json.dumps(
                {
                    "op": 0,
                    "type": "message.create",
                    "seq": 10 + i,
                    "data": {
                        "id": str(10_000_000 + i),
                        "channel_id": "201",
                        "space_id": "100",
                        "author_id": "2",
                        "content": f"message number {i}",
                        "timestamp": "2026-01-01 00:00:00",
                    },
                }
            ),
        )
        for i in range(n)
    ]
    now = runner.now
    effects = 0
    start = time.perf_counter()
    for frame in frames:
        core.handle(now, frame)
        effects += len(core.take_effects())
    elapsed = time.perf_counter() - start
    print(f"message.create frames: {n} in {elapsed:.3f}s -> {n / elapsed:,.0f} frames/s")
    print(f"  effects out: {effects} -> {effects / elapsed:,.0f} effects/s")
    assert len(core.messages("alpha", "201")) == n


def bench_reconnects(cycles: int) -> None:
    core, runner, peer = connected_core()
    start = time.perf_counter()
    inputs_before = len(runner.log)
    for _ in range(cycles):
        (conn,) = peer.live_conns()
        runner.close(conn, 1006, "")
        runner.run_until(lambda: core.status("alpha") == "connected" and not core.syncing("alpha"))
    elapsed = time.perf_counter() - start
    effects = len(runner.log) - inputs_before
    rate = cycles / elapsed
    print(f"drop+resume+refetch cycles: {cycles} in {elapsed:.3f}s -> {rate:,.0f} cycles/s")
    print(f"  effects out: {effects} -> {effects / elapsed:,.0f} effects/s (fake peer included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--cycles", type=int, default=2_000)
    args = parser.parse_args()
    bench_frames(args.frames)
    bench_reconnects(args.cycles)


if __name__ == "__main__":
    main()
