"""Runs a client core against real sockets in gevent: the driver native to
Locust's world (no asyncio loop thread, no bridge).

The same contract as `client.driver.driver.AsyncClientDriver`, with a blocking
API for greenlets: `start()`, `act()`, `wait_for()`, `stop()` block only the
calling greenlet. Every input goes through the `Recorder`; every IO effect is
carried out here (`client.driver.green_transport`); the core's timers are one
timer watcher on the hub, on the next deadline. A core step never blocks: effects
only queue work for the sockets' and requests' own greenlets, so no other input
can reach the core in the middle of a step.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.event
from gevent import Greenlet

from client.core.io import (
    AbortSocket,
    CancelHttp,
    CloseSocket,
    Effect,
    HttpFailed,
    HttpRequest,
    NetError,
    OpenSocket,
    SendText,
    SocketOpenFailed,
)
from client.core.timings import Timings
from client.driver.driver import DROPPED_WITHOUT_CLOSE_FRAME, INSECURE, DriverError
from client.driver.errors import describe
from client.driver.green_transport import GreenGatewaySocket, HttpClient
from client.driver.tls import client_ssl_context
from client.timeline import CoreLike, Record, Recorder, Timeline
from client.ui.view_state import ViewState

log = logging.getLogger(__name__)


class GeventClientDriver:
    """`with GeventClientDriver(core, ca_file=ca) as driver: driver.act(...)`."""

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
        self._http = HttpClient(self._ssl, keepalive)
        self._sockets: dict[int, GreenGatewaySocket] = {}
        self._closing: set[GreenGatewaySocket] = set()  # let go by the core, still closing
        self._requests: dict[int, Greenlet[Any, Any]] = {}
        self._timer: Any = None  # the hub's timer watcher on the next deadline
        self._changed = gevent.event.Event()  # set (and replaced) after every step
        self._failure: BaseException | None = None
        self._started = False
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
        return self.timeline.now()

    def snapshot(self) -> dict[str, Any]:
        return self.view.snapshot(self.now())

    def start(self) -> None:
        self._started = True
        self._reschedule()

    def stop(self) -> None:
        """Abort every socket and request; return when nothing is left running."""
        self._stopped = True
        self._cancel_timer()
        sockets = [*self._sockets.values(), *self._closing]
        for sock in sockets:
            sock.abort()
        requests = list(self._requests.values())
        gevent.killall(requests, block=True)
        for sock in sockets:
            sock.wait_closed()
        self._http.close()
        self._sockets.clear()
        self._closing.clear()
        self._requests.clear()
        self._wake_waiters()  # they see `_stopped` and raise

    def __enter__(self) -> GeventClientDriver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def act(self, action: Any) -> None:
        """A user action (a `client.core.actions` dataclass), fed to the core now."""
        if self._stopped or not self._started:
            raise RuntimeError("the driver is not running")
        self._raise_failure()
        self._feed(action)
        self._raise_failure()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str = "condition"
    ) -> None:
        """Return as soon as `predicate()` holds (checked after every step of the
        core), or raise TimeoutError after `timeout` seconds."""
        deadline = self.now() + timeout
        while True:
            self._raise_failure()
            if predicate():
                return
            if self._stopped:
                raise RuntimeError(f"the driver stopped while waiting for {what}")
            left = deadline - self.now()
            if left <= 0 or not self._changed.wait(left):
                if predicate():
                    return
                raise TimeoutError(f"{what} not met within {timeout:.3f} s")

    def wait_for_record(self, timeout: float, **filters: Any) -> Record:
        """The first timeline record matching `Timeline.select` filters."""
        self.wait_for(
            lambda: self.timeline.first(**filters) is not None, timeout, f"record {filters}"
        )
        record = self.timeline.first(**filters)
        assert record is not None
        return record

    def running(self) -> int:
        """Greenlets of this driver still running (sockets and requests): 0 after stop()."""
        socks = [*self._sockets.values(), *self._closing]
        return sum(not s.done for s in socks) + sum(not g.dead for g in self._requests.values())

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
        self._cancel_timer()
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
        changed, self._changed = self._changed, gevent.event.Event()
        changed.set()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None

    def _reschedule(self) -> None:
        self._cancel_timer()
        deadline = self.recorder.next_deadline(self.now())
        if deadline is not None and not self._stopped:
            timer = gevent.get_hub().loop.timer(max(0.0, deadline - self.now()))
            # The watcher's callback runs in the hub; a step must run in a greenlet
            # (it may wake waiters, which switches).
            timer.start(lambda: gevent.spawn(self._on_timer))
            self._timer = timer

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
            greenlet = self._requests.pop(effect.req, None)
            if greenlet is not None:
                greenlet.kill(block=False)

    def _later(self, event: Any) -> None:
        """Feed `event` after this step (never inside it)."""
        gevent.spawn(self._feed, event)

    def _open_socket(self, effect: OpenSocket) -> None:
        if urlsplit(effect.url).scheme != "wss":
            # Defence in depth: the core refuses such servers before any effect.
            self._later(SocketOpenFailed(effect.conn, NetError.OTHER, INSECURE))
            return
        self._sockets[effect.conn] = GreenGatewaySocket(
            effect.conn, effect.url, self._ssl, self._from_socket, self._note_conn
        )

    def _from_socket(self, event: Any) -> None:
        self._feed(event)

    def _note_conn(self, name: str, data: dict[str, Any]) -> None:
        if not self._stopped:
            self.timeline.add(self.now(), "client", "conn", name, data)

    def _keep_until_done(self, sock: GreenGatewaySocket) -> None:
        """A socket the core let go still finishes its close; stop() waits for it."""
        self._closing = {s for s in self._closing if not s.done}
        if not sock.done:
            self._closing.add(sock)

    def _start_request(self, effect: HttpRequest) -> None:
        if urlsplit(effect.url).scheme != "https":
            self._later(HttpFailed(effect.req, NetError.OTHER, INSECURE))
            return
        self._requests[effect.req] = gevent.spawn(self._request, effect)

    def _request(self, effect: HttpRequest) -> None:
        result = self._http.request(
            effect.req, effect.method, effect.url, tuple(effect.headers), effect.body
        )
        if self._requests.pop(effect.req, None) is not None:
            self._feed(result)
