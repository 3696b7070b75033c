"""ClientCore: the router over every configured server's session.

One entry point, `handle(now, input_or_action)`; timers via `advance(now)` and
`next_deadline()`; effects drained with `take_effects()`. This module routes
transport input to the gateway or REST client that owns it, due deadlines by
machine (client.core.timers), and actions to the part that handles them:

    session.py     a server's phase and its one transition table
    answers.py     REST answers as events, dispatched by purpose (purposes.py)
    connection.py  first connect, gateway reports, escalation and re-auth (s.3-s.4)
    sync.py        the refetch after READY (s.4)
    relogin.py     the REST 401 re-login (s.3)
    channels.py    selection, message pages, gateway events, edits (s.5, s.7)
    outbox.py      sends, the queue, failed entries, at-most-once (s.6)

The gateway policy lives in `gateway.py`, the REST policy in `rest.py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from client.core import payloads as pl
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
from client.core.answers import Answers
from client.core.bugs import DESCRIPTIONS, Bug, as_bugs, bugs_from_env
from client.core.channels import Channels
from client.core.connection import Connection
from client.core.io import (
    Effect,
    HttpFailed,
    HttpResponse,
    Log,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
    TransportInput,
)
from client.core.outbox import Outbox
from client.core.outgoing import FailedEntry, Outgoing, QueuedMessage
from client.core.protocol import Status
from client.core.purposes import Logout, Probe, Scope, Token
from client.core.relogin import Relogin
from client.core.rest import Rest, RestCall, RestResult
from client.core.session import Session
from client.core.sync import Sync
from client.core.timers import Machine, TimerKey, Timers
from client.core.timings import Timings

__all__ = ["ClientCore", "FailedEntry", "Outgoing", "QueuedMessage"]


class ClientCore(Answers, Connection, Sync, Relogin, Channels, Outbox):
    def __init__(
        self,
        timings: Timings | None = None,
        seed: int = 0,
        bugs: Iterable[int] | None = None,
        instance: str = "",
        environ: Mapping[str, str] | None = None,
        trace: bool = True,
    ) -> None:
        """`trace=False`: only I/O effects and signals come out (no timer, RNG-draw
        or log effects, which only a timeline reads: benchmarks, a load crowd).
        The switches on are `bugs` plus those named in ACCORD_RIG_BUGS of
        `environ`, a mapping the caller passes (the rig passes `os.environ`, so a
        whole catalogue can be run against a buggy client); the core never reads
        the process environment. `instance` salts message nonces so two runs with
        one seed against one database never share one."""
        self.timings = timings or Timings()
        self.seed = seed
        self.trace = trace
        self._out: list[Effect] = []
        self._timers = Timers(self._out, trace=trace)
        self._last_id = 0
        self._servers: dict[str, Session] = {}
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
                self._drain_gateway(now, srv)
                return
        self._log("debug", f"ignored {type(event).__name__} for unknown conn {event.conn}")

    def _on_timer(self, now: float, key: TimerKey) -> None:
        """Dispatch a due deadline by machine to whoever set it."""
        srv = self._servers.get(key.server)
        if key.machine is Machine.GATEWAY:
            if srv is not None and srv.gateway is not None:
                srv.gateway.on_timer(now, key.kind)
                self._drain_gateway(now, srv)
            return
        if srv is not None and srv.rest.owns_timer(key):
            srv.rest.on_timer(now, key)
            self._drain_rest(now, srv)
            return
        for rest in self._retired:
            if rest.owns_timer(key):
                rest.on_timer(now, key)
                rest.take_events()  # a removed server's answers are not waited for
                return

    def _route_http(self, now: float, event: HttpResponse | HttpFailed) -> None:
        for srv in self._servers.values():
            if srv.rest.owns(event.req):
                srv.rest.handle(now, event)
                self._drain_rest(now, srv)
                return
        for rest in self._retired:
            if rest.owns(event.req):
                rest.handle(now, event)
                rest.take_events()  # a removed server's answers are not waited for
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
            self._emit(pl.ServerSelected(srv.name))
        elif isinstance(action, SelectChannel):
            self._select(now, srv, action.channel)
        elif isinstance(action, SendMessage):
            self._send(now, srv, action.channel, action.content)
        elif isinstance(action, FetchMessages):
            self._fetch_channel(now, srv, action.channel)
        elif isinstance(action, StartEdit):
            self._emit(pl.EditStarted(srv.name, action.message_id))
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
                self._emit(pl.FailedEntryDiscarded(srv.name, entry.channel_id, entry.nonce))
        else:  # pragma: no cover - exhaustive over Action
            raise TypeError(f"ClientCore.handle: unsupported input {action!r}")

    def _unknown_server(self, action: Action) -> None:
        server = getattr(action, "server", "?")
        self._log("error", f"{type(action).__name__}: no server named {server!r}")
        if isinstance(action, SendMessage):
            self._emit(
                pl.MessageSendRefused(server, action.channel, action.content, sig.REFUSED_DISABLED)
            )

    # ================================================================== servers

    def _configure(self, now: float, config: ServerConfig, *, add_flow: bool) -> None:
        problem = config.validate()
        if problem is None and config.name in self._servers:
            problem = f"A server named {config.name!r} already exists"
        if problem is not None:
            self._log("error", f"server {config.name!r} refused: {problem}", config.name)
            self._emit(pl.ServerAddFailed(config.name, problem))
            return
        rest = Rest(
            config.name,
            config.rest_base,
            out=self._out,
            timers=self._timers,
            next_id=self._next_id,
            timings=self.timings,
            bug_on=self._bug_on,
            trace=self.trace,
        )
        srv = Session(config=config, rest=rest)
        self._servers[config.name] = srv
        self._emit(pl.ServerAdded(srv.name))
        if not add_flow:
            return
        srv.adding = True
        self._emit(pl.ServerProbeStarted(srv.name))
        self._request(now, srv, RestCall("GET", "/auth/login"), Probe(), probe=True)

    def _probed(self, now: float, srv: Session, res: RestResult) -> None:
        if not res.ok:
            self._rollback_add(now, srv, res.error)
            return
        self._emit(pl.ServerProbeOk(srv.name))
        self._connect(now, srv)

    def _rollback_add(self, now: float, srv: Session, error: str) -> None:
        self._drop_server(now, srv)
        self._emit(pl.ServerAddFailed(srv.name, error))

    # ================================================================== removal

    def _remove(self, now: float, srv: Session) -> None:
        """s.7: logout, close 1000, drop caches and queue, remove, server_removed."""
        token = srv.rest.token
        self._drop_server(now, srv)
        if token:
            srv.rest.token = token
            self._request(now, srv, RestCall("POST", "/auth/logout"), Logout())
            self._retired.append(srv.rest)
        self._emit(pl.ServerRemoved(srv.name))
        if self.mode == "LIVE" and not any(
            s.status == Status.CONNECTED for s in self._servers.values()
        ):
            self.mode = "CONNECTING"
            self._emit(pl.ModeChanged("CONNECTING"))

    def _drop_server(self, now: float, srv: Session) -> None:
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
        self._emit(pl.BugEnabled("*", int(bug)))

    # ================================================================== helpers

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _current(self, srv: Session, token: Token) -> bool:
        """The one staleness check (client.core.purposes): `srv` is still the
        configured session and, for a CONNECTION-scope token, still in its epoch."""
        if self._servers.get(srv.name) is not srv:
            return False
        return token.scope is Scope.SESSION or token.epoch == srv.epoch

    def _emit(self, payload: pl.Payload) -> None:
        self._out.append(payload.to_signal())

    def _log(self, level: str, message: str, server: str = "") -> None:
        if self.trace:
            self._out.append(Log(level=level, message=message, server=server))
