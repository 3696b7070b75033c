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

import heapq
import itertools
import random
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fake_server.config import ServerConfig
from fake_server.core.gateway import Connection, targets
from fake_server.core.io import HttpReply, Out
from fake_server.core.rest import ROUTER, Reply, Request, RequestGen, run_request
from fake_server.errors import ApiError
from fake_server.faults import (
    GATEWAY_ACTION_TYPES,
    ActAsSpec,
    ActiveFault,
    EmitEventSpec,
    ExhaustRateLimitSpec,
    FaultBoard,
    FaultSpec,
    ForgetSessionsSpec,
    RevokeTokensSpec,
    parse_fault,
)
from fake_server.history import History
from fake_server.operations import Operations
from fake_server.ratelimit import RATE_WINDOW_S, RateLimiter
from fake_server.sessions import Session, SessionRegistry
from fake_server.store import MEMORY, Store

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
# The reference's version, tagged as the fake in semver build metadata (which compares equal).
SERVER_VERSION = "0.1.32+accord-fake"
DEFAULT_WALL_ORIGIN = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the wall clock at now == 0 unless the driver says otherwise."""


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
        wall_origin: float = DEFAULT_WALL_ORIGIN,
        now: float = 0.0,
    ) -> None:
        """`history`: `History(path)` (JSON lines, as the real fake server) or
        `History(None)` (in memory, cheap: for simulation). The core takes over the
        store's clock and token source (its own time, its own RNG)."""
        self.config = config
        self.store = store
        self.history = history
        self.now = now
        self._start = now
        self.wall_origin = wall_origin
        self._rng = None if rng_seed is None else random.Random(rng_seed)
        store.clock = self.wall
        store.token_hex = self._token_hex
        self.sessions = SessionRegistry(
            config.replay_buffer, config.scaled(config.resume_window_s), self.record
        )
        self.sessions.now = now
        self.board = FaultBoard()
        self.ops = Operations(store, self.dispatch, config.has("dedupe_nonce"))
        self.rate_limiter = None if config.rate_limit is None else RateLimiter(
            config.rate_limit, config.scaled(RATE_WINDOW_S), clock=self._clock, wall=self.wall
        )
        self.presences: dict[str, dict[str, Any]] = {}
        self.connections: dict[int, Connection] = {}
        self.out: list[Out] = []
        """What the core asks of its driver, in order; drained by every input method."""
        self._timers: list[tuple[float, int, str, int]] = []
        self._timer_order = itertools.count()
        self._pending: dict[int, RequestGen] = {}
        """REST requests waiting (a fault's latency or hang), by the driver's number."""
        self._req_ids = itertools.count(1)
        self.session_id_source: Callable[[], str] | None = None
        """Where session ids come from (default: the store's snowflakes)."""

    @classmethod
    def simulated(
        cls,
        config: ServerConfig,
        rng_seed: int = 0,
        *,
        store: Store | None = None,
        history: History | None = None,
        now: float = 0.0,
        wall_origin: float = DEFAULT_WALL_ORIGIN,
    ) -> ServerCore:
        """A core for simulation, the same run for the same seed: an in-memory SQLite
        store and history, seeded on the virtual wall clock. Pass the `store` and
        `history` of a killed core to restart on the same database (sessions are
        gone, the history goes on under a new boot id)."""
        boot = random.Random(rng_seed).randbytes(4).hex()
        if history is None:
            history = History(None, boot=boot)
        else:
            history.new_boot(boot)
        if store is None:
            store = Store(MEMORY, clock=lambda: wall_origin + now)
        return cls(config, store, history, rng_seed, wall_origin=wall_origin, now=now)

    def new_session_id(self) -> str:
        source = self.session_id_source
        return source() if source is not None else self.store.ids.next()

    # ------------------------------------------------------------------ time

    def _clock(self) -> float:
        return self.now

    def wall(self) -> float:
        """Epoch seconds now (timestamps, ids, history `t`, X-RateLimit-Reset)."""
        return self.wall_origin + self.now

    def _tick(self, now: float) -> None:
        if now > self.now:
            self.now = now
            self.sessions.now = now

    def advance_clock(self, now: float) -> None:
        """Let time pass with no input (what inspection like `sessions` goes by)."""
        self._tick(now)

    def _token_hex(self, nbytes: int) -> str:
        if self._rng is None:
            return secrets.token_hex(nbytes)
        return self._rng.randbytes(nbytes).hex()

    def record(self, kind: str, name: str, data: dict[str, Any]) -> None:
        self.history.record(kind, name, data, t=self.wall_origin + self.now,
                            mono=self.now - self._start)

    def schedule(self, due: float, kind: str, key: int) -> None:
        heapq.heappush(self._timers, (due, next(self._timer_order), kind, key))

    def next_deadline(self) -> float | None:
        """When the core next needs `on_deadline` (handshake timeout, silence drop,
        delayed HELLO, a held REST answer); None: nothing due. It may wake the driver
        for nothing (a deadline a later frame moved); that costs one call."""
        timers = self._timers
        while timers:
            _, _, kind, key = timers[0]
            alive = key in self._pending if kind == "http" else key in self.connections
            if not alive:
                heapq.heappop(timers)
                continue
            return timers[0][0]
        return None

    def on_deadline(self, now: float) -> list[Out]:
        """Run everything due at or before `now`."""
        self._tick(now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, key = heapq.heappop(timers)
            if kind == "http":
                gen = self._pending.pop(key, None)
                if gen is not None:
                    self._step_request(key, gen)
                continue
            conn = self.connections.get(key)
            if conn is None:
                continue
            if kind == "hello":
                if conn.hello_at is not None and not conn.finished:
                    conn.hello(now)
            else:
                conn.on_deadline(now)
        return self.take_outputs()

    def take_outputs(self) -> list[Out]:
        """Outputs not yet taken (those of `apply`: close/drop/emit now, act_as)."""
        out, self.out = self.out, []
        return out

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
        self._tick(now)
        request = Request.parse(next(self._req_ids), method, target, headers, body)
        ROUTER.resolve(request, target.partition("?")[0])
        self._step_request(req, run_request(self, request))
        return self.take_outputs()

    def _step_request(self, req: int, gen: RequestGen) -> None:
        while True:
            try:
                wait = next(gen)
            except StopIteration as done:
                reply: Reply = done.value
                self.out.append(HttpReply(req, reply.status, tuple(reply.headers), reply.body))
                return
            if wait is None:  # held until the client gives up
                self._pending[req] = gen
                return
            if wait > 0:
                self._pending[req] = gen
                self.schedule(self.now + wait, "http", req)
                return

    def http_cancelled(self, now: float, req: int) -> list[Out]:
        """The client gave up on request `req` before its answer (a pending one stops
        where it is: a request held `before` its handler never stores anything)."""
        self._tick(now)
        gen = self._pending.pop(req, None)
        if gen is not None:
            gen.close()
        return self.take_outputs()

    # ------------------------------------------------------------------ gateway

    def socket_opened(
        self, now: float, conn: int, target: str = "/ws", peer: str | None = None
    ) -> list[Out]:
        """A gateway WebSocket was accepted (upgrade done). Returns HELLO (or nothing
        yet, under delay_hello: it then comes from `on_deadline`)."""
        self._tick(now)
        request = Request.parse(next(self._req_ids), "GET", target, (), b"")
        self.record("http", "request", {"req": request.id, "method": "GET",
                                        "path": request.path, "query": dict(request.query),
                                        "body": None})
        connection = Connection(self, conn, now)
        self.connections[conn] = connection
        self.record("conn", "open", {"conn": conn, "peer": peer})
        connection.open(now)
        return self.take_outputs()

    def socket_text(self, now: float, conn: int, text: str) -> list[Out]:
        """A text frame from the client."""
        self._tick(now)
        connection = self.connections.get(conn)
        if connection is not None:
            connection.on_text(now, text)
        return self.take_outputs()

    def socket_binary(self, now: float, conn: int, size: int) -> list[Out]:
        """A binary frame from the client (ignored, as the reference; it counts toward
        the inbound frame limit)."""
        self._tick(now)
        connection = self.connections.get(conn)
        if connection is not None:
            connection.on_binary(now, size)
        return self.take_outputs()

    def socket_oversized(self, now: float, conn: int) -> list[Out]:
        """The transport refused a frame over MAX_FRAME_BYTES and closed with 1009
        (aiohttp does that itself). A driver without such a limit may instead pass the
        big text to `socket_text`, which answers `Close(conn, 1009, ...)`."""
        self._tick(now)
        connection = self.connections.get(conn)
        if connection is not None and not connection.finished:
            connection.on_oversized()
        return self.take_outputs()

    def socket_closed(
        self, now: float, conn: int, close_code: int | None, reason: str = ""
    ) -> list[Out]:
        """The socket is gone. `close_code`: the client's close frame (it started the
        close); None: the transport went away with no close frame from the client, or
        the close the core asked for (Close / Drop) is done. The session is parked or
        ended as accord-protocol.md s.2 says; `conn` is forgotten."""
        self._tick(now)
        connection = self.connections.get(conn)
        if connection is not None:
            if close_code is not None:
                connection.ended("client", close_code, reason)
            else:
                connection.ended("lost", 1006, "")
            self.finish(connection)
        return self.take_outputs()

    def finish(self, connection: Connection) -> None:
        """The socket is over: park or end its session, record how it ended, forget it.
        (A Drop finishes at once: the core cut it, so it knows.)"""
        conn = connection.id
        if self.connections.pop(conn, None) is None:
            return
        connection.cut = True
        parked = connection.release_session()
        session, user = connection.session, connection.user
        self.record("conn", "close", {
            "conn": conn,
            "code": 1006 if connection.close_code is None else connection.close_code,
            "reason": connection.close_reason,
            "by": connection.ended_by or "lost",
            "session_id": session.session_id if session else None,
            "user": user["username"] if user else None,
            "parked": parked,
        })

    def close_socket(self, now: float, conn: int, code: int, reason: str = "") -> list[Out]:
        """The server closes one socket with a close frame (`Close` out); the session
        ends or parks by the code, as for the `close` fault."""
        self._tick(now)
        connection = self.connections.get(conn)
        if connection is not None:
            connection.close(code, reason)
        return self.take_outputs()

    def shutdown(self, now: float) -> list[Out]:
        """Close every gateway socket with 1001 (the session ends), as on SIGTERM."""
        self._tick(now)
        for connection in list(self.connections.values()):
            connection.close(1001, "server shutting down", end_session=True)
        return self.take_outputs()

    # ------------------------------------------------------------------ events

    def dispatch(
        self, event_type: str, data: Any, space_id: str, exclude_user_id: str | None
    ) -> int:
        """Send an event to every live session of the space's members that asked for its
        intent; returns how many."""
        members = self.store.member_ids(space_id)
        n = 0
        for session in self.sessions.live():
            if (session.user_id not in members or session.user_id == exclude_user_id
                    or not session.wants(event_type)):
                continue
            frame = session.next_event(event_type, data)
            if session.conn is not None:
                session.conn.send(frame)
            n += 1
        return n

    def ready_payload(self, session: Session, user: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        spaces = store.spaces_of(user["id"])
        channels = [c for s in spaces for c in store.channels(s["id"])]
        members = [m for s in spaces for m in store.members(s["id"], 1000, None)]
        roles = [r for s in spaces for r in store.roles(s["id"])]
        online = {s.user_id for s in self.sessions.open()}
        presences = [
            self.presences.get(uid)
            or {"user_id": uid, "status": "online", "client_status": {"desktop": "online"},
                "activities": []}
            for uid in sorted(online)
        ]
        return {
            "session_id": session.session_id,
            "user_id": user["id"],
            "user": user,
            "spaces": spaces,
            "channels": channels,
            "members": members,
            "roles": roles,
            "users": store.users(),
            "dm_channels": [],
            "presences": presences,
            "unread": [],
            "api_version": "v1",
            "server_version": SERVER_VERSION,
            "is_guest": False,
            "motd": None,
            "mutes": [],
            "relationships": [],
            "voice_states": [],
        }

    # ------------------------------------------------------------------ fault control
    # The control API's operations (fake_server/control.py), as methods.

    def apply(self, now: float, raw: FaultSpec | dict[str, Any]) -> FaultResult:
        """Apply one fault spec: act now, or stand on the board until used up or
        cleared. Raises FaultSpecError (`.field`) on an invalid spec, ApiError when an
        act_as is refused. What it does to sockets waits in `take_outputs()`."""
        self._tick(now)
        spec = parse_fault(raw)
        try:
            result = self._apply_now(spec)
        except ApiError as err:
            self.record("fault", "apply", {"id": None, "spec": spec.model_dump(
                mode="json"), "error": err.message, "status": err.status})
            raise
        fault_id = None
        if result is None:
            fault_id = self.board.add(spec).id
            result = {}
        self.record(
            "fault", "apply", {"id": fault_id, "spec": spec.model_dump(mode="json"), **result}
        )
        return FaultResult(fault_id, spec.kind, result)

    def _apply_now(self, spec: FaultSpec) -> dict[str, Any] | None:
        """Immediate faults; None for the standing ones."""
        if isinstance(spec, GATEWAY_ACTION_TYPES):
            if spec.trigger != "now":
                return None
            affected: list[str] = []
            for session in self.sessions.open():
                if spec.count is not None and len(affected) >= spec.count:
                    break
                if targets(spec, session.username, session.session_id) and session.conn:
                    session.conn.perform(spec)
                    affected.append(session.session_id)
            return {"affected": affected}
        if isinstance(spec, EmitEventSpec):
            n = 0
            for session in self.sessions.live():
                if targets(spec, session.username, session.session_id) and session.wants(
                    spec.type
                ):
                    frame = session.next_event(spec.type, spec.data)
                    if session.conn is not None:
                        session.conn.send(frame)
                    n += 1
            return {"dispatched": n}
        if isinstance(spec, ForgetSessionsSpec):
            n = self.sessions.forget(lambda s: spec.user is None or s.username == spec.user)
            return {"forgotten": n}
        if isinstance(spec, RevokeTokensSpec):
            user_id = None
            if spec.user is not None:
                user = self.store.user_by_name(spec.user)
                if user is None:
                    return {"revoked": 0}
                user_id = user["id"]
            return {"revoked": self.store.revoke_all_tokens(user_id)}
        if isinstance(spec, ExhaustRateLimitSpec):
            return self._exhaust_rate_limit(spec)
        if isinstance(spec, ActAsSpec):
            return self._act_as(spec)
        return None

    def _exhaust_rate_limit(self, spec: ExhaustRateLimitSpec) -> dict[str, Any]:
        if self.rate_limiter is None:
            raise ApiError(409, "the REST rate limiter is off (--rate-limit off)")
        if spec.user is None:
            keys = [""]  # the bucket of every request without Authorization
        else:
            user = self.store.user_by_name(spec.user)
            if user is None:
                raise ApiError(404, f"unknown user {spec.user}")
            keys = [f"Bearer {t}" for t in self.store.tokens_of(user["id"])]
        for key in keys:
            self.rate_limiter.exhaust(key)
        return {"buckets": len(keys)}

    def _act_as(self, spec: ActAsSpec) -> dict[str, Any]:
        """Raises ApiError (e.g. 404 unknown message, 403 not the author) like REST would."""
        user = self.store.user_by_name(spec.user)
        if user is None:
            raise ApiError(404, f"unknown user {spec.user}")
        channel = self.ops.channel_for(user, spec.channel)
        if spec.action == "post":
            assert spec.content is not None
            return {"message": self.ops.post(user, channel, spec.content, None, spec.nonce)}
        if spec.action == "edit":
            assert spec.content is not None and spec.message_id is not None
            return {"message": self.ops.edit(user, channel, spec.message_id, spec.content)}
        if spec.action == "delete":
            assert spec.message_id is not None
            self.ops.delete(user, channel, spec.message_id)
            return {"deleted": spec.message_id}
        if spec.action == "typing":
            self.ops.typing(user, channel)
            return {}
        assert spec.message_id is not None and spec.emoji is not None
        self.ops.react(user, channel, spec.message_id, spec.emoji, spec.action == "react")
        return {}

    def fault_fired(self, fault: ActiveFault, **where: Any) -> None:
        self.record(
            "fault", "fire", {"id": fault.id, "kind": fault.spec.kind,
                              "remaining": fault.remaining, **where},
        )

    def faults(self) -> list[dict[str, Any]]:
        """The standing faults (id, spec, remaining, fired)."""
        return [f.to_json() for f in self.board.active]

    def clear(self, now: float, fault_id: str) -> bool:
        self._tick(now)
        cleared = self.board.clear(fault_id)
        self.record("fault", "clear", {"id": fault_id, "cleared": cleared})
        return cleared

    def reset(self, now: float) -> int:
        """Clear every standing fault; returns how many."""
        self._tick(now)
        n = self.board.reset()
        self.record("fault", "reset", {"cleared": n})
        return n

    # ------------------------------------------------------------------ inspection

    def history_records(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        return self.history.read(after, limit)

    def session_list(self, now: float | None = None) -> list[dict[str, Any]]:
        """Open and parked sessions (expired ones dropped first)."""
        if now is not None:
            self._tick(now)
        return [s.to_json() for s in self.sessions.live()]

    def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored message, with the nonce it was posted with."""
        return self.store.all_messages(channel_id)
