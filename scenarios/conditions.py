"""Checking a `Condition` against what was seen.

`check` looks at one observation (plus the signals emitted in a window, for the
`signal` check) and answers with the mismatches, worded for a scenario author;
an empty list means the condition holds. `first_hold` scans a series of
observations for the first instant it held, which is how `wait_for` counts a state
that lasted 0 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scenarios.observation import BannerSeen, Observation
from scenarios.schema import BannerState, Condition


@dataclass(frozen=True)
class SignalSeenAt:
    t: float
    name: str
    args: tuple[Any, ...]


def banner_matches(expected: BannerState, seen: BannerSeen) -> bool:
    if expected.color == "hidden":
        return seen.color is None
    if seen.color != expected.color:
        return False
    if expected.text is not None and seen.text != expected.text:
        return False
    return expected.button is None or seen.button == expected.button


def describe_banner(expected: BannerState) -> str:
    if expected.color == "hidden":
        return "hidden"
    text = f" {expected.text!r}" if expected.text is not None else ""
    button = f" [{expected.button}]" if expected.button else ""
    return f"{expected.color}{text}{button}"


def _status_holds(wanted: str, seen: str) -> bool:
    # `connected` in a condition means ready for the user (synced); `syncing` is the
    # sub-state in between. Observations spell syncing out.
    return wanted == seen


def check(
    condition: Condition, obs: Observation, signals: Sequence[SignalSeenAt] = ()
) -> list[str]:
    """The ways `obs` differs from `condition` ([] = it holds)."""
    wrong: list[str] = []
    for server, wanted in (condition.status or {}).items():
        seen = obs.server(server).status
        if not _status_holds(wanted, seen):
            wrong.append(f"status of {server}: expected {wanted}, seen {seen}")
    if condition.banner is not None:
        whose_name = condition.banner.server or obs.screen_server
        seen_banner = obs.server(whose_name).banner if whose_name else BannerSeen(None)
        if not banner_matches(condition.banner, seen_banner):
            whose = f" of {whose_name}" if whose_name else ""
            wrong.append(
                f"banner{whose}: expected {describe_banner(condition.banner)}, seen {seen_banner}"
            )
    if condition.composer is not None:
        wrong.extend(_check_composer(condition, obs))
    for server, wanted_dot in (condition.dot or {}).items():
        seen_dot = obs.server(server).dot or "none"
        if seen_dot != wanted_dot:
            wrong.append(f"dot of {server}: expected {wanted_dot}, seen {seen_dot}")
    if condition.message_view is not None and obs.message_view != condition.message_view.text:
        wrong.append(
            f"message view: expected {condition.message_view.text!r}, seen {obs.message_view!r}"
        )
    if condition.messages is not None:
        wrong.extend(_check_messages(condition, obs))
    for server, depth in (condition.queue or {}).items():
        if obs.server(server).queue != depth:
            wrong.append(f"queue of {server}: expected {depth}, seen {obs.server(server).queue}")
    if condition.inline_errors is not None and sorted(condition.inline_errors) != list(
        obs.inline_errors
    ):
        wrong.append(
            f"inline errors: expected {sorted(condition.inline_errors)}, "
            f"seen {list(obs.inline_errors)}"
        )
    if condition.editing is not None and obs.editing != condition.editing:
        wrong.append(f"edit mode: expected {condition.editing}, seen {obs.editing}")
    if condition.mode is not None and obs.mode != condition.mode:
        wrong.append(f"mode: expected {condition.mode}, seen {obs.mode}")
    if condition.signal is not None:
        wanted_args = tuple(condition.signal.args or ())
        if not any(
            s.name == condition.signal.name and tuple(s.args[: len(wanted_args)]) == wanted_args
            for s in signals
        ):
            args = f"{list(wanted_args)}" if wanted_args else ""
            wrong.append(f"signal {condition.signal.name}{args}: not emitted")
    return wrong


def _check_composer(condition: Condition, obs: Observation) -> list[str]:
    wanted = condition.composer
    assert wanted is not None
    seen = obs.composer
    if seen is None:
        return ["composer: expected one, but no channel is selected"]
    wrong = []
    if wanted.enabled is not None and seen.enabled != wanted.enabled:
        state = "enabled" if wanted.enabled else "disabled"
        wrong.append(
            f"composer: expected {state}, seen {'enabled' if seen.enabled else 'disabled'}"
        )
    if wanted.placeholder is not None and seen.placeholder != wanted.placeholder:
        wrong.append(
            f"composer placeholder: expected {wanted.placeholder!r}, seen {seen.placeholder!r}"
        )
    if wanted.text is not None and seen.text != wanted.text:
        wrong.append(f"composer text: expected {wanted.text!r}, seen {seen.text!r}")
    if wanted.label is not None and seen.label != wanted.label:
        wrong.append(f"composer label: expected {wanted.label!r}, seen {seen.label!r}")
    return wrong


def _check_messages(condition: Condition, obs: Observation) -> list[str]:
    wanted = condition.messages
    assert wanted is not None
    shown = obs.messages.get(wanted.channel, ())
    texts = [m.text for m in shown if not m.failed]
    failed = [m.text for m in shown if m.failed]
    wrong = [
        f"messages in {wanted.channel}: {t!r} not shown" for t in wanted.includes if t not in texts
    ]
    wrong += [f"messages in {wanted.channel}: {t!r} shown" for t in wanted.excludes if t in texts]
    wrong += [
        f"messages in {wanted.channel}: {t!r} not shown as failed"
        for t in wanted.failed
        if t not in failed
    ]
    counts = {**{t: 1 for t in wanted.exactly_once}, **wanted.counts}
    wrong += [
        f"messages in {wanted.channel}: {t!r} shown {texts.count(t)} times, expected {n}"
        for t, n in counts.items()
        if texts.count(t) != n
    ]
    return wrong


def first_hold(
    condition: Condition,
    observations: Iterable[Observation],
    signals: Sequence[SignalSeenAt] = (),
) -> tuple[Observation | None, list[str]]:
    """The first observation where the condition held, else (None, the last mismatches)."""
    last: list[str] = ["nothing was observed"]
    for obs in observations:
        # the signal check is about the whole window, not the instant
        last = check(condition, obs, signals)
        if not last:
            return obs, []
    return None, last


def condition_lines(condition: Condition) -> list[str]:
    lines = []
    for server, status in (condition.status or {}).items():
        lines.append(f"status {server}: {status}")
    if condition.banner is not None:
        whose = f" {condition.banner.server}" if condition.banner.server else ""
        lines.append(f"banner{whose}: {describe_banner(condition.banner)}")
    if condition.composer is not None:
        lines.append(f"composer: {condition.composer.model_dump(exclude_none=True)}")
    for server, dot in (condition.dot or {}).items():
        lines.append(f"dot {server}: {dot}")
    if condition.message_view is not None:
        lines.append(f"message view: {condition.message_view.text!r}")
    if condition.messages is not None:
        lines.append(f"messages: {condition.messages.model_dump(exclude_defaults=True)}")
    for server, depth in (condition.queue or {}).items():
        lines.append(f"queue {server}: {depth}")
    if condition.mode is not None:
        lines.append(f"mode: {condition.mode}")
    if condition.inline_errors is not None:
        lines.append(f"inline errors: {sorted(condition.inline_errors)}")
    if condition.editing is not None:
        lines.append(f"edit mode: {condition.editing}")
    if condition.signal is not None:
        lines.append(f"signal: {condition.signal.name} {condition.signal.args or ''}")
    return lines
