"""Channels and messages (s.5, s.7): selection, loading pages, the gateway's
events into the cache, edits, deletes and reactions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from client.core import payloads as pl
from client.core.cache import dict_items, str_id
from client.core.context import (
    MESSAGE_PAGE,
    NOT_CONNECTED,
    UNEXPECTED_RESPONSE,
    UNKNOWN_MESSAGE,
    CoreContext,
)
from client.core.purposes import Delete, Edit, LoadPage, React
from client.core.rest import RestResult
from client.core.session import LOADS_MESSAGES, Session


class Channels:
    """Mixin of ClientCore: channels, message pages, gateway events, edits."""

    _selected: tuple[str, str] | None  # (server, channel id) the user has open
    _pending_selection: tuple[str, str] | None  # (server, name) not known yet

    def _store_channels(self: CoreContext, now: float, srv: Session, data: Any) -> None:
        srv.cache.set_channels(data)
        self._resolve_pending_selection(now, srv)

    def _select(self: CoreContext, now: float, srv: Session, ref: str) -> None:
        cid = srv.cache.resolve_channel(ref)
        if cid is None:
            self._pending_selection = (srv.name, ref)
            self._log("info", f"channel {ref!r} not known yet; selecting it when it is", srv.name)
            return
        self._pending_selection = None
        self._selected = (srv.name, cid)
        self._emit(pl.ChannelSelected(srv.name, cid, srv.cache.channel_name(cid)))
        if srv.phase in LOADS_MESSAGES and srv.rest.token:
            self._load_channel(now, srv, cid)

    def _resolve_pending_selection(self: CoreContext, now: float, srv: Session) -> None:
        pending = self._pending_selection
        if pending is None or pending[0] != srv.name:
            return
        cid = srv.cache.resolve_channel(pending[1])
        if cid is not None:
            self._pending_selection = None
            self._selected = (srv.name, cid)
            self._emit(pl.ChannelSelected(srv.name, cid, srv.cache.channel_name(cid)))

    def _fetch_channel(self: CoreContext, now: float, srv: Session, ref: str) -> None:
        cid = srv.cache.resolve_channel(ref) or ref
        if not srv.rest.token:
            self._emit(pl.MessageFetchFailed(srv.name, cid, NOT_CONNECTED))
            return
        self._load_channel(now, srv, cid)

    def _load_channel(self: CoreContext, now: float, srv: Session, channel_id: str) -> None:
        """The newest page, merged into the cache (opening a channel, click-to-retry)."""
        self._emit(pl.MessagesLoading(srv.name, channel_id))
        path = f"/channels/{channel_id}/messages?limit={MESSAGE_PAGE}"
        self._call(now, srv, "GET", path, LoadPage(channel_id))

    def _page_loaded(
        self: CoreContext, now: float, srv: Session, channel_id: str, res: RestResult
    ) -> None:
        if not res.ok:
            self._emit(pl.MessageFetchFailed(srv.name, channel_id, res.error))
            return
        batch = dict_items(res.data)
        for msg in batch:
            self._store_message(srv, msg, channel_id)
        self._emit(pl.MessagesLoaded(srv.name, channel_id, len(batch)))

    def _store_message(
        self: CoreContext, srv: Session, msg: dict[str, Any], channel_hint: str | None = None
    ) -> str | None:
        """Cache it; `message_received` when its id is new. Returns the id."""
        stored = srv.cache.store_message(msg, channel_hint)
        if stored is None:
            self._log("warning", "ignored a message without id or channel_id", srv.name)
            return None
        cid, mid, is_new = stored
        if is_new:
            self._emit(pl.MessageReceived(srv.name, cid, mid))
            self._settle_from_cache(srv, cid)  # a gateway echo or a page shows an unknown send
        return mid

    def _gw_event(self: CoreContext, now: float, srv: Session, event_type: str, data: Any) -> None:
        if not isinstance(data, dict):
            self._log("warning", f"ignored {event_type} without an object payload", srv.name)
            return
        cache = srv.cache
        if event_type == "message.create":
            self._store_message(srv, data)
        elif event_type == "message.update":
            mid = self._store_message(srv, data)
            if mid is not None:
                self._emit(pl.MessageEdited(srv.name, mid))
        elif event_type == "message.delete":
            mid = str_id(data.get("id"))
            if mid is not None and cache.remove_message(mid) is not None:
                self._emit(pl.MessageDeleted(srv.name, mid))
        elif event_type in ("reaction.add", "reaction.remove"):
            changed = cache.apply_reaction(data, event_type == "reaction.add", srv.user_id)
            if changed is not None:
                self._emit(pl.ReactionChanged(srv.name, *changed))
        elif event_type in ("channel.create", "channel.update"):
            cache.put_channel(data)
            self._resolve_pending_selection(now, srv)
        elif event_type == "channel.delete":
            cache.drop_channel(data)
        elif event_type == "member.join":
            cache.put_member(data)
        elif event_type == "member.leave":
            cache.drop_member(data)

    def _edit(self: CoreContext, now: float, srv: Session, message_id: str, content: str) -> None:
        found = srv.cache.find_message(message_id)
        if found is None:
            self._emit(pl.MessageEditFailed(srv.name, message_id, UNKNOWN_MESSAGE))
            return
        path = f"/channels/{found[0]}/messages/{message_id}"
        self._call(now, srv, "PATCH", path, Edit(found[0], message_id), {"content": content})

    def _edit_answered(
        self: CoreContext, now: float, srv: Session, edit: Edit, res: RestResult
    ) -> None:
        if res.ok and isinstance(res.data, dict):
            self._store_message(srv, res.data, edit.channel_id)
            self._emit(pl.MessageEdited(srv.name, edit.message_id))
        else:
            error = res.error or UNEXPECTED_RESPONSE
            self._emit(pl.MessageEditFailed(srv.name, edit.message_id, error))

    def _delete(self: CoreContext, now: float, srv: Session, message_id: str) -> None:
        found = srv.cache.find_message(message_id)
        if found is None:
            self._emit(pl.MessageDeleteFailed(srv.name, message_id, UNKNOWN_MESSAGE))
            return
        path = f"/channels/{found[0]}/messages/{message_id}"
        self._call(now, srv, "DELETE", path, Delete(message_id))

    def _delete_answered(
        self: CoreContext, now: float, srv: Session, message_id: str, res: RestResult
    ) -> None:
        if not res.ok:
            self._emit(pl.MessageDeleteFailed(srv.name, message_id, res.error))
        elif srv.cache.remove_message(message_id) is not None:
            self._emit(pl.MessageDeleted(srv.name, message_id))

    def _react(
        self: CoreContext, now: float, srv: Session, message_id: str, emoji: str, add: bool
    ) -> None:
        found = srv.cache.find_message(message_id)
        cid = found[0] if found else ""
        if found is None:
            self._emit(pl.ReactionFailed(srv.name, cid, message_id, emoji, UNKNOWN_MESSAGE))
            return
        path = f"/channels/{cid}/messages/{message_id}/reactions/{quote(emoji, safe='')}/@me"
        self._call(now, srv, "PUT" if add else "DELETE", path, React(cid, message_id, emoji))

    def _react_answered(
        self: CoreContext, now: float, srv: Session, react: React, res: RestResult
    ) -> None:
        if not res.ok:
            error = res.error
            self._emit(
                pl.ReactionFailed(srv.name, react.channel_id, react.message_id, react.emoji, error)
            )
