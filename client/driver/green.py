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
    HttpFailed,
    HttpRequest,
    NetError,
    OpenSocket,
    SocketOpenFailed,
)
from client.core.timings import Timings
from client.driver.base import INSECURE, DriverBase
from client.driver.green_transport import GreenGatewaySocket, HttpClient
from client.driver.tls import client_ssl_context
from client.timeline import CoreLike, Record, Timeline

log = logging.getLogger(__name__)


class GeventClientDriver(DriverBase):
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
        super().__init__(core, timeline, timings)
        self._ssl = ssl_context if ssl_context is not None else client_ssl_context(ca_file)
        self._http = HttpClient(self._ssl, keepalive)
        self._requests: dict[int, Greenlet[Any, Any]] = {}
        self._timer: Any = None  # the hub's timer watcher on the next deadline
        self._changed = gevent.event.Event()  # set (and replaced) after every step
        self._started = False

    # ----------------------------------------------------------------- public

    def now(self) -> float:
        """Run time (the timeline's clock) in seconds."""
        return self.timeline.now()

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
            if isinstance(sock, GreenGatewaySocket):
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

    def _on_timer(self) -> None:
        self._cancel_timer()
        self._advance()

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

    def _later(self, event: Any) -> None:
        """Feed `event` after this step (never inside it)."""
        gevent.spawn(self._feed, event)

    def _open_socket(self, effect: OpenSocket) -> None:
        if urlsplit(effect.url).scheme != "wss":
            # Defence in depth: the core refuses such servers before any effect.
            self._later(SocketOpenFailed(effect.conn, NetError.OTHER, INSECURE))
            return
        self._sockets[effect.conn] = GreenGatewaySocket(
            effect.conn, effect.url, self._ssl, self._feed, self._note_conn
        )

    def _cancel_request(self, req: int) -> None:
        greenlet = self._requests.pop(req, None)
        if greenlet is not None:
            greenlet.kill(block=False)

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
