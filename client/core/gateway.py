"""One gateway connection per server, as a sans-I/O state machine.

Two tables are the whole policy (the spec's states are derived in `state`):
`TRANSITIONS`, the way in (phase, event) -> phase; and `ENDINGS`, the way out:
when a connection ends (a close, a drop, a failed open, a timeout, or the
client's own close), the first row that applies names the next phase and what
the session is told: events it drains with `take_events()` after each call, so
the gateway never calls up into the core. Retries exist only after a READY.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from client.core import frames
from client.core import gateway_policy as gp
from client.core.bugs import Bug
from client.core.cache import str_id
from client.core.gateway_policy import Phase
from client.core.io import (
    AbortSocket,
    CloseSocket,
    Effect,
    Log,
    NetError,
    OpenSocket,
    RngDraw,
    SendText,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
)
from client.core.protocol import CloseCode, Op, Reason4000, close_text, is_fatal
from client.core.rest import NET_ERROR_TEXT
from client.core.timers import Machine, TimerKey, TimerKind, Timers
from client.core.timings import Timings

DROPPED = CloseCode.DROPPED  # socket gone without a close frame

OPEN_TIMED_OUT = "Connection timed out"


class Gateway:
    def __init__(
        self,
        server: str,
        url: str,
        *,
        token: Callable[[], str | None],
        out: list[Effect],
        timers: Timers,
        next_id: Callable[[], int],
        timings: Timings,
        rng: random.Random,
        bug_on: Callable[[Bug], bool],
        trace: bool = True,
    ) -> None:
        self.server = server
        self.url = url
        self._trace = trace  # RngDraw and Log effects (client.core.client.ClientCore)
        self._events: list[gp.GatewayEvent] = []
        self._token = token
        self._out = out
        self._timers = timers
        self._next_id = next_id
        self._t = timings
        self._rng = rng
        self._bug_on = bug_on

        self.phase = Phase.IDLE
        self.conn: int | None = None
        self.session_id: str | None = None
        self.seq: int | None = None
        self.attempt = 0  # the current reconnect attempt, 0 when none
        self.retrying = False  # True once this gateway has seen READY
        self.heartbeat_interval: float | None = None
        self._ack_pending = False
        self._resume_pending = False

    # ------------------------------------------------------------------ queries

    @property
    def state(self) -> str:
        return gp.spec_state(self.phase, resuming=self.session_id is not None and self.retrying)

    @property
    def max_attempts(self) -> int:
        return self._t.max_attempts

    def take_events(self) -> list[gp.GatewayEvent]:
        """What happened since the last call, in order, for the session to act on."""
        events, self._events = self._events, []
        return events

    def owns(self, conn: int) -> bool:
        return self.conn == conn

    # ------------------------------------------------------------------ commands

    def connect(self, now: float) -> None:
        self._go("connect")
        self._open(now)

    def stop(self, now: float, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Tear down without reporting anything (removal, re-auth teardown)."""
        if self.conn is not None:
            handshake = self._t.scaled(self._t.close_handshake)
            if self.phase in gp.SOCKET_PHASES:
                self._out.append(CloseSocket(self.conn, int(code), reason, handshake))
            else:
                self._out.append(AbortSocket(self.conn))
        self.conn = None
        self._cancel_timers(gp.CONNECTION_TIMERS + gp.WAIT_TIMERS)
        self.phase = Phase.IDLE

    def on_timer(self, now: float, kind: TimerKind) -> None:
        """A deadline this gateway set is due (dispatched by the core, by kind)."""
        handler = {
            TimerKind.OPEN_TIMEOUT: self._on_open_timeout,
            TimerKind.HELLO_TIMEOUT: self._on_handshake_timeout(Reason4000.HELLO_TIMEOUT),
            TimerKind.READY_TIMEOUT: self._on_handshake_timeout(Reason4000.READY_TIMEOUT),
            TimerKind.HEARTBEAT: self._beat,
            TimerKind.BACKOFF: self._on_backoff_elapsed,
            TimerKind.INVALID_SESSION_WAIT: self._begin_attempt,
        }[kind]
        handler(now)

    # ------------------------------------------------------------------ transport input

    def handle(
        self, now: float, event: SocketOpened | SocketText | SocketClosed | SocketOpenFailed
    ) -> None:
        if self.conn is None or event.conn != self.conn:
            self._log("debug", f"ignored {type(event).__name__} for finished conn {event.conn}")
            return
        if isinstance(event, SocketOpened):
            self._on_opened(now)
        elif isinstance(event, SocketText):
            self._on_text(now, event.text)
        elif isinstance(event, SocketClosed):
            self._log("info", f"socket closed: {event.code} {event.reason!r}")
            self._connection_ended(now, event.code, event.reason)
        else:
            self._on_open_failed(now, event.error, event.detail)

    # ------------------------------------------------------------------ phases

    def _go(self, event: str) -> None:
        nxt = gp.TRANSITIONS.get((self.phase, event))
        if nxt is None:
            raise RuntimeError(f"gateway {self.server}: no transition for {event} in {self.phase}")
        self.phase = nxt

    def _open(self, now: float) -> None:
        self.conn = self._next_id()
        self._ack_pending = False
        self.heartbeat_interval = None
        self._out.append(OpenSocket(conn=self.conn, url=self.url))
        self._timers.set(self._key(TimerKind.OPEN_TIMEOUT), now, self._t.open_wait)

    def _on_opened(self, now: float) -> None:
        if self.phase is not Phase.OPENING:
            self._log("debug", "ignored a second open report")
            return
        self._go("opened")
        self._timers.cancel(self._key(TimerKind.OPEN_TIMEOUT))
        self._timers.set(self._key(TimerKind.HELLO_TIMEOUT), now, self._t.hello_wait)
        self._events.append(gp.Opened())

    def _on_open_failed(self, now: float, error: NetError, detail: str) -> None:
        self._log("warning", f"socket open failed: {error.value} {detail}".rstrip())
        if (
            error is NetError.REFUSED
            and self.retrying
            and self._bug_on(Bug.REFUSED_OPEN_STOPS_RETRIES)
        ):
            # Bug 10: the original stopped here for good, status left as it was.
            self._cancel_timers()
            self.conn = None
            self.phase = Phase.IDLE
            self._log("warning", "bug 10: retry loop stopped after a refused open")
            return
        self._connection_ended(now, DROPPED, "", text=NET_ERROR_TEXT[error])

    def _on_open_timeout(self, now: float) -> None:
        if self.conn is not None:
            self._out.append(AbortSocket(self.conn))
        self._log("warning", "gateway open timed out")
        self._connection_ended(now, DROPPED, "", text=OPEN_TIMED_OUT)

    def _on_handshake_timeout(self, reason: Reason4000) -> Callable[[float], None]:
        return lambda now: self._close(now, CloseCode.UNKNOWN_ERROR, reason, frame=False)

    # ------------------------------------------------------------------ frames

    def _on_text(self, now: float, text: str) -> None:
        frame = frames.decode(text)
        if isinstance(frame, str):
            self._log("warning", frame)
            return
        op, data = frame.op, frame.data
        if op == Op.DISPATCH:
            if frame.seq is not None:
                self.seq = frame.seq
            self._on_event(now, frame.type, data)
        elif op == Op.HEARTBEAT:
            if self.heartbeat_interval is not None:
                self._beat(now)
        elif op == Op.HEARTBEAT_ACK:
            self._ack_pending = False
        elif op == Op.HELLO:
            self._on_hello(now, data)
        elif op == Op.RECONNECT:
            self._log("info", "server requested reconnect")
            self._close(
                now,
                CloseCode.UNKNOWN_ERROR,
                Reason4000.RECONNECT,
                frame=self._bug_on(Bug.CLOSE_FRAME_BEFORE_RESUME),
            )
        elif op == Op.INVALID_SESSION:
            self._on_invalid_session(now, data)
        else:
            self._log("debug", f"ignored op {op}")

    def _on_hello(self, now: float, data: Any) -> None:
        if self.phase is not Phase.AWAIT_HELLO:
            self._log("warning", f"ignored HELLO in {self.phase.value}")
            return
        self._go("hello")
        self._timers.cancel(self._key(TimerKind.HELLO_TIMEOUT))
        interval = frames.hello_interval(data)  # as received, never rescaled
        self.heartbeat_interval = (
            interval if interval is not None else self._t.scaled(self._t.heartbeat_default)
        )
        self._ack_pending = False
        self._timers.set(self._key(TimerKind.HEARTBEAT), now, self.heartbeat_interval)
        token = f"Bearer {self._token() or ''}"
        if self.session_id is not None:
            self._send(frames.resume(token, self.session_id, self.seq))
            self._resume_pending = True
        else:
            self._send(frames.identify(token))
        self._timers.set(self._key(TimerKind.READY_TIMEOUT), now, self._t.ready_wait)

    def _on_event(self, now: float, event_type: Any, data: Any) -> None:
        if not isinstance(event_type, str):
            self._log("warning", "ignored an event without a type")
            return
        if event_type in ("ready", "resumed"):
            if self.phase is not Phase.AWAIT_READY:
                self._log("warning", f"ignored {event_type} in {self.phase.value}")
                return
            if event_type == "ready":
                # A snowflake: a decimal string on the wire, an int tolerated.
                self.session_id = str_id(data.get("session_id")) if isinstance(data, dict) else None
            self._go(event_type)
            self._timers.cancel(self._key(TimerKind.READY_TIMEOUT))
            self._resume_pending = False
            self.attempt = 0
            self.retrying = True
            self._events.append(gp.Ready(data, event_type == "resumed"))
            return
        if self.phase not in (Phase.AWAIT_READY, Phase.CONNECTED):
            self._log("warning", f"ignored event {event_type} before the handshake")
            return
        self._events.append(gp.Dispatch(event_type, data))

    def _on_invalid_session(self, now: float, data: Any) -> None:
        resumable = frames.resumable(data)
        self._log("info", f"invalid session (resumable={resumable})")
        if not resumable:
            self.session_id = None
            self.seq = None
        self._resume_pending = False  # INVALID_SESSION decides the session itself
        # Resumable: drop the transport so the session stays parked; not resumable:
        # the session is over, so end it properly with a frame.
        self._close(
            now,
            CloseCode.UNKNOWN_ERROR,
            Reason4000.INVALID_SESSION,
            invalid_session=True,
            frame=not resumable,
        )

    # ------------------------------------------------------------------ heartbeat

    def _beat(self, now: float) -> None:
        if self.conn is None:
            return
        if self._ack_pending:
            self._log("warning", "Heartbeat ACK not received, reconnecting")
            self._close(
                now,
                CloseCode.UNKNOWN_ERROR,
                Reason4000.HEARTBEAT,
                frame=self._bug_on(Bug.CLOSE_FRAME_BEFORE_RESUME),
            )
            return
        self._send(frames.heartbeat(self.seq))
        self._ack_pending = True
        assert self.heartbeat_interval is not None
        self._timers.set(self._key(TimerKind.HEARTBEAT), now, self.heartbeat_interval)

    # ------------------------------------------------------------------ endings

    def _close(
        self, now: float, code: int, reason: str, *, frame: bool, invalid_session: bool = False
    ) -> None:
        """A client-initiated close counts at once; the peer is never waited for.
        `frame=False` for a close meant to resume: no close frame (s.2), bug 11
        puts the frame back for heartbeat timeout and op 6."""
        code, reason = int(code), str(reason)  # plain values in effects and signals
        if self.conn is not None:
            handshake = self._t.scaled(self._t.close_handshake)
            self._out.append(CloseSocket(self.conn, code, reason, handshake, frame=frame))
        self._connection_ended(now, code, reason, invalid_session=invalid_session)

    def _connection_ended(
        self,
        now: float,
        code: int,
        reason: str,
        *,
        text: str | None = None,
        invalid_session: bool = False,
    ) -> None:
        opened = self.phase in gp.SOCKET_PHASES
        facts = gp.EndFacts(
            was_connected=self.phase is Phase.CONNECTED,
            retrying=self.retrying,
            fatal=is_fatal(code),
            attempts_used=self.attempt >= self.max_attempts,
        )
        self._cancel_timers()
        self.conn = None
        if self._resume_pending:
            # A drop while RESUME is pending: the session is not trusted again.
            self.session_id = None
            self.seq = None
            self._resume_pending = False
        self.phase = Phase.IDLE
        ending = next(e for e in gp.ENDINGS if e.applies(facts))
        failure = text or close_text(code, reason)
        self._events += gp.reports(ending, code, reason, failure, opened)
        if ending.then is Phase.BACKOFF:
            if ending.restart_attempts:
                self.attempt = 0
            self._next_attempt(now, invalid_session)

    def _next_attempt(self, now: float, invalid_session: bool) -> None:
        self.phase = Phase.BACKOFF
        if invalid_session:
            extra = self._rng.uniform(
                self._t.invalid_session_wait_min, self._t.invalid_session_wait_max
            )
            self._draw(TimerKind.INVALID_SESSION_WAIT, "invalid-session wait", extra)
            self._timers.set(self._key(TimerKind.INVALID_SESSION_WAIT), now, self._t.scaled(extra))
        else:
            self._begin_attempt(now)

    def _begin_attempt(self, now: float) -> None:
        self.attempt += 1
        self._events.append(gp.Reconnecting(self.attempt, self.max_attempts))
        if self._bug_on(Bug.ONLY_NINE_RETRIES) and self.attempt >= self.max_attempts:
            # Bug 1: the original escalated on announcing attempt 10, before its socket.
            self.phase = Phase.IDLE
            self._events.append(gp.Escalate(DROPPED, ""))
            return
        jitter = self._rng.random()
        self._draw(TimerKind.BACKOFF, f"backoff attempt {self.attempt}", jitter)
        delay = self._t.backoff_delay(self.attempt, jitter)
        self._timers.set(self._key(TimerKind.BACKOFF), now, delay, attempt=self.attempt)

    def _on_backoff_elapsed(self, now: float) -> None:
        self._go("backoff_elapsed")
        self._open(now)

    # ------------------------------------------------------------------ helpers

    def _send(self, text: str) -> None:
        assert self.conn is not None
        self._out.append(SendText(conn=self.conn, text=text))

    def _cancel_timers(self, kinds: tuple[TimerKind, ...] = gp.CONNECTION_TIMERS) -> None:
        for kind in kinds:
            self._timers.cancel(self._key(kind))

    def _key(self, kind: TimerKind) -> TimerKey:
        return TimerKey(self.server, Machine.GATEWAY, kind)

    def _draw(self, kind: TimerKind, purpose: str, value: float) -> None:
        if not self._trace:
            return
        stream = f"{self.server}:gateway"
        self._out.append(RngDraw(stream, purpose, value, self.server, kind.value, self.attempt))

    def _log(self, level: str, message: str) -> None:
        if self._trace:
            self._out.append(Log(level=level, message=message, server=self.server))
