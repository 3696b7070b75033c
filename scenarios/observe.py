"""From recorded signals to what the user saw, instant by instant.

The view models (`client.ui.view_state.ViewState`) are a pure fold of the signal
stream, so the rig replays the timeline's signals through a fresh ViewState and
takes a snapshot after every signal and at every timed change (a green banner or a
label hiding). Consecutive equal snapshots collapse into one observation, so a
state that lasted 0 ms is still one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from client.core.io import Signal
from client.core.timings import Timings
from client.ui.view_state import ViewState
from scenarios.observation import (
    BannerSeen,
    ComposerSeen,
    MessageSeen,
    Observation,
    ServerSeen,
)
from scenarios.records import SignalAt

QUEUE_CHANGED = "queue_changed"


def to_observation(t: float, snap: dict[str, Any], queues: dict[str, int]) -> Observation:
    servers = {}
    for name, view in snap["servers"].items():
        banner = view["banner"]
        status = "syncing" if view.get("syncing") else str(view["status"])
        servers[name] = ServerSeen(
            status=status,
            banner=BannerSeen(banner["color"], banner.get("text", ""), banner.get("button")),
            dot=view.get("dot"),
            queue=queues.get(name, 0),
        )
    selected = snap.get("selected") or {}
    server, channel = selected.get("server"), selected.get("channel")
    channel_ref = f"{server}/{channel}" if server and channel else None
    composer = None
    if channel_ref is not None:
        c = snap["composer"]
        composer = ComposerSeen(
            bool(c["enabled"]),
            str(c["placeholder"]),
            str(c.get("label", "")),
            str(c.get("text", "")),
        )
    view = snap.get("message_view") or {}
    messages: dict[str, tuple[MessageSeen, ...]] = {}
    if channel_ref is not None:
        messages[channel_ref] = tuple(
            MessageSeen(str(e["content"]), failed=True) for e in view.get("failed_entries", ())
        )
    return Observation(
        t=t,
        mode=str(snap.get("mode", "CONNECTING")),
        servers=servers,
        screen_server=server,
        selected_channel=channel_ref,
        composer=composer,
        message_view=str(view.get("text", "")),
        messages=messages,
        inline_errors=tuple(sorted(str(e) for e in (view.get("inline_errors") or {}).values())),
        editing=view.get("editing") is not None,
    )


class Observer:
    """Folds signals as they come and keeps the series of distinct observations."""

    def __init__(self, timings: Timings) -> None:
        self._view = ViewState(timings)
        self._queues: dict[str, int] = {}
        self._cursor = 0.0  # timed changes up to here are in the series
        self.series: list[Observation] = [self._snap(0.0)]

    def _snap(self, t: float) -> Observation:
        return to_observation(t, self._view.snapshot(t), dict(self._queues))

    def _push(self, t: float) -> None:
        obs = self._snap(t)
        last = self.series[-1]
        if _same(obs, last):
            return
        self.series.append(obs)

    def advance(self, now: float) -> None:
        """Take the timed changes (hides, loading timeouts) due up to `now`."""
        cursor = self._cursor
        while True:
            due = self._view.next_deadline(cursor)
            if due is None or due > now:
                break
            self._push(due)
            cursor = due
        self._cursor = max(cursor, now)

    def feed(self, signal: SignalAt) -> None:
        self.advance(signal.t)
        if signal.name == QUEUE_CHANGED and len(signal.args) >= 2:
            self._queues[str(signal.args[0])] = int(signal.args[1])
        self._view.apply(signal.t, Signal(signal.name, signal.args))
        self._push(signal.t)

    def since(self, t: float) -> list[Observation]:
        """The observation current at `t` and every later one."""
        start = 0
        for i, obs in enumerate(self.series):
            if obs.t <= t:
                start = i
        return self.series[start:]


def _same(a: Observation, b: Observation) -> bool:
    return {**a.__dict__, "t": 0} == {**b.__dict__, "t": 0}


def observe(
    signals: Iterable[SignalAt], timings: Timings, until: float | None = None
) -> list[Observation]:
    observer = Observer(timings)
    last_t = 0.0
    for s in signals:
        observer.feed(s)
        last_t = s.t
    observer.advance(until if until is not None else last_t)
    return observer.series
