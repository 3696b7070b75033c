"""The gateway's policy as tables (client-behaviour.md s.1-s.2): its phases, the
way in (`TRANSITIONS`), the way out when a connection ends (`ENDINGS`), and the
events it reports to its session. The machine that runs them is client.core.gateway;
docs/architecture.md shows these tables (python -m client.core.tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

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


def spec_state(phase: Phase, *, resuming: bool) -> str:
    """The spec's state names: DISCONNECTED, CONNECTING, RESUMING, CONNECTED."""
    if phase is Phase.CONNECTED:
        return "CONNECTED"
    if phase in (Phase.IDLE, Phase.BACKOFF):
        return "DISCONNECTED"
    return "RESUMING" if resuming else "CONNECTING"


SOCKET_PHASES = frozenset({Phase.AWAIT_HELLO, Phase.AWAIT_READY, Phase.CONNECTED})
# The timers of one connection, all cancelled when it ends.
CONNECTION_TIMERS = (
    TimerKind.OPEN_TIMEOUT,
    TimerKind.HELLO_TIMEOUT,
    TimerKind.READY_TIMEOUT,
    TimerKind.HEARTBEAT,
)
# The waits between connections, cancelled too when the gateway is stopped.
WAIT_TIMERS = (TimerKind.BACKOFF, TimerKind.INVALID_SESSION_WAIT)


class Report(Enum):
    """What the gateway reports when a connection ends (as the events below)."""

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


# What the gateway reports to its session, as events the core drains after each
# call into the gateway (`Gateway.take_events()`, as h11's `next_event()`): the
# gateway never calls up into the core.


@dataclass(frozen=True, slots=True)
class Opened:
    """The socket opened (HELLO is awaited)."""


@dataclass(frozen=True, slots=True)
class Ready:
    data: Any
    resumed: bool


@dataclass(frozen=True, slots=True)
class Dispatch:
    """An event frame after the handshake (message.create, ...)."""

    type: str
    data: Any


@dataclass(frozen=True, slots=True)
class Lost:
    """A CONNECTED gateway's socket ended (the outage begins)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    attempt: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class Escalate:
    """Fatal close, or the last attempt failed: the session re-authenticates."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The one attempt of a gateway that never saw READY failed."""

    text: str
    code: int
    opened: bool


GatewayEvent = Opened | Ready | Dispatch | Lost | Reconnecting | Escalate | Failed


def reports(ending: Ending, code: int, reason: str, text: str, opened: bool) -> list[GatewayEvent]:
    """The events an ending's reports stand for, in the table's order."""
    made: dict[Report, GatewayEvent] = {
        Report.LOST: Lost(code, reason),
        Report.ESCALATE: Escalate(code, reason),
        Report.FAILED: Failed(text, code, opened),
    }
    return [made[r] for r in ending.reports]
