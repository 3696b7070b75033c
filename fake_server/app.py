"""FakeServer: the aiohttp layer (TLS REST + gateway + control listener) that drives
the sans-I/O `ServerCore` on the real clock, and the in-process Python API.

Each gateway socket gets an outbox and a writer task, so a slow client never stalls
fan-out to the others and every connection sees its frames in seq order; the core's
deadlines run on one event-loop timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from fake_server.config import MAX_FRAME_BYTES, ServerConfig
from fake_server.core import Close, Drop, FaultResult, HttpReply, Out, SendText, ServerCore
from fake_server.faults import FaultBoard, FaultSpec
from fake_server.history import History
from fake_server.sessions import SessionRegistry
from fake_server.store import Store
from fake_server.tls import resolve_tls, server_context

_CLOSE_TIMEOUT_S = 2.0  # real seconds to wait for the client's close reply
IDLE_KEEPALIVE_S = 3600.0  # an idle HTTP keep-alive connection stays open this long


@dataclass(frozen=True)
class ServerInfo:
    rest: str
    gateway: str
    control: str | None
    control_token: str
    ca: str | None
    health: str
    behaviours: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rest": self.rest,
            "gateway": self.gateway,
            "control": self.control,
            "control_token": self.control_token,
            "ca": self.ca,
            "health": self.health,
            "behaviours": list(self.behaviours),
        }


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEADDR, so a restart can take the same port at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class _Link:
    """One gateway socket's I/O: the outbox its writer task drains in order."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.outbox: asyncio.Queue[Out | None] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None

    def abort(self) -> None:
        # The transport as of now: aiohttp forgets it once the connection is lost. A
        # transport kept from the upgrade may be closed twice by then, and the SSL
        # transport of Debian's Python 3.11.2 (the image's) then raises AttributeError
        # on abort() (3.11.7 checks).
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def write_loop(self) -> None:
        while True:
            item = await self.outbox.get()
            try:
                if isinstance(item, SendText):
                    await self.ws.send_str(item.text)
                elif isinstance(item, Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                elif isinstance(item, Drop):
                    self.abort()
                    return
                else:
                    return
            except (ConnectionError, RuntimeError):
                return  # the socket is gone; the reader reports how


def _now() -> float:
    return time.monotonic()  # the event loop's clock too


class CoreApp:
    """A ServerCore on the real clock behind an aiohttp application: `app` serves the
    REST API and the gateway (`/ws`); outputs go to the sockets, deadlines run on one
    event-loop timer. FakeServer listens with it; tests may serve `app` themselves."""

    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self._links: dict[int, _Link] = {}
        self._waiters: dict[int, asyncio.Future[HttpReply]] = {}
        self._conn_ids = itertools.count(1)
        self._req_ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.app = web.Application(client_max_size=MAX_FRAME_BYTES)
        self.app.router.add_get("/ws", self._gateway)
        self.app.router.add_route("*", "/{tail:.*}", self._http)

    def perform(self, outs: list[Out]) -> None:
        for out in outs:
            if isinstance(out, HttpReply):
                waiter = self._waiters.get(out.req)
                if waiter is not None and not waiter.done():
                    waiter.set_result(out)
                continue
            link = self._links.get(out.conn)
            if link is None:
                continue
            if isinstance(out, Drop) and not out.flush:
                link.abort()  # at once: what is still queued is lost, as on a real cut
            else:
                link.outbox.put_nowait(out)
        self._arm()

    def _arm(self) -> None:
        due = self.core.next_deadline()
        if due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is not None:
            self._timer = asyncio.get_running_loop().call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        due = self._timer_at or 0.0
        self._timer, self._timer_at = None, None
        # The loop may run a timer a hair early (its clock resolution).
        self.perform(self.core.on_deadline(max(_now(), due)))

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None

    def apply(self, raw: FaultSpec | dict[str, Any]) -> FaultResult:
        """`ServerCore.apply` now, its outputs performed."""
        try:
            return self.core.apply(_now(), raw)
        finally:
            self.perform(self.core.take_outputs())

    def shutdown(self) -> None:
        """Close every gateway socket with 1001."""
        self.perform(self.core.shutdown(_now()))

    async def _http(self, request: web.Request) -> web.StreamResponse:
        try:
            body: bytes | None = await request.read() if request.can_read_body else b""
        except web.HTTPRequestEntityTooLarge:
            body = None
        req = next(self._req_ids)
        waiter: asyncio.Future[HttpReply] = asyncio.get_running_loop().create_future()
        self._waiters[req] = waiter
        try:
            self.perform(self.core.http(
                _now(), req, request.method, request.raw_path, request.headers.items(), body
            ))
            reply = await waiter
        except asyncio.CancelledError:
            self.perform(self.core.http_cancelled(_now(), req))
            raise
        finally:
            self._waiters.pop(req, None)
        return web.Response(status=reply.status, headers=list(reply.headers),
                            body=reply.body or None)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=MAX_FRAME_BYTES, timeout=_CLOSE_TIMEOUT_S, autoping=True
        )
        await ws.prepare(request)
        conn = next(self._conn_ids)
        link = _Link(ws, request)
        self._links[conn] = link
        link.writer = asyncio.create_task(link.write_loop())
        core = self.core
        code: int | None = None
        reason = ""
        oversized = False
        try:
            self.perform(core.socket_opened(_now(), conn, request.raw_path, request.remote))
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT:
                    self.perform(core.socket_text(_now(), conn, msg.data))
                elif msg.type is WSMsgType.BINARY:
                    self.perform(core.socket_binary(_now(), conn, len(msg.data)))
                elif msg.type is WSMsgType.CLOSE:
                    code, reason = int(msg.data), msg.extra or ""
                    break
                else:  # ERROR (1009: a frame too big), CLOSING / CLOSED: cut or our close
                    oversized = msg.type is WSMsgType.ERROR and ws.close_code == 1009
                    break
        finally:
            try:
                link.outbox.put_nowait(None)
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(link.writer, _CLOSE_TIMEOUT_S + 1)
                if not ws.closed:
                    link.abort()
            finally:  # whatever the socket's teardown did, the core learns it is gone
                if oversized:
                    self.perform(core.socket_oversized(_now(), conn))
                self.perform(core.socket_closed(_now(), conn, code, reason))
                self._links.pop(conn, None)
        return ws


class FakeServer:
    """A scriptable Accord server. `async with FakeServer(config) as server: ...`"""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.control_token = config.control_token or secrets.token_hex(24)
        now = _now()
        self.core = ServerCore(
            config, Store(config.db), History(config.history_path, config.history),
            wall_origin=time.time() - now, now=now,
        )
        self.host = CoreApp(self.core)
        self._runners: list[web.AppRunner] = []
        self._info: ServerInfo | None = None

    # ------------------------------------------------------------------ the core's state

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def history(self) -> History:
        return self.core.history

    @property
    def board(self) -> FaultBoard:
        return self.core.board

    @property
    def sessions(self) -> SessionRegistry:
        self.core.advance_clock(_now())
        return self.core.sessions

    # ------------------------------------------------------------------ lifecycle

    @property
    def info(self) -> ServerInfo:
        if self._info is None:
            raise RuntimeError("server not started")
        return self._info

    async def start(self) -> ServerInfo:
        from fake_server.control import build_control_app  # control imports this module

        cfg = self.config
        tls = None if cfg.plain_http else resolve_tls(cfg)
        sock = bind_socket(cfg.host, cfg.port)
        port = sock.getsockname()[1]
        # handler_cancellation: a hung request ends when its client gives up.
        # keepalive_timeout: accordserver v0.1.32 (hyper) keeps an idle keep-alive
        # connection open (measured: still open after 200 s); aiohttp's default
        # closes it after 75 s.
        runner = web.AppRunner(
            self.host.app,
            handler_cancellation=True,
            shutdown_timeout=1.0,
            access_log=None,
            keepalive_timeout=IDLE_KEEPALIVE_S,
        )
        await runner.setup()
        self._runners.append(runner)
        await web.SockSite(
            runner, sock, ssl_context=None if tls is None else server_context(tls)
        ).start()

        control_url = None
        if cfg.control_port is not None:
            csock = bind_socket(cfg.control_host, cfg.control_port)
            crunner = web.AppRunner(build_control_app(self), access_log=None, shutdown_timeout=1.0)
            await crunner.setup()
            self._runners.append(crunner)
            await web.SockSite(crunner, csock).start()
            control_url = f"http://{_url_host(cfg.control_host)}:{csock.getsockname()[1]}"

        host = _url_host(cfg.host)
        secure = "" if tls is None else "s"
        origin = f"http{secure}://{host}:{port}"
        self._info = ServerInfo(
            rest=origin + "/api/v1",
            gateway=f"ws{secure}://{host}:{port}/ws",
            control=control_url,
            control_token=self.control_token,
            ca=str(tls.ca.resolve()) if tls is not None and tls.ca else None,
            health=origin + "/health",
            behaviours=tuple(sorted(cfg.behaviours)),
        )
        self.core.advance_clock(_now())
        self.core.record(
            "server", "start",
            {"pid": os.getpid(), "rest": self._info.rest, "gateway": self._info.gateway,
             "timescale": cfg.timescale, "heartbeat_interval_ms": cfg.heartbeat_interval_ms,
             "behaviours": list(self._info.behaviours), "rate_limit": cfg.rate_limit},
        )
        return self._info

    async def stop(self) -> None:
        self.host.shutdown()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        self.host.stop_timer()
        self.core.advance_clock(_now())
        self.core.record("server", "stop", {"pid": os.getpid()})
        self.history.close()
        self.store.close()

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ faults (Python API)

    async def apply(self, raw: FaultSpec | dict[str, Any]) -> FaultResult:
        """Apply one fault spec: act now, or stand on the board until used up or cleared.
        Raises FaultSpecError (with `.field`) on an invalid spec, and ApiError when an
        `act_as` is refused (unknown user, channel or message; not the author)."""
        return self.host.apply(raw)

    def faults(self) -> list[dict[str, Any]]:
        return self.core.faults()

    def clear(self, fault_id: str) -> bool:
        return self.core.clear(_now(), fault_id)

    def reset(self) -> int:
        return self.core.reset(_now())

    # ------------------------------------------------------------------ inspection

    def history_records(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        return self.core.history_records(after, limit)

    def session_list(self) -> list[dict[str, Any]]:
        return self.core.session_list(_now())

    def session_counts(self) -> dict[str, int]:
        return self.core.session_counts(_now())

    def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        return self.core.messages(channel_id)

    @property
    def db_path(self) -> Path:
        return self.config.db


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


__all__ = ["CoreApp", "FakeServer", "FaultResult", "ServerInfo", "bind_socket"]
