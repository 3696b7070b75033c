"""Conditions over folded observations; `wait_for` counts a state that lasted 0 ms."""

from __future__ import annotations

from scn_synthetic import connected_story

from client.core.timings import Timings
from scenarios.conditions import SignalSeenAt, check, first_hold
from scenarios.observe import observe
from scenarios.records import signals
from scenarios.schema import Condition

TIMINGS = Timings(scale=0.05)


def series() -> list:  # type: ignore[type-arg]
    return observe(signals(connected_story().timeline.records), TIMINGS, until=3.0)


def test_a_zero_length_state_still_counts_for_wait_for() -> None:
    # "Connection lost" is replaced by attempt 1 at the same instant (t=1.0).
    condition = Condition.model_validate(
        {"banner": {"color": "yellow", "text": "Connection lost. Reconnecting..."}}
    )
    held, _ = first_hold(condition, series())
    assert held is not None and held.t == 1.0


def test_expect_reads_only_the_state_now() -> None:
    now = series()[-1]
    assert check(Condition.model_validate({"status": {"alpha": "connected"}}), now) == []
    wrong = check(Condition.model_validate({"status": {"alpha": "reconnecting"}}), now)
    assert wrong == ["status of alpha: expected reconnecting, seen connected"]


def test_green_banner_hides_after_three_scaled_seconds() -> None:
    obs = series()
    green = [o for o in obs if o.server("alpha").banner.color == "green"]
    assert green and green[0].t == 1.2
    hidden_after = [o for o in obs if o.t > 1.2 and o.server("alpha").banner.color is None]
    assert hidden_after[0].t == 1.2 + 3 * 0.05


def test_composer_and_dot_follow_the_status() -> None:
    outage = next(
        o
        for o in series()
        if o.servers.get("alpha") and o.servers["alpha"].status == "reconnecting"
    )
    condition = Condition.model_validate(
        {
            "composer": {
                "enabled": True,
                "placeholder": "Messages will be queued and sent when reconnected",
            },
            "dot": {"alpha": "yellow"},
        }
    )
    assert check(condition, outage) == []
    assert check(Condition.model_validate({"dot": {"alpha": "none"}}), outage) == [
        "dot of alpha: expected none, seen yellow"
    ]


def test_a_condition_that_never_held_reports_what_was_seen() -> None:
    condition = Condition.model_validate({"banner": {"color": "red"}})
    held, last = first_hold(condition, series())
    assert held is None
    assert last and "banner of alpha: expected red" in last[0]


def test_signal_condition_matches_leading_arguments() -> None:
    window = [SignalSeenAt(1.0, "server_reconnecting", ("alpha", 1, 10))]
    now = series()[-1]
    ok = Condition.model_validate({"signal": {"name": "server_reconnecting", "args": ["alpha", 1]}})
    wrong = Condition.model_validate(
        {"signal": {"name": "server_reconnecting", "args": ["alpha", 2]}}
    )
    assert check(ok, now, window) == []
    assert check(wrong, now, window) == ["signal server_reconnecting['alpha', 2]: not emitted"]
