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
    HttpFailed,
    HttpRequest,
    HttpResponse,
    NetError,
    OpenSocket,
    SocketOpenFailed,
)
from client.core.timings import Timings
from client.driver.base import INSECURE, DriverBase
from client.driver.errors import classify, describe
from client.driver.tls import client_ssl_context
from client.driver.websocket import GatewaySocket
from client.timeline import CoreLike, Record, Timeline

log = logging.getLogger(__name__)

class AsyncClientDriver(DriverBase):
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
        open_gate: asyncio.Semaphore | None = None,
    ) -> None:
        super().__init__(core, timeline, timings)
        # Shared by the drivers of one crowd process: at most that many socket opens
        # (TCP, TLS, upgrade) in flight, first come first served. A storm bigger than
        # the machine's handshake rate then queues at no cost instead of slowing every
        # handshake past the clients' open timeout at once. The core's timeout still
        # runs from the moment it asked.
        self._open_gate = open_gate
        self._ssl = ssl_context if ssl_context is not None else client_ssl_context(ca_file)
        # Off by default: a fresh connection per request makes every REST failure
        # the same kind of failure however earlier requests went (deterministic runs).
        self._keepalive = keepalive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_offset = 0.0  # loop.time() - timeline time
        self._session: aiohttp.ClientSession | None = None
        self._requests: dict[int, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    # ----------------------------------------------------------------- public

    def now(self) -> float:
        """Run time (the timeline's clock) in seconds."""
        return self._running_loop().time() - self._clock_offset

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._clock_offset = self._loop.time() - self.timeline.now()
        # With keep-alive an idle connection is kept until the server closes it, as
        # the gevent driver does (aiohttp's own 15 s would make every resync after a
        # quiet spell pay a fresh TLS handshake: a storm's recovery doubled them).
        connector = (
            aiohttp.TCPConnector(ssl=self._ssl, keepalive_timeout=None, limit=0)
            if self._keepalive
            else aiohttp.TCPConnector(ssl=self._ssl, force_close=True, limit=0)
        )
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
            *(s.wait_closed() for s in sockets if isinstance(s, GatewaySocket)),
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

    def _on_timer(self) -> None:
        self._timer = None
        self._advance()

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

    def _open_socket(self, effect: OpenSocket) -> None:
        if urlsplit(effect.url).scheme != "wss":
            # Defence in depth: the core refuses such servers before any effect.
            failed = SocketOpenFailed(effect.conn, NetError.OTHER, INSECURE)
            self._running_loop().call_soon(self._feed, failed)
            return
        assert self._session is not None, "start() the driver first"
        sock = GatewaySocket(
            effect.conn,
            effect.url,
            self._session,
            self._ssl,
            self._feed,
            self._note_conn,
            gate=self._open_gate,
        )
        self._sockets[effect.conn] = sock

    def _cancel_request(self, req: int) -> None:
        task = self._requests.pop(req, None)
        if task is not None:
            task.cancel()

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
