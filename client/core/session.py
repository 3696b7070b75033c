"""One configured server's session: its phase, the one table of how the phase
moves, and the state the core keeps for it (client-behaviour.md s.3-s.8).

The phase is a `Status` (client.core.protocol). SYNCING is the core's
"connected, catching up": `ClientCore.status()` reads it as `connected` and
`syncing()` as true. Every phase change goes through `Session.go(event)`, which
looks the move up in `TRANSITIONS` and raises on a move the table does not
have, so the table is the whole story (docs/architecture.md shows it).

Stale answers: every REST request carries a token, the session's `epoch` and a
scope per request kind (client.core.purposes). An answer of CONNECTION scope (the
connect chain, the refetch, a catch-up) is dropped once the epoch has moved on;
every answer is dropped once its session is no longer the configured one
(`ClientCore._current`). Sends, edits, deletes and reactions are SESSION scope:
their answers settle a message whatever the gateway did since.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from client.core.actions import ServerConfig
from client.core.cache import ServerCache
from client.core.outgoing import Attempt, Outgoing
from client.core.protocol import Status
from client.core.rest import Rest, RestAnswered

if TYPE_CHECKING:
    from client.core.gateway import Gateway


class Event(StrEnum):
    """What moves a session's phase."""

    CONNECT = "connect"  # the user (or the add-server dialog) starts the first connect
    CONNECT_FAILED = "connect_failed"  # a first-connect step or its one gateway attempt
    SOCKET_OPENED = "socket_opened"  # bug 7 only: "connected" at socket open
    READY = "ready"  # READY or RESUMED: the refetch starts
    SYNCED = "synced"  # the refetch ended
    LOST = "lost"  # a connected gateway's socket ended: the outage begins
    ATTEMPT = "attempt"  # the gateway announces reconnect attempt n of 10
    REAUTH = "reauth"  # escalation (fatal close, attempts used up) or the user's Reconnect
    REAUTH_FAILED = "reauth_failed"  # the re-auth's one attempt failed, or escalation twice
    RELOGIN_FAILED = "relogin_failed"  # a REST 401's re-login was refused


S = Status
# event -> (the phases it may come in, the phase it leaves, when and why).
TRANSITIONS: Final[dict[Event, tuple[frozenset[Status], Status, str]]] = {
    Event.CONNECT: (
        frozenset({S.NONE, S.ERROR}),
        S.CONNECTING,
        "never connected before (else ignored: a connected server re-auths instead)",
    ),
    Event.CONNECT_FAILED: (
        frozenset({S.CONNECTING, S.CONNECTED}),
        S.ERROR,
        "not re-authenticating; CONNECTED only with bug 7; the add dialog rolls back",
    ),
    Event.SOCKET_OPENED: (
        frozenset({S.CONNECTING, S.RECONNECTING}),
        S.CONNECTED,
        "bug 7 only",
    ),
    Event.READY: (
        frozenset({S.CONNECTING, S.RECONNECTING, S.CONNECTED}),
        S.SYNCING,
        "connected (first READY) or reconnected (after an outage or re-auth)",
    ),
    Event.SYNCED: (frozenset({S.SYNCING}), S.CONNECTED, "then the queue flushes (not with bug 6)"),
    Event.LOST: (
        frozenset({S.SYNCING, S.CONNECTED}),
        S.DISCONNECTED,
        "fatal code: REAUTH next; else attempt 1",
    ),
    Event.ATTEMPT: (
        frozenset({S.DISCONNECTED, S.RECONNECTING, S.CONNECTED}),
        S.RECONNECTING,
        "after READY only; CONNECTED only with bug 7",
    ),
    Event.REAUTH: (
        frozenset({S.DISCONNECTED, S.RECONNECTING, S.ERROR, S.CONNECTED}),
        S.RECONNECTING,
        "automatic: once per outage (the guard), else REAUTH_FAILED;"
        " by the user: from DISCONNECTED, RECONNECTING or ERROR",
    ),
    Event.REAUTH_FAILED: (
        frozenset({S.DISCONNECTED, S.RECONNECTING, S.CONNECTED}),
        S.ERROR,
        "'Reconnection failed'; bug 2: a fatal close escalates again instead",
    ),
    Event.RELOGIN_FAILED: (
        frozenset({S.SYNCING, S.CONNECTED, S.DISCONNECTED, S.RECONNECTING, S.ERROR}),
        S.ERROR,
        "not re-authenticating: 'Authentication failed'",
    ),
}
del S

# Guards the core reads by phase (s.4-s.6).
CAN_RECONNECT: Final = frozenset({Status.DISCONNECTED, Status.RECONNECTING, Status.ERROR})
SEND_REFUSED: Final = frozenset({Status.ERROR, Status.CONNECTING, Status.NONE, Status.SYNCING})
SEND_QUEUED: Final = frozenset({Status.DISCONNECTED, Status.RECONNECTING})
LOADS_MESSAGES: Final = frozenset(
    {Status.CONNECTED, Status.SYNCING, Status.DISCONNECTED, Status.RECONNECTING}
)


@dataclass(eq=False)
class Session:
    config: ServerConfig
    rest: Rest
    gateway: Gateway | None = None
    phase: Status = Status.NONE
    epoch: int = 0  # moves on at every connect, loss, READY and teardown (purposes.Token)
    ever_connected: bool = False  # a first READY happened
    in_outage: bool = False  # the next READY/resumed ends an outage
    reauthing: bool = False  # inside the re-auth (it may outlive phase moves under bug 7)
    escalation_guard: bool = False  # automatic escalation already used this outage
    signalled_at_open: bool = False  # bug 7 already announced this connection
    adding: bool = False  # inside the add-server dialog flow
    last_failure: str = ""
    skip_next_flush: bool = False  # bug 6
    user_id: str | None = None
    space_id: str | None = None
    cache: ServerCache = field(default_factory=ServerCache)
    # The outbox (client.core.outgoing): every message on its way is an Outgoing.
    failed: list[Outgoing] = field(default_factory=list)
    queue: deque[Outgoing] = field(default_factory=deque)
    flushing: bool = False
    # Direct sends go out one at a time, so concurrent sends cannot overtake each
    # other on separate connections (s.6: stored in send order per channel).
    posting: bool = False
    direct: deque[Outgoing] = field(default_factory=deque)  # direct sends waiting their turn
    restored: Outgoing | None = None  # the text left in the composer after a failure
    attempts: dict[str, Attempt] = field(default_factory=dict)  # nonce -> unsettled attempt
    own_ids: set[str] = field(default_factory=set)  # ids known to be this client's sends
    # REST 401s waiting for the one re-login under way (client.core.relogin).
    relogin_waiters: list[RestAnswered] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def status(self) -> Status:
        """The core's status: SYNCING reads CONNECTED."""
        return self.phase.core

    @property
    def syncing(self) -> bool:
        return self.phase is Status.SYNCING

    def go(self, event: Event) -> None:
        sources, target, _ = TRANSITIONS[event]
        if self.phase not in sources:
            raise RuntimeError(f"session {self.name}: no transition for {event} in {self.phase}")
        self.phase = target
