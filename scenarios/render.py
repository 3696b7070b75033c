"""Plain-text rendering of a run's outcome: failures with the expected and the
observed timelines side by side, and a one-line step log."""

from __future__ import annotations

from itertools import zip_longest

from scenarios.runner import ScenarioResult
from scenarios.verdict import Failure

COLUMN = 58


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def side_by_side(failure: Failure, width: int = COLUMN) -> str:
    lines = [failure.title]
    if failure.expected or failure.observed:
        lines.append(f"  {'expected':<{width}} | observed")
        lines.append(f"  {'-' * width}-+-{'-' * width}")
        for left, right in zip_longest(failure.expected, failure.observed, fillvalue=""):
            # a long observed line wraps under its column
            right_parts = [right[i : i + width * 2] for i in range(0, len(right), width * 2)] or [
                ""
            ]
            lines.append(f"  {_cut(left, width):<{width}} | {right_parts[0]}")
            lines.extend(f"  {'':<{width}} | {part}" for part in right_parts[1:])
    if failure.note:
        lines.append(f"  {failure.note}")
    return "\n".join(lines)


def step_log(result: ScenarioResult) -> str:
    rows = []
    for s in result.steps:
        mark = "ok " if s.ok else "FAIL"
        rows.append(f"  {mark} t={s.start:7.3f}..{s.end:7.3f}  line {s.line:<4} {s.text}")
    return "\n".join(rows)


def failure_report(result: ScenarioResult) -> str:
    scenario = result.loaded.scenario
    head = (
        f"scenario {scenario.name!r} ({result.loaded.path}) failed "
        f"at timescale {result.timescale:g}, seed {result.seed}"
    )
    parts = [head]
    if result.error:
        parts.append(f"rig error: {result.error}")
    parts += [side_by_side(f) for f in result.failures]
    parts.append("steps:\n" + step_log(result))
    if result.delivery is not None:
        parts.append("delivery: " + result.delivery.summary())
    if result.timeline_path is not None:
        parts.append(f"timeline: {result.timeline_path}")
    return "\n\n".join(parts)
