"""The regression switches (client-behaviour.md s.9).

Each test runs one contract check twice: with the switch off it must pass, and
with the switch on it must raise AssertionError, so the check provably catches
the original client's behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from core_helpers import connect, is_synced, live_conn, lose_first_answer, make, open_times

from client.core import signals as sig
from client.core.actions import ConnectServer, ReconnectServer, SendMessage, SetBug
from client.core.bugs import ENV_VAR, Bug, bugs_from_env, parse_bugs
from client.core.client import ClientCore
from client.core.io import HttpRequest, Log, Signal
from client.core.timings import Timings
from client.virtual import HANG, HttpAnswer

Check = Callable[[Iterable[int]], None]


def run_pair(check: Check, bug: Bug, enabled: bool) -> None:
    if enabled:
        with pytest.raises(AssertionError):
            check({int(bug)})
    else:
        check(set())


ON_OFF = pytest.mark.parametrize("enabled", [False, True], ids=["off", "on"])


# ----------------------------------------------------------------------------- checks


def check_ten_attempts_before_escalation(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    mark = len(r.log)
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: bool(r.signals("alpha", [sig.SERVER_REAUTHENTICATING])), within=600)
    assert len(open_times(r, mark)) == 10


def check_reauth_guard_survives_socket_open(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs, latency=0.01)
    connect(core, r)
    peer = peers["alpha"]
    peer.close_on_open = (4003, "not authenticated")  # accepts, then closes
    r.close(live_conn(peer), 4003, "not authenticated")
    r.run_until(lambda: core.status("alpha") == "error", within=30)
    assert peer.logins == 2  # one re-auth, not a loop


def check_reauth_logs_in_again(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    r.close(live_conn(peer), 4004, "")
    r.run_until(lambda: is_synced(core), within=60)
    assert peer.logins == 2
    identify = [f for f in r.sent_frames() if f["op"] == 2]
    assert identify[-1]["data"]["token"] == "Bearer tok2"


def check_flush_failure_keeps_message(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.do(SendMessage("alpha", "general", "keep me"))
    peer.rules.append(lambda req: HttpAnswer(503, None) if req.method == "POST" else None)
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core), within=600)
    r.advance(1)
    assert [q.content for q in core.queue("alpha")] == ["keep me"]


def check_queue_cap_refuses(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    for i in range(21):
        r.do(SendMessage("alpha", "general", f"m{i}"))
    queued = [s.args[2] for s in r.signals("alpha", [sig.MESSAGE_QUEUED])]
    refused = [s.args[2] for s in r.signals("alpha", [sig.MESSAGE_SEND_REFUSED])]
    assert "m20" not in queued
    assert refused == ["m20"]


def check_manual_reconnect_flushes(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.do(SendMessage("alpha", "general", "while down"))
    r.run_until(lambda: core.status("alpha") == "error", within=600)
    assert core.last_failure("alpha") == "Reconnection failed"
    peer.gateway_refuse = False
    r.do(ReconnectServer("alpha"))
    r.run_until(lambda: is_synced(core), within=60)
    r.advance(1)
    assert core.queue("alpha") == []
    assert [m["content"] for m in peer.messages["201"]] == ["while down"]


def check_connecting_until_ready(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    peer = peers["alpha"]
    peer.send_hello = False  # the socket opens, READY never comes
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: bool(r.open_sockets) and "alpha:gateway:hello-timeout" in _timers(r))
    assert core.status("alpha") == "connecting"
    assert not r.signals("alpha", [sig.SERVER_CONNECTED])


def _timers(r: object) -> set[str]:
    from client.core.io import CancelTimer, SetTimer
    from client.virtual import VirtualRunner

    assert isinstance(r, VirtualRunner)
    live: set[str] = set()
    for e in r.effects():
        if isinstance(e, SetTimer):
            live.add(e.name)
        elif isinstance(e, CancelTimer):
            live.discard(e.name)
    return live


def check_rest_times_out(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peers["alpha"].rules.append(lambda req: HANG if req.method == "POST" else None)
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=120)
    assert r.signals("alpha", [sig.MESSAGE_SEND_FAILED])[0].args[3] == "Request timed out"


def check_429_three_retries(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peers["alpha"].rules.append(lambda req: HttpAnswer(429, None) if req.method == "POST" else None)
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=120)
    posts = [
        e
        for e in r.effects(HttpRequest)
        if isinstance(e, HttpRequest) and e.url.endswith("/messages")
    ]
    assert len(posts) == 4


def check_refused_open_keeps_retrying(bugs: Iterable[int]) -> None:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    mark = len(r.log)
    r.close(live_conn(peer), 1006, "")
    r.advance(20)  # attempts 1-3 refused
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core), within=600)
    assert len(open_times(r, mark)) >= 4


def check_heartbeat_timeout_and_op6_resume(bugs: Iterable[int]) -> None:
    """Against a peer with the reference server's rules (a client close frame ends
    the session), both closes must be followed by a RESUME that succeeds."""
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.ack_heartbeats = False
    r.run_until(lambda: core.status("alpha") != "connected", within=200)
    peer.ack_heartbeats = True
    peer.store_message("201", "sent during the gap")  # only a replay or refetch shows it
    r.run_until(lambda: is_synced(core), within=60)
    r.frame(live_conn(peer), {"op": 6})
    r.run_until(lambda: is_synced(core), within=60)
    handshake = [f["op"] for f in r.sent_frames() if f["op"] in (2, 3)]
    assert handshake == [2, 3, 3], handshake  # never a new IDENTIFY
    assert not peer.ended_sessions
    assert [m["content"] for m in core.messages("alpha", "201")] == ["sent during the gap"]


def check_restored_resend_stored_once(bugs: Iterable[int]) -> None:
    """The server stored the first POST but its answer (and echo) were lost; the
    user sends the restored text again: the server must still hold one copy."""
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.rules.append(lose_first_answer(peer, store=True, echo=False))
    r.do(SendMessage("alpha", "general", "once"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=120)
    r.do(SendMessage("alpha", "general", "once"))  # the restored text, unchanged
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SENT])), within=120)
    assert [m["content"] for m in peer.messages["201"]] == ["once"]


# ----------------------------------------------------------------------------- the pairs


@ON_OFF
def test_bug_01_only_nine_retries(enabled: bool) -> None:
    run_pair(check_ten_attempts_before_escalation, Bug.ONLY_NINE_RETRIES, enabled)


@ON_OFF
def test_bug_02_reauth_guard_cleared_on_open(enabled: bool) -> None:
    run_pair(check_reauth_guard_survives_socket_open, Bug.REAUTH_GUARD_CLEARED_ON_OPEN, enabled)


@ON_OFF
def test_bug_03_reauth_reuses_token(enabled: bool) -> None:
    run_pair(check_reauth_logs_in_again, Bug.REAUTH_REUSES_TOKEN, enabled)


@ON_OFF
def test_bug_04_flush_failure_loses_message(enabled: bool) -> None:
    run_pair(check_flush_failure_keeps_message, Bug.FLUSH_FAILURE_LOSES_MESSAGE, enabled)


@ON_OFF
def test_bug_05_queue_cap_bypass(enabled: bool) -> None:
    run_pair(check_queue_cap_refuses, Bug.QUEUE_CAP_BYPASS, enabled)


@ON_OFF
def test_bug_06_manual_reconnect_never_flushes(enabled: bool) -> None:
    run_pair(check_manual_reconnect_flushes, Bug.MANUAL_RECONNECT_NEVER_FLUSHES, enabled)


@ON_OFF
def test_bug_07_connected_at_socket_open(enabled: bool) -> None:
    run_pair(check_connecting_until_ready, Bug.CONNECTED_AT_SOCKET_OPEN, enabled)


@ON_OFF
def test_bug_08_rest_has_no_timeout(enabled: bool) -> None:
    run_pair(check_rest_times_out, Bug.REST_HAS_NO_TIMEOUT, enabled)


@ON_OFF
def test_bug_09_rate_limit_two_retries(enabled: bool) -> None:
    run_pair(check_429_three_retries, Bug.RATE_LIMIT_TWO_RETRIES, enabled)


@ON_OFF
def test_bug_10_refused_open_stops_retries(enabled: bool) -> None:
    run_pair(check_refused_open_keeps_retrying, Bug.REFUSED_OPEN_STOPS_RETRIES, enabled)


@ON_OFF
def test_bug_11_close_frame_before_resume(enabled: bool) -> None:
    run_pair(check_heartbeat_timeout_and_op6_resume, Bug.CLOSE_FRAME_BEFORE_RESUME, enabled)


@ON_OFF
def test_bug_12_resend_without_check(enabled: bool) -> None:
    run_pair(check_restored_resend_stored_once, Bug.RESEND_WITHOUT_CHECK, enabled)


# ----------------------------------------------------------------------------- switch plumbing


def test_parse_bugs() -> None:
    assert parse_bugs("") == frozenset()
    assert parse_bugs("1, 4,8") == {Bug(1), Bug(4), Bug(8)}
    assert parse_bugs("all") == frozenset(Bug)
    with pytest.raises(ValueError, match=r"ACCORD_RIG_BUGS: '13' is not a bug number"):
        parse_bugs("1,13")
    assert parse_bugs("11,12") == {Bug.CLOSE_FRAME_BEFORE_RESUME, Bug.RESEND_WITHOUT_CHECK}
    with pytest.raises(ValueError, match="'x'"):
        parse_bugs("x")


def test_bugs_from_a_passed_environment_and_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bugs_from_env({ENV_VAR: "2,3"}) == {Bug(2), Bug(3)}
    assert ClientCore(environ={ENV_VAR: "5"}).bugs == {Bug(5)}
    assert ClientCore(bugs=[1], environ={ENV_VAR: "5"}).bugs == {Bug(1), Bug(5)}  # both count
    monkeypatch.setenv(ENV_VAR, "5")
    assert ClientCore(bugs=[1]).bugs == {Bug(1)}  # the process environment is never read
    with pytest.raises(ValueError, match=r"13.*1\.\.12"):
        ClientCore(bugs=[13])
    with pytest.raises(ValueError, match="ACCORD_RIG_BUGS"):
        ClientCore(environ={ENV_VAR: "seven"})


def test_the_rig_passes_the_environment_switches_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from client.timeline import Timeline
    from scenarios.harness import ClientHarness

    monkeypatch.setenv(ENV_VAR, "4,8")
    harness = ClientHarness(Timeline(origin=0.0), Timings(), seed=1, bugs=[2], ca_files=[])
    assert harness.core.bugs == {Bug(2), Bug(4), Bug(8)}


def test_enabled_bugs_are_announced_and_warned() -> None:
    core = ClientCore(bugs=[4, 8], environ={})
    effects = core.take_effects()
    assert [e for e in effects if isinstance(e, Signal)] == [
        Signal(sig.BUG_ENABLED, ("*", 4)),
        Signal(sig.BUG_ENABLED, ("*", 8)),
    ]
    warnings = [e.message for e in effects if isinstance(e, Log) and e.level == "warning"]
    assert len(warnings) == 2 and "switch 4" in warnings[0] and "switch 8" in warnings[1]
    core.handle(0.0, SetBug(1))
    assert Signal(sig.BUG_ENABLED, ("*", 1)) in core.take_effects()
    assert Bug.ONLY_NINE_RETRIES in core.bugs
    core.handle(0.0, SetBug(1, enabled=False))
    assert Bug.ONLY_NINE_RETRIES not in core.bugs
    assert ClientCore(bugs=(), environ={}).take_effects() == []
