"""The timeline block's newer checks on synthetic timelines: `between` on every event
kind, `never` / `throughout` over windows of steps, message counts, one
`reconnected_by` entry per reconnection, and the server's side (its history).

Each check is shown passing on the right story and failing on one that breaks it,
so none can pass vacuously."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from scn_synthetic import GATEWAY, REST, Story, connected_story

from client.core.timings import Timings
from scenarios.conditions import check
from scenarios.events import RunRecords
from scenarios.observation import MessageSeen, Observation
from scenarios.observe import observe
from scenarios.records import signals
from scenarios.runner import server_args
from scenarios.schema import Condition, ServerSetup, ServerTimeline, TimelineExpectation
from scenarios.timeline_checks import judge_run
from scenarios.verdict import Failure, ServerWiring, judge_server

SCALE = 0.05
WIRING = {"alpha": ServerWiring(GATEWAY, REST)}


def stepped_story() -> Story:
    """connected_story with four steps: 1 connect (0-0.06), 2 idle (0.06-0.9),
    3 the drop and the resume (0.9-1.3), 4 after (1.3-2.0)."""
    story = connected_story()
    story.step(0.0, 0.06, 0, "connect")
    story.step(0.06, 0.9, 1)
    story.step(0.9, 1.3, 2)
    story.step(1.3, 2.0, 3)
    return story


def run_of(story: Story, ui_scale: float = SCALE) -> RunRecords:
    records = sorted(story.timeline.records, key=lambda r: r.t)
    return RunRecords(records, observe(signals(records), Timings(scale=ui_scale), 3.0), WIRING)


def judge(story: Story, timeline: dict[str, Any], ui_scale: float = SCALE) -> list[Failure]:
    expect = TimelineExpectation.model_validate(timeline)
    return judge_run(expect, run_of(story, ui_scale), SCALE, 45.0)


def judge_alpha(story: Story, expect: dict[str, Any]) -> list[Failure]:
    run = run_of(story)
    return judge_server(
        "alpha", ServerTimeline.model_validate(expect), run.records, run.observations, WIRING, SCALE
    )


# --------------------------------------------------------------------------- between


def test_between_two_signals_in_client_time() -> None:
    # server_disconnected t=1.0 -> server_reconnected t=1.1: 0.1 s real = 2 s client
    span = {"from": {"signal": "server_disconnected"}, "to": {"signal": "server_reconnected"}}
    assert judge(stepped_story(), {"between": [{**span, "at_most": "2.5s"}]}) == []
    too_slow = judge(stepped_story(), {"between": [{**span, "at_most": "1.5s"}]})
    assert len(too_slow) == 1 and "2.000s (client time)" in too_slow[0].observed[0]
    too_fast = judge(stepped_story(), {"between": [{**span, "at_least": "2.5s"}]})
    assert too_fast and "out of bounds" in too_fast[0].observed[0]


def test_green_banner_hides_after_three_seconds_and_a_late_hide_fails() -> None:
    between = {
        "between": [
            {
                "from": {"holds": {"banner": {"color": "green"}}},
                "to": {"holds": {"banner": "hidden"}},
                "at_least": "2.9s",
                "at_most": "3.1s",
            }
        ]
    }
    assert judge(stepped_story(), between) == []
    # A client whose green banner stays twice as long (its UI timer at twice the scale).
    late = judge(stepped_story(), between, ui_scale=2 * SCALE)
    assert late and "6.000s" in late[0].observed[0]


def test_timer_fired_to_the_frame_it_causes() -> None:
    span = {
        "from": {"timer": "alpha:gateway:backoff", "at": "fired"},
        "to": {"sent": "resume", "server": "alpha"},
        "at_most": "0.5s",
    }
    assert judge(stepped_story(), {"between": [span]}) == []  # 1.075 -> 1.09: 0.3 s
    # The same, but RESUME goes out 0.1 s (2 s client) after the timer came due.
    failures = judge(connected_story(resume_at=1.175), {"between": [span]})
    assert failures and "2.000s" in failures[0].observed[0]


def test_a_cancelled_timer_never_fires() -> None:
    story = stepped_story()
    story.effect(1.5, "SetTimer", name="alpha:gateway:hello-timeout", at=1.55, delay=0.05)
    story.effect(1.52, "CancelTimer", name="alpha:gateway:hello-timeout")
    span = {
        "from": {"timer": "alpha:gateway:hello-timeout", "at": "fired"},
        "to": {"signal": "message_sending"},
        "at_most": "60s",
    }
    failures = judge(story, {"between": [span]})
    assert failures and failures[0].observed == ["no `from` event was recorded"]


def test_step_and_close_events() -> None:
    from_step = {"from": {"step": 3}, "to": {"signal": "server_reconnected"}, "at_most": "4s"}
    assert judge(stepped_story(), {"between": [from_step]}) == []  # 0.9 -> 1.1: 4 s
    assert judge(stepped_story(), {"between": [{**from_step, "at_most": "3.9s"}]})
    from_close = {
        "from": {"close": {"by": "network", "code": 1006}, "server": "alpha"},
        "to": {"signal": "server_reconnected"},
        "at_most": "2s",
    }
    assert judge(stepped_story(), {"between": [from_close]}) == []
    wrong_code = {**from_close, "from": {"close": {"code": 4000}}}
    assert judge(stepped_story(), {"between": [wrong_code]})[0].observed == [
        "no `from` event was recorded"
    ]


def test_each_pairs_every_from_with_its_next_to() -> None:
    story = stepped_story()
    story.signal(2.1, "server_disconnected", "alpha", 1006, "")
    story.signal(2.5, "server_reconnected", "alpha")  # 8 s: the second outage is slow
    span = {
        "from": {"signal": "server_disconnected"},
        "to": {"signal": "server_reconnected"},
        "at_most": "3s",
    }
    assert judge(story, {"between": [span]}) == []  # only the first is judged
    failures = judge(story, {"between": [{**span, "each": True}]})
    assert failures and "8.000s" in failures[0].observed[1]
    last = {**span, "from": {"signal": "server_disconnected", "nth": -1}}
    assert judge(story, {"between": [last]})


# --------------------------------------------------------------------------- never / throughout


def test_never_over_the_run_and_over_a_window() -> None:
    assert judge(stepped_story(), {"never": [{"banner": {"color": "red"}}]}) == []
    lost = {"banner": {"color": "yellow", "text": "Connection lost. Reconnecting..."}}
    failures = judge(stepped_story(), {"never": [lost]})
    assert failures and failures[0].observed == ["t=   1.000  it held"]
    window = {"condition": lost, "steps": [1, 2]}
    assert judge(stepped_story(), {"never": [window]}) == []
    assert judge(stepped_story(), {"never": [{**window, "steps": [1, 3]}]})


def test_never_a_signal_in_a_window() -> None:
    never = {"condition": {"signal": {"name": "server_disconnected"}}, "steps": [1, 2]}
    assert judge(stepped_story(), {"never": [never]}) == []
    assert judge(stepped_story(), {"never": [{**never, "steps": [3, 4]}]})


def test_throughout_a_window_and_the_whole_run() -> None:
    calm = {"condition": {"dot": {"alpha": "none"}}, "steps": [2, 2]}
    assert judge(stepped_story(), {"throughout": [calm]}) == []
    failures = judge(stepped_story(), {"throughout": [{"dot": {"alpha": "none"}}]})
    assert failures and "dot of alpha: expected none, seen yellow" in failures[0].observed[0]
    enabled = {"condition": {"composer": {"enabled": True}}, "steps": [2, 2]}
    assert judge(stepped_story(), {"throughout": [enabled]}) == []
    # while the resumed session syncs (t=1.1-1.2) the composer is disabled
    syncing = judge(stepped_story(), {"throughout": [{**enabled, "steps": [2, 4]}]})
    assert syncing and syncing[0].observed[0].startswith("t=   1.100")


def test_window_forms_that_cannot_be_judged_are_rejected() -> None:
    with pytest.raises(ValidationError, match="a signal is an event"):
        TimelineExpectation.model_validate({"throughout": [{"signal": {"name": "x"}}]})
    with pytest.raises(ValidationError, match="read live from the client"):
        TimelineExpectation.model_validate(
            {"never": [{"messages": {"channel": "alpha/general", "includes": ["x"]}}]}
        )
    with pytest.raises(ValidationError, match="a signal is an event of its own"):
        TimelineExpectation.model_validate(
            {
                "between": [
                    {"from": {"holds": {"signal": {"name": "x"}}}, "to": {"step": 1}, "at_most": 1}
                ]
            }
        )
    with pytest.raises(ValidationError, match="exactly one of"):
        TimelineExpectation.model_validate(
            {"between": [{"from": {"step": 1, "signal": "x"}, "to": {"step": 1}, "at_most": 1}]}
        )
    with pytest.raises(ValidationError, match="the first comes later"):
        TimelineExpectation.model_validate(
            {"never": [{"condition": {"mode": "LIVE"}, "steps": [3, 1]}]}
        )


# --------------------------------------------------------------------------- counts


def shown(*texts: str) -> Observation:
    return Observation(
        t=0.0, messages={"alpha/general": tuple(MessageSeen(t, message_id=t) for t in texts)}
    )


def test_exactly_once_and_counts_catch_a_replayed_event_shown_twice() -> None:
    once = Condition.model_validate(
        {"messages": {"channel": "alpha/general", "exactly_once": ["a", "b"]}}
    )
    assert check(once, shown("a", "b")) == []
    assert check(once, shown("a", "b", "a")) == [
        "messages in alpha/general: 'a' shown 2 times, expected 1"
    ]
    assert check(once, shown("b")) == ["messages in alpha/general: 'a' shown 0 times, expected 1"]
    counts = Condition.model_validate(
        {"messages": {"channel": "alpha/general", "counts": {"a": 2, "gone": 0}}}
    )
    assert check(counts, shown("a", "a")) == []
    assert check(counts, shown("a", "gone")) != []


def test_reconnected_by_one_entry_per_reconnection() -> None:
    story = stepped_story()
    story.transport(2.1, "SocketClosed", conn=2, code=4009, reason="session timed out")
    conn = story.open_socket(2.2)
    story.send_frame(2.25, conn, {"op": 2, "data": {}})
    story.signal(2.3, "server_reconnected", "alpha")
    assert judge_alpha(story, {"reconnected_by": ["resume", "identify"]}) == []
    wrong = judge_alpha(story, {"reconnected_by": ["resume"]})
    assert wrong and wrong[0].observed == ["t=   1.100  resume", "t=   2.300  identify"]
    # the short form: every reconnection (the last alone no longer decides)
    assert judge_alpha(story, {"reconnected_by": "resume"})
    assert judge_alpha(connected_story(), {"reconnected_by": "resume"}) == []
    assert judge_alpha(Story(), {"reconnected_by": "resume"})  # none at all fails too


# --------------------------------------------------------------------------- the server's side


def server_story(heartbeat_seq: int = 2, resume_seq: int = 2) -> Story:
    """What a fake server's history says: IDENTIFY, READY (seq 1), one event (seq 2), a
    heartbeat, a client close, a RESUME, two logins and one message page."""
    s = Story()
    for i, (method, path) in enumerate(
        [("POST", "/auth/login"), ("POST", "/auth/login"), ("GET", "/channels/7/messages")]
    ):
        s.server(0.01 * i, "http", "request", req=i, method=method, path="/api/v1" + path)
    s.server(0.1, "conn", "open", conn=1, peer="127.0.0.1")
    intents = ["spaces", "channels", "messages"]
    s.server(0.11, "frame", "in", conn=1, session_id=None, user=None,
             frame={"op": 2, "data": {"token": "[redacted]", "intents": intents}})  # fmt: skip
    s.server(0.11, "session", "created", session_id="s1", user="alice", conn=1, seq=1, reason="")
    s.server(0.12, "frame", "out", conn=1, session_id="s1", user="alice",
             frame={"op": 0, "type": "ready", "data": {}, "seq": 1})  # fmt: skip
    s.server(0.2, "frame", "out", conn=1, session_id="s1", user="alice",
             frame={"op": 0, "type": "message.create", "data": {}, "seq": 2})  # fmt: skip
    s.server(0.25, "frame", "out", conn=1, session_id="s1", user="alice", frame={"op": 4})
    s.server(0.3, "frame", "in", conn=1, session_id="s1", user="alice",
             frame={"op": 1, "data": heartbeat_seq})  # fmt: skip
    s.server(0.4, "conn", "close", conn=1, code=1000, reason="", by="client",
             session_id="s1", user="alice", parked=False)  # fmt: skip
    s.server(0.5, "frame", "in", conn=2, session_id=None, user=None,
             frame={"op": 3, "data": {"session_id": "s1", "seq": resume_seq}})  # fmt: skip
    s.server(0.5, "session", "resumed", session_id="s1", user="alice", conn=2, seq=2, reason="")
    return s


SERVER_SIDE: dict[str, Any] = {
    "closes": [{"by": "client", "code": 1000}],
    "requests": {"POST /auth/login": 2, "GET /channels/*/messages": {"min": 1}},
    "received": {
        "identify": {"count": 1, "data": {"intents": ["spaces", "channels", "messages"]}},
        "heartbeat": {"count": {"min": 1}, "seq": "latest"},
        "resume": {"count": 1, "seq": "latest"},
    },
    "handshakes": ["identify", "resume"],
    "sessions": {"created": 1, "resumed": 1, "ended": 0},
}


def test_the_servers_side_passes_on_the_right_history() -> None:
    assert judge_alpha(server_story(), {"server": SERVER_SIDE}) == []


@pytest.mark.parametrize(
    ("change", "title"),
    [
        ({"closes": [{"by": "lost"}]}, "closes alpha saw (exactly)"),
        ({"requests": {"POST /auth/login": 1}}, "requests 'POST /auth/login' received by alpha"),
        ({"received": {"identify": {"data": {"intents": ["typing"]}}}}, "identify frames"),
        ({"received": {"heartbeat": 2}}, "heartbeat frames received by alpha"),
        ({"handshakes": ["identify"]}, "handshakes alpha received (exactly)"),
        ({"sessions": {"ended": 1}}, "sessions ended on alpha"),
    ],
)
def test_each_server_side_check_fails_when_the_history_disagrees(
    change: dict[str, Any], title: str
) -> None:
    failures = judge_alpha(server_story(), {"server": change})
    assert len(failures) == 1 and failures[0].title.startswith(title), failures


def test_a_heartbeat_or_resume_with_a_stale_seq_fails() -> None:
    stale_beat = judge_alpha(server_story(heartbeat_seq=1), {"server": SERVER_SIDE})
    assert [f.title for f in stale_beat] == ["heartbeat frames received by alpha"]
    assert "seq 1, expected 2" in stale_beat[0].observed[0]
    stale_resume = judge_alpha(server_story(resume_seq=1), {"server": SERVER_SIDE})
    assert [f.title for f in stale_resume] == ["resume frames received by alpha"]
    ahead = judge_alpha(server_story(heartbeat_seq=3), {"server": SERVER_SIDE})
    assert ahead and "seq 3, expected 2" in ahead[0].observed[0]


def test_latest_allows_an_event_in_flight_after_the_last_ack() -> None:
    story = server_story(heartbeat_seq=2)
    # seq 3 left the server just before the beat arrived: the client may not have it yet
    story.server(0.29, "frame", "out", conn=1, session_id="s1", user="alice",
                 frame={"op": 0, "type": "typing.start", "data": {}, "seq": 3})  # fmt: skip
    expect = {"server": {"received": {"heartbeat": {"seq": "latest"}}}}
    assert judge_alpha(story, expect) == []
    assert judge_alpha(server_story(heartbeat_seq=1), expect)


def test_behaviours_go_to_the_fake_servers_command_line() -> None:
    setup = ServerSetup.model_validate(
        {"heartbeat": "10s", "behaviours": ["dedupe_nonce", "takeover_resume"]}
    )
    assert server_args(setup) == [
        "--heartbeat-interval", "10000",
        "--behaviour", "dedupe_nonce",
        "--behaviour", "takeover_resume",
    ]  # fmt: skip
    assert server_args(ServerSetup.model_validate({})) == []
    with pytest.raises(ValidationError):
        ServerSetup.model_validate({"behaviours": ["be_nice"]})
