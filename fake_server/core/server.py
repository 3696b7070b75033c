"""ServerCore: the fake Accord server's protocol logic, sans I/O.

Sessions, seq, the replay buffer, parking, RESUME / INVALID_SESSION rules, heartbeat
and silence deadlines, the inbound frame limit (4008), intents, the REST routes and
envelopes, the GCRA rate limiter, the fault board, the opt-in behaviours and the
history records all live here. Time is passed in: every input method takes `now`
(seconds, any monotonic origin, the server's own time: the timescale is already in
`config`), and the core says when it next needs to be woken (`next_deadline`).
No sockets, no asyncio, no wall clock, no global random: wall-clock text (message
timestamps, snowflake ids, history `t`) is `wall_origin + now`, tokens come from
an RNG seeded with `rng_seed` (None: the OS's randomness, as the real fake server).

Drivers: `fake_server.app.FakeServer` (aiohttp over TLS, `now` = time.monotonic())
and the simulator (virtual time). Durable state is the `Store` (SQLite; ":memory:"
for simulation); a restart is a new ServerCore on the same Store (and History).

Connection and request ids are the driver's: it numbers each gateway socket
(`conn`) and each HTTP request (`req`) itself, and the core's outputs name them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fake_server.config import ServerConfig
from fake_server.core.io import Out
from fake_server.faults import FaultSpec
from fake_server.history import History
from fake_server.store import Store

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class FaultResult:
    """What applying a fault did: `id` of the standing fault (None when it acted at once)."""

    id: str | None
    kind: str
    result: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "result": self.result}


class ServerCore:
    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        history: History,
        rng_seed: int | None = None,
        *,
        wall_origin: float = 1_767_225_600.0,  # 2026-01-01T00:00:00Z at now == 0
        now: float = 0.0,
    ) -> None:
        """`history`: `History(path)` (JSON lines, as the real fake server) or
        `History(None)` (in memory, cheap: for simulation)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ HTTP

    def http(
        self, now: float, req: int, method: str, target: str, headers: Headers,
        body: bytes | None,
    ) -> list[Out]:
        """One REST request (`target` = path with query, as on the request line, still
        percent-encoded). `body` None: larger than the server accepts (-> 413).
        The answer is an `HttpReply(req, ...)` in the returned list, or comes later
        from `on_deadline` (rest_latency, rest_hang with seconds), or never (rest_hang
        with no seconds: until the client gives up -> `http_cancelled`). The list may
        also hold gateway frames (a POST dispatches message.create)."""
        raise NotImplementedError

    def http_cancelled(self, now: float, req: int) -> list[Out]:
        """The client gave up on request `req` before its answer (a pending one stops
        where it is: a request held `before` its handler never stores anything)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ gateway

    def socket_opened(
        self, now: float, conn: int, target: str = "/ws", peer: str | None = None
    ) -> list[Out]:
        """A gateway WebSocket was accepted (upgrade done). Returns HELLO (or nothing
        yet, under delay_hello: it then comes from `on_deadline`)."""
        raise NotImplementedError

    def socket_text(self, now: float, conn: int, text: str) -> list[Out]:
        """A text frame from the client."""
        raise NotImplementedError

    def socket_binary(self, now: float, conn: int, size: int) -> list[Out]:
        """A binary frame from the client (ignored, as the reference; it counts toward
        the inbound frame limit)."""
        raise NotImplementedError

    def socket_oversized(self, now: float, conn: int) -> list[Out]:
        """The transport refused a frame over MAX_FRAME_BYTES and closed with 1009
        (aiohttp does that itself). A driver without such a limit may instead pass the
        big text to `socket_text`, which answers `Close(conn, 1009, ...)`."""
        raise NotImplementedError

    def socket_closed(
        self, now: float, conn: int, close_code: int | None, reason: str = ""
    ) -> list[Out]:
        """The socket is gone. `close_code`: the client's close frame (it started the
        close); None: the transport went away with no close frame from the client, or
        the close the core asked for (Close / Drop) is done. The session is parked or
        ended as accord-protocol.md s.2 says; `conn` is forgotten."""
        raise NotImplementedError

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """When the core next needs `on_deadline` (handshake timeout, silence drop,
        delayed HELLO, a held REST answer); None: nothing due."""
        raise NotImplementedError

    def on_deadline(self, now: float) -> list[Out]:
        """Run everything due at or before `now`."""
        raise NotImplementedError

    def shutdown(self, now: float) -> list[Out]:
        """Close every gateway socket with 1001 (the session ends), as on SIGTERM."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fault control
    # The control API's operations (fake_server/control.py), as methods.

    def apply(self, now: float, raw: FaultSpec | dict[str, Any]) -> FaultResult:
        """Apply one fault spec: act now, or stand on the board until used up or
        cleared. Raises FaultSpecError (`.field`) on an invalid spec, ApiError when an
        act_as is refused. What it does to sockets waits in `take_outputs()`."""
        raise NotImplementedError

    def take_outputs(self) -> list[Out]:
        """Outputs of `apply` (close/drop/emit now, act_as dispatches) not yet taken."""
        raise NotImplementedError

    def faults(self) -> list[dict[str, Any]]:
        """The standing faults (id, spec, remaining, fired)."""
        raise NotImplementedError

    def clear(self, now: float, fault_id: str) -> bool:
        raise NotImplementedError

    def reset(self, now: float) -> int:
        """Clear every standing fault; returns how many."""
        raise NotImplementedError

    # ------------------------------------------------------------------ inspection

    def history_records(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def session_list(self, now: float | None = None) -> list[dict[str, Any]]:
        """Open and parked sessions (expired ones dropped first)."""
        raise NotImplementedError

    def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored message, with the nonce it was posted with."""
        raise NotImplementedError
