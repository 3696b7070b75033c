"""Message view loading states, failed entries, inline errors, add-server dialog,
and the snapshot/diff the rig asserts on (client-behaviour.md s.5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from client.core import signals as sig
from client.core.io import Signal
from client.core.timings import Timings
from client.ui import ViewState, diff_snapshots

TIMINGS = Timings(scale=0.1)  # loading timer 1.5 s, inline errors 0.5 s


def selected(*extra: tuple[Any, ...]) -> ViewState:
    view = ViewState(TIMINGS)
    events: list[tuple[Any, ...]] = [
        (0.0, sig.SERVER_CONNECTED, "alpha"),
        (0.0, sig.SERVER_SYNCED, "alpha"),
        (0.0, sig.CHANNEL_SELECTED, "alpha", "c1", "general"),
        *extra,
    ]
    for t, name, *args in events:
        view.apply(t, Signal(name, tuple(args)))
    return view


def shown(view: ViewState, now: float) -> tuple[str, str, str | None, bool]:
    mv = view.snapshot(now)["message_view"]
    return mv["state"], mv["text"], mv["color"], mv["clickable"]


def test_loading_then_loaded() -> None:
    view = selected((1.0, sig.MESSAGES_LOADING, "alpha", "c1"))
    assert shown(view, 1.0) == ("loading", "Loading messages...", None, False)
    view.apply(1.2, Signal(sig.MESSAGES_LOADED, ("alpha", "c1", 50)))
    assert shown(view, 1.2) == ("loaded", "", None, False)
    assert view.snapshot(1.2)["message_view"]["count"] == 50


def test_fetch_failure_is_red_and_clickable() -> None:
    view = selected(
        (1.0, sig.MESSAGES_LOADING, "alpha", "c1"),
        (1.1, sig.MESSAGE_FETCH_FAILED, "alpha", "c1", "No response from server"),
    )
    expected = "Failed to load messages: No response from server\nClick to retry"
    assert shown(view, 1.1) == ("failed", expected, "red", True)


def test_loading_times_out_after_15s_scaled_and_a_late_answer_replaces_it() -> None:
    view = selected((1.0, sig.MESSAGES_LOADING, "alpha", "c1"))
    assert view.next_deadline(1.0) == pytest.approx(2.5)
    assert shown(view, 2.49)[0] == "loading"
    assert shown(view, 2.5) == ("timed_out", "Loading timed out. Click to retry", "red", True)
    late_failure = selected(
        (1.0, sig.MESSAGES_LOADING, "alpha", "c1"),
        (3.0, sig.MESSAGE_FETCH_FAILED, "alpha", "c1", "Request timed out"),
    )
    assert (
        shown(late_failure, 3.0)[1] == "Failed to load messages: Request timed out\nClick to retry"
    )
    view.apply(3.0, Signal(sig.MESSAGES_LOADED, ("alpha", "c1", 7)))
    assert shown(view, 3.0) == ("loaded", "", None, False)


def test_a_retry_click_shows_loading_again() -> None:
    view = selected(
        (1.0, sig.MESSAGES_LOADING, "alpha", "c1"),
        (1.1, sig.MESSAGE_FETCH_FAILED, "alpha", "c1", "Connection error"),
        (1.5, sig.MESSAGES_LOADING, "alpha", "c1"),
    )
    assert shown(view, 1.5) == ("loading", "Loading messages...", None, False)


def test_failed_entries_appear_and_leave_when_sent_again() -> None:
    view = selected(
        (1.0, sig.MESSAGE_FAILED_ENTRY, "alpha", "c1", "n1", "too long", "Message too long"),
    )
    entries = view.snapshot(1.0)["message_view"]["failed_entries"]
    assert entries == [
        {"nonce": "n1", "content": "too long", "text": "Failed to send: Message too long"}
    ]
    view.apply(1.5, Signal(sig.MESSAGE_SENT, ("alpha", "c1", "n1", "m9")))
    assert view.snapshot(1.5)["message_view"]["failed_entries"] == []


def test_edit_failure_reenters_edit_mode_with_an_error_that_hides_after_5s_scaled() -> None:
    view = selected(
        (1.0, sig.EDIT_STARTED, "alpha", "m1"),
        (1.1, sig.MESSAGE_EDITED, "alpha", "m1"),  # leaves edit mode
    )
    assert view.snapshot(1.1)["message_view"]["editing"] is None
    view.apply(1.2, Signal(sig.MESSAGE_EDIT_FAILED, ("alpha", "m1", "Connection error")))
    mv = view.snapshot(1.2)["message_view"]
    assert (mv["editing"], mv["inline_errors"]) == ("m1", {"m1": "Edit failed: Connection error"})
    assert view.snapshot(1.71)["message_view"]["inline_errors"] == {}
    assert view.snapshot(1.71)["message_view"]["editing"] == "m1"  # still editing


def test_delete_failure_shows_inline_and_hides() -> None:
    view = selected((1.0, sig.MESSAGE_DELETE_FAILED, "alpha", "m2", "Request timed out"))
    assert view.snapshot(1.0)["message_view"]["inline_errors"] == {
        "m2": "Delete failed: Request timed out"
    }
    assert view.next_deadline(1.0) == pytest.approx(1.5)
    assert view.snapshot(1.51)["message_view"]["inline_errors"] == {}


def test_add_server_dialog_buttons_and_rollback() -> None:
    view = ViewState(TIMINGS)
    assert view.snapshot(0)["add_server"] == {
        "server": None,
        "button": "Add",
        "busy": False,
        "error": "",
    }
    view.apply(0.0, Signal(sig.SERVER_ADDED, ("alpha",)))
    view.apply(0.0, Signal(sig.SERVER_PROBE_STARTED, ("alpha",)))
    assert view.snapshot(0)["add_server"]["button"] == "Checking..."
    view.apply(0.1, Signal(sig.SERVER_PROBE_OK, ("alpha",)))
    view.apply(0.1, Signal(sig.SERVER_CONNECTING, ("alpha",)))
    assert view.snapshot(0.1)["add_server"] == {
        "server": "alpha",
        "button": "Connecting...",
        "busy": True,
        "error": "",
    }
    view.apply(0.2, Signal(sig.SERVER_ADD_FAILED, ("alpha", "TLS/SSL handshake failed")))
    snap = view.snapshot(0.2)
    assert snap["add_server"] == {
        "server": None,
        "button": "Add",
        "busy": False,
        "error": "TLS/SSL handshake failed",
    }
    assert snap["servers"] == {}  # the config entry is rolled back


def test_add_server_dialog_success_and_https_refusal() -> None:
    view = ViewState(TIMINGS)
    view.apply(0.0, Signal(sig.SERVER_ADD_FAILED, ("beta", "Only https:// servers are supported")))
    assert view.snapshot(0)["add_server"]["error"] == "Only https:// servers are supported"
    for name in (sig.SERVER_PROBE_STARTED, sig.SERVER_PROBE_OK, sig.SERVER_CONNECTED):
        view.apply(0.1, Signal(name, ("alpha",)))
    assert view.snapshot(0.1)["add_server"] == {
        "server": None,
        "button": "Add",
        "busy": False,
        "error": "",
    }


def test_snapshot_is_json_and_diff_names_each_changed_leaf() -> None:
    view = selected()
    before = view.snapshot(0.5)
    json.dumps(before)
    view.apply(1.0, Signal(sig.SERVER_DISCONNECTED, ("alpha", 4000, "heartbeat timeout")))
    after = view.snapshot(1.0)
    changes = diff_snapshots(before, after)
    assert changes["banner.text"] == ["", "Heartbeat timeout. Reconnecting..."]
    assert changes["servers.alpha.status"] == ["connected", "disconnected"]
    assert changes["composer.placeholder"] == [
        "Message #general",
        "Messages will be queued and sent when reconnected",
    ]
    assert "mode" not in changes
    assert diff_snapshots(after, after) == {}


def test_fold_equals_incremental_apply() -> None:
    records = [
        (0.0, Signal(sig.SERVER_CONNECTING, ("alpha",))),
        (0.1, Signal(sig.SERVER_CONNECTED, ("alpha",))),
        (0.2, Signal(sig.SERVER_DISCONNECTED, ("alpha", 1006, ""))),
    ]
    assert ViewState.fold(records, TIMINGS).snapshot(0.3) == selected_free(records).snapshot(0.3)


def selected_free(records: list[tuple[float, Signal]]) -> ViewState:
    view = ViewState(TIMINGS)
    for t, signal in records:
        view.apply(t, signal)
    return view


def test_signals_for_unknown_servers_or_without_args_do_not_crash() -> None:
    view = ViewState(TIMINGS)
    view.apply(0.0, Signal(sig.MESSAGE_SEND_FAILED, ("ghost", "c1", "x", "y")))
    view.apply(0.0, Signal(sig.SERVER_SYNCED, ()))
    view.apply(0.0, Signal("some_future_signal", ("alpha",)))
    assert view.snapshot(0.0)["servers"] == {}


def test_a_discarded_failed_entry_leaves_the_channel() -> None:
    from client.core import signals as sig
    from client.core.io import Signal
    from client.core.timings import Timings
    from client.ui import ViewState

    view = ViewState(Timings(scale=0.1))
    view.apply(0.0, Signal(sig.CHANNEL_SELECTED, ("alpha", "201", "general")))
    view.apply(0.1, Signal(sig.MESSAGE_FAILED_ENTRY, ("alpha", "201", "n1", "hi", "Too long")))
    entries = view.snapshot(0.1)["message_view"]["failed_entries"]
    assert [e["text"] for e in entries] == ["Failed to send: Too long"]
    view.apply(0.2, Signal(sig.FAILED_ENTRY_DISCARDED, ("alpha", "201", "n1")))
    assert view.snapshot(0.2)["message_view"]["failed_entries"] == []
