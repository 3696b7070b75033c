"""The REST 401 policy (s.3): one re-login shared by every request that got a 401,
then one retry of each; a refused re-login ends in "Authentication failed".
"""

from __future__ import annotations

from client.core import payloads as pl
from client.core.context import CoreContext
from client.core.purposes import Relogin as ReloginPurpose
from client.core.rest import AUTH_FAILED, RestAnswered, RestCall, RestResult
from client.core.session import Event, Session


class Relogin:
    """Mixin of ClientCore: the 401 re-login of the requests whose purpose asks for it."""

    def _wants_relogin(self: CoreContext, now: float, srv: Session, answer: RestAnswered) -> bool:
        """A 401 under the policy, after a first READY and outside the re-auth:
        the answer waits for the one re-login instead of going to its purpose."""
        if not (answer.retry_on_401 and answer.result.unauthorized):
            return False
        if not srv.ever_connected or srv.reauthing:
            return False
        self._relogin(now, srv, answer)
        return True

    def _relogin(self: CoreContext, now: float, srv: Session, waiter: RestAnswered) -> None:
        if srv.relogin_waiters is not None:
            srv.relogin_waiters.append(waiter)
            return
        srv.relogin_waiters = [waiter]
        self._log("info", "REST answered 401: logging in again", srv.name)
        cfg = srv.config
        credentials = {"username": cfg.username, "password": cfg.password}
        call = RestCall("POST", "/auth/login", credentials)
        self._request(now, srv, call, ReloginPurpose(), login=True)

    def _relogin_answered(self: CoreContext, now: float, srv: Session, res: RestResult) -> None:
        waiters, srv.relogin_waiters = srv.relogin_waiters or [], None
        token = res.data.get("token") if res.ok and isinstance(res.data, dict) else None
        ok = isinstance(token, str) and bool(token)
        if ok:
            srv.rest.token = str(token)
        elif not srv.reauthing:
            self._stop_gateway(now, srv)
            srv.epoch += 1
            srv.go(Event.RELOGIN_FAILED)
            srv.last_failure = AUTH_FAILED
            self._emit(pl.ServerConnectionFailed(srv.name, AUTH_FAILED))
        for w in waiters:
            if ok:  # once more, under its first Token; a second 401 is its answer
                srv.rest.request(now, w.call, w.purpose, w.token)
            else:
                self._dispatch(
                    now, srv, w.purpose, w.token, RestResult(False, 401, error=AUTH_FAILED)
                )
