"""What the server core says to its driver (the aiohttp layer, or the simulator).

The core never touches a socket: every input method returns a list of `Out`, which
the driver performs in order. Per connection, `SendText`, `Close` and a flushing
`Drop` are queued and performed in order; a non-flushing `Drop` is at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendText:
    """Send one text frame on gateway connection `conn`."""

    conn: int
    text: str


@dataclass(frozen=True, slots=True)
class Close:
    """Send a close frame after the frames queued before it, then wait (briefly) for the
    client's close reply. The driver then reports `socket_closed(now, conn, ...)`."""

    conn: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Drop:
    """End connection `conn` without a close frame (the client sees 1006).
    `flush`: after the frames queued before it (a handshake rejection: INVALID_SESSION,
    then the cut); otherwise at once, queued frames lost (the `drop` fault, silence).
    The core is done with `conn` at once (its session parked or ended, the close
    recorded); a later `socket_closed` for it is ignored."""

    conn: int
    flush: bool = False


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The answer to the request the driver numbered `req` (see `ServerCore.http`)."""

    req: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


Out = SendText | Close | Drop | HttpReply
"""Everything the core asks its driver to do."""

__all__ = ["Close", "Drop", "HttpReply", "Out", "SendText"]
