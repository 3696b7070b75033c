"""Runs a client core against real sockets on an asyncio loop.

Every input goes through the `Recorder` (so the timeline sees it), every IO
effect is carried out here, and the core's timers (plus the view's timed hides)
are one `loop.call_at` handle on the next deadline. Nothing here decides policy:
timeouts, retries and texts belong to the core.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from client.core.io import (
    AbortSocket,
    CancelHttp,
    CloseSocket,
    Effect,
    HttpFailed,
    HttpRequest,
    HttpResponse,
    NetError,
    OpenSocket,
    SendText,
    SocketOpenFailed,
)
from client.core.timings import Timings
from client.driver.errors import classify, describe
from client.driver.tls import client_ssl_context
from client.driver.websocket import GatewaySocket
from client.timeline import CoreLike, Record, Recorder, Timeline
from client.ui.view_state import ViewState

log = logging.getLogger(__name__)

INSECURE = "refused: only https:// and wss:// URLs are used"
# Timeline record (src client, kind conn) of a CloseSocket(frame=False) carried out.
DROPPED_WITHOUT_CLOSE_FRAME = "dropped_without_close_frame"


class DriverError(RuntimeError):
    """The core raised while handling an input: the run cannot be trusted."""


class AsyncClientDriver:
    """`async with AsyncClientDriver(core, ca_file=ca) as driver: await driver.act(...)`."""

    def __init__(
        self,
        core: CoreLike,
        *,
        ca_file: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeline: Timeline | None = None,
        timings: Timings | None = None,
        keepalive: bool = False,
    ) -> None:
        self.timeline = timeline if timeline is not None else Timeline()
        self.recorder = Recorder(core, self.timeline, timings)
        self._ssl = ssl_context if ssl_context is not None else client_ssl_context(ca_file)
        # Off by default: a fresh connection per request makes every REST failure
        # the same kind of failure however earlier requests went (deterministic runs).
        self._keepalive = keepalive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_offset = 0.0  # loop.time() - timeline time
        self._session: aiohttp.ClientSession | None = None
        self._sockets: dict[int, GatewaySocket] = {}
        self._closing: set[GatewaySocket] = set()  # let go by the core, still closing
        self._requests: dict[int, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._failure: BaseException | None = None
        self._stopped = False

    # ----------------------------------------------------------------- public

    @property
    def core(self) -> CoreLike:
        return self.recorder.core

    @property
    def view(self) -> ViewState:
        return self.recorder.view

    def now(self) -> float:
        """Run time (the timeline's clock) in seconds."""
        return self._running_loop().time() - self._clock_offset

    def snapshot(self) -> dict[str, Any]:
        return self.view.snapshot(self.now())

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._clock_offset = self._loop.time() - self.timeline.now()
        connector = aiohttp.TCPConnector(ssl=self._ssl, force_close=not self._keepalive, limit=0)
        # No session timeouts: the core owns every one of them.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(), auto_decompress=True
        )
        self._reschedule()

    async def stop(self) -> None:
        """Abort every socket and request; return when nothing is left running."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sockets = [*self._sockets.values(), *self._closing]
        for sock in sockets:
            sock.abort()
        for task in list(self._requests.values()):
            task.cancel()
        await asyncio.gather(
            *(s.wait_closed() for s in sockets),
            *self._requests.values(),
            return_exceptions=True,
        )
        self._sockets.clear()
        self._closing.clear()
        self._requests.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._wake_waiters()  # they see `_stopped` and raise

    async def __aenter__(self) -> AsyncClientDriver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def act(self, action: Any) -> None:
        """A user action (a `client.core.actions` dataclass), fed to the core now."""
        if self._stopped or self._session is None:
            raise RuntimeError("the driver is not running")
        self._raise_failure()
        self._feed(action)
        self._raise_failure()

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str = "condition"
    ) -> None:
        """Return as soon as `predicate()` holds (checked after every step of the
        core), or raise TimeoutError after `timeout` seconds."""
        loop = self._running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._raise_failure()
                    if predicate():
                        return
                    if self._stopped:
                        raise RuntimeError(f"the driver stopped while waiting for {what}")
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)
        except TimeoutError:
            raise TimeoutError(f"{what} not met within {timeout:.3f} s") from None

    async def wait_for_record(self, timeout: float, **filters: Any) -> Record:
        """The first timeline record matching `Timeline.select` filters."""
        await self.wait_for(
            lambda: self.timeline.first(**filters) is not None, timeout, f"record {filters}"
        )
        record = self.timeline.first(**filters)
        assert record is not None
        return record

    # ----------------------------------------------------------------- stepping

    def _feed(self, event: Any) -> None:
        if self._stopped:
            return
        try:
            effects = self.recorder.handle(self.now(), event)
        except Exception as exc:
            self._fail(exc, f"core failed on {type(event).__name__}")
            return
        self._after_step(effects)

    def _on_timer(self) -> None:
        self._timer = None
        if self._stopped:
            return
        try:
            effects = self.recorder.advance(self.now())
        except Exception as exc:
            self._fail(exc, "core failed in advance()")
            return
        self._after_step(effects)

    def _after_step(self, effects: list[Effect]) -> None:
        for effect in effects:
            self._perform(effect)
        self._reschedule()
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.recorder.next_deadline(self.now())
        if deadline is not None and not self._stopped:
            loop = self._running_loop()
            self._timer = loop.call_at(deadline + self._clock_offset, self._on_timer)

    def _fail(self, exc: BaseException, what: str) -> None:
        log.error("%s: %s", what, describe(exc))
        if self._failure is None:
            self._failure = DriverError(f"{what}: {describe(exc)}")
            self._failure.__cause__ = exc
        self._wake_waiters()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # ----------------------------------------------------------------- effects

    def _perform(self, effect: Effect) -> None:
        if isinstance(effect, OpenSocket):
            self._open_socket(effect)
        elif isinstance(effect, SendText):
            sock = self._sockets.get(effect.conn)
            if sock is not None:
                sock.send(effect.text)
        elif isinstance(effect, CloseSocket):
            sock = self._sockets.pop(effect.conn, None)
            if sock is not None:
                if effect.frame:
                    sock.close(effect.code, effect.reason, effect.handshake_timeout)
                else:
                    # A close meant to resume: no close frame on the wire, so the
                    # server parks the session (the core's code/reason are for the record).
                    sock.abort()
                    self._note_conn(
                        DROPPED_WITHOUT_CLOSE_FRAME,
                        {"conn": effect.conn, "code": effect.code, "reason": effect.reason},
                    )
                self._keep_until_done(sock)
        elif isinstance(effect, AbortSocket):
            sock = self._sockets.pop(effect.conn, None)
            if sock is not None:
                sock.abort()
                self._keep_until_done(sock)
        elif isinstance(effect, HttpRequest):
            self._start_request(effect)
        elif isinstance(effect, CancelHttp):
            task = self._requests.pop(effect.req, None)
            if task is not None:
                task.cancel()

    def _open_socket(self, effect: OpenSocket) -> None:
        if urlsplit(effect.url).scheme != "wss":
            # Defence in depth: the core refuses such servers before any effect.
            failed = SocketOpenFailed(effect.conn, NetError.OTHER, INSECURE)
            self._running_loop().call_soon(self._feed, failed)
            return
        assert self._session is not None, "start() the driver first"
        sock = GatewaySocket(
            effect.conn, effect.url, self._session, self._ssl, self._feed, self._note_conn
        )
        self._sockets[effect.conn] = sock

    def _note_conn(self, name: str, data: dict[str, Any]) -> None:
        if not self._stopped:
            self.timeline.add(self.now(), "client", "conn", name, data)

    def _keep_until_done(self, sock: GatewaySocket) -> None:
        """A socket the core let go still finishes its close; stop() waits for it."""
        self._closing = {s for s in self._closing if not s.done}
        if not sock.done:
            self._closing.add(sock)

    def _start_request(self, effect: HttpRequest) -> None:
        if urlsplit(effect.url).scheme != "https":
            failed = HttpFailed(effect.req, NetError.OTHER, INSECURE)
            self._running_loop().call_soon(self._feed, failed)
            return
        task = asyncio.create_task(self._request(effect))
        self._requests[effect.req] = task

    async def _request(self, effect: HttpRequest) -> None:
        assert self._session is not None
        try:
            async with self._session.request(
                effect.method,
                effect.url,
                headers=CIMultiDict(effect.headers),
                data=effect.body,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                headers = tuple(response.headers.items())
            result: HttpResponse | HttpFailed = HttpResponse(
                effect.req, response.status, headers, body
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = HttpFailed(effect.req, classify(exc), describe(exc))
        if self._requests.pop(effect.req, None) is not None:
            self._feed(result)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the driver is not started")
        return self._loop
