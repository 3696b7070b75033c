"""The REST 401 policy (s.3): one re-login shared by every request that got a 401,
then one retry of each; a refused re-login ends in "Authentication failed".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.core import payloads as pl
from client.core.context import CoreContext
from client.core.rest import AUTH_FAILED, RestResult
from client.core.session import Event, Session


class Relogin:
    """Mixin of ClientCore: REST calls under the 401 re-login policy."""

    def _call(
        self: CoreContext,
        now: float,
        srv: Session,
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

    def _relogin(
        self: CoreContext, now: float, srv: Session, waiter: Callable[[float, bool], None]
    ) -> None:
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
            elif self._current(srv) and not srv.reauthing:
                self._stop_gateway(t, srv)
                srv.epoch += 1
                srv.go(Event.RELOGIN_FAILED)
                srv.last_failure = AUTH_FAILED
                self._emit(pl.ServerConnectionFailed(srv.name, AUTH_FAILED))
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
