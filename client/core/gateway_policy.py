"""The gateway's policy as tables (client-behaviour.md s.1-s.2): its phases, the
way in (`TRANSITIONS`), the way out when a connection ends (`ENDINGS`), and the
listener it reports to. The machine that runs them is client.core.gateway;
docs/architecture.md shows these tables (python -m client.core.tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from client.core.timers import TimerKind


class Phase(Enum):
    IDLE = "idle"
    BACKOFF = "backoff"
    OPENING = "opening"
    AWAIT_HELLO = "await_hello"
    AWAIT_READY = "await_ready"
    CONNECTED = "connected"


# The way in: (phase, event) -> next phase. Any other input in a phase is ignored
# (logged); the way out of every phase is ENDINGS.
TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.IDLE, "connect"): Phase.OPENING,
    (Phase.BACKOFF, "backoff_elapsed"): Phase.OPENING,
    (Phase.OPENING, "opened"): Phase.AWAIT_HELLO,
    (Phase.AWAIT_HELLO, "hello"): Phase.AWAIT_READY,
    (Phase.AWAIT_READY, "ready"): Phase.CONNECTED,
    (Phase.AWAIT_READY, "resumed"): Phase.CONNECTED,
}

SOCKET_PHASES = frozenset({Phase.AWAIT_HELLO, Phase.AWAIT_READY, Phase.CONNECTED})
# The timers of one connection, all cancelled when it ends.
CONNECTION_TIMERS = (
    TimerKind.OPEN_TIMEOUT,
    TimerKind.HELLO_TIMEOUT,
    TimerKind.READY_TIMEOUT,
    TimerKind.HEARTBEAT,
)


class Report(Enum):
    """What the gateway tells its listener when a connection ends."""

    LOST = "lost"  # gateway_lost: a CONNECTED socket ended, the outage begins
    ESCALATE = "escalate"  # gateway_escalate: the client re-authenticates
    FAILED = "failed"  # gateway_failed: the one attempt of a gateway without READY


@dataclass(frozen=True, slots=True)
class EndFacts:
    was_connected: bool  # the phase was CONNECTED
    retrying: bool  # this gateway has seen a READY
    fatal: bool  # a fatal close code (client.core.protocol.FATAL_CODES)
    attempts_used: bool  # the current attempt is the last (10 of 10)


@dataclass(frozen=True, slots=True)
class Ending:
    when: str
    applies: Callable[[EndFacts], bool]
    then: Phase  # BACKOFF: the next attempt (after the invalid-session wait if one)
    reports: tuple[Report, ...]
    restart_attempts: bool = False  # the count starts again at 1


# The way out: the first row that applies wins.
ENDINGS: tuple[Ending, ...] = (
    Ending(
        "connected, fatal code",
        lambda f: f.was_connected and f.fatal,
        Phase.IDLE,
        (Report.LOST, Report.ESCALATE),
    ),
    Ending(
        "connected", lambda f: f.was_connected, Phase.BACKOFF, (Report.LOST,), restart_attempts=True
    ),
    Ending(
        "never saw READY (first connect, re-auth)",
        lambda f: not f.retrying,
        Phase.IDLE,
        (Report.FAILED,),
    ),
    Ending(
        "fatal code, or attempt 10 failed",
        lambda f: f.fatal or f.attempts_used,
        Phase.IDLE,
        (Report.ESCALATE,),
    ),
    Ending("any other failed attempt", lambda f: True, Phase.BACKOFF, ()),
)
# Bug switches that bend the way out, outside the table on purpose: each puts one
# forbidden behaviour back (client.core.bugs).
BUG_EXITS: tuple[tuple[str, str], ...] = (
    ("bug 10", "a refused open while retrying: IDLE, nothing reported, status left"),
    ("bug 1", "announcing attempt 10: IDLE and escalate, before its socket"),
    ("bug 11", "heartbeat timeout / op 6 close with a frame, so the resume fails"),
)


class GatewayListener(Protocol):
    """What the gateway reports up to the client (which owns status and signals)."""

    def gateway_opened(self, now: float) -> None: ...

    def gateway_ready(self, now: float, data: Any, resumed: bool) -> None: ...

    def gateway_event(self, now: float, event_type: str, data: Any) -> None: ...

    def gateway_lost(self, now: float, code: int, reason: str) -> None:
        """A CONNECTED gateway's socket ended (the outage begins)."""

    def gateway_reconnecting(self, now: float, attempt: int, max_attempts: int) -> None: ...

    def gateway_escalate(self, now: float, code: int, reason: str) -> None:
        """Fatal close, or the last attempt failed: the client re-authenticates."""

    def gateway_failed(self, now: float, text: str, code: int, opened: bool) -> None:
        """The single attempt of a gateway that never saw READY failed."""
