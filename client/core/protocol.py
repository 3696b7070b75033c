"""Protocol facts the client speaks in, each written once: gateway opcodes, close
codes (with whether they are fatal and what the banner says), the client's own
4000 reasons, and the connection statuses (accord-protocol.md s.2-s.3,
client-behaviour.md s.3 and s.5).

Everything else imports from here: the gateway machine, the view models
(`client.ui.texts`), the scenario schema and verdict, the reports.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final


class Op(IntEnum):
    """Gateway frame opcodes (protocol s.2)."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    RESUME = 3
    HEARTBEAT_ACK = 4
    HELLO = 5
    RECONNECT = 6
    INVALID_SESSION = 7


CONNECTION_LOST: Final = "Connection lost"


class CloseCode(IntEnum):
    """Close codes a server may send, plus 1006 for a drop (protocol s.3).

    `.fatal`: the client re-authenticates instead of retrying the socket.
    `.text`: the banner text; 4000 takes its text from the reason (`close_text`)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    DROPPED = 1006  # socket gone without a close frame, empty reason
    TOO_BIG = 1009
    UNKNOWN_ERROR = 4000  # also the client's own closes, by reason
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_VERSION = 4012
    INVALID_INTENT = 4013
    DISALLOWED_INTENT = 4014

    @property
    def fatal(self) -> bool:
        return _CLOSE_ROWS[self][0]

    @property
    def text(self) -> str:
        return _CLOSE_ROWS[self][1]


# code -> (fatal, banner text). Texts for 4012-4014 follow the reference client's
# table verbatim, even where its words differ from the server's names.
_CLOSE_ROWS: Final[dict[CloseCode, tuple[bool, str]]] = {
    CloseCode.NORMAL: (False, "Server closed connection"),
    CloseCode.GOING_AWAY: (False, "Server going away"),
    CloseCode.DROPPED: (False, CONNECTION_LOST),
    CloseCode.TOO_BIG: (False, CONNECTION_LOST),
    CloseCode.UNKNOWN_ERROR: (False, CONNECTION_LOST),
    CloseCode.UNKNOWN_OPCODE: (False, CONNECTION_LOST),
    CloseCode.DECODE_ERROR: (False, CONNECTION_LOST),
    CloseCode.NOT_AUTHENTICATED: (True, "Authentication failed"),
    CloseCode.AUTHENTICATION_FAILED: (True, "Session expired"),
    CloseCode.ALREADY_AUTHENTICATED: (False, CONNECTION_LOST),
    CloseCode.INVALID_SEQ: (False, CONNECTION_LOST),
    CloseCode.RATE_LIMITED: (False, CONNECTION_LOST),
    CloseCode.SESSION_TIMED_OUT: (False, CONNECTION_LOST),
    CloseCode.INVALID_VERSION: (True, "Invalid gateway intent"),
    CloseCode.INVALID_INTENT: (True, "Disallowed gateway intent"),
    CloseCode.DISALLOWED_INTENT: (True, "Unauthorized"),
}

FATAL_CODES: Final = frozenset(c for c in CloseCode if c.fatal)
KNOWN_CLOSE_CODES: Final = tuple(int(c) for c in CloseCode)


class Reason4000(StrEnum):
    """The reasons the client closes with 4000 for (client-behaviour.md s.5).
    The first three have banner texts; the timeouts read as the reason itself."""

    HEARTBEAT = "heartbeat timeout"
    RECONNECT = "server requested reconnect"
    INVALID_SESSION = "invalid session"
    HELLO_TIMEOUT = "hello timeout"
    READY_TIMEOUT = "ready timeout"


_REASON_TEXT_4000: Final[dict[str, str]] = {
    Reason4000.HEARTBEAT: "Heartbeat timeout",
    Reason4000.RECONNECT: "Server requested reconnect",
    Reason4000.INVALID_SESSION: "Session invalidated",
}


def is_fatal(code: int) -> bool:
    return code in FATAL_CODES


def close_text(code: int, reason: str) -> str:
    """What the user reads for a close (protocol s.3 table, behaviour s.5): 4000 by
    its reason; a code outside the table by its reason, else "Connection lost"."""
    if code == CloseCode.UNKNOWN_ERROR:
        return _REASON_TEXT_4000.get(reason, reason or CONNECTION_LOST)
    if code in _CLOSE_ROWS:
        return CloseCode(code).text
    return reason or CONNECTION_LOST


class Status(StrEnum):
    """A server's connection status (client-behaviour.md s.3). SYNCING is what the
    user sees between connected/reconnected and synced; the core's own status
    then reads CONNECTED (with `syncing(server)` true)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    SYNCING = "syncing"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    ERROR = "error"
    NONE = "none"  # unknown server, or configured and never started

    @property
    def core(self) -> Status:
        """The core's status for this one: SYNCING counts as CONNECTED."""
        return Status.CONNECTED if self is Status.SYNCING else self


STATUS_NAMES: Final = tuple(s.value for s in Status)
OUTAGE: Final = frozenset({Status.DISCONNECTED, Status.RECONNECTING})
