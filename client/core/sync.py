"""The refetch after READY/RESUMED (s.4): channels, members, roles, then the
selected channel's missed messages; then synced, and the queue flushes.
"""

from __future__ import annotations

from collections.abc import Callable

from client.core import payloads as pl
from client.core.cache import dict_items
from client.core.context import MESSAGE_PAGE, REFETCH_LIMIT, REFETCH_PAGE, CoreContext
from client.core.rest import RestResult
from client.core.session import Event, Session
from client.core.steps import REFETCH


class Sync:
    """Mixin of ClientCore: the refetch after READY."""

    def _refetch(self: CoreContext, now: float, srv: Session, epoch: int) -> None:
        """REFETCH (client.core.steps), then the selected channel's missed messages,
        then synced. Failures are logged (and a message fetch failure signalled);
        sync still ends. Each answer from an older epoch stops the chain."""
        self._refetch_step(now, srv, epoch, 0)

    def _refetch_step(self: CoreContext, now: float, srv: Session, epoch: int, index: int) -> None:
        if index == len(REFETCH):
            selected = self._selected
            if selected is not None and selected[0] == srv.name:
                self._catch_up_messages(
                    now, srv, selected[1], lambda t: self._refetch_finished(t, srv, epoch)
                )
            else:
                self._refetch_finished(now, srv, epoch)
            return
        step = REFETCH[index]

        def done(t: float, res: RestResult) -> None:
            if not self._current(srv, epoch):
                return
            if res.ok:
                step.apply(self, t, srv, res.data)
            else:
                self._log("warning", f"refetch {step.name} failed: {res.error}", srv.name)
            self._refetch_step(t, srv, epoch, index + 1)

        self._call(now, srv, step.method, step.url_path(srv), done)

    def _refetch_finished(self: CoreContext, now: float, srv: Session, epoch: int) -> None:
        if self._current(srv, epoch):
            self._synced(now, srv)

    def _synced(self: CoreContext, now: float, srv: Session) -> None:
        srv.go(Event.SYNCED)
        self._emit(pl.ServerSynced(srv.name))
        if srv.skip_next_flush:
            srv.skip_next_flush = False  # bug 6: the queue stays where it is
            return
        self._flush(now, srv)

    def _catch_up_messages(
        self: CoreContext, now: float, srv: Session, channel_id: str, then: Callable[[float], None]
    ) -> None:
        """Page forward from the newest known id (or load the newest page)."""
        epoch = srv.epoch
        received = [0]
        self._emit(pl.MessagesLoading(srv.name, channel_id))

        def request(t: float) -> None:
            newest = srv.cache.newest_id(channel_id)
            if newest is None:
                path = f"/channels/{channel_id}/messages?limit={MESSAGE_PAGE}"
            else:
                path = f"/channels/{channel_id}/messages?limit={REFETCH_PAGE}&after={newest}"
            self._call(t, srv, "GET", path, lambda t2, r: page(t2, r, newest is not None))

        def page(t: float, res: RestResult, forward: bool) -> None:
            if not self._current(srv, epoch):
                return
            if not res.ok:
                self._emit(pl.MessageFetchFailed(srv.name, channel_id, res.error))
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
            self._emit(pl.MessagesLoaded(srv.name, channel_id, received[0]))
            then(t)

        request(now)
