"""Everything the user sees, as a pure fold of the timestamped signal stream.

`ViewState.apply(t, signal)` folds one AppState signal; every query takes `now`
(same clock as `t`) so timed hides need no timer. `snapshot(now)` is a plain
JSON-able dict the rig diffs and asserts on; `diff_snapshots` gives the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from client.core import signals as sig
from client.core.io import Signal
from client.core.protocol import Status
from client.core.timings import Timings
from client.ui.add_server import AddServerDialog
from client.ui.composer import ComposerView
from client.ui.connection import HIDDEN, ServerConnectionView
from client.ui.message_errors import MessageErrorsView
from client.ui.message_view import MessageListView

ChannelKey = tuple[str, str]  # (server, channel_id): equal ids on two servers never mix

_NO_COMPOSER: dict[str, Any] = {"enabled": False, "placeholder": "", "text": "", "label": ""}


class ViewState:
    def __init__(self, timings: Timings | None = None) -> None:
        self.timings = timings or Timings()
        self.mode = "CONNECTING"
        self.servers: dict[str, ServerConnectionView] = {}  # in the order they appeared
        self.dialog = AddServerDialog()
        self._selected_server: str | None = None
        self._selected_channel: str | None = None
        self._channel_names: dict[ChannelKey, str] = {}
        self._composers: dict[ChannelKey, ComposerView] = {}
        self._lists: dict[ChannelKey, MessageListView] = {}
        self._message_errors: dict[str, MessageErrorsView] = {}

    @classmethod
    def fold(
        cls, records: Iterable[tuple[float, Signal]], timings: Timings | None = None
    ) -> ViewState:
        view = cls(timings)
        for t, signal in records:
            view.apply(t, signal)
        return view

    # ------------------------------------------------------------------ folding

    def apply(self, t: float, signal: Signal) -> None:
        name, args = signal.name, signal.args
        if name == sig.MODE_CHANGED:
            self.mode = str(args[0])
            return
        if not args:
            return
        server = str(args[0])
        if name in sig.CONNECTION_SIGNALS:
            self._apply_connection(t, name, args)
        elif name == sig.SERVER_ADDED:
            self._server(server)
        elif name == sig.SERVER_PROBE_STARTED:
            self.dialog.probe_started(server)
        elif name == sig.SERVER_PROBE_OK:
            self.dialog.probe_ok(server)
        elif name == sig.SERVER_ADD_FAILED:
            self.dialog.failed(server, str(args[1]))
            self._forget(server)  # the config entry was rolled back
        elif name == sig.CHANNEL_SELECTED:
            self._select(server, str(args[1]), str(args[2]))
        elif name == sig.SERVER_SELECTED:
            self._selected_server, self._selected_channel = server, None
            self._server(server).show_current_status()
        elif server in self.servers:
            self._apply_message(t, name, server, args)

    def _apply_connection(self, t: float, name: str, args: tuple[Any, ...]) -> None:
        server = str(args[0])
        if name == sig.SERVER_REMOVED:
            self._forget(server)
            return
        view = self._server(server)
        before = view.display_status
        view.apply(t, name, args, self.timings.scaled(self.timings.green_banner))
        if view.display_status != before:
            for (owner, _), composer in self._composers.items():
                if owner == server:
                    composer.status_changed()
        if name == sig.SERVER_CONNECTED:
            self.dialog.connected(server)

    def _apply_message(self, t: float, name: str, server: str, args: tuple[Any, ...]) -> None:
        hide_after = self.timings.scaled(self.timings.label_hide)
        if name == sig.MESSAGE_SENDING:
            self._composer(server, args[1]).sending(str(args[3]), str(args[2]))
            self._list(server, args[1]).failed.pop(str(args[3]), None)
        elif name == sig.MESSAGE_QUEUED:
            self._composer(server, args[1]).queued(t, hide_after)
            self._list(server, args[1]).failed.pop(str(args[3]), None)
        elif name == sig.MESSAGE_SEND_REFUSED:
            # A refusal because the composer is disabled changes nothing (s.5).
            if args[3] == sig.REFUSED_QUEUE_FULL:
                self._composer(server, args[1]).queue_full(t, hide_after, str(args[2]))
        elif name == sig.MESSAGE_SEND_FAILED:
            self._composer(server, args[1]).send_failed(t, hide_after, str(args[2]), str(args[3]))
        elif name in (sig.MESSAGE_SENT, sig.FAILED_ENTRY_DISCARDED):  # args[2] is the nonce
            self._list(server, args[1]).failed.pop(str(args[2]), None)
            if name == sig.MESSAGE_SENT:
                self._composer(server, args[1]).settled(str(args[2]))
        elif name == sig.MESSAGE_FAILED_ENTRY:
            entry_args = (str(args[2]), str(args[3]), str(args[4]))
            self._list(server, args[1]).add_failed(*entry_args)
        elif name == sig.MESSAGES_LOADING:
            timeout = self.timings.scaled(self.timings.loading_timer)
            self._list(server, args[1]).loading(t, timeout)
        elif name == sig.MESSAGES_LOADED:
            self._list(server, args[1]).loaded(int(args[2]))
        elif name == sig.MESSAGE_FETCH_FAILED:
            self._list(server, args[1]).fetch_failed(str(args[2]))
        elif name == sig.EDIT_STARTED:
            self._errors(server).edit_started(str(args[1]))
        elif name == sig.MESSAGE_EDIT_FAILED:
            self._errors(server).edit_failed(t, hide_after, str(args[1]), str(args[2]))
        elif name == sig.MESSAGE_DELETE_FAILED:
            self._errors(server).delete_failed(t, hide_after, str(args[1]), str(args[2]))
        elif name == sig.MESSAGE_EDITED:
            self._errors(server).edited(str(args[1]))
        elif name == sig.MESSAGE_DELETED:
            self._errors(server).deleted(str(args[1]))

    def _select(self, server: str, channel_id: str, channel_name: str) -> None:
        self._selected_server, self._selected_channel = server, channel_id
        self._channel_names[(server, channel_id)] = channel_name
        self._server(server).show_current_status()

    def _server(self, server: str) -> ServerConnectionView:
        if server not in self.servers:
            self.servers[server] = ServerConnectionView(server)
        return self.servers[server]

    def _composer(self, server: str, channel_id: Any) -> ComposerView:
        return self._composers.setdefault((server, str(channel_id)), ComposerView())

    def _list(self, server: str, channel_id: Any) -> MessageListView:
        return self._lists.setdefault((server, str(channel_id)), MessageListView())

    def _errors(self, server: str) -> MessageErrorsView:
        return self._message_errors.setdefault(server, MessageErrorsView())

    def _forget(self, server: str) -> None:
        """A removed (or rolled back) server leaves no trace on screen."""
        self.servers.pop(server, None)
        self._message_errors.pop(server, None)
        for table in (self._composers, self._lists, self._channel_names):
            for key in [k for k in table if k[0] == server]:
                del table[key]
        if self._selected_server == server:
            self._selected_server = self._selected_channel = None

    # ------------------------------------------------------------------ queries

    @property
    def selected_server(self) -> str | None:
        """The selected server; before any selection, the first one in the space bar."""
        if self._selected_server is not None:
            return self._selected_server
        return next(iter(self.servers), None)

    @property
    def selected_channel(self) -> str | None:
        return self._selected_channel

    def status(self, server: str) -> str:
        view = self.servers.get(server)
        return (view.status if view is not None else Status.NONE).value

    def banner(self, server: str, now: float) -> dict[str, Any]:
        view = self.servers.get(server)
        return (view.banner if view is not None else HIDDEN).render(now)

    def composer(self, server: str, channel_id: str, now: float) -> dict[str, Any]:
        view = self.servers.get(server)
        if view is None:
            return dict(_NO_COMPOSER)
        name = self._channel_names.get((server, channel_id), channel_id)
        composer = self._composers.get((server, channel_id)) or ComposerView()
        return composer.render(now, view.display_status, name)

    def message_view(self, server: str, channel_id: str, now: float) -> dict[str, Any]:
        listing = self._lists.get((server, channel_id)) or MessageListView()
        errors = self._message_errors.get(server) or MessageErrorsView()
        return {**listing.render(now), **errors.render(now)}

    def next_deadline(self, now: float) -> float | None:
        """The next time a snapshot changes with no new signal (a timed hide or the
        loading timeout), or None."""
        candidates = [v.next_deadline(now) for v in self.servers.values()]
        candidates += [c.next_deadline(now) for c in self._composers.values()]
        candidates += [m.next_deadline(now) for m in self._lists.values()]
        candidates += [e.next_deadline(now) for e in self._message_errors.values()]
        return min((c for c in candidates if c is not None), default=None)

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything the user sees at `now`, as plain JSON-able data."""
        server, channel = self.selected_server, self._selected_channel
        if server is not None and channel is not None:
            composer = self.composer(server, channel, now)
            messages = self.message_view(server, channel, now)
        else:
            composer = dict(_NO_COMPOSER)
            messages = MessageListView().render(now)
            errors = self._message_errors.get(server) if server is not None else None
            messages.update((errors or MessageErrorsView()).render(now))
        return {
            "mode": self.mode,
            "selected": {
                "server": server,
                "channel_id": channel,
                "channel": self._channel_names.get((server, channel))
                if server and channel
                else None,
            },
            "banner": self.banner(server, now) if server is not None else HIDDEN.render(now),
            "servers": {name: view.render(now) for name, view in self.servers.items()},
            "composer": composer,
            "message_view": messages,
            "add_server": self.dialog.render(),
        }


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """What changed between two snapshots: dotted path -> [old, new]. Nested dicts
    are walked; lists and scalars compare whole. A missing side reads as None."""
    changes: dict[str, list[Any]] = {}

    def walk(prefix: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                walk(f"{prefix}{key}.", a.get(key), b.get(key))
        elif a != b:
            changes[prefix[:-1]] = [a, b]

    walk("", old, new)
    return changes
