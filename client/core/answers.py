"""REST answers as events (client.core.purposes): every request goes out with a
purpose and a token; its answer comes back as a `RestAnswered` the core drains
after each call into the REST client and dispatches here by purpose type, once
the one staleness check (`_current`) and the 401 policy (client.core.relogin)
have seen it.
"""

from __future__ import annotations

from typing import Any

from client.core import purposes as pp
from client.core.context import CoreContext
from client.core.rest import RestCall, RestResult
from client.core.session import Session


class Answers:
    """Mixin of ClientCore: sending a request for a purpose, dispatching its answer."""

    def _request(
        self: CoreContext,
        now: float,
        srv: Session,
        call: RestCall,
        purpose: pp.Purpose,
        *,
        login: bool = False,
        probe: bool = False,
    ) -> None:
        """Send `call` for `purpose` with a token of this epoch; the answer comes
        back through `_drain_rest`."""
        token = pp.Token(purpose.SCOPE, srv.epoch)
        retry_on_401 = purpose.RELOGIN
        srv.rest.request(
            now, call, purpose, token, login=login, probe=probe, retry_on_401=retry_on_401
        )

    def _call(
        self: CoreContext,
        now: float,
        srv: Session,
        method: str,
        path: str,
        purpose: pp.Purpose,
        body: Any = None,
    ) -> None:
        """A REST call for `purpose` (whose `RELOGIN` says if a 401 logs in again)."""
        self._request(now, srv, RestCall(method, path, body), purpose)

    def _drain_rest(self: CoreContext, now: float, srv: Session) -> None:
        """Act on what the REST client answered, in order, after each call into it."""
        while answers := srv.rest.take_events():
            for answer in answers:
                if not self._wants_relogin(now, srv, answer):
                    self._dispatch(now, srv, answer.purpose, answer.token, answer.result)

    def _dispatch(
        self: CoreContext,
        now: float,
        srv: Session,
        purpose: pp.Purpose,
        token: pp.Token,
        res: RestResult,
    ) -> None:
        if not self._current(srv, token):
            return  # torn down or superseded meanwhile
        if isinstance(purpose, pp.ConnectStep):
            self._connect_step_answered(now, srv, purpose.index, res)
        elif isinstance(purpose, pp.RefetchStep):
            self._refetch_step_answered(now, srv, purpose.index, res)
        elif isinstance(purpose, pp.CatchUp):
            self._catch_up_answered(now, srv, purpose, res)
        elif isinstance(purpose, pp.LoadPage):
            self._page_loaded(now, srv, purpose.channel_id, res)
        elif isinstance(purpose, pp.Post):
            self._posted(now, srv, purpose, res)
        elif isinstance(purpose, pp.LookForCopy):
            self._copy_page(now, srv, purpose, res)
        elif isinstance(purpose, pp.Edit):
            self._edit_answered(now, srv, purpose, res)
        elif isinstance(purpose, pp.Delete):
            self._delete_answered(now, srv, purpose.message_id, res)
        elif isinstance(purpose, pp.React):
            self._react_answered(now, srv, purpose, res)
        elif isinstance(purpose, pp.Relogin):
            self._relogin_answered(now, srv, res)
        elif isinstance(purpose, pp.Probe):
            self._probed(now, srv, res)
        # a Logout's answer is not waited for
