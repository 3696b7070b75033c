"""FakeServer: the in-process Python API, and the lifecycle of the listeners."""

from __future__ import annotations

import itertools
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from fake_server.config import MAX_FRAME_BYTES, ServerConfig
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
from fake_server.gateway import Connection, _targets
from fake_server.history import History
from fake_server.operations import Operations
from fake_server.ratelimit import RATE_WINDOW_S, RateLimiter
from fake_server.rest import (
    SERVER_KEY,
    add_routes,
    auth_middleware,
    fault_middleware,
    history_middleware,
    rate_limit_middleware,
)
from fake_server.sessions import SessionRegistry
from fake_server.store import Store
from fake_server.tls import resolve_tls, server_context

# The reference's version, tagged as the fake in semver build metadata (which compares equal).
SERVER_VERSION = "0.1.32+accord-fake"


@dataclass(frozen=True)
class ServerInfo:
    rest: str
    gateway: str
    control: str | None
    control_token: str
    ca: str | None
    health: str
    behaviours: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rest": self.rest,
            "gateway": self.gateway,
            "control": self.control,
            "control_token": self.control_token,
            "ca": self.ca,
            "health": self.health,
            "behaviours": list(self.behaviours),
        }


@dataclass(frozen=True)
class FaultResult:
    id: str | None
    kind: str
    result: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "result": self.result}


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEADDR, so a restart can take the same port at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class FakeServer:
    """A scriptable Accord server. `async with FakeServer(config) as server: ...`"""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.control_token = config.control_token or secrets.token_hex(24)
        self.store = Store(config.db)
        self.history = History(config.history_path, config.history)
        self.sessions = SessionRegistry(
            config.replay_buffer, config.scaled(config.resume_window_s), self.history
        )
        self.board = FaultBoard()
        self.ops = Operations(self.store, self.dispatch, config.has("dedupe_nonce"))
        self.rate_limiter = None if config.rate_limit is None else RateLimiter(
            config.rate_limit, config.scaled(RATE_WINDOW_S)
        )
        self.presences: dict[str, dict[str, Any]] = {}
        self.connections: set[Connection] = set()
        self._conn_ids = itertools.count(1)
        self._runners: list[web.AppRunner] = []
        self._info: ServerInfo | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def info(self) -> ServerInfo:
        if self._info is None:
            raise RuntimeError("server not started")
        return self._info

    async def start(self) -> ServerInfo:
        from fake_server.control import build_control_app  # control imports this module

        cfg = self.config
        tls = resolve_tls(cfg)
        app = web.Application(
            middlewares=[history_middleware, rate_limit_middleware, fault_middleware,
                         auth_middleware],
            client_max_size=MAX_FRAME_BYTES,
        )
        app[SERVER_KEY] = self
        add_routes(app)
        app.router.add_get("/ws", self._gateway)
        sock = bind_socket(cfg.host, cfg.port)
        port = sock.getsockname()[1]
        # handler_cancellation: a hung request ends when its client gives up.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        self._runners.append(runner)
        await web.SockSite(runner, sock, ssl_context=server_context(tls)).start()

        control_url = None
        if cfg.control_port is not None:
            csock = bind_socket(cfg.control_host, cfg.control_port)
            crunner = web.AppRunner(build_control_app(self), access_log=None, shutdown_timeout=1.0)
            await crunner.setup()
            self._runners.append(crunner)
            await web.SockSite(crunner, csock).start()
            control_url = f"http://{_url_host(cfg.control_host)}:{csock.getsockname()[1]}"

        host = _url_host(cfg.host)
        origin = f"https://{host}:{port}"
        self._info = ServerInfo(
            rest=origin + "/api/v1",
            gateway=f"wss://{host}:{port}/ws",
            control=control_url,
            control_token=self.control_token,
            ca=str(tls.ca.resolve()) if tls.ca else None,
            health=origin + "/health",
            behaviours=tuple(sorted(cfg.behaviours)),
        )
        self.history.record(
            "server", "start",
            {"pid": os.getpid(), "rest": self._info.rest, "gateway": self._info.gateway,
             "timescale": cfg.timescale, "heartbeat_interval_ms": cfg.heartbeat_interval_ms,
             "behaviours": list(self._info.behaviours), "rate_limit": cfg.rate_limit},
        )
        return self._info

    async def stop(self) -> None:
        for conn in list(self.connections):
            conn.close(1001, "server shutting down", end_session=True)
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        self.history.record("server", "stop", {"pid": os.getpid()})
        self.history.close()
        self.store.close()

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        conn = Connection(self, next(self._conn_ids), request)
        self.connections.add(conn)
        return await conn.serve()

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

    def ready_payload(self, session: Any, user: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        spaces = store.spaces_of(user["id"])
        channels = [c for s in spaces for c in store.channels(s["id"])]
        members = [m for s in spaces for m in store.members(s["id"], 1000, None)]
        roles = [r for s in spaces for r in store.roles(s["id"])]
        # The users (and presences) this user can see: those sharing a space with it.
        # Every user of the server made each READY grow with the whole crowd, a
        # quadratic wall for a load run (docs/load.md); in the seed data everyone
        # shares the one space, so scenarios see the same READY as before.
        users = store.users_sharing_spaces(user["id"])
        visible = {u["id"] for u in users}
        online = {s.user_id for s in self.sessions.open()} & visible
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
            "users": users,
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

    # ------------------------------------------------------------------ faults (Python API)

    async def apply(self, raw: FaultSpec | dict[str, Any]) -> FaultResult:
        """Apply one fault spec: act now, or stand on the board until used up or cleared.
        Raises FaultSpecError (with `.field`) on an invalid spec, and ApiError when an
        `act_as` is refused (unknown user, channel or message; not the author)."""
        spec = parse_fault(raw)
        try:
            result = self._apply_now(spec)
        except ApiError as err:
            self.history.record("fault", "apply", {"id": None, "spec": spec.model_dump(
                mode="json"), "error": err.message, "status": err.status})
            raise
        fault_id = None
        if result is None:
            fault_id = self.board.add(spec).id
            result = {}
        self.history.record(
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
                if _targets(spec, session.username, session.session_id) and session.conn:
                    session.conn.perform(spec)
                    affected.append(session.session_id)
            return {"affected": affected}
        if isinstance(spec, EmitEventSpec):
            n = 0
            for session in self.sessions.live():
                if _targets(spec, session.username, session.session_id) and session.wants(
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
        self.history.record(
            "fault", "fire", {"id": fault.id, "kind": fault.spec.kind,
                              "remaining": fault.remaining, **where},
        )

    def faults(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.board.active]

    def clear(self, fault_id: str) -> bool:
        cleared = self.board.clear(fault_id)
        self.history.record("fault", "clear", {"id": fault_id, "cleared": cleared})
        return cleared

    def reset(self) -> int:
        n = self.board.reset()
        self.history.record("fault", "reset", {"cleared": n})
        return n

    # ------------------------------------------------------------------ inspection

    def history_records(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        return self.history.read(after, limit)

    def session_list(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.sessions.live()]

    def session_counts(self) -> dict[str, int]:
        """How many sessions are open and parked: what a load conductor polls (the
        whole list, JSON-encoded four times a second, was a quarter of the server's
        CPU at 2,500 sessions, profiled)."""
        live = len(list(self.sessions.live()))
        open_ = len(self.sessions.open())
        return {"open": open_, "parked": live - open_}

    def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        return self.store.all_messages(channel_id)

    @property
    def db_path(self) -> Path:
        return self.config.db


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
