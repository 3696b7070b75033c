"""Timeline assertions: sequences (exact and in order), closes, attempts, RESUME vs
IDENTIFY, and the scheduled backoff against the spec formula."""

from __future__ import annotations

from typing import Any

from scn_synthetic import GATEWAY, REST, Story, backoff_draw, backoff_timer, connected_story

from client.core.timings import Timings
from scenarios.observe import observe
from scenarios.records import signals
from scenarios.render import side_by_side
from scenarios.schema import ServerTimeline
from scenarios.verdict import ServerWiring, judge_server

WIRING = {"alpha": ServerWiring(GATEWAY, REST)}


def judge(story: Story, expect: dict[str, Any]) -> list:  # type: ignore[type-arg]
    records = story.timeline.records
    obs = observe(signals(records), Timings(scale=0.05), until=3.0)
    return judge_server("alpha", ServerTimeline.model_validate(expect), records, obs, WIRING, 0.05)


def test_the_right_story_passes() -> None:
    expect = {
        "status": ["connecting", "connected", "disconnected", "reconnecting", "connected"],
        "banners": {
            "in_order": [
                {"color": "yellow", "text": "Connection lost. Reconnecting..."},
                {"color": "yellow", "text": "Reconnecting... (attempt 1/10)"},
                {"color": "green", "text": "Reconnected!"},
                "hidden",
            ]
        },
        "dots": {"in_order": ["none", "yellow", "none"]},
        "closes": [{"by": "network", "code": 1006}],
        "attempts": 1,
        "reconnected_by": "resume",
        "backoff": True,
    }
    assert judge(connected_story(), expect) == []


def test_a_wrong_banner_fails_with_both_timelines_side_by_side() -> None:
    failures = judge(
        connected_story(),
        {
            "banners": {
                "in_order": [{"color": "yellow", "text": "Heartbeat timeout. Reconnecting..."}]
            }
        },
    )
    assert len(failures) == 1
    text = side_by_side(failures[0])
    header = text.splitlines()[1]
    assert "expected" in header and "| observed" in header
    row = next(line for line in text.splitlines() if "Heartbeat timeout" in line)
    assert "| t=" in row  # the observed column is filled on the same line
    assert "Connection lost. Reconnecting..." in text


def test_exact_status_sequence_rejects_a_missing_state() -> None:
    failures = judge(
        connected_story(), {"status": ["connecting", "connected", "reconnecting", "connected"]}
    )
    assert [f.title for f in failures] == ["status of alpha (exactly)"]
    assert (
        judge(
            connected_story(), {"status": {"in_order": ["connecting", "reconnecting", "connected"]}}
        )
        == []
    )


def test_counts_and_closes() -> None:
    failures = judge(
        connected_story(), {"attempts": {"min": 2}, "closes": [{"by": "client", "code": 4000}]}
    )
    assert sorted(f.title for f in failures) == [
        "closes on alpha (exactly)",
        "reconnect attempts of alpha",
    ]


def test_identify_is_told_apart_from_resume() -> None:
    failures = judge(connected_story(), {"reconnected_by": "identify"})
    assert failures and failures[0].observed[0].endswith("resume")


def test_backoff_off_the_formula_fails() -> None:
    story = connected_story()
    # attempt 1 with draw 0.5 at timescale 0.05 must be 0.05*(1+0.5) = 0.075 s
    story.effect(2.1, "RngDraw", **backoff_draw(2, 0.25))
    story.effect(2.1, "SetTimer", **backoff_timer(2.2, 0.1, 2))  # should be 0.1125
    failures = judge(story, {"backoff": True})
    assert [f.title for f in failures] == ["backoff of alpha (per spec)"]
    assert any("attempt 2: 0.112500s" in row for row in failures[0].expected)


def test_backoff_ranges_in_real_client_time() -> None:
    assert judge(connected_story(), {"backoff": {"delays": [[1.0, 2.0]]}}) == []
    failures = judge(connected_story(), {"backoff": {"delays": [[2.0, 3.0]]}})
    assert failures and "1.500s" in failures[0].observed[0]


def test_backoff_that_fires_early_fails() -> None:
    story = Story()
    story.signal(0.0, "server_reconnecting", "alpha", 1, 10)
    story.effect(0.0, "RngDraw", **backoff_draw(1, 0.0))
    story.effect(0.0, "SetTimer", **backoff_timer(0.05, 0.05))
    story.open_socket(0.01)  # 40 ms early
    failures = judge(story, {"backoff": True})
    assert failures and "opened early" in failures[0].observed[0]
