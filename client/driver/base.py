"""What both drivers (asyncio: `driver.py`, gevent: `green.py`) share: the
recorder around the core, feeding inputs and timer fires, failing loudly on a
core exception, and carrying out the core's socket effects. A driver supplies
its clock, its timer, its waiters and how it opens sockets and runs requests."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from client.core.io import (
    AbortSocket,
    CancelHttp,
    CloseSocket,
    Effect,
    HttpRequest,
    OpenSocket,
    SendText,
)
from client.core.timings import Timings
from client.driver.errors import describe
from client.timeline import CoreLike, Recorder, Timeline
from client.ui.view_state import ViewState

log = logging.getLogger(__name__)

INSECURE = "refused: only https:// and wss:// URLs are used"
# Timeline record (src client, kind conn) of a CloseSocket(frame=False) carried out.
DROPPED_WITHOUT_CLOSE_FRAME = "dropped_without_close_frame"


class DriverError(RuntimeError):
    """The core raised while handling an input: the run cannot be trusted."""


class TransportSocket(Protocol):
    """One gateway socket as a driver holds it."""

    @property
    def done(self) -> bool: ...
    def send(self, text: str) -> None: ...
    def close(self, code: int, reason: str, handshake_timeout: float) -> None: ...
    def abort(self) -> None: ...


class DriverBase:
    def __init__(self, core: CoreLike, timeline: Timeline | None, timings: Timings | None) -> None:
        self.timeline = timeline if timeline is not None else Timeline()
        self.recorder = Recorder(core, self.timeline, timings)
        self._sockets: dict[int, TransportSocket] = {}
        self._closing: set[TransportSocket] = set()  # let go by the core, still closing
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
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        return self.view.snapshot(self.now())

    # ----------------------------------------------------------------- the driver's own

    def _reschedule(self) -> None:
        raise NotImplementedError

    def _wake_waiters(self) -> None:
        raise NotImplementedError

    def _open_socket(self, effect: OpenSocket) -> None:
        raise NotImplementedError

    def _start_request(self, effect: HttpRequest) -> None:
        raise NotImplementedError

    def _cancel_request(self, req: int) -> None:
        raise NotImplementedError

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

    def _advance(self) -> None:
        """The core's timer fired."""
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
            self._cancel_request(effect.req)

    def _note_conn(self, name: str, data: dict[str, Any]) -> None:
        if not self._stopped:
            self.timeline.add(self.now(), "client", "conn", name, data)

    def _keep_until_done(self, sock: TransportSocket) -> None:
        """A socket the core let go still finishes its close; stop() waits for it."""
        self._closing = {s for s in self._closing if not s.done}
        if not sock.done:
            self._closing.add(sock)
