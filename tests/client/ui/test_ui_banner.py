"""Connection banner, space-icon dot and context menu (client-behaviour.md s.5)."""

from __future__ import annotations

from typing import Any

import pytest

from client.core import signals as sig
from client.core.io import Signal
from client.core.timings import Timings
from client.ui import ViewState

TIMINGS = Timings(scale=0.1)  # green banner 0.3 s
HIDDEN = {"visible": False, "color": None, "text": "", "button": None}


def yellow(text: str) -> dict[str, Any]:
    return {"visible": True, "color": "yellow", "text": text, "button": None}


def fold(*events: tuple[Any, ...]) -> ViewState:
    view = ViewState(TIMINGS)
    for t, name, *args in events:
        view.apply(t, Signal(name, tuple(args)))
    return view


def outage(*extra: tuple[Any, ...]) -> ViewState:
    return fold(
        (0.0, sig.SERVER_CONNECTING, "alpha"),
        (0.1, sig.SERVER_CONNECTED, "alpha"),
        (0.2, sig.SERVER_SYNCED, "alpha"),
        *extra,
    )


def test_first_connect_is_yellow_connecting_then_hidden() -> None:
    view = fold((0.0, sig.SERVER_CONNECTING, "alpha"))
    assert view.banner("alpha", 0.0) == yellow("Connecting...")
    view.apply(0.1, Signal(sig.SERVER_CONNECTED, ("alpha",)))
    assert view.banner("alpha", 0.1) == HIDDEN
    view.apply(0.2, Signal(sig.SERVER_SYNCED, ("alpha",)))
    assert view.banner("alpha", 0.2) == HIDDEN  # no green banner after a first connect


@pytest.mark.parametrize(
    ("code", "reason", "text"),
    [
        (4000, "heartbeat timeout", "Heartbeat timeout"),
        (4000, "server requested reconnect", "Server requested reconnect"),
        (4000, "invalid session", "Session invalidated"),
        (4000, "something odd", "something odd"),
        (4000, "", "Connection lost"),
        (1006, "", "Connection lost"),
        (1000, "bye", "Server closed connection"),
        (1001, "", "Server going away"),
        (4003, "x", "Authentication failed"),
        (4004, "", "Session expired"),
        (4012, "", "Invalid gateway intent"),
        (4013, "", "Disallowed gateway intent"),
        (4014, "", "Unauthorized"),
        (4001, "unknown opcode", "Connection lost"),
        (4009, "", "Connection lost"),
        (1009, "", "Connection lost"),
        (4999, "custom reason", "custom reason"),
        (4999, "", "Connection lost"),
    ],
)
def test_disconnected_banner_uses_the_close_text(code: int, reason: str, text: str) -> None:
    view = outage((1.0, sig.SERVER_DISCONNECTED, "alpha", code, reason))
    assert view.banner("alpha", 1.0) == yellow(f"{text}. Reconnecting...")


def test_outage_recovered_by_attempt_two_ends_green_then_hides_after_3s_scaled() -> None:
    view = outage(
        (1.0, sig.SERVER_DISCONNECTED, "alpha", 1006, ""),
        (1.0, sig.SERVER_RECONNECTING, "alpha", 1, 10),
    )
    assert view.banner("alpha", 1.0) == yellow("Reconnecting... (attempt 1/10)")
    view.apply(1.5, Signal(sig.SERVER_RECONNECTING, ("alpha", 2, 10)))
    assert view.banner("alpha", 1.5) == yellow("Reconnecting... (attempt 2/10)")
    view.apply(2.0, Signal(sig.SERVER_RECONNECTED, ("alpha",)))
    assert view.banner("alpha", 2.0) == yellow("Reconnected — syncing data...")
    view.apply(2.1, Signal(sig.SERVER_SYNCED, ("alpha",)))
    green = {"visible": True, "color": "green", "text": "Reconnected!", "button": None}
    assert view.banner("alpha", 2.1) == green
    assert view.banner("alpha", 2.39) == green
    assert view.next_deadline(2.1) == pytest.approx(2.4)
    assert view.banner("alpha", 2.41) == HIDDEN
    assert view.next_deadline(2.41) is None


def test_reauthentication_shows_plain_reconnecting() -> None:
    view = outage(
        (1.0, sig.SERVER_DISCONNECTED, "alpha", 4004, ""),
        (1.0, sig.SERVER_REAUTHENTICATING, "alpha"),
    )
    assert view.banner("alpha", 1.0) == yellow("Reconnecting...")
    assert view.status("alpha") == "reconnecting"


def test_connection_failed_is_red_with_reconnect_button() -> None:
    view = outage(
        (1.0, sig.SERVER_REAUTHENTICATING, "alpha"),
        (2.0, sig.SERVER_CONNECTION_FAILED, "alpha", "Reconnection failed"),
    )
    assert view.banner("alpha", 2.0) == {
        "visible": True,
        "color": "red",
        "text": "Connection failed: Reconnection failed",
        "button": "Reconnect",
    }
    assert view.banner("alpha", 1000.0)["visible"]  # red never hides on its own


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(sig.SERVER_CONNECTING, "alpha")], yellow("Connecting...")),
        ([(sig.SERVER_RECONNECTING, "alpha", 3, 10)], yellow("Reconnecting...")),
        (
            [(sig.SERVER_DISCONNECTED, "alpha", 4000, "heartbeat timeout")],
            yellow("Reconnecting..."),
        ),
        ([(sig.SERVER_RECONNECTED, "alpha")], HIDDEN),  # connected (syncing)
        ([(sig.SERVER_RECONNECTED, "alpha"), (sig.SERVER_SYNCED, "alpha")], HIDDEN),
        (
            [(sig.SERVER_CONNECTION_FAILED, "alpha", "No response from server")],
            {
                "visible": True,
                "color": "red",
                "text": "Connection failed: No response from server",
                "button": "Reconnect",
            },
        ),
    ],
)
def test_selecting_a_channel_shows_the_current_status(
    events: list[tuple[Any, ...]], expected: dict[str, Any]
) -> None:
    view = outage(*[(1.0, *e) for e in events])
    view.apply(1.05, Signal(sig.CHANNEL_SELECTED, ("alpha", "c1", "general")))
    assert view.banner("alpha", 1.05) == expected
    assert view.snapshot(1.05)["banner"] == expected


def test_the_screen_shows_the_selected_servers_banner_and_the_rig_can_read_any() -> None:
    view = fold(
        (0.0, sig.SERVER_CONNECTING, "alpha"),
        (0.0, sig.SERVER_CONNECTING, "beta"),
        (0.1, sig.SERVER_CONNECTED, "alpha"),
        (0.2, sig.SERVER_CONNECTION_FAILED, "beta", "Could not connect to server"),
    )
    # Before any selection the first server in the space bar is selected.
    assert view.snapshot(0.3)["banner"] == HIDDEN
    assert view.banner("beta", 0.3)["text"] == "Connection failed: Could not connect to server"
    view.apply(0.4, Signal(sig.CHANNEL_SELECTED, ("beta", "c9", "general")))
    assert view.snapshot(0.4)["banner"]["color"] == "red"
    # A failure on beta never touches alpha (s.8).
    assert view.snapshot(0.4)["servers"]["alpha"]["banner"] == HIDDEN


@pytest.mark.parametrize(
    ("event", "status", "dot", "menu"),
    [
        ((sig.SERVER_CONNECTING, "alpha"), "connecting", None, ["Remove Server"]),
        ((sig.SERVER_CONNECTED, "alpha"), "connected", None, ["Remove Server"]),
        (
            (sig.SERVER_DISCONNECTED, "alpha", 1006, ""),
            "disconnected",
            "yellow",
            ["Reconnect", "Remove Server"],
        ),
        (
            (sig.SERVER_RECONNECTING, "alpha", 1, 10),
            "reconnecting",
            "yellow",
            ["Reconnect", "Remove Server"],
        ),
        (
            (sig.SERVER_REAUTHENTICATING, "alpha"),
            "reconnecting",
            "yellow",
            ["Reconnect", "Remove Server"],
        ),
        (
            (sig.SERVER_CONNECTION_FAILED, "alpha", "x"),
            "error",
            "red",
            ["Reconnect", "Remove Server"],
        ),
        ((sig.SERVER_SYNCED, "alpha"), "connected", None, ["Remove Server"]),
    ],
)
def test_space_icon_dot_and_menu_follow_the_status(
    event: tuple[Any, ...], status: str, dot: str | None, menu: list[str]
) -> None:
    view = outage((1.0, *event))
    server = view.snapshot(1.0)["servers"]["alpha"]
    assert (server["status"], server["dot"], server["menu"]) == (status, dot, menu)


def test_removed_server_disappears_and_mode_follows_the_signal() -> None:
    view = outage((0.2, sig.MODE_CHANGED, "LIVE"))
    assert view.snapshot(0.3)["mode"] == "LIVE"
    view.apply(1.0, Signal(sig.SERVER_REMOVED, ("alpha",)))
    view.apply(1.0, Signal(sig.MODE_CHANGED, ("CONNECTING",)))
    snap = view.snapshot(1.0)
    assert snap["servers"] == {}
    assert snap["mode"] == "CONNECTING"
    assert view.status("alpha") == "none"
    assert snap["selected"] == {"server": None, "channel_id": None, "channel": None}


def test_selecting_a_server_in_the_space_bar_shows_its_banner() -> None:
    view = fold(
        (0.0, sig.SERVER_CONNECTING, "alpha"),
        (0.1, sig.SERVER_CONNECTED, "alpha"),
        (0.2, sig.SERVER_CONNECTING, "beta"),
        (0.3, sig.CHANNEL_SELECTED, "alpha", "201", "general"),
    )
    assert view.snapshot(0.3)["banner"] == HIDDEN
    view.apply(0.4, Signal(sig.SERVER_SELECTED, ("beta",)))
    snap = view.snapshot(0.4)
    assert snap["selected"] == {"server": "beta", "channel_id": None, "channel": None}
    assert snap["banner"] == yellow("Connecting...")
