"""The gateway state machine (client-behaviour.md s.1-s.2, protocol s.2-s.3)."""

from __future__ import annotations

import pytest
from core_helpers import (
    SEED,
    config_for,
    connect,
    is_synced,
    live_conn,
    make,
    open_times,
    signals_since,
)

from client.core import signals as sig
from client.core.actions import ConfigureServer, ConnectServer
from client.core.client import ClientCore
from client.core.io import (
    AbortSocket,
    CloseSocket,
    Log,
    OpenSocket,
    RngDraw,
    SendText,
    SocketClosed,
    SocketText,
)
from client.core.protocol import close_text
from client.core.timings import Timings
from client.virtual import HANG, FakePeer, VirtualRunner

# ----------------------------------------------------------------------------- close texts

CLOSE_TABLE = [
    (1000, "", "Server closed connection", False),
    (1001, "", "Server going away", False),
    (4000, "heartbeat timeout", "Heartbeat timeout", False),
    (4000, "server requested reconnect", "Server requested reconnect", False),
    (4000, "invalid session", "Session invalidated", False),
    (4000, "something odd", "something odd", False),
    (4000, "", "Connection lost", False),
    (4001, "unknown opcode", "Connection lost", False),
    (4002, "decode error", "Connection lost", False),
    (4003, "not authenticated", "Authentication failed", True),
    (4004, "authentication failed", "Session expired", True),
    (4005, "already authenticated", "Connection lost", False),
    (4007, "invalid seq", "Connection lost", False),
    (4008, "rate limited", "Connection lost", False),
    (4009, "session timed out", "Connection lost", False),
    (4012, "invalid version", "Invalid gateway intent", True),
    (4013, "invalid intent", "Disallowed gateway intent", True),
    (4014, "disallowed intent", "Unauthorized", True),
    (1006, "", "Connection lost", False),
    (1009, "too big", "Connection lost", False),
    (4999, "custom words", "custom words", False),
    (4999, "", "Connection lost", False),
]


@pytest.mark.parametrize(("code", "reason", "text", "fatal"), CLOSE_TABLE)
def test_close_text(code: int, reason: str, text: str, fatal: bool) -> None:
    assert close_text(code, reason) == text


@pytest.mark.parametrize(("code", "reason", "text", "fatal"), CLOSE_TABLE)
def test_close_code_reaction_while_connected(
    code: int, reason: str, text: str, fatal: bool
) -> None:
    core, r, peers = make()
    connect(core, r)
    mark = len(r.log)
    r.close(live_conn(peers["alpha"]), code, reason)
    r.settle()
    seq = signals_since(r, mark)
    assert seq[0] == (sig.SERVER_DISCONNECTED, code, reason)
    if fatal:
        assert seq[1] == (sig.SERVER_REAUTHENTICATING,)
    else:
        assert seq[1] == (sig.SERVER_RECONNECTING, 1, 10)
    r.run_until(lambda: is_synced(core), within=120)


def test_first_connect_failure_text_uses_close_table() -> None:
    _core, r, peers = make()
    peers["alpha"].close_on_open = (4013, "invalid intent")
    r.do(ConnectServer("alpha"))
    r.settle()
    assert r.signals("alpha", [sig.SERVER_CONNECTION_FAILED])[0].args[1] == (
        "Disallowed gateway intent"
    )


# ----------------------------------------------------------------------------- heartbeat


def _beats(r: VirtualRunner, conn: int) -> list[float]:
    """Times the client sent a heartbeat on `conn`."""
    return [
        t
        for t, e in r.log
        if isinstance(e, SendText) and e.conn == conn and e.text.startswith('{"op":1,')
    ]


def test_first_beat_one_full_interval_after_hello_then_every_interval() -> None:
    core, r, peers = make()
    connect(core, r)
    conn = live_conn(peers["alpha"])
    r.advance(200)
    assert _beats(r, conn) == [45.0, 90.0, 135.0, 180.0]
    beats = [f for f in r.sent_frames(conn) if f["op"] == 1]
    assert beats[0] == {"op": 1, "data": 1}  # READY's seq


def test_heartbeat_data_is_zero_before_any_seq() -> None:
    _core, r, peers = make()
    peers["alpha"].answer_handshake = False  # no READY, so no seq yet
    peers["alpha"].heartbeat_ms = 2000
    r.do(ConnectServer("alpha"))
    r.advance(2.5)
    assert [f for f in r.sent_frames() if f["op"] == 1] == [{"op": 1, "data": 0}]


def test_hello_interval_used_as_received_and_default_is_scaled() -> None:
    core, r, peers = make(scale=0.1)
    peers["alpha"].heartbeat_ms = 1000  # the server already scaled it
    connect(core, r)
    conn = live_conn(peers["alpha"])
    r.advance(2.5)
    assert _beats(r, conn) == pytest.approx([1.0, 2.0])

    core, r, peers = make(scale=0.1)
    peers["alpha"].heartbeat_ms = None  # HELLO without an interval: 45 s scaled
    connect(core, r)
    conn = live_conn(peers["alpha"])
    r.advance(10)
    assert _beats(r, conn) == pytest.approx([4.5, 9.0])


def test_missed_ack_closes_4000_heartbeat_timeout_on_the_next_beat() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    conn = live_conn(peer)
    peer.ack_heartbeats = False
    mark = len(r.log)
    r.run_until(lambda: core.status("alpha") != "connected", within=200)
    assert r.now == 90.0
    close = [e for _, e in r.log[mark:] if isinstance(e, CloseSocket)]
    # no close frame: the transport is dropped so the session stays resumable (s.2)
    assert close == [CloseSocket(conn, 4000, "heartbeat timeout", 1.0, frame=False)]
    assert signals_since(r, mark)[:2] == [
        (sig.SERVER_DISCONNECTED, 4000, "heartbeat timeout"),
        (sig.SERVER_RECONNECTING, 1, 10),
    ]
    logs = [e.message for _, e in r.log[mark:] if isinstance(e, Log)]
    assert "Heartbeat ACK not received, reconnecting" in logs


def test_server_op1_with_ack_outstanding_closes_at_once() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    conn = live_conn(peer)
    peer.ack_heartbeats = False
    r.advance(50)  # beat at 45 unanswered
    mark = len(r.log)
    r.frame(conn, {"op": 1})
    assert core.status("alpha") == "reconnecting"  # disconnected, then attempt 1 announced
    assert [e for _, e in r.log[mark:] if isinstance(e, CloseSocket)] == [
        CloseSocket(conn, 4000, "heartbeat timeout", 1.0, frame=False)
    ]


def test_server_op1_with_ack_received_beats_now_and_restarts_timer() -> None:
    core, r, peers = make()
    connect(core, r)
    conn = live_conn(peers["alpha"])
    r.advance(50)
    r.frame(conn, {"op": 1})
    r.settle()
    r.advance(100)
    assert _beats(r, conn) == [45.0, 50.0, 95.0, 140.0]
    assert core.status("alpha") == "connected"


def test_client_close_counts_at_once_and_late_events_are_ignored() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    conn = live_conn(peer)
    peer.ack_heartbeats = False
    peer.gateway_refuse = True
    r.run_until(
        lambda: core.status("alpha") == "disconnected" or core.status("alpha") == "reconnecting"
    )
    mark = len(r.log)
    r.do(
        SocketText(
            conn, '{"op":0,"type":"message.create","seq":9,"data":{"id":"1","channel_id":"201"}}'
        )
    )
    r.do(SocketClosed(conn, 1000, "late"))
    assert signals_since(r, mark) == []
    assert core.messages("alpha", "201") == []


# ----------------------------------------------------------------------------- timeouts


def test_open_timeout_aborts_and_counts_as_failed_attempt() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_accept = False  # opens hang
    mark = len(r.log)
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: len(open_times(r, mark)) == 2, within=100)
    opens = open_times(r, mark)
    aborts = [(t, e) for t, e in r.log[mark:] if isinstance(e, AbortSocket)]
    assert aborts and aborts[0][0] == opens[0] + 10.0
    assert signals_since(r, mark)[:3] == [
        (sig.SERVER_DISCONNECTED, 1006, ""),
        (sig.SERVER_RECONNECTING, 1, 10),
        (sig.SERVER_RECONNECTING, 2, 10),
    ]


def test_first_connect_open_timeout() -> None:
    core, r, peers = make(scale=0.5)
    peers["alpha"].gateway_accept = False
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    assert r.now == 5.0
    assert core.last_failure("alpha") == "Connection timed out"


def test_hello_timeout_closes_4000() -> None:
    core, r, peers = make()
    peers["alpha"].send_hello = False
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    assert r.now == 10.0
    (close,) = [e for e in r.effects(CloseSocket)]
    assert isinstance(close, CloseSocket) and (close.code, close.reason) == (4000, "hello timeout")


def test_ready_timeout_closes_4000() -> None:
    core, r, peers = make()
    peers["alpha"].answer_handshake = False
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    assert r.now == 10.0
    (close,) = [e for e in r.effects(CloseSocket)]
    assert isinstance(close, CloseSocket) and (close.code, close.reason) == (4000, "ready timeout")


# ------------------------------------------------------------------ RECONNECT, INVALID_SESSION


def test_server_reconnect_op6_closes_and_resumes() -> None:
    core, r, peers = make()
    connect(core, r)
    conn = live_conn(peers["alpha"])
    mark = len(r.log)
    r.frame(conn, {"op": 6})
    assert [e for _, e in r.log[mark:] if isinstance(e, CloseSocket)] == [
        CloseSocket(conn, 4000, "server requested reconnect", 1.0, frame=False)
    ]
    r.run_until(lambda: is_synced(core), within=60)
    assert signals_since(r, mark) == [
        (sig.SERVER_DISCONNECTED, 4000, "server requested reconnect"),
        (sig.SERVER_RECONNECTING, 1, 10),
        (sig.SERVER_RECONNECTED,),
        (sig.SERVER_SYNCED,),
    ]
    assert r.sent_frames()[-1]["op"] in (1, 3) and any(f["op"] == 3 for f in r.sent_frames())


@pytest.mark.parametrize(
    ("data", "resumable"),
    [(True, True), (False, False), ({"resumable": True}, True), ({"resumable": False}, False)],
)
def test_invalid_session_both_forms(data: object, resumable: bool) -> None:
    core, r, peers = make()
    connect(core, r)
    conn = live_conn(peers["alpha"])
    mark = len(r.log)
    r.frame(conn, {"op": 7, "data": data})
    assert [e for _, e in r.log[mark:] if isinstance(e, CloseSocket)] == [
        # resumable: dropped without a frame (the session stays parked); not
        # resumable: the session is over and the close says so with a frame
        CloseSocket(conn, 4000, "invalid session", 1.0, frame=not resumable)
    ]
    assert core.session_id("alpha") == ("s1" if resumable else None)
    r.run_until(lambda: is_synced(core), within=60)
    handshake = [f["op"] for f in r.sent_frames() if f["op"] in (2, 3)]
    assert handshake == [2, 3] if resumable else handshake == [2, 2]
    # the extra uniform(1, 5) wait comes before attempt 1's own delay
    draws = [e for _, e in r.log[mark:] if isinstance(e, RngDraw)]
    assert [d.purpose for d in draws] == ["invalid-session wait", "backoff attempt 1"]
    extra, jitter = draws[0].value, draws[1].value
    assert 1 <= extra <= 5
    (opened,) = open_times(r, mark)
    assert opened - 0.0 == pytest.approx(extra + 1 + jitter)
    assert signals_since(r, mark)[0] == (sig.SERVER_DISCONNECTED, 4000, "invalid session")


def test_invalid_session_on_resume_attempt_identifies_next() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.resume_ok = False
    mark = len(r.log)
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: is_synced(core), within=120)
    ops = [f["op"] for f in r.sent_frames() if f["op"] in (2, 3)]
    assert ops == [2, 3, 2]
    assert signals_since(r, mark) == [
        (sig.SERVER_DISCONNECTED, 1006, ""),
        (sig.SERVER_RECONNECTING, 1, 10),
        (sig.SERVER_RECONNECTING, 2, 10),
        (sig.SERVER_RECONNECTED,),
        (sig.SERVER_SYNCED,),
    ]


def test_invalid_session_on_attempt_10_escalates_without_waiting() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    mark = len(r.log)
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: len(open_times(r, mark)) == 9 and not r.open_sockets, within=600)
    peer.gateway_refuse = False
    peer.resume_ok = False
    r.run_until(lambda: bool(r.signals("alpha", [sig.SERVER_REAUTHENTICATING])), within=600)
    opens = open_times(r, mark)
    assert len(opens) == 10 and r.now == opens[9]
    assert not [e for _, e in r.log[mark:] if isinstance(e, RngDraw) and "invalid" in e.purpose]


def test_drop_while_resume_pending_clears_the_session() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.answer_handshake = False
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: any(f["op"] == 3 for f in r.sent_frames()), within=60)
    assert core.session_id("alpha") == "s1"
    (conn,) = r.open_sockets
    peer.answer_handshake = True
    r.close(conn, 1006, "")
    assert core.session_id("alpha") is None
    r.run_until(lambda: is_synced(core), within=60)
    assert [f["op"] for f in r.sent_frames() if f["op"] in (2, 3)] == [2, 3, 2]


@pytest.mark.parametrize(
    "garbage",
    ["not json", "[1, 2]", '{"data": 1}', '{"op": "0"}', '{"op": 0, "data": 5}', '{"op": 99}', ""],
)
def test_garbage_frames_are_logged_and_ignored(garbage: str) -> None:
    core, r, peers = make()
    connect(core, r)
    conn = live_conn(peers["alpha"])
    mark = len(r.log)
    r.do(SocketText(conn, garbage))
    assert core.status("alpha") == "connected"
    assert signals_since(r, mark) == []
    assert not [e for _, e in r.log[mark:] if isinstance(e, CloseSocket)]
    assert [e for _, e in r.log[mark:] if isinstance(e, Log)]
    r.advance(100)
    assert core.status("alpha") == "connected"


@pytest.mark.parametrize("interval", ["Infinity", "NaN", "-5", "0", '"45000"', "true"])
def test_unusable_hello_interval_falls_back_to_the_default(interval: str) -> None:
    core, r, peers = make()
    peer = peers["alpha"]
    peer.send_hello = False
    r.do(ConnectServer("alpha"))
    r.settle()
    (conn,) = r.open_sockets
    r.frame(conn, '{"op":5,"data":{"heartbeat_interval":' + interval + "}}")
    assert core.next_deadline() is not None
    r.advance(45)
    assert _beats(r, conn) == [45.0]


@pytest.mark.parametrize("switch", ["gateway_accept", "send_hello", "answer_handshake"])
@pytest.mark.parametrize(("floor", "expected"), [(0.0, 0.2), (0.5, 0.5)])
def test_real_time_floor_under_the_open_hello_and_ready_timeouts(
    switch: str, floor: float, expected: float
) -> None:
    """At timescale 0.02 the 10 s timeouts are 0.2 s, unless the floor is higher."""
    core = ClientCore(Timings(scale=0.02, floor=floor), seed=SEED, environ={})
    peer = FakePeer(base_url="https://alpha.test:8443")
    setattr(peer, switch, False)  # the open, HELLO or READY never comes
    r = VirtualRunner(core, [peer])
    r.do(ConfigureServer(config_for(peer)))
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    # the last thing the client did (open, or IDENTIFY) started the timeout
    started = max(t for t, e in r.log if isinstance(e, SendText | OpenSocket))
    assert r.now - started == pytest.approx(expected)


def test_real_time_floor_under_the_rest_timeout() -> None:
    core = ClientCore(Timings(scale=0.01, floor=0.5), seed=SEED, environ={})
    peer = FakePeer(base_url="https://alpha.test:8443")
    peer.rules.append(lambda req: HANG)
    r = VirtualRunner(core, [peer])
    r.do(ConfigureServer(config_for(peer)))
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    assert r.now == pytest.approx(0.5)  # not 30 s * 0.01 = 0.3 s
    assert core.last_failure("alpha") == "Request timed out"
