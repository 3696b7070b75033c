"""The `inline_errors` and `editing` conditions the edit/delete-failure scenarios use,
over signals folded exactly as a run folds them (no sockets)."""

from __future__ import annotations

from client.core.timings import Timings
from scenarios.conditions import check
from scenarios.observation import Observation
from scenarios.observe import observe
from scenarios.records import SignalAt
from scenarios.schema import Condition

TIMINGS = Timings(scale=0.05)  # the 5 s hide is 0.25 s here


def story(*extra: tuple[float, str, tuple[object, ...]]) -> list[Observation]:
    base = [
        (0.0, "server_connecting", ("alpha",)),
        (0.1, "server_connected", ("alpha",)),
        (0.1, "channel_selected", ("alpha", "c1", "general")),
        (0.2, "server_synced", ("alpha",)),
    ]
    records = [SignalAt(t, name, args) for t, name, args in [*base, *extra]]
    return observe(records, TIMINGS, until=2.0)


def at(series: list[Observation], t: float) -> Observation:
    return [o for o in series if o.t <= t][-1]


def cond(**fields: object) -> Condition:
    return Condition.model_validate(fields)


def test_a_failed_edit_shows_inline_and_re_enters_edit_mode_until_it_hides() -> None:
    series = story((1.0, "message_edit_failed", ("alpha", "m1", "injected failure")))
    shown = at(series, 1.1)
    assert check(cond(inline_errors=["Edit failed: injected failure"], editing=True), shown) == []
    later = at(series, 1.3)  # past 1.0 + 0.25
    assert check(cond(inline_errors=[]), later) == []
    assert check(cond(editing=True), later) == []  # edit mode outlives the error text


def test_a_failed_delete_is_inline_without_edit_mode() -> None:
    series = story((1.0, "message_delete_failed", ("alpha", "m1", "Request timed out")))
    shown = at(series, 1.0)
    assert check(cond(inline_errors=["Delete failed: Request timed out"]), shown) == []
    assert check(cond(editing=False), shown) == []


def test_mismatches_are_worded_for_the_author() -> None:
    series = story()
    wrong = check(cond(inline_errors=["Edit failed: x"], editing=True), series[-1])
    assert wrong == [
        "inline errors: expected ['Edit failed: x'], seen []",
        "edit mode: expected True, seen False",
    ]


def test_a_successful_edit_leaves_edit_mode_and_clears_the_error() -> None:
    series = story(
        (1.0, "message_edit_failed", ("alpha", "m1", "boom")),
        (1.1, "message_edited", ("alpha", "m1")),
    )
    assert check(cond(inline_errors=[], editing=False), at(series, 1.1)) == []
