"""The refetch after READY/RESUMED (s.4): channels, members, roles, then the
selected channel's missed messages; then synced, and the queue flushes.
Every request belongs to the connection (client.core.purposes, CONNECTION scope):
an answer from an older epoch stops the chain.
"""

from __future__ import annotations

from client.core import payloads as pl
from client.core.cache import dict_items
from client.core.context import MESSAGE_PAGE, REFETCH_LIMIT, REFETCH_PAGE, CoreContext
from client.core.purposes import CatchUp, RefetchStep
from client.core.rest import RestResult
from client.core.session import Event, Session
from client.core.steps import REFETCH


class Sync:
    """Mixin of ClientCore: the refetch after READY."""

    def _refetch(self: CoreContext, now: float, srv: Session) -> None:
        """REFETCH (client.core.steps), then the selected channel's missed messages,
        then synced. Failures are logged (and a message fetch failure signalled);
        sync still ends."""
        self._refetch_step(now, srv, 0)

    def _refetch_step(self: CoreContext, now: float, srv: Session, index: int) -> None:
        if index == len(REFETCH):
            selected = self._selected
            if selected is not None and selected[0] == srv.name:
                self._emit(pl.MessagesLoading(srv.name, selected[1]))
                self._catch_up(now, srv, selected[1], 0)
            else:
                self._synced(now, srv)
            return
        step = REFETCH[index]
        self._call(now, srv, step.method, step.url_path(srv), RefetchStep(index))

    def _refetch_step_answered(
        self: CoreContext, now: float, srv: Session, index: int, res: RestResult
    ) -> None:
        step = REFETCH[index]
        if res.ok:
            step.apply(self, now, srv, res.data)
        else:
            self._log("warning", f"refetch {step.name} failed: {res.error}", srv.name)
        self._refetch_step(now, srv, index + 1)

    def _synced(self: CoreContext, now: float, srv: Session) -> None:
        srv.go(Event.SYNCED)
        self._emit(pl.ServerSynced(srv.name))
        if srv.skip_next_flush:
            srv.skip_next_flush = False  # bug 6: the queue stays where it is
            return
        self._flush(now, srv)

    def _catch_up(
        self: CoreContext, now: float, srv: Session, channel_id: str, received: int
    ) -> None:
        """Page forward from the newest known id (or load the newest page)."""
        newest = srv.cache.newest_id(channel_id)
        if newest is None:
            path = f"/channels/{channel_id}/messages?limit={MESSAGE_PAGE}"
        else:
            path = f"/channels/{channel_id}/messages?limit={REFETCH_PAGE}&after={newest}"
        self._call(now, srv, "GET", path, CatchUp(channel_id, received, newest is not None))

    def _catch_up_answered(
        self: CoreContext, now: float, srv: Session, page: CatchUp, res: RestResult
    ) -> None:
        channel_id = page.channel_id
        if not res.ok:
            self._emit(pl.MessageFetchFailed(srv.name, channel_id, res.error))
            self._synced(now, srv)
            return
        batch = dict_items(res.data)
        for msg in batch:
            self._store_message(srv, msg, channel_id)
        received = page.received + len(batch)
        more = bool(res.cursor.get("has_more")) if res.cursor else len(batch) >= REFETCH_PAGE
        if page.forward and batch and more and received < REFETCH_LIMIT:
            self._catch_up(now, srv, channel_id, received)
            return
        self._emit(pl.MessagesLoaded(srv.name, channel_id, received))
        self._synced(now, srv)
