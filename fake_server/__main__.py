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
from fake_server.behaviours import BEHAVIOURS, UnknownBehaviour, parse_behaviours
from fake_server.config import (
    HEARTBEAT_INTERVAL_MS,
    REPLAY_BUFFER,
    RESUME_WINDOW_S,
    ServerConfig,
)
from fake_server.history import DETAILS
from fake_server.ratelimit import RATE_LIMIT, RATE_WINDOW_S
from fake_server.tls import small_tls_read_buffers


def _rate_limit(text: str) -> int | None:
    if text == "off":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'off', got {text!r}")
    return int(text)


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
    p.add_argument("--rate-limit", type=_rate_limit, default=RATE_LIMIT, metavar="N|off",
                   help=f"REST requests per {RATE_WINDOW_S:g} s (scaled) per Authorization "
                   f"value (default {RATE_LIMIT}); 'off' disables the limiter")
    p.add_argument("--behaviour", action="append", default=[], metavar="NAME",
                   help="opt-in server behaviour (repeatable): " + "; ".join(
                       f"{k}: {v}" for k, v in sorted(BEHAVIOURS.items())))
    p.add_argument("--tls-name", action="append", default=[], metavar="NAME",
                   help="extra DNS name in the generated certificate (repeatable)")
    p.add_argument("--plain-http", action="store_true",
                   help="serve REST and the gateway in plain HTTP (http://, ws://), as the real "
                   "server does behind its TLS proxy")
    p.add_argument("--no-control", action="store_true",
                   help="no control API listener (the server is then driven only as any "
                   "client drives it)")
    p.add_argument("--history", choices=DETAILS, default="full",
                   help="light: count frame and HTTP records instead of writing them "
                   "(crowds of thousands)")
    a = p.parse_args(argv)
    try:
        behaviours = parse_behaviours(a.behaviour)
    except UnknownBehaviour as exc:
        p.error(f"--behaviour: {exc}")
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if a.plain_http and (a.tls_cert is not None or a.tls_name):
        p.error("--plain-http serves no TLS: it takes no --tls-cert / --tls-name")
    if a.timescale <= 0:
        p.error("--timescale must be > 0")
    if a.heartbeat_interval <= 0 or a.replay_buffer <= 0 or a.resume_window < 0:
        p.error("--heartbeat-interval and --replay-buffer must be > 0, --resume-window >= 0")
    return ServerConfig(
        db=a.db, host=a.host, port=a.port, control_host=a.control_host,
        control_port=None if a.no_control else a.control_port, tls_cert=a.tls_cert,
        tls_key=a.tls_key, tls_ca=a.tls_ca,
        heartbeat_interval_ms=a.heartbeat_interval, timescale=a.timescale,
        replay_buffer=a.replay_buffer, resume_window_s=a.resume_window,
        control_token=a.control_token, rate_limit=a.rate_limit, behaviours=behaviours,
        tls_names=tuple(a.tls_name), plain_http=a.plain_http, history=a.history,
    )


async def serve(config: ServerConfig) -> None:
    small_tls_read_buffers()
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
