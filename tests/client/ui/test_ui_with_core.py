"""The view models fed by the real ClientCore's signal stream (virtual time, a
scripted peer): the banner histories and composer states of whole flows."""

from __future__ import annotations

from typing import Any

from client.core.actions import (
    ConfigureServer,
    ConnectServer,
    ReconnectServer,
    SelectChannel,
    SendMessage,
    ServerConfig,
)
from client.core.client import ClientCore
from client.core.io import Signal
from client.core.timings import Timings
from client.ui import ViewState
from client.virtual import FakePeer, VirtualRunner

TIMINGS = Timings()  # real durations: virtual time makes them free


def connected_runner(peer: FakePeer) -> tuple[VirtualRunner, ClientCore]:
    core = ClientCore(timings=TIMINGS, seed=3, bugs=())
    runner = VirtualRunner(core, [peer])
    config = ServerConfig("alpha", peer.base_url, "alice", "password", "accord")
    runner.do(ConfigureServer(config))
    runner.do(ConnectServer("alpha"))
    runner.run_until(lambda: core.status("alpha") == "connected" and not core.syncing("alpha"))
    runner.do(SelectChannel("alpha", "general"))
    runner.settle()
    return runner, core


def history(runner: VirtualRunner, key: str) -> list[Any]:
    """Distinct successive values of one screen element, signal by signal."""
    view = ViewState(TIMINGS)
    seen: list[Any] = []
    for t, effect in runner.log:
        if isinstance(effect, Signal):
            view.apply(t, effect)
            part = view.snapshot(t)
            for step in key.split("."):
                part = part[step]
            if not seen or seen[-1] != part:
                seen.append(part)
    return seen


def view_now(runner: VirtualRunner) -> dict[str, Any]:
    signals = [(t, e) for t, e in runner.log if isinstance(e, Signal)]
    return ViewState.fold(signals, TIMINGS).snapshot(runner.now)


def test_fatal_close_shows_its_text_then_reauth_then_green() -> None:
    peer = FakePeer(base_url="https://alpha.test:8443", latency=0.01)
    runner, core = connected_runner(peer)
    runner.close(peer.live_conns()[0], 4004, "authentication failed")
    runner.run_until(lambda: core.status("alpha") == "connected" and not core.syncing("alpha"))
    assert history(runner, "banner.text") == [
        "",
        "Connecting...",
        "",
        "Session expired. Reconnecting...",
        "Reconnecting...",
        "Reconnected — syncing data...",
        "Reconnected!",
    ]
    assert view_now(runner)["banner"]["color"] == "green"
    runner.advance(3.0)
    assert view_now(runner)["banner"]["visible"] is False


def test_ten_failed_attempts_then_failed_reauth_end_red_and_queue_what_was_typed() -> None:
    peer = FakePeer(base_url="https://alpha.test:8443", latency=0.01)
    runner, core = connected_runner(peer)
    peer.gateway_refuse = True
    runner.close(peer.live_conns()[0], 1006, "")
    runner.run_until(lambda: core.status("alpha") == "reconnecting")
    runner.do(SendMessage("alpha", "general", "typed offline"))
    composer = view_now(runner)["composer"]
    assert composer == {
        "enabled": True,
        "placeholder": "Messages will be queued and sent when reconnected",
        "text": "",
        "label": "Message queued — will send when reconnected",
    }
    runner.run_until(lambda: core.status("alpha") == "error", within=600)
    texts = history(runner, "banner.text")
    attempts = [t for t in texts if t.startswith("Reconnecting... (attempt")]
    assert attempts == [f"Reconnecting... (attempt {n}/10)" for n in range(1, 11)]
    assert texts[-2:] == ["Reconnecting...", "Connection failed: Reconnection failed"]
    snap = view_now(runner)
    assert snap["banner"] == {
        "visible": True,
        "color": "red",
        "text": "Connection failed: Reconnection failed",
        "button": "Reconnect",
    }
    assert (snap["servers"]["alpha"]["dot"], snap["servers"]["alpha"]["menu"]) == (
        "red",
        ["Reconnect", "Remove Server"],
    )
    assert snap["composer"]["enabled"] is False
    assert snap["composer"]["placeholder"] == "Cannot send messages — disconnected"
    assert snap["composer"]["label"] == ""  # cleared by the status changes

    # The user's Reconnect, with the server healthy again, flushes the queue.
    peer.gateway_refuse = False
    runner.do(ReconnectServer("alpha"))
    runner.run_until(lambda: not core.queue("alpha") and core.status("alpha") == "connected")
    assert [m["content"] for m in peer.messages["201"]] == ["typed offline"]
    assert history(runner, "banner.text")[-3:] == [
        "Reconnecting...",
        "Reconnected — syncing data...",
        "Reconnected!",
    ]


def test_queue_full_keeps_the_text_in_the_composer() -> None:
    peer = FakePeer(base_url="https://alpha.test:8443", latency=0.01)
    runner, core = connected_runner(peer)
    peer.gateway_accept = False  # attempts hang: the outage lasts
    runner.close(peer.live_conns()[0], 1006, "")
    runner.run_until(lambda: core.status("alpha") == "reconnecting")
    for n in range(20):
        runner.do(SendMessage("alpha", "general", f"m{n}"))
    runner.do(SendMessage("alpha", "general", "one too many"))
    composer = view_now(runner)["composer"]
    assert (composer["text"], composer["label"]) == (
        "one too many",
        "Queue full — message not sent",
    )
    assert len(core.queue("alpha")) == 20
