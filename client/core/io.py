"""The vocabulary between the pure client core and whatever drives it.

The core never touches a socket, a clock or a global RNG. A driver feeds it
`Input`s together with the current time, and carries out the `Effect`s it returns.
Connections and HTTP requests are named by small integers the core allocates
(`conn`, `req`), so a late event for a connection the core already gave up on is
recognised and ignored.

Timers stay inside the core (aioquic style): the driver asks `next_deadline()` and
calls `advance(now)` when it is due. `SetTimer`/`CancelTimer` effects only make the
core's timers visible to the timeline; a driver need not act on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# --------------------------------------------------------------------------- errors


class NetError(Enum):
    """Network failures, classified once at the driver boundary (httpx style)."""

    REFUSED = "refused"  # TCP refused, or closed during the TLS handshake
    DNS = "dns"  # name resolution failed
    TLS = "tls"  # certificate not trusted / TLS protocol error
    NO_RESPONSE = "no_response"  # closed or reset before a response
    OTHER = "other"  # anything else at the network level


# --------------------------------------------------------------------------- inputs
# Transport events: the driver reports what the network did.


@dataclass(frozen=True, slots=True)
class SocketOpened:
    conn: int


@dataclass(frozen=True, slots=True)
class SocketText:
    """One whole WebSocket text message (the driver reassembles fragments)."""

    conn: int
    text: str


@dataclass(frozen=True, slots=True)
class SocketClosed:
    """The socket is gone. A drop without a close frame is code 1006, reason ''."""

    conn: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class SocketOpenFailed:
    conn: int
    error: NetError
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    req: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpFailed:
    req: int
    error: NetError
    detail: str = ""


TransportInput = (
    SocketOpened | SocketText | SocketClosed | SocketOpenFailed | HttpResponse | HttpFailed
)


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class OpenSocket:
    """Open a WSS connection (TCP + TLS + upgrade). The core owns the open timeout."""

    conn: int
    url: str


@dataclass(frozen=True, slots=True)
class SendText:
    conn: int
    text: str


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """The client ends the connection with `code`/`reason` (the timeline's record
    of who closed and why).

    `frame=True`: a close handshake; abort the transport if it has not finished in
    `handshake_timeout` seconds. `frame=False`: abort the transport now, with no
    close frame on the wire (a close meant to resume: the reference server ends a
    session on any client close frame and parks it only when the socket just goes
    away, protocol s.2); code and reason are then only for the record. Either way
    the core has already counted the connection as closed: nothing more is
    reported for `conn` (a late SocketClosed is ignored)."""

    conn: int
    code: int
    reason: str
    handshake_timeout: float
    frame: bool = True


@dataclass(frozen=True, slots=True)
class AbortSocket:
    """Drop the transport now (also cancels a connect still in progress)."""

    conn: int


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """Send one HTTPS request. The core owns the per-request timeout and sends
    `CancelHttp` when it expires; the driver sets no timeout of its own."""

    req: int
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class CancelHttp:
    req: int


@dataclass(frozen=True, slots=True)
class Signal:
    """An AppState bus signal. `args[0]` is always the configured server's name
    (except `mode_changed`)."""

    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Visibility only: a timer will fire at `at` (core time).

    The facts are `server`, `machine` ("gateway", "http", "http-retry"), `kind`
    (client.core.timers.TimerKind) and `attempt` (the reconnect attempt a backoff
    belongs to, else 0); `name` is their display form ('alpha:gateway:backoff'),
    which scenario files match by glob. Read the fields, never parse the name."""

    name: str
    at: float
    delay: float
    server: str = ""
    machine: str = ""
    kind: str = ""
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str
    server: str = ""
    machine: str = ""
    kind: str = ""


@dataclass(frozen=True, slots=True)
class RngDraw:
    """Visibility only: a random draw the core made (which stream, why, value).

    `kind` is what it was drawn for ("backoff", "invalid-session-wait"),
    `attempt` the reconnect attempt; `purpose` only reads well in a timeline."""

    stream: str
    purpose: str
    value: float
    server: str = ""
    kind: str = ""
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Log:
    """A client log line. Never contains a token (the core redacts)."""

    level: str  # "debug" | "info" | "warning" | "error"
    message: str
    server: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


Effect = (
    OpenSocket
    | SendText
    | CloseSocket
    | AbortSocket
    | HttpRequest
    | CancelHttp
    | Signal
    | SetTimer
    | CancelTimer
    | RngDraw
    | Log
)
# Effects a driver must carry out; the others are for the timeline.
IO_EFFECTS = (OpenSocket, SendText, CloseSocket, AbortSocket, HttpRequest, CancelHttp)
