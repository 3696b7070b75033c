"""What each REST request is for, and the one rule that drops stale answers.

Every request the core sends names its purpose (one of the frozen dataclasses
below, carrying what its answer needs: a step's index, a page count, the message
it settles) and a `Token`. The REST client hands each answer back as an event,
`rest.RestAnswered(purpose, token, call, result)`, which the core drains after
each call into it (`Rest.take_events()`, as the gateway's `take_events()`) and
dispatches by purpose type (client.core.answers): no stored call-backs. A
purpose's `RELOGIN` says whether a 401 answer waits for the s.3 re-login and is
sent once more (client.core.relogin) before it reaches the purpose.

Stale answers, one mechanism: a token is the session's `epoch` when the request
went out and the purpose's `Scope`. `ClientCore._current(srv, token)` drops an
answer whose session was removed, and, for CONNECTION scope, whose epoch moved on
(a new connect, a loss, READY, a teardown). SESSION scope is for answers that
settle something whatever the gateway did since (a send, an edit). Timers carry
their own attempt: a REST deadline is keyed by its request id, a gateway's by its
kind and attempt (client.core.timers), and a new request never reuses an id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from client.core.outgoing import Attempt, Outgoing


class Scope(StrEnum):
    CONNECTION = "connection"  # belongs to one connection: dropped once the epoch moves on
    SESSION = "session"  # dropped only when the server is removed


@dataclass(frozen=True, slots=True)
class Token:
    scope: Scope
    epoch: int  # the session's epoch when the request went out


class Via(StrEnum):
    """Which sender a POST answers: a direct send or the queue's flush."""

    DIRECT = "direct"
    FLUSH = "flush"


@dataclass(frozen=True, slots=True)
class Probe:
    """The add dialog's probe: any HTTP answer goes on to connect, else it rolls back."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class ConnectStep:
    """One step of the connect chain (client.core.steps.CONNECT_CHAIN)."""

    SCOPE: ClassVar[Scope] = Scope.CONNECTION
    RELOGIN: ClassVar[bool] = False
    index: int


@dataclass(frozen=True, slots=True)
class RefetchStep:
    """One step of the refetch after READY/RESUMED (client.core.steps.REFETCH)."""

    SCOPE: ClassVar[Scope] = Scope.CONNECTION
    RELOGIN: ClassVar[bool] = True
    index: int


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A page of the selected channel's missed messages, the refetch's last part."""

    SCOPE: ClassVar[Scope] = Scope.CONNECTION
    RELOGIN: ClassVar[bool] = True
    channel_id: str
    received: int  # messages stored by the earlier pages
    forward: bool  # paged with `after` (else the newest page)


@dataclass(frozen=True, slots=True)
class LoadPage:
    """The newest page of a channel (opening it, click-to-retry)."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = True
    channel_id: str


@dataclass(frozen=True, slots=True, eq=False)
class Post:
    """POST of a message: settles it (sent, failed entry, restored text, paused flush)."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = True
    msg: Outgoing  # the very object queued or sent (the flush compares identity)
    via: Via
    at_most_once: bool  # off with bug 12
    att: Attempt


@dataclass(frozen=True, slots=True, eq=False)
class LookForCopy:
    """A page of the channel searched for an unknown send's copy before it is posted again."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = True
    msg: Outgoing
    via: Via
    at_most_once: bool
    att: Attempt
    pages: int  # pages looked at before this one
    forward: bool


@dataclass(frozen=True, slots=True)
class Edit:
    """PATCH of a message: edited, or the inline edit error."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = True
    channel_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Delete:
    """DELETE of a message: removed, or the delete error."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = True
    message_id: str


@dataclass(frozen=True, slots=True)
class React:
    """PUT/DELETE of a reaction: only a failure is signalled."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = True
    channel_id: str
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True)
class Relogin:
    """The REST 401's one re-login: a new token, then every waiting request again once."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Logout:
    """A removed server's logout: its answer is not waited for."""

    SCOPE: ClassVar[Scope] = Scope.SESSION
    RELOGIN: ClassVar[bool] = False


Purpose = (
    Probe
    | ConnectStep
    | RefetchStep
    | CatchUp
    | LoadPage
    | Post
    | LookForCopy
    | Edit
    | Delete
    | React
    | Relogin
    | Logout
)
PURPOSES: tuple[type[Purpose], ...] = (
    Probe,
    ConnectStep,
    RefetchStep,
    CatchUp,
    LoadPage,
    Post,
    LookForCopy,
    Edit,
    Delete,
    React,
    Relogin,
    Logout,
)
