"""Recorded instants a scenario can name (`EventRef`): signals, steps, client timers,
gateway frames the client sent, closes, and the instants a condition became true.

Both `wait_for.since` (while the run goes) and the timeline block's `between` (after
it) find their events here, on the timeline only, so a bound is judged on recorded
times and never on when the rig happened to look.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass

from scenarios.conditions import check
from scenarios.observation import Observation
from scenarios.records import RecordLike, effects, signals
from scenarios.schema import OPS, EventRef
from scenarios.verdict import ServerWiring, close_matches, close_series, conn_server


@dataclass(frozen=True)
class RunRecords:
    """What events are looked up in: the timeline so far and its folded observations."""

    records: Sequence[RecordLike]  # in time order
    observations: Sequence[Observation]
    wiring: dict[str, ServerWiring]


def event_times(ref: EventRef, run: RunRecords) -> list[float]:
    """Every time the event occurred, in order (nth is not applied)."""
    kind = ref.kind
    if kind == "signal":
        assert ref.signal is not None
        wanted = tuple(ref.signal.args or ())
        return [
            s.t
            for s in signals(run.records)
            if s.name == ref.signal.name and tuple(s.args[: len(wanted)]) == wanted
        ]
    if kind == "step":
        phase = ref.at or "start"
        return [
            r.t
            for r in run.records
            if r.src == "rig"
            and r.kind == "step"
            and r.data.get("phase") == phase
            and r.data.get("index") == (ref.step or 0) - 1
        ]
    if kind == "timer":
        return _timer_times(ref, run)
    if kind == "sent":
        return _sent_times(ref, run)
    if kind == "close":
        assert ref.close is not None
        servers = [ref.server] if ref.server else list(run.wiring)
        return sorted(
            s.t
            for server in servers
            for s in close_series(run.records, run.wiring, server)
            if close_matches(ref.close, s)
        )
    assert ref.holds is not None
    out: list[float] = []
    held_before = False
    for obs in run.observations:
        held = not check(ref.holds, obs)
        if held and not held_before:
            out.append(obs.t)
        held_before = held
    return out


def _timer_times(ref: EventRef, run: RunRecords) -> list[float]:
    pattern = ref.timer or ""
    timers = [
        e
        for e in effects(run.records, "SetTimer", "CancelTimer")
        if fnmatch.fnmatchcase(str(e.data.get("name", "")), pattern)
    ]
    if (ref.at or "set") == "set":
        return [e.t for e in timers if e.name == "SetTimer"]
    end = run.records[-1].t if run.records else 0.0
    fired = []
    for index, timer in enumerate(timers):
        if timer.name != "SetTimer":
            continue
        due = timer.t + float(timer.data.get("delay", 0.0))
        name = timer.data.get("name")
        # It fires when it comes due, unless cancelled or set again before that.
        replaced = any(e.data.get("name") == name and e.t < due for e in timers[index + 1 :])
        if not replaced and due <= end:
            fired.append(due)
    return sorted(fired)


def _sent_times(ref: EventRef, run: RunRecords) -> list[float]:
    owners = conn_server(run.records, run.wiring)
    op = OPS[ref.sent or ""]
    out = []
    for e in effects(run.records, "SendText"):
        if ref.server is not None and owners.get(int(e.data["conn"])) != ref.server:
            continue
        try:
            frame = json.loads(str(e.data["text"]))
        except ValueError:
            continue
        if isinstance(frame, dict) and frame.get("op") == op:
            out.append(e.t)
    return out


def pick(times: Sequence[float], nth: int) -> float | None:
    """The nth occurrence (1-based; negative from the end), or None."""
    index = nth - 1 if nth > 0 else nth
    if -len(times) <= index < len(times):
        return times[index]
    return None


def describe_event(ref: EventRef) -> str:
    """An event as the scenario wrote it, for reports."""
    data = ref.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    return json.dumps(data, ensure_ascii=False)
