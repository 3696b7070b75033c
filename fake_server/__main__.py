"""`python -m fake_server`: start, print one JSON line of addresses, serve until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import ssl
import sys
from pathlib import Path

from fake_server.app import FakeServer
from fake_server.config import (
    HEARTBEAT_INTERVAL_MS,
    REPLAY_BUFFER,
    RESUME_WINDOW_S,
    ServerConfig,
)


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(prog="python -m fake_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--control-host", default="127.0.0.1")
    p.add_argument("--control-port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--db", type=Path, default=Path("fake-server.db"))
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    p.add_argument("--tls-ca", type=Path, help="CA file reported to clients")
    p.add_argument("--heartbeat-interval", type=int, default=HEARTBEAT_INTERVAL_MS,
                   help="ms, real-client time")
    p.add_argument("--timescale", type=float, default=1.0)
    p.add_argument("--replay-buffer", type=int, default=REPLAY_BUFFER)
    p.add_argument("--resume-window", type=float, default=RESUME_WINDOW_S, help="seconds")
    p.add_argument("--control-token", help="fixed control token (default: random)")
    p.add_argument("--tls-name", action="append", default=[], metavar="NAME",
                   help="another DNS name for the generated certificate (repeatable)")
    a = p.parse_args(argv)
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if a.timescale <= 0:
        p.error("--timescale must be > 0")
    if a.heartbeat_interval <= 0 or a.replay_buffer <= 0 or a.resume_window < 0:
        p.error("--heartbeat-interval and --replay-buffer must be > 0, --resume-window >= 0")
    return ServerConfig(
        db=a.db, host=a.host, port=a.port, control_host=a.control_host,
        control_port=a.control_port, tls_cert=a.tls_cert, tls_key=a.tls_key, tls_ca=a.tls_ca,
        heartbeat_interval_ms=a.heartbeat_interval, timescale=a.timescale,
        replay_buffer=a.replay_buffer, resume_window_s=a.resume_window,
        control_token=a.control_token, tls_names=tuple(a.tls_name),
    )


async def serve(config: ServerConfig) -> None:
    try:
        server = FakeServer(config)
        info = await server.start()
    except (OSError, sqlite3.Error, ssl.SSLError) as exc:
        raise SystemExit(f"python -m fake_server: cannot start: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(json.dumps(info.to_json()) + "\n")
    sys.stdout.flush()
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
