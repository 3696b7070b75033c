"""Composer input, placeholder, text and its one label (client-behaviour.md s.5)."""

from __future__ import annotations

from typing import Any

import pytest

from client.core import signals as sig
from client.core.io import Signal
from client.core.timings import Timings
from client.ui import ViewState

TIMINGS = Timings(scale=0.1)  # labels hide after 0.5 s
QUEUED = "Message queued — will send when reconnected"


def connected_in_general(*extra: tuple[Any, ...]) -> ViewState:
    view = ViewState(TIMINGS)
    events: list[tuple[Any, ...]] = [
        (0.0, sig.SERVER_CONNECTING, "alpha"),
        (0.1, sig.SERVER_CONNECTED, "alpha"),
        (0.1, sig.CHANNEL_SELECTED, "alpha", "c1", "general"),
        (0.2, sig.SERVER_SYNCED, "alpha"),
        *extra,
    ]
    for t, name, *args in events:
        view.apply(t, Signal(name, tuple(args)))
    return view


@pytest.mark.parametrize(
    ("events", "enabled", "placeholder"),
    [
        ([], True, "Message #general"),
        ([(sig.SERVER_RECONNECTED, "alpha")], False, "Syncing..."),
        (
            [(sig.SERVER_DISCONNECTED, "alpha", 1006, "")],
            True,
            "Messages will be queued and sent when reconnected",
        ),
        (
            [(sig.SERVER_RECONNECTING, "alpha", 4, 10)],
            True,
            "Messages will be queued and sent when reconnected",
        ),
        (
            [(sig.SERVER_REAUTHENTICATING, "alpha")],
            True,
            "Messages will be queued and sent when reconnected",
        ),
        (
            [(sig.SERVER_CONNECTION_FAILED, "alpha", "Reconnection failed")],
            False,
            "Cannot send messages — disconnected",
        ),
        ([(sig.SERVER_CONNECTING, "alpha")], False, "Cannot send messages — disconnected"),
    ],
)
def test_enabled_and_placeholder_follow_the_status(
    events: list[tuple[Any, ...]], enabled: bool, placeholder: str
) -> None:
    view = connected_in_general(*[(1.0, *e) for e in events])
    composer = view.snapshot(1.0)["composer"]
    assert (composer["enabled"], composer["placeholder"]) == (enabled, placeholder)


def test_first_connect_syncing_disables_the_composer() -> None:
    view = ViewState(TIMINGS)
    view.apply(0.0, Signal(sig.SERVER_CONNECTED, ("alpha",)))
    view.apply(0.0, Signal(sig.CHANNEL_SELECTED, ("alpha", "c1", "general")))
    assert view.snapshot(0.0)["composer"]["placeholder"] == "Syncing..."


def test_queued_label_hides_after_5s_scaled() -> None:
    view = connected_in_general(
        (1.0, sig.SERVER_DISCONNECTED, "alpha", 1006, ""),
        (1.1, sig.MESSAGE_QUEUED, "alpha", "c1", "hi", "n1", 1),
    )
    assert view.snapshot(1.1)["composer"] == {
        "enabled": True,
        "placeholder": "Messages will be queued and sent when reconnected",
        "text": "",
        "label": QUEUED,
    }
    assert view.next_deadline(1.1) == pytest.approx(1.6)
    assert view.snapshot(1.59)["composer"]["label"] == QUEUED
    assert view.snapshot(1.61)["composer"]["label"] == ""


def test_label_clears_on_status_change() -> None:
    view = connected_in_general(
        (1.0, sig.SERVER_DISCONNECTED, "alpha", 1006, ""),
        (1.1, sig.MESSAGE_QUEUED, "alpha", "c1", "hi", "n1", 1),
        (1.2, sig.SERVER_RECONNECTING, "alpha", 1, 10),
    )
    assert view.snapshot(1.2)["composer"]["label"] == ""


def test_label_survives_an_attempt_number_change() -> None:
    view = connected_in_general(
        (1.0, sig.SERVER_RECONNECTING, "alpha", 1, 10),
        (1.1, sig.MESSAGE_QUEUED, "alpha", "c1", "hi", "n1", 1),
        (1.2, sig.SERVER_RECONNECTING, "alpha", 2, 10),  # still reconnecting
    )
    assert view.snapshot(1.2)["composer"]["label"] == QUEUED


def test_queue_full_keeps_the_text_and_says_so() -> None:
    view = connected_in_general(
        (1.0, sig.SERVER_DISCONNECTED, "alpha", 1006, ""),
        (1.1, sig.MESSAGE_SEND_REFUSED, "alpha", "c1", "one too many", sig.REFUSED_QUEUE_FULL),
    )
    composer = view.snapshot(1.1)["composer"]
    assert (composer["text"], composer["label"]) == (
        "one too many",
        "Queue full — message not sent",
    )


def test_failed_direct_send_restores_the_text_and_next_send_clears_the_label() -> None:
    view = connected_in_general(
        (1.0, sig.MESSAGE_SENDING, "alpha", "c1", "hello", "n1"),
        (1.2, sig.MESSAGE_SEND_FAILED, "alpha", "c1", "hello", "Request timed out"),
    )
    composer = view.snapshot(1.2)["composer"]
    assert (composer["text"], composer["label"]) == ("hello", "Failed to send: Request timed out")
    view.apply(1.3, Signal(sig.MESSAGE_SENDING, ("alpha", "c1", "hello", "n1")))
    composer = view.snapshot(1.3)["composer"]
    assert (composer["text"], composer["label"]) == ("", "")


def test_refusal_by_a_disabled_composer_changes_nothing() -> None:
    view = connected_in_general((1.0, sig.SERVER_CONNECTION_FAILED, "alpha", "x"))
    before = view.snapshot(1.0)
    view.apply(1.1, Signal(sig.MESSAGE_SEND_REFUSED, ("alpha", "c1", "hi", sig.REFUSED_DISABLED)))
    assert view.snapshot(1.0) == before


def test_composers_are_per_channel_and_per_server() -> None:
    view = connected_in_general(
        (1.0, sig.SERVER_CONNECTED, "beta"),
        (1.1, sig.MESSAGE_SEND_FAILED, "beta", "c1", "elsewhere", "Connection error"),
    )
    # Same channel id on another server: alpha's composer is untouched.
    assert view.snapshot(1.1)["composer"]["label"] == ""
    assert view.composer("beta", "c1", 1.1)["label"] == "Failed to send: Connection error"


def test_no_selected_channel_means_no_usable_composer() -> None:
    view = ViewState(TIMINGS)
    view.apply(0.0, Signal(sig.SERVER_CONNECTING, ("alpha",)))
    assert view.snapshot(0.0)["composer"] == {
        "enabled": False,
        "placeholder": "",
        "text": "",
        "label": "",
    }


def test_a_failed_send_found_delivered_clears_its_text_and_label_only() -> None:
    """s.6: `message_sent` for the nonce whose failure the composer shows clears
    the restored text and the label; another send's `message_sent` does not."""
    view = connected_in_general(
        (1.0, sig.MESSAGE_SENDING, "alpha", "c1", "first", "n1"),
        (1.0, sig.MESSAGE_SENDING, "alpha", "c1", "second", "n2"),
        (1.1, sig.MESSAGE_SEND_FAILED, "alpha", "c1", "first", "Request timed out"),
        (1.2, sig.MESSAGE_SENT, "alpha", "c1", "n2", "m2"),
    )
    composer = view.composer("alpha", "c1", 1.2)
    assert (composer["text"], composer["label"]) == ("first", "Failed to send: Request timed out")
    view.apply(1.3, Signal(sig.MESSAGE_SENT, ("alpha", "c1", "n1", "m1")))
    composer = view.composer("alpha", "c1", 1.3)
    assert (composer["text"], composer["label"]) == ("", "")
