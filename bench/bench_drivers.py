"""The crowd's two drivers against each other: CPU per client connect and per
reconnect, in a process set up as a Locust worker is (gevent monkey-patched).

    .venv/bin/python bench/bench_drivers.py [--clients 300] [--concurrency 50]

One fake server (a subprocess, light history, limiter off, accounts made before it
starts, 127.0.0.1 only). For each driver, a fresh crowd process runs N real clients
as greenlets, as `load/locustfile.py` does: `gevent` = GreenChatSession (the
gevent driver, blocking calls); `asyncio` = ChatSession through the notify bridge
(the asyncio driver on a loop thread). Measured in that process: wall time and
process CPU time (user + system, so other load on a shared machine changes the
wall time but hardly the CPU) for the first connect of every client (login, REST
chain, IDENTIFY, READY, the channel's messages), then for a reconnect storm (the
server drops every gateway socket without a close frame; every client RESUMEs).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN = "drv"


def _crowd(driver: str, server: dict[str, Any], clients: int, concurrency: int) -> None:
    import gevent
    import gevent.pool

    from load.bridge import make_bridge
    from load.session import ChatSession, GreenChatSession, SessionSpec, user_name
    from scenarios.fake_control import FakeServerControl

    def spec(i: int) -> SessionSpec:
        return SessionSpec(
            base_url=server["base_url"], gateway_url=None, ca_file=server["ca"],
            username=user_name(RUN, i), seed=i, registered=True,
        )  # fmt: skip

    bridge = make_bridge("notify") if driver == "asyncio" else None
    kind = GreenChatSession if driver == "gevent" else ChatSession
    sessions = [kind(spec(i)) for i in range(clients)]

    def call(session: Any, step: Any) -> Any:
        if bridge is None:
            return step(session)
        return bridge.run(step(session), 120)

    def measure(work: Any) -> tuple[float, float]:
        wall, cpu = time.monotonic(), time.process_time()
        pool = gevent.pool.Pool(concurrency)
        for session in sessions:
            pool.spawn(work, session)
        pool.join()
        return time.monotonic() - wall, time.process_time() - cpu

    errors: list[str] = []

    def connect(session: Any) -> None:
        timed = call(session, lambda s: s.connect(60))
        if timed.error:
            errors.append(timed.error)

    connect_wall, connect_cpu = measure(connect)
    connected = sum(s.core.status("load") == "connected" for s in sessions)

    def reconnected(session: Any) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if session._count("server_reconnected") >= 1:
                return
            gevent.sleep(0.05)
        errors.append("not reconnected")

    async def drop() -> None:
        control = FakeServerControl(server["control"], server["control_token"])
        try:
            await control.apply({"kind": "drop"})
        finally:
            await control.close()

    control_loop = bridge or make_bridge("notify")  # the control call only, for gevent

    def storm() -> tuple[float, float]:
        wall, cpu = time.monotonic(), time.process_time()
        control_loop.run(drop(), 30)
        pool = gevent.pool.Pool(len(sessions))
        for session in sessions:
            pool.spawn(reconnected, session)
        pool.join()
        return time.monotonic() - wall, time.process_time() - cpu

    storm_wall, storm_cpu = storm()
    back = sum(s._count("server_reconnected") >= 1 for s in sessions)
    for session in sessions:
        call(session, lambda s: s.close())
    print(json.dumps({
        "driver": driver, "clients": clients, "connected": connected, "reconnected": back,
        "connect_wall_s": round(connect_wall, 2), "connect_cpu_ms_per_client":
        round(1000 * connect_cpu / clients, 1), "storm_wall_s": round(storm_wall, 2),
        "storm_cpu_ms_per_client": round(1000 * storm_cpu / clients, 1),
        "errors": errors[:3], "load_avg": os.getloadavg()[0],
    }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50, help="connects at once")
    parser.add_argument("--drivers", nargs="+", default=["gevent", "asyncio"])
    parser.add_argument("--crowd", help=argparse.SUPPRESS)  # the crowd process: driver
    parser.add_argument("--server", help=argparse.SUPPRESS)  # ... and its server (JSON)
    args = parser.parse_args()
    if args.crowd:
        _crowd(args.crowd, json.loads(args.server), args.clients, args.concurrency)
        return

    from chaos import FakeServerProcess
    from fake_server.store import Store
    from load.session import PASSWORD, user_name

    work = Path(tempfile.mkdtemp(prefix="accord-drivers-"))
    for round_, driver in enumerate(args.drivers):
        db = work / f"{round_}-{driver}.db"
        store = Store(db)
        for i in range(args.clients):
            store.register(user_name(RUN, i), PASSWORD, None)
        store.close()
        server = FakeServerProcess(
            db, extra_args=["--rate-limit", "off", "--history", "light"],
            log_path=work / f"{round_}-{driver}.log",
        )  # fmt: skip
        info = server.start()
        try:
            target = {
                "base_url": f"https://127.0.0.1:{info.port}", "ca": info.ca,
                "control": info.control, "control_token": info.control_token,
            }  # fmt: skip
            crowd = subprocess.run(
                [sys.executable, __file__, "--crowd", driver, "--server", json.dumps(target),
                 "--clients", str(args.clients), "--concurrency", str(args.concurrency)],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            print(crowd.stdout.strip() or crowd.stderr[-2000:], flush=True)
        finally:
            server.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if "--crowd" in sys.argv:  # as a Locust worker is: patched before anything else
        import gevent.monkey

        gevent.monkey.patch_all()
    main()
