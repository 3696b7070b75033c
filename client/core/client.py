"""ClientCore: every configured server, its status, re-auth, queue and caches.

One entry point, `handle(now, input_or_action)`; timers via `advance(now)` and
`next_deadline()`; effects drained with `take_effects()`. The gateway policy
lives in `gateway.py`, the REST policy in `rest.py`; this module implements
client-behaviour.md s.3-s.8 on top of them.

Stale work is recognised by a per-server `epoch`: it moves on at every connect,
loss, READY and teardown, and a REST chain started in an older epoch stops
quietly when its answer comes.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from client.core import signals as sig
from client.core.actions import (
    ACTION_TYPES,
    Action,
    AddReaction,
    AddServer,
    ConfigureServer,
    ConnectServer,
    DeleteMessage,
    DiscardFailedMessage,
    DisconnectServer,
    EditMessage,
    FetchMessages,
    ReconnectServer,
    RemoveReaction,
    RetryFailedMessage,
    SelectChannel,
    SelectServer,
    SendMessage,
    ServerConfig,
    SetBug,
    StartEdit,
)
from client.core.bugs import DESCRIPTIONS, Bug, as_bugs, bugs_from_env
from client.core.cache import ServerCache, dict_items, id_order, str_id
from client.core.gateway import Gateway
from client.core.io import (
    Effect,
    HttpFailed,
    HttpResponse,
    Log,
    Signal,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
    TransportInput,
)
from client.core.protocol import Status, is_fatal
from client.core.rest import AUTH_FAILED, Rest, RestResult
from client.core.timers import Machine, TimerKey, Timers
from client.core.timings import Timings

RECONNECTION_FAILED = "Reconnection failed"
UNEXPECTED_RESPONSE = "Unexpected response from server"
NOT_CONNECTED = "Not connected"
UNKNOWN_MESSAGE = "Unknown message"

MESSAGE_PAGE = 50  # newest messages loaded when a channel is opened
REFETCH_PAGE = 100  # page size when catching up with `after`
REFETCH_LIMIT = 500  # most messages one sync fetches per channel


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    channel_id: str
    content: str
    nonce: str


@dataclass(frozen=True, slots=True)
class FailedEntry:
    """A queued message the server refused: kept in the channel, never dropped."""

    channel_id: str
    nonce: str
    content: str
    error: str


@dataclass(slots=True)
class _Attempt:
    """One message on its way to the server, by nonce, until it is settled (s.6).

    `baseline` is the newest id the client knew in the channel when the first
    attempt began: a copy stored by an earlier attempt must be newer. `unknown`:
    an attempt may have reached the server (timeout, connection lost after the
    request went out), so the next POST must look for it first. `busy`: a POST or
    a look-up for it is out (its own answer settles it, not a page or an echo)."""

    channel_id: str
    content: str
    baseline: str | None
    unknown: bool = False
    busy: bool = False


@dataclass(eq=False)
class _Server:
    config: ServerConfig
    rest: Rest
    gateway: Gateway | None = None
    status: Status = Status.NONE
    syncing: bool = False
    epoch: int = 0
    ever_connected: bool = False  # a first READY happened
    in_outage: bool = False  # the next READY/resumed ends an outage
    reauthing: bool = False  # inside reconnect_server
    escalation_guard: bool = False  # automatic escalation already used this outage
    signalled_at_open: bool = False  # bug 7 already announced this connection
    adding: bool = False  # inside the add-server dialog flow
    last_failure: str = ""
    skip_next_flush: bool = False  # bug 6
    user_id: str | None = None
    space_id: str | None = None
    cache: ServerCache = field(default_factory=ServerCache)
    failed: list[FailedEntry] = field(default_factory=list)
    queue: deque[QueuedMessage] = field(default_factory=deque)
    flushing: bool = False
    # Direct sends go out one at a time, so concurrent sends cannot overtake each
    # other on separate connections (s.6: stored in send order per channel).
    posting: bool = False
    outbox: deque[tuple[str, str, str]] = field(default_factory=deque)  # (channel, content, nonce)
    restored: tuple[str, str, str] | None = None  # (channel_id, content, nonce)
    attempts: dict[str, _Attempt] = field(default_factory=dict)  # nonce -> unsettled attempt
    own_ids: set[str] = field(default_factory=set)  # ids known to be this client's sends
    relogin_waiters: list[Callable[[float, bool], None]] | None = None

    @property
    def name(self) -> str:
        return self.config.name


class _GatewayHooks:
    """Binds one server to the core's gateway handlers (GatewayListener)."""

    def __init__(self, core: ClientCore, srv: _Server) -> None:
        self._core = core
        self._srv = srv

    def gateway_opened(self, now: float) -> None:
        self._core._gw_opened(now, self._srv)

    def gateway_ready(self, now: float, data: Any, resumed: bool) -> None:
        self._core._gw_ready(now, self._srv, data, resumed)

    def gateway_event(self, now: float, event_type: str, data: Any) -> None:
        self._core._gw_event(now, self._srv, event_type, data)

    def gateway_lost(self, now: float, code: int, reason: str) -> None:
        self._core._gw_lost(now, self._srv, code, reason)

    def gateway_reconnecting(self, now: float, attempt: int, max_attempts: int) -> None:
        self._core._set_status(self._srv, Status.RECONNECTING)
        self._core._signal(sig.SERVER_RECONNECTING, self._srv.name, attempt, max_attempts)

    def gateway_escalate(self, now: float, code: int, reason: str) -> None:
        self._core._escalate(now, self._srv)

    def gateway_failed(self, now: float, text: str, code: int, opened: bool) -> None:
        self._core._gw_failed(now, self._srv, text, code)


class ClientCore:
    def __init__(
        self,
        timings: Timings | None = None,
        seed: int = 0,
        bugs: Iterable[int] | None = None,
        instance: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """The switches on are `bugs` plus those named in ACCORD_RIG_BUGS of
        `environ`, a mapping the caller passes (the rig passes `os.environ`, so a
        whole catalogue can be run against a buggy client); the core never reads
        the process environment. `instance` salts message nonces so two runs with
        one seed against one database never share one."""
        self.timings = timings or Timings()
        self.seed = seed
        self._out: list[Effect] = []
        self._timers = Timers(self._out)
        self._last_id = 0
        self._servers: dict[str, _Server] = {}
        self._rngs: dict[str, random.Random] = {}
        self._retired: list[Rest] = []  # removed servers' REST, until answers settle
        self.mode = "CONNECTING"
        self._selected: tuple[str, str] | None = None
        self._pending_selection: tuple[str, str] | None = None
        nonce_rng = random.Random(f"{seed}:nonce:{instance}")
        self._nonce_prefix = f"{nonce_rng.getrandbits(48):012x}"
        self._nonce_count = 0
        self.bugs: set[Bug] = set(as_bugs(bugs or ())) | bugs_from_env(environ or {})
        for bug in sorted(self.bugs):
            self._announce_bug(bug)

    # ================================================================== entry points

    def handle(self, now: float, item: TransportInput | Action) -> None:
        if isinstance(item, SocketOpened | SocketText | SocketClosed | SocketOpenFailed):
            self._route_socket(now, item)
        elif isinstance(item, HttpResponse | HttpFailed):
            self._route_http(now, item)
        elif isinstance(item, ACTION_TYPES):
            self._on_action(now, item)
        else:
            raise TypeError(f"ClientCore.handle: not an input or action: {item!r}")

    def advance(self, now: float) -> None:
        while (key := self._timers.pop_due(now)) is not None:
            self._on_timer(now, key)
        self._retired = [r for r in self._retired if r.busy]

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def take_effects(self) -> list[Effect]:
        out = list(self._out)
        self._out.clear()
        return out

    # ================================================================== queries

    def status(self, server: str) -> str:
        srv = self._servers.get(server)
        return (srv.status if srv else Status.NONE).value

    def syncing(self, server: str) -> bool:
        srv = self._servers.get(server)
        return bool(srv and srv.syncing)

    def servers(self) -> list[str]:
        return list(self._servers)

    def config(self, server: str) -> ServerConfig | None:
        srv = self._servers.get(server)
        return srv.config if srv else None

    def queue(self, server: str) -> list[QueuedMessage]:
        srv = self._servers.get(server)
        return list(srv.queue) if srv else []

    def failed_entries(self, server: str) -> list[FailedEntry]:
        srv = self._servers.get(server)
        return list(srv.failed) if srv else []

    def messages(self, server: str, channel_id: str) -> list[dict[str, Any]]:
        srv = self._servers.get(server)
        if srv is None:
            return []
        return srv.cache.ordered(channel_id)

    def channel_id(self, server: str, name: str) -> str | None:
        srv = self._servers.get(server)
        return srv.cache.resolve_channel(name) if srv else None

    def channels(self, server: str) -> dict[str, str]:
        """id -> name for the server's channels."""
        srv = self._servers.get(server)
        if srv is None:
            return {}
        return {cid: srv.cache.channel_name(cid) for cid in srv.cache.channels}

    def selected_channel(self) -> tuple[str, str] | None:
        return self._selected

    def has_token(self, server: str) -> bool:
        srv = self._servers.get(server)
        return bool(srv and srv.rest.token)

    def last_failure(self, server: str) -> str:
        srv = self._servers.get(server)
        return srv.last_failure if srv else ""

    def gateway_state(self, server: str) -> str:
        srv = self._servers.get(server)
        if srv is None or srv.gateway is None:
            return "DISCONNECTED"
        return srv.gateway.state

    def session_id(self, server: str) -> str | None:
        srv = self._servers.get(server)
        return srv.gateway.session_id if srv and srv.gateway else None

    # ================================================================== routing

    def _route_socket(
        self, now: float, event: SocketOpened | SocketText | SocketClosed | SocketOpenFailed
    ) -> None:
        for srv in self._servers.values():
            if srv.gateway is not None and srv.gateway.owns(event.conn):
                srv.gateway.handle(now, event)
                return
        self._log("debug", f"ignored {type(event).__name__} for unknown conn {event.conn}")

    def _on_timer(self, now: float, key: TimerKey) -> None:
        """Dispatch a due deadline by machine to whoever set it."""
        srv = self._servers.get(key.server)
        if key.machine is Machine.GATEWAY:
            if srv is not None and srv.gateway is not None:
                srv.gateway.on_timer(now, key.kind)
            return
        rests = ([srv.rest] if srv is not None else []) + self._retired
        for rest in rests:
            if rest.owns_timer(key):
                rest.on_timer(now, key)
                return

    def _route_http(self, now: float, event: HttpResponse | HttpFailed) -> None:
        for rest in [s.rest for s in self._servers.values()] + self._retired:
            if rest.owns(event.req):
                rest.handle(now, event)
                return
        self._log("debug", f"ignored answer for unknown request {event.req}")

    def _on_action(self, now: float, action: Action) -> None:
        if isinstance(action, SetBug):
            self._set_bug(action)
            return
        if isinstance(action, AddServer | ConfigureServer):
            self._configure(now, action.config, add_flow=isinstance(action, AddServer))
            return
        srv = self._servers.get(action.server)
        if srv is None:
            self._unknown_server(action)
            return
        if isinstance(action, ConnectServer):
            self._connect(now, srv)
        elif isinstance(action, DisconnectServer):
            self._remove(now, srv)
        elif isinstance(action, ReconnectServer):
            self._user_reconnect(now, srv)
        elif isinstance(action, SelectServer):
            self._pending_selection = None
            self._selected = None
            self._signal(sig.SERVER_SELECTED, srv.name)
        elif isinstance(action, SelectChannel):
            self._select(now, srv, action.channel)
        elif isinstance(action, SendMessage):
            self._send(now, srv, action.channel, action.content)
        elif isinstance(action, FetchMessages):
            self._fetch_channel(now, srv, action.channel)
        elif isinstance(action, StartEdit):
            self._signal(sig.EDIT_STARTED, srv.name, action.message_id)
        elif isinstance(action, EditMessage):
            self._edit(now, srv, action.message_id, action.content)
        elif isinstance(action, DeleteMessage):
            self._delete(now, srv, action.message_id)
        elif isinstance(action, AddReaction | RemoveReaction):
            self._react(now, srv, action.message_id, action.emoji, isinstance(action, AddReaction))
        elif isinstance(action, RetryFailedMessage):
            self._retry_failed(now, srv, action.nonce)
        elif isinstance(action, DiscardFailedMessage):
            for entry in [f for f in srv.failed if f.nonce == action.nonce]:
                srv.failed.remove(entry)
                self._signal(sig.FAILED_ENTRY_DISCARDED, srv.name, entry.channel_id, entry.nonce)
        else:  # pragma: no cover - exhaustive over Action
            raise TypeError(f"ClientCore.handle: unsupported input {action!r}")

    def _unknown_server(self, action: Action) -> None:
        server = getattr(action, "server", "?")
        self._log("error", f"{type(action).__name__}: no server named {server!r}")
        if isinstance(action, SendMessage):
            self._signal(
                sig.MESSAGE_SEND_REFUSED,
                server,
                action.channel,
                action.content,
                sig.REFUSED_DISABLED,
            )

    # ================================================================== servers

    def _configure(self, now: float, config: ServerConfig, *, add_flow: bool) -> None:
        problem = config.validate()
        if problem is None and config.name in self._servers:
            problem = f"A server named {config.name!r} already exists"
        if problem is not None:
            self._log("error", f"server {config.name!r} refused: {problem}", config.name)
            self._signal(sig.SERVER_ADD_FAILED, config.name, problem)
            return
        rest = Rest(
            config.name,
            config.rest_base,
            out=self._out,
            timers=self._timers,
            next_id=self._next_id,
            timings=self.timings,
            bug_on=self._bug_on,
        )
        srv = _Server(config=config, rest=rest)
        self._servers[config.name] = srv
        self._signal(sig.SERVER_ADDED, srv.name)
        if not add_flow:
            return
        srv.adding = True
        self._signal(sig.SERVER_PROBE_STARTED, srv.name)

        def probed(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            if not res.ok:
                self._rollback_add(t, srv, res.error)
                return
            self._signal(sig.SERVER_PROBE_OK, srv.name)
            self._connect(t, srv)

        srv.rest.request(now, "GET", "/auth/login", probed, probe=True)

    def _rollback_add(self, now: float, srv: _Server, error: str) -> None:
        self._drop_server(now, srv)
        self._signal(sig.SERVER_ADD_FAILED, srv.name, error)

    def _connect(self, now: float, srv: _Server) -> None:
        if srv.status not in (Status.NONE, Status.ERROR) or srv.ever_connected:
            self._log("info", f"connect ignored: status {srv.status}", srv.name)
            return
        self._set_status(srv, Status.CONNECTING)
        self._signal(sig.SERVER_CONNECTING, srv.name)
        self._run_connect_sequence(now, srv, login=True)

    def _run_connect_sequence(self, now: float, srv: _Server, *, login: bool) -> None:
        """login -> @me -> spaces -> space -> channels -> one gateway attempt."""
        srv.epoch += 1
        epoch = srv.epoch
        cfg = srv.config

        def fail(t: float, text: str) -> None:
            if srv.reauthing:
                self._reconnection_failed(t, srv)
            else:
                self._first_connect_failed(t, srv, text)

        def step(
            t: float, method: str, path: str, then: Callable[[float, Any], None], body: Any = None
        ) -> None:
            def done(t2: float, res: RestResult) -> None:
                if self._servers.get(srv.name) is not srv or srv.epoch != epoch:
                    return  # torn down or superseded meanwhile
                if not res.ok:
                    fail(t2, res.error)
                    return
                then(t2, res.data)

            srv.rest.request(t, method, path, done, body, login=path == "/auth/login")

        def after_login(t: float, data: Any) -> None:
            token = data.get("token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                fail(t, UNEXPECTED_RESPONSE)
                return
            srv.rest.token = token
            step(t, "GET", "/users/@me", after_me)

        def after_me(t: float, data: Any) -> None:
            srv.user_id = str_id(data.get("id")) if isinstance(data, dict) else None
            step(t, "GET", "/users/@me/spaces", after_spaces)

        def after_spaces(t: float, data: Any) -> None:
            spaces = data if isinstance(data, list) else []
            match = [s for s in spaces if isinstance(s, dict) and s.get("slug") == cfg.space]
            space_id = str_id(match[0].get("id")) if match else None
            if space_id is None:
                fail(t, f"Space not found: {cfg.space}")
                return
            srv.space_id = space_id
            step(t, "GET", f"/spaces/{space_id}", after_space)

        def after_space(t: float, data: Any) -> None:
            step(t, "GET", f"/spaces/{srv.space_id}/channels", after_channels)

        def after_channels(t: float, data: Any) -> None:
            self._store_channels(t, srv, data)
            self._open_gateway(t, srv)

        if login:
            credentials = {"username": cfg.username, "password": cfg.password}
            step(now, "POST", "/auth/login", after_login, credentials)
        else:
            after_login(now, {"token": srv.rest.token})

    def _open_gateway(self, now: float, srv: _Server) -> None:
        if srv.name not in self._rngs:
            self._rngs[srv.name] = random.Random(f"{self.seed}:{srv.name}")
        srv.gateway = Gateway(
            srv.name,
            srv.config.gateway,
            listener=_GatewayHooks(self, srv),
            token=lambda: srv.rest.token,
            out=self._out,
            timers=self._timers,
            next_id=self._next_id,
            timings=self.timings,
            rng=self._rngs[srv.name],
            bug_on=self._bug_on,
        )
        srv.signalled_at_open = False
        srv.gateway.connect(now)

    def _first_connect_failed(self, now: float, srv: _Server, text: str) -> None:
        self._stop_gateway(now, srv)
        srv.epoch += 1
        self._set_status(srv, Status.ERROR)
        srv.last_failure = text
        self._signal(sig.SERVER_CONNECTION_FAILED, srv.name, text)
        if srv.adding:
            self._rollback_add(now, srv, text)

    # ------------------------------------------------------------------ gateway hooks

    def _gw_opened(self, now: float, srv: _Server) -> None:
        if self._bug_on(Bug.REAUTH_GUARD_CLEARED_ON_OPEN):
            srv.escalation_guard = False
        if self._bug_on(Bug.CONNECTED_AT_SOCKET_OPEN):
            srv.signalled_at_open = True
            self._announce_connected(srv)

    def _gw_ready(self, now: float, srv: _Server, data: Any, resumed: bool) -> None:
        srv.escalation_guard = False
        srv.reauthing = False
        if not (srv.signalled_at_open and srv.status == Status.CONNECTED):
            self._announce_connected(srv)
        srv.signalled_at_open = False
        srv.adding = False
        srv.in_outage = False
        srv.syncing = True
        srv.epoch += 1
        self._refetch(now, srv, srv.epoch)

    def _announce_connected(self, srv: _Server) -> None:
        self._set_status(srv, Status.CONNECTED)
        if srv.ever_connected and (srv.in_outage or srv.reauthing):
            self._signal(sig.SERVER_RECONNECTED, srv.name)
        else:
            srv.ever_connected = True
            self._signal(sig.SERVER_CONNECTED, srv.name)
        srv.ever_connected = True
        if self.mode != "LIVE":
            self.mode = "LIVE"
            self._out.append(Signal(sig.MODE_CHANGED, ("LIVE",)))

    def _gw_lost(self, now: float, srv: _Server, code: int, reason: str) -> None:
        srv.in_outage = True
        srv.syncing = False
        srv.epoch += 1
        self._set_status(srv, Status.DISCONNECTED)
        self._signal(sig.SERVER_DISCONNECTED, srv.name, code, reason)

    def _gw_failed(self, now: float, srv: _Server, text: str, code: int) -> None:
        if srv.reauthing:
            if (
                self._bug_on(Bug.REAUTH_GUARD_CLEARED_ON_OPEN)
                and is_fatal(code)
                and not srv.escalation_guard
            ):
                self._escalate(now, srv)  # bug 2: escalates again, endlessly
                return
            self._reconnection_failed(now, srv)
            return
        self._first_connect_failed(now, srv, text)

    # ------------------------------------------------------------------ escalation

    def _escalate(self, now: float, srv: _Server) -> None:
        if srv.escalation_guard:
            self._reconnection_failed(now, srv)
            return
        srv.escalation_guard = True
        self._reconnect_server(now, srv)

    def _user_reconnect(self, now: float, srv: _Server) -> None:
        if srv.status not in (Status.DISCONNECTED, Status.RECONNECTING, Status.ERROR):
            self._log("info", f"Reconnect ignored: status {srv.status}", srv.name)
            return
        if self._bug_on(Bug.MANUAL_RECONNECT_NEVER_FLUSHES) and (
            srv.last_failure == RECONNECTION_FAILED
        ):
            srv.skip_next_flush = True
        srv.escalation_guard = True
        self._reconnect_server(now, srv)

    def _reconnect_server(self, now: float, srv: _Server) -> None:
        """Teardown, a new login, the connect sequence, exactly one gateway attempt."""
        self._stop_gateway(now, srv)
        srv.in_outage = srv.ever_connected
        srv.reauthing = True
        srv.syncing = False
        srv.relogin_waiters = None
        self._set_status(srv, Status.RECONNECTING)
        self._signal(sig.SERVER_REAUTHENTICATING, srv.name)
        reuse_token = self._bug_on(Bug.REAUTH_REUSES_TOKEN) and srv.rest.token is not None
        self._run_connect_sequence(now, srv, login=not reuse_token)

    def _reconnection_failed(self, now: float, srv: _Server) -> None:
        self._stop_gateway(now, srv)
        srv.epoch += 1
        srv.reauthing = False
        self._set_status(srv, Status.ERROR)
        srv.last_failure = RECONNECTION_FAILED
        self._signal(sig.SERVER_CONNECTION_FAILED, srv.name, RECONNECTION_FAILED)

    def _stop_gateway(self, now: float, srv: _Server, code: int = 1000, reason: str = "") -> None:
        if srv.gateway is not None:
            srv.gateway.stop(now, code, reason)
            srv.gateway = None

    # ------------------------------------------------------------------ 401 policy

    def _call(
        self,
        now: float,
        srv: _Server,
        method: str,
        path: str,
        on_done: Callable[[float, RestResult], None],
        body: Any = None,
    ) -> None:
        """A REST call with the s.3 re-login policy: one login, one retry."""

        def first(t: float, res: RestResult) -> None:
            if not (res.unauthorized and srv.ever_connected and not srv.reauthing):
                on_done(t, res)
                return

            def after_login(t2: float, ok: bool) -> None:
                if ok:
                    srv.rest.request(t2, method, path, on_done, body)
                else:
                    on_done(t2, RestResult(False, 401, error=AUTH_FAILED))

            self._relogin(t, srv, after_login)

        srv.rest.request(now, method, path, first, body)

    def _relogin(self, now: float, srv: _Server, waiter: Callable[[float, bool], None]) -> None:
        if srv.relogin_waiters is not None:
            srv.relogin_waiters.append(waiter)
            return
        srv.relogin_waiters = [waiter]
        self._log("info", "REST answered 401: logging in again", srv.name)

        def done(t: float, res: RestResult) -> None:
            waiters, srv.relogin_waiters = srv.relogin_waiters or [], None
            token = res.data.get("token") if res.ok and isinstance(res.data, dict) else None
            ok = isinstance(token, str) and bool(token)
            if ok:
                srv.rest.token = str(token)
            elif self._servers.get(srv.name) is srv and not srv.reauthing:
                self._stop_gateway(t, srv)
                srv.epoch += 1
                srv.syncing = False
                self._set_status(srv, Status.ERROR)
                srv.last_failure = AUTH_FAILED
                self._signal(sig.SERVER_CONNECTION_FAILED, srv.name, AUTH_FAILED)
            for w in waiters:
                w(t, ok)

        cfg = srv.config
        srv.rest.request(
            now,
            "POST",
            "/auth/login",
            done,
            {"username": cfg.username, "password": cfg.password},
            login=True,
        )

    # ------------------------------------------------------------------ refetch

    def _refetch(self, now: float, srv: _Server, epoch: int) -> None:
        """channels -> members -> roles -> selected channel's messages -> synced.
        Failures are logged (and a message fetch failure signalled); sync still ends."""

        def live() -> bool:
            return self._servers.get(srv.name) is srv and srv.epoch == epoch

        def after_channels(t: float, res: RestResult) -> None:
            if not live():
                return
            if res.ok:
                self._store_channels(t, srv, res.data)
            else:
                self._log("warning", f"refetch channels failed: {res.error}", srv.name)
            self._call(t, srv, "GET", f"/spaces/{srv.space_id}/members?limit=1000", after_members)

        def after_members(t: float, res: RestResult) -> None:
            if not live():
                return
            if res.ok:
                srv.cache.set_members(res.data)
            else:
                self._log("warning", f"refetch members failed: {res.error}", srv.name)
            self._call(t, srv, "GET", f"/spaces/{srv.space_id}/roles", after_roles)

        def after_roles(t: float, res: RestResult) -> None:
            if not live():
                return
            if res.ok:
                srv.cache.set_roles(res.data)
            else:
                self._log("warning", f"refetch roles failed: {res.error}", srv.name)
            selected = self._selected
            if selected is not None and selected[0] == srv.name:
                self._catch_up_messages(t, srv, selected[1], lambda t2: finish(t2))
            else:
                finish(t)

        def finish(t: float) -> None:
            if not live():
                return
            self._synced(t, srv)

        self._call(now, srv, "GET", f"/spaces/{srv.space_id}/channels", after_channels)

    def _synced(self, now: float, srv: _Server) -> None:
        srv.syncing = False
        self._signal(sig.SERVER_SYNCED, srv.name)
        if srv.skip_next_flush:
            srv.skip_next_flush = False  # bug 6: the queue stays where it is
            return
        self._flush(now, srv)

    def _catch_up_messages(
        self, now: float, srv: _Server, channel_id: str, then: Callable[[float], None]
    ) -> None:
        """Page forward from the newest known id (or load the newest page)."""
        epoch = srv.epoch
        received = [0]
        self._signal(sig.MESSAGES_LOADING, srv.name, channel_id)

        def request(t: float) -> None:
            newest = srv.cache.newest_id(channel_id)
            if newest is None:
                path = f"/channels/{channel_id}/messages?limit={MESSAGE_PAGE}"
            else:
                path = f"/channels/{channel_id}/messages?limit={REFETCH_PAGE}&after={newest}"
            self._call(t, srv, "GET", path, lambda t2, r: page(t2, r, newest is not None))

        def page(t: float, res: RestResult, forward: bool) -> None:
            if self._servers.get(srv.name) is not srv or srv.epoch != epoch:
                return
            if not res.ok:
                self._signal(sig.MESSAGE_FETCH_FAILED, srv.name, channel_id, res.error)
                then(t)
                return
            batch = dict_items(res.data)
            for msg in batch:
                self._store_message(srv, msg, channel_id)
            received[0] += len(batch)
            more = bool(res.cursor.get("has_more")) if res.cursor else len(batch) >= REFETCH_PAGE
            if forward and batch and more and received[0] < REFETCH_LIMIT:
                request(t)
                return
            self._signal(sig.MESSAGES_LOADED, srv.name, channel_id, received[0])
            then(t)

        request(now)

    # ================================================================== channels and messages

    def _store_channels(self, now: float, srv: _Server, data: Any) -> None:
        srv.cache.set_channels(data)
        self._resolve_pending_selection(now, srv)

    def _select(self, now: float, srv: _Server, ref: str) -> None:
        cid = srv.cache.resolve_channel(ref)
        if cid is None:
            self._pending_selection = (srv.name, ref)
            self._log("info", f"channel {ref!r} not known yet; selecting it when it is", srv.name)
            return
        self._pending_selection = None
        self._selected = (srv.name, cid)
        self._signal(sig.CHANNEL_SELECTED, srv.name, cid, srv.cache.channel_name(cid))
        if (
            srv.status in (Status.CONNECTED, Status.DISCONNECTED, Status.RECONNECTING)
            and srv.rest.token
        ):
            self._load_channel(now, srv, cid)

    def _resolve_pending_selection(self, now: float, srv: _Server) -> None:
        pending = self._pending_selection
        if pending is None or pending[0] != srv.name:
            return
        cid = srv.cache.resolve_channel(pending[1])
        if cid is not None:
            self._pending_selection = None
            self._selected = (srv.name, cid)
            self._signal(sig.CHANNEL_SELECTED, srv.name, cid, srv.cache.channel_name(cid))

    def _fetch_channel(self, now: float, srv: _Server, ref: str) -> None:
        cid = srv.cache.resolve_channel(ref) or ref
        if not srv.rest.token:
            self._signal(sig.MESSAGE_FETCH_FAILED, srv.name, cid, NOT_CONNECTED)
            return
        self._load_channel(now, srv, cid)

    def _load_channel(self, now: float, srv: _Server, channel_id: str) -> None:
        """The newest page, merged into the cache (opening a channel, click-to-retry)."""
        self._signal(sig.MESSAGES_LOADING, srv.name, channel_id)

        def done(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            if not res.ok:
                self._signal(sig.MESSAGE_FETCH_FAILED, srv.name, channel_id, res.error)
                return
            batch = dict_items(res.data)
            for msg in batch:
                self._store_message(srv, msg, channel_id)
            self._signal(sig.MESSAGES_LOADED, srv.name, channel_id, len(batch))

        self._call(now, srv, "GET", f"/channels/{channel_id}/messages?limit={MESSAGE_PAGE}", done)

    def _store_message(
        self, srv: _Server, msg: dict[str, Any], channel_hint: str | None = None
    ) -> str | None:
        """Cache it; `message_received` when its id is new. Returns the id."""
        stored = srv.cache.store_message(msg, channel_hint)
        if stored is None:
            self._log("warning", "ignored a message without id or channel_id", srv.name)
            return None
        cid, mid, is_new = stored
        if is_new:
            self._signal(sig.MESSAGE_RECEIVED, srv.name, cid, mid)
            self._settle_from_cache(srv, cid)  # a gateway echo or a page shows an unknown send
        return mid

    def _gw_event(self, now: float, srv: _Server, event_type: str, data: Any) -> None:
        if not isinstance(data, dict):
            self._log("warning", f"ignored {event_type} without an object payload", srv.name)
            return
        cache = srv.cache
        if event_type == "message.create":
            self._store_message(srv, data)
        elif event_type == "message.update":
            mid = self._store_message(srv, data)
            if mid is not None:
                self._signal(sig.MESSAGE_EDITED, srv.name, mid)
        elif event_type == "message.delete":
            mid = str_id(data.get("id"))
            if mid is not None and cache.remove_message(mid) is not None:
                self._signal(sig.MESSAGE_DELETED, srv.name, mid)
        elif event_type in ("reaction.add", "reaction.remove"):
            changed = cache.apply_reaction(data, event_type == "reaction.add", srv.user_id)
            if changed is not None:
                self._signal(sig.REACTION_CHANGED, srv.name, *changed)
        elif event_type in ("channel.create", "channel.update"):
            cache.put_channel(data)
            self._resolve_pending_selection(now, srv)
        elif event_type == "channel.delete":
            cache.drop_channel(data)
        elif event_type == "member.join":
            cache.put_member(data)
        elif event_type == "member.leave":
            cache.drop_member(data)

    # ================================================================== sending and the queue

    def _new_nonce(self) -> str:
        self._nonce_count += 1
        return f"{self._nonce_prefix}-{self._nonce_count}"

    def _nonce_for(self, srv: _Server, channel_id: str, content: str) -> str:
        """A restored text sent again unchanged keeps its nonce (stored at most once)."""
        restored, srv.restored = srv.restored, None
        if restored is not None and restored[:2] == (channel_id, content):
            return restored[2]
        return self._new_nonce()

    def _send(self, now: float, srv: _Server, ref: str, content: str) -> None:
        cid = srv.cache.resolve_channel(ref) or ref
        if srv.status in (Status.ERROR, Status.CONNECTING, Status.NONE) or srv.syncing:
            self._signal(sig.MESSAGE_SEND_REFUSED, srv.name, cid, content, sig.REFUSED_DISABLED)
            return
        if srv.status in (Status.DISCONNECTED, Status.RECONNECTING) or srv.queue:
            self._enqueue(now, srv, cid, content)
            return
        nonce = self._nonce_for(srv, cid, content)
        self._signal(sig.MESSAGE_SENDING, srv.name, cid, content, nonce)
        if srv.posting:
            srv.outbox.append((cid, content, nonce))
            return
        self._post_direct(now, srv, cid, content, nonce)

    def _post_direct(self, now: float, srv: _Server, cid: str, content: str, nonce: str) -> None:
        srv.posting = True
        # Bug 12: the original forgot an unknown outcome, so the restored text,
        # sent again, is posted again without looking for the first copy.
        at_most_once = not self._bug_on(Bug.RESEND_WITHOUT_CHECK)

        def done(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            srv.posting = False
            if res.ok:
                self._accepted(srv, cid, nonce, res.data)
            else:
                error = res.error or UNEXPECTED_RESPONSE
                srv.restored = (cid, content, nonce)
                self._signal(sig.MESSAGE_SEND_FAILED, srv.name, cid, content, error)
            if srv.outbox:
                self._post_direct(t, srv, *srv.outbox.popleft())
            else:
                self._flush(t, srv)  # a flush waits for the direct sends before it

        self._post_message(now, srv, cid, content, nonce, done, at_most_once=at_most_once)

    def _post_message(
        self,
        now: float,
        srv: _Server,
        channel_id: str,
        content: str,
        nonce: str,
        done: Callable[[float, RestResult], None],
        *,
        at_most_once: bool = True,
    ) -> None:
        """POST a message at most once (s.6): the server neither echoes nor
        deduplicates nonces, so when an earlier attempt's outcome is unknown the
        channel is checked first, and a copy found there is the answer (`done`
        gets a 2xx result carrying it)."""
        att = srv.attempts.get(nonce)
        if att is None:
            att = _Attempt(channel_id, content, srv.cache.newest_id(channel_id))
            srv.attempts[nonce] = att
        att.busy = True

        def posted(t: float, res: RestResult) -> None:
            att.busy = False
            if res.ok:
                srv.attempts.pop(nonce, None)
            elif res.outcome_unknown and at_most_once:
                att.unknown = True
                found = self._find_own_copy(srv, att)
                if found is not None:  # its gateway echo came while the POST was out
                    srv.attempts.pop(nonce, None)
                    res = RestResult(True, 200, data=found)
            elif not att.unknown or not at_most_once:
                srv.attempts.pop(nonce, None)  # known not stored: nothing to look for
            done(t, res)

        def post(t: float) -> None:
            body = {"content": content, "nonce": nonce}  # sent, never relied on
            self._call(t, srv, "POST", f"/channels/{channel_id}/messages", posted, body)

        if att.unknown and at_most_once:
            self._look_for_copy(now, srv, nonce, att, done, post)
        else:
            post(now)

    def _look_for_copy(
        self,
        now: float,
        srv: _Server,
        nonce: str,
        att: _Attempt,
        done: Callable[[float, RestResult], None],
        post: Callable[[float], None],
    ) -> None:
        """Page the channel after the baseline for this user's copy of the
        message; found: it was delivered; not found: post it; the check failed:
        the outcome stays unknown and `done` gets a transient failure."""
        pages = [0]

        def request(t: float, after: str | None) -> None:
            path = f"/channels/{att.channel_id}/messages?limit={REFETCH_PAGE}"
            if after is not None:
                path += f"&after={after}"
            self._call(t, srv, "GET", path, lambda t2, r: page(t2, r, after is not None))

        def page(t: float, res: RestResult, forward: bool) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            if not res.ok:
                att.busy = False
                self._log("warning", f"at-most-once check failed: {res.error}", srv.name)
                done(t, RestResult(False, 0, error=res.error, transient=True, outcome_unknown=True))
                return
            batch = dict_items(res.data)
            for msg in batch:
                self._store_message(srv, msg, att.channel_id)
            found = self._find_own_copy(srv, att)
            if found is not None:
                att.busy = False
                srv.attempts.pop(nonce, None)
                self._log("info", "an unknown send was found stored: not posted again", srv.name)
                done(t, RestResult(True, 200, data=found))
                return
            pages[0] += 1
            ids = [i for i in (str_id(m.get("id")) for m in batch) if i is not None]
            more = bool(res.cursor.get("has_more")) if res.cursor else len(batch) >= REFETCH_PAGE
            if forward and ids and more and pages[0] * REFETCH_PAGE < REFETCH_LIMIT:
                request(t, max(ids, key=id_order))
                return
            att.unknown = False  # looked, not there: this POST is the only copy
            post(t)

        request(now, att.baseline)

    def _find_own_copy(self, srv: _Server, att: _Attempt) -> dict[str, Any] | None:
        """The oldest message in the attempt's channel by this user with its
        content, newer than its baseline and not already another send's."""
        if srv.user_id is None:
            return None
        floor = id_order(att.baseline) if att.baseline is not None else None
        for msg in srv.cache.ordered(att.channel_id):
            mid = str_id(msg.get("id"))
            if (
                mid is not None
                and mid not in srv.own_ids
                and (floor is None or id_order(mid) > floor)
                and str_id(msg.get("author_id")) == srv.user_id
                and msg.get("content") == att.content
            ):
                return msg
        return None

    def _settle_from_cache(self, srv: _Server, channel_id: str) -> None:
        """An unknown send that a gateway echo or a fetched page shows stored is
        delivered: it leaves the queue, the composer and the failed entries."""
        for nonce, att in list(srv.attempts.items()):
            if not att.unknown or att.busy or att.channel_id != channel_id:
                continue
            found = self._find_own_copy(srv, att)
            if found is None:
                continue
            del srv.attempts[nonce]
            for queued in [q for q in srv.queue if q.nonce == nonce]:
                srv.queue.remove(queued)
                self._signal(sig.QUEUE_CHANGED, srv.name, len(srv.queue))
            if srv.restored is not None and srv.restored[2] == nonce:
                srv.restored = None
            srv.failed = [f for f in srv.failed if f.nonce != nonce]
            self._log("info", "an unknown send was seen stored: delivered", srv.name)
            self._accepted(srv, channel_id, nonce, found)

    def _accepted(self, srv: _Server, channel_id: str, nonce: str, msg: Any) -> None:
        """A 2xx: the server has it. A body without a message still counts. The
        id in the answer is how the client knows its own message (no nonce echo)."""
        message_id = ""
        if isinstance(msg, dict):
            message_id = str_id(msg.get("id")) or ""
            if message_id:
                srv.own_ids.add(message_id)
            self._store_message(srv, msg, channel_id)
        self._signal(sig.MESSAGE_SENT, srv.name, channel_id, nonce, message_id)

    def _enqueue(self, now: float, srv: _Server, channel_id: str, content: str) -> None:
        nonce = self._nonce_for(srv, channel_id, content)
        depth = len(srv.queue)
        if depth >= self.timings.queue_capacity:
            if self._bug_on(Bug.QUEUE_CAP_BYPASS):
                # Bug 5: the original said "queued" and the message went nowhere.
                self._signal(sig.MESSAGE_QUEUED, srv.name, channel_id, content, nonce, depth)
                return
            srv.restored = (channel_id, content, nonce)  # the text stays in the composer
            self._signal(
                sig.MESSAGE_SEND_REFUSED, srv.name, channel_id, content, sig.REFUSED_QUEUE_FULL
            )
            return
        srv.queue.append(QueuedMessage(channel_id, content, nonce))
        self._signal(sig.MESSAGE_QUEUED, srv.name, channel_id, content, nonce, len(srv.queue))
        self._signal(sig.QUEUE_CHANGED, srv.name, len(srv.queue))
        self._flush(now, srv)  # a send while connected resumes a paused flush

    def _flush(self, now: float, srv: _Server) -> None:
        """Send the queue head; on success go on with the next, in order."""
        if (
            srv.flushing
            or srv.posting
            or not srv.queue
            or srv.status != Status.CONNECTED
            or srv.syncing
        ):
            return
        head = srv.queue[0]
        srv.flushing = True

        def done(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            srv.flushing = False
            if not srv.queue or srv.queue[0] is not head:
                return
            if res.ok:
                srv.queue.popleft()
                self._signal(sig.QUEUE_CHANGED, srv.name, len(srv.queue))
                self._accepted(srv, head.channel_id, head.nonce, res.data)
                self._flush(t, srv)
                return
            error = res.error or UNEXPECTED_RESPONSE
            if self._bug_on(Bug.FLUSH_FAILURE_LOSES_MESSAGE):
                srv.queue.popleft()  # bug 4: gone, without a word
                self._signal(sig.QUEUE_CHANGED, srv.name, len(srv.queue))
                self._flush(t, srv)
                return
            if res.transient or res.unauthorized:
                self._signal(sig.QUEUE_FLUSH_PAUSED, srv.name, error)
                return
            srv.queue.popleft()
            srv.failed.append(FailedEntry(head.channel_id, head.nonce, head.content, error))
            self._signal(sig.QUEUE_CHANGED, srv.name, len(srv.queue))
            self._signal(
                sig.MESSAGE_FAILED_ENTRY, srv.name, head.channel_id, head.nonce, head.content, error
            )
            self._flush(t, srv)

        self._post_message(now, srv, head.channel_id, head.content, head.nonce, done)

    def _retry_failed(self, now: float, srv: _Server, nonce: str) -> None:
        entry = next((f for f in srv.failed if f.nonce == nonce), None)
        if entry is None:
            self._log("warning", f"no failed entry with nonce {nonce}", srv.name)
            return
        srv.failed.remove(entry)
        srv.restored = (entry.channel_id, entry.content, entry.nonce)
        self._send(now, srv, entry.channel_id, entry.content)

    # ================================================================== edits, deletes, reactions

    def _edit(self, now: float, srv: _Server, message_id: str, content: str) -> None:
        found = srv.cache.find_message(message_id)
        if found is None:
            self._signal(sig.MESSAGE_EDIT_FAILED, srv.name, message_id, UNKNOWN_MESSAGE)
            return

        def done(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            if res.ok and isinstance(res.data, dict):
                self._store_message(srv, res.data, found[0])
                self._signal(sig.MESSAGE_EDITED, srv.name, message_id)
            else:
                self._signal(
                    sig.MESSAGE_EDIT_FAILED, srv.name, message_id, res.error or UNEXPECTED_RESPONSE
                )

        path = f"/channels/{found[0]}/messages/{message_id}"
        self._call(now, srv, "PATCH", path, done, {"content": content})

    def _delete(self, now: float, srv: _Server, message_id: str) -> None:
        found = srv.cache.find_message(message_id)
        if found is None:
            self._signal(sig.MESSAGE_DELETE_FAILED, srv.name, message_id, UNKNOWN_MESSAGE)
            return
        cid = found[0]

        def done(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv:
                return
            if res.ok:
                if srv.cache.remove_message(message_id) is not None:
                    self._signal(sig.MESSAGE_DELETED, srv.name, message_id)
            else:
                self._signal(sig.MESSAGE_DELETE_FAILED, srv.name, message_id, res.error)

        self._call(now, srv, "DELETE", f"/channels/{cid}/messages/{message_id}", done)

    def _react(self, now: float, srv: _Server, message_id: str, emoji: str, add: bool) -> None:
        found = srv.cache.find_message(message_id)
        cid = found[0] if found else ""
        if found is None:
            self._signal(sig.REACTION_FAILED, srv.name, cid, message_id, emoji, UNKNOWN_MESSAGE)
            return

        def done(t: float, res: RestResult) -> None:
            if self._servers.get(srv.name) is not srv or res.ok:
                return
            self._signal(sig.REACTION_FAILED, srv.name, cid, message_id, emoji, res.error)

        path = f"/channels/{cid}/messages/{message_id}/reactions/{quote(emoji, safe='')}/@me"
        self._call(now, srv, "PUT" if add else "DELETE", path, done)

    # ================================================================== removal

    def _remove(self, now: float, srv: _Server) -> None:
        """s.7: logout, close 1000, drop caches and queue, remove, server_removed."""
        token = srv.rest.token
        self._drop_server(now, srv)
        if token:
            srv.rest.token = token
            srv.rest.request(now, "POST", "/auth/logout", lambda t, r: None)
            self._retired.append(srv.rest)
        self._signal(sig.SERVER_REMOVED, srv.name)
        if self.mode == "LIVE" and not any(
            s.status == Status.CONNECTED for s in self._servers.values()
        ):
            self.mode = "CONNECTING"
            self._out.append(Signal(sig.MODE_CHANGED, ("CONNECTING",)))

    def _drop_server(self, now: float, srv: _Server) -> None:
        if srv.gateway is not None:
            srv.gateway.stop(now, 1000, "")
            srv.gateway = None
        srv.rest.cancel_all()
        srv.epoch += 1
        self._servers.pop(srv.name, None)
        if self._selected and self._selected[0] == srv.name:
            self._selected = None
        if self._pending_selection and self._pending_selection[0] == srv.name:
            self._pending_selection = None

    # ================================================================== bugs

    def _bug_on(self, bug: Bug) -> bool:
        return bug in self.bugs

    def _set_bug(self, action: SetBug) -> None:
        (bug,) = as_bugs([action.number])
        if action.enabled and bug not in self.bugs:
            self.bugs.add(bug)
            self._announce_bug(bug)
        elif not action.enabled and bug in self.bugs:
            self.bugs.discard(bug)
            self._log("warning", f"regression switch {int(bug)} off")

    def _announce_bug(self, bug: Bug) -> None:
        self._log("warning", f"regression switch {int(bug)} ON: {DESCRIPTIONS[bug]}")
        self._out.append(Signal(sig.BUG_ENABLED, ("*", int(bug))))

    # ================================================================== helpers

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _set_status(self, srv: _Server, status: Status) -> None:
        srv.status = status
        if status != Status.CONNECTED:
            srv.syncing = False

    def _signal(self, name: str, *args: Any) -> None:
        self._out.append(Signal(name, args))

    def _log(self, level: str, message: str, server: str = "") -> None:
        self._out.append(Log(level=level, message=message, server=server))
