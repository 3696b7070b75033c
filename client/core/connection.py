"""The connection lifecycle of one server (s.3-s.4): first connect, the gateway's
reports, escalation to re-auth and its failure. Phase moves go through
`Session.go` (client.core.session.TRANSITIONS).
"""

from __future__ import annotations

import random
from typing import Any

from client.core import payloads as pl
from client.core.bugs import Bug
from client.core.context import RECONNECTION_FAILED, CoreContext
from client.core.gateway import Gateway
from client.core.gateway_policy import (
    Dispatch,
    Escalate,
    Lost,
    Opened,
    Ready,
    Reconnecting,
)
from client.core.protocol import CloseCode, Status, is_fatal
from client.core.purposes import ConnectStep
from client.core.rest import RestCall, RestResult
from client.core.session import CAN_RECONNECT, TRANSITIONS, Event, Session
from client.core.steps import CONNECT_CHAIN, LOGIN


class Connection:
    """Mixin of ClientCore: a server's connection lifecycle."""

    def _connect(self: CoreContext, now: float, srv: Session) -> None:
        if srv.phase not in TRANSITIONS[Event.CONNECT][0] or srv.ever_connected:
            self._log("info", f"connect ignored: status {srv.status}", srv.name)
            return
        srv.go(Event.CONNECT)
        self._emit(pl.ServerConnecting(srv.name))
        self._run_connect_sequence(now, srv, login=True)

    def _run_connect_sequence(self: CoreContext, now: float, srv: Session, *, login: bool) -> None:
        """CONNECT_CHAIN (client.core.steps), then exactly one gateway attempt.
        Without `login` (bug 3) the stored token stands in for the login's answer."""
        srv.epoch += 1
        if login:
            self._connect_step(now, srv, 0)
        else:
            self._connect_step_done(now, srv, 0, {"token": srv.rest.token})

    def _connect_step(self: CoreContext, now: float, srv: Session, index: int) -> None:
        if index == len(CONNECT_CHAIN):
            self._open_gateway(now, srv)
            return
        step = CONNECT_CHAIN[index]
        call = RestCall(step.method, step.url_path(srv), step.body(srv) if step.body else None)
        self._request(now, srv, call, ConnectStep(index), login=step is LOGIN)

    def _connect_step_answered(
        self: CoreContext, now: float, srv: Session, index: int, res: RestResult
    ) -> None:
        if not res.ok:
            self._connect_chain_failed(now, srv, res.error)
            return
        self._connect_step_done(now, srv, index, res.data)

    def _connect_step_done(
        self: CoreContext, now: float, srv: Session, index: int, data: Any
    ) -> None:
        problem = CONNECT_CHAIN[index].apply(self, now, srv, data)
        if problem is not None:
            self._connect_chain_failed(now, srv, problem)
            return
        self._connect_step(now, srv, index + 1)

    def _connect_chain_failed(self: CoreContext, now: float, srv: Session, text: str) -> None:
        if srv.reauthing:
            self._reconnection_failed(now, srv)
        else:
            self._first_connect_failed(now, srv, text)

    def _open_gateway(self: CoreContext, now: float, srv: Session) -> None:
        if srv.name not in self._rngs:
            self._rngs[srv.name] = random.Random(f"{self.seed}:{srv.name}")
        srv.gateway = Gateway(
            srv.name,
            srv.config.gateway,
            token=lambda: srv.rest.token,
            out=self._out,
            timers=self._timers,
            next_id=self._next_id,
            timings=self.timings,
            rng=self._rngs[srv.name],
            bug_on=self._bug_on,
            trace=self.trace,
        )
        srv.signalled_at_open = False
        srv.gateway.connect(now)
        self._drain_gateway(now, srv)

    def _drain_gateway(self: CoreContext, now: float, srv: Session) -> None:
        """Act on what the gateway reported, in order, after each call into it."""
        gateway = srv.gateway
        if gateway is None:
            return
        for event in gateway.take_events():
            if isinstance(event, Opened):
                self._gw_opened(now, srv)
            elif isinstance(event, Ready):
                self._gw_ready(now, srv, event.data, event.resumed)
            elif isinstance(event, Dispatch):
                self._gw_event(now, srv, event.type, event.data)
            elif isinstance(event, Lost):
                self._gw_lost(now, srv, event.code, event.reason)
            elif isinstance(event, Reconnecting):
                srv.go(Event.ATTEMPT)
                self._emit(pl.ServerReconnecting(srv.name, event.attempt, event.max_attempts))
            elif isinstance(event, Escalate):
                self._escalate(now, srv)
            else:
                self._gw_failed(now, srv, event.text, event.code)

    def _first_connect_failed(self: CoreContext, now: float, srv: Session, text: str) -> None:
        self._stop_gateway(now, srv)
        srv.epoch += 1
        srv.go(Event.CONNECT_FAILED)
        srv.last_failure = text
        self._emit(pl.ServerConnectionFailed(srv.name, text))
        if srv.adding:
            self._rollback_add(now, srv, text)

    def _gw_opened(self: CoreContext, now: float, srv: Session) -> None:
        if self._bug_on(Bug.REAUTH_GUARD_CLEARED_ON_OPEN):
            srv.escalation_guard = False
        if self._bug_on(Bug.CONNECTED_AT_SOCKET_OPEN):
            srv.signalled_at_open = True
            self._announce_connected(srv, Event.SOCKET_OPENED)

    def _gw_ready(self: CoreContext, now: float, srv: Session, data: Any, resumed: bool) -> None:
        srv.escalation_guard = False
        srv.reauthing = False
        if srv.signalled_at_open and srv.phase is Status.CONNECTED:
            srv.go(Event.READY)  # bug 7 announced it at socket open
        else:
            self._announce_connected(srv, Event.READY)
        srv.signalled_at_open = False
        srv.adding = False
        srv.in_outage = False
        srv.epoch += 1
        self._refetch(now, srv)

    def _announce_connected(self: CoreContext, srv: Session, event: Event) -> None:
        srv.go(event)
        if srv.ever_connected and (srv.in_outage or srv.reauthing):
            self._emit(pl.ServerReconnected(srv.name))
        else:
            srv.ever_connected = True
            self._emit(pl.ServerConnected(srv.name))
        srv.ever_connected = True
        if self.mode != "LIVE":
            self.mode = "LIVE"
            self._emit(pl.ModeChanged("LIVE"))

    def _gw_lost(self: CoreContext, now: float, srv: Session, code: int, reason: str) -> None:
        srv.in_outage = True
        srv.epoch += 1
        srv.go(Event.LOST)
        self._emit(pl.ServerDisconnected(srv.name, code, reason))

    def _gw_failed(self: CoreContext, now: float, srv: Session, text: str, code: int) -> None:
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

    def _escalate(self: CoreContext, now: float, srv: Session) -> None:
        if srv.escalation_guard:
            self._reconnection_failed(now, srv)
            return
        srv.escalation_guard = True
        self._reconnect_server(now, srv)

    def _user_reconnect(self: CoreContext, now: float, srv: Session) -> None:
        if srv.phase not in CAN_RECONNECT:
            self._log("info", f"Reconnect ignored: status {srv.status}", srv.name)
            return
        if self._bug_on(Bug.MANUAL_RECONNECT_NEVER_FLUSHES) and (
            srv.last_failure == RECONNECTION_FAILED
        ):
            srv.skip_next_flush = True
        srv.escalation_guard = True
        self._reconnect_server(now, srv)

    def _reconnect_server(self: CoreContext, now: float, srv: Session) -> None:
        """Teardown, a new login, the connect sequence, exactly one gateway attempt."""
        self._stop_gateway(now, srv)
        srv.in_outage = srv.ever_connected
        srv.reauthing = True
        srv.relogin_waiters = None
        srv.go(Event.REAUTH)
        self._emit(pl.ServerReauthenticating(srv.name))
        reuse_token = self._bug_on(Bug.REAUTH_REUSES_TOKEN) and srv.rest.token is not None
        self._run_connect_sequence(now, srv, login=not reuse_token)

    def _reconnection_failed(self: CoreContext, now: float, srv: Session) -> None:
        self._stop_gateway(now, srv)
        srv.epoch += 1
        srv.reauthing = False
        srv.go(Event.REAUTH_FAILED)
        srv.last_failure = RECONNECTION_FAILED
        self._emit(pl.ServerConnectionFailed(srv.name, RECONNECTION_FAILED))

    def _stop_gateway(
        self: CoreContext, now: float, srv: Session, code: int = CloseCode.NORMAL, reason: str = ""
    ) -> None:
        if srv.gateway is not None:
            srv.gateway.stop(now, code, reason)
            srv.gateway = None
