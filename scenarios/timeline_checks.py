"""The timeline block's run-wide checks: `between` (client time between two recorded
events), `never` and `throughout` (a condition at every recorded instant of a window).

Times on the timeline are real seconds; a bound is written in client time, so an
interval is judged as (t_to - t_from) / timescale.
"""

from __future__ import annotations

from collections.abc import Sequence

from scenarios.conditions import SignalSeenAt, check, condition_lines
from scenarios.events import RunRecords, describe_event, event_times, pick
from scenarios.observation import Observation
from scenarios.records import RecordLike, signals
from scenarios.schema import Between, TimelineExpectation, Window
from scenarios.verdict import Failure

# Float noise between a recorded interval and a bound written in seconds.
EPSILON = 1e-9


def between_failures(
    spec: Between, run: RunRecords, timescale: float, heartbeat: float
) -> list[Failure]:
    title = f"between {describe_event(spec.from_)} and {describe_event(spec.to)}"
    low = spec.at_least.resolve(heartbeat) if spec.at_least is not None else None
    high = spec.at_most.resolve(heartbeat) if spec.at_most is not None else None
    wanted = [
        f"{'at least ' + format(low, 'g') + 's' if low is not None else ''}"
        f"{' and ' if low is not None and high is not None else ''}"
        f"{'at most ' + format(high, 'g') + 's' if high is not None else ''} (client time)"
    ]
    starts = event_times(spec.from_, run)
    if not spec.each:
        first = pick(starts, spec.from_.nth)
        starts = [first] if first is not None else []
    if not starts:
        return [Failure(title, wanted, ["no `from` event was recorded"])]
    ends = event_times(spec.to, run)
    rows, bad = [], False
    for start in starts:
        end = pick([t for t in ends if t >= start], spec.to.nth)
        if end is None:
            rows.append(f"t={start:8.3f}  from, but no `to` after it")
            bad = True
            continue
        interval = (end - start) / timescale
        ok = (low is None or interval >= low - EPSILON) and (
            high is None or interval <= high + EPSILON
        )
        bad = bad or not ok
        rows.append(
            f"t={start:8.3f} -> {end:8.3f}  {interval:.3f}s (client time)"
            + ("" if ok else "  <- out of bounds")
        )
    return [Failure(title, wanted, rows)] if bad else []


def step_window(window: Window, records: Sequence[RecordLike]) -> tuple[float, float] | None:
    """[start of the first step, end of the last] in run seconds; None if it never began."""
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    for r in records:
        if r.src == "rig" and r.kind == "step":
            index = int(r.data.get("index", -1))
            (starts if r.data.get("phase") == "start" else ends).setdefault(index, r.t)
    last_t = max(ends.values(), default=records[-1].t if records else 0.0)
    if window.steps is None:
        return 0.0, last_t
    first, last = window.steps[0] - 1, window.steps[1] - 1
    if first not in starts:
        return None
    return starts[first], ends.get(last, last_t)


def _in_window(observations: Sequence[Observation], start: float, end: float) -> list[Observation]:
    current = [o for o in observations if o.t <= start][-1:]
    return current + [o for o in observations if start < o.t <= end]


def window_failures(
    which: str, window: Window, run: RunRecords, sigs: Sequence[SignalSeenAt]
) -> list[Failure]:
    bounds = step_window(window, run.records)
    where = (
        "the whole run" if window.steps is None else f"steps {window.steps[0]}-{window.steps[1]}"
    )
    title = f"{which} ({where})"
    wanted = condition_lines(window.condition)
    if bounds is None:
        return [Failure(title, wanted, ["the window's first step never ran"])]
    start, end = bounds
    window_signals = [s for s in sigs if start <= s.t <= end]
    observed = _in_window(run.observations, start, end)
    for obs in observed:
        wrong = check(window.condition, obs, window_signals)
        if which == "never" and not wrong:
            return [Failure(title, wanted, [f"t={obs.t:8.3f}  it held"])]
        if which == "throughout" and wrong:
            return [Failure(title, wanted, [f"t={obs.t:8.3f}  {w}" for w in wrong])]
    if not observed:
        return [Failure(title, wanted, ["nothing was observed in the window"])]
    return []


def judge_run(
    expect: TimelineExpectation, run: RunRecords, timescale: float, heartbeat: float
) -> list[Failure]:
    failures: list[Failure] = []
    for spec in expect.between:
        failures += between_failures(spec, run, timescale, heartbeat)
    sigs = [SignalSeenAt(s.t, s.name, s.args) for s in signals(run.records)]
    for window in expect.never:
        failures += window_failures("never", window, run, sigs)
    for window in expect.throughout:
        failures += window_failures("throughout", window, run, sigs)
    return failures
