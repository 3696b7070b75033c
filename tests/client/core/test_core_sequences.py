"""Signal sequences of client-behaviour.md s.3, backoff and escalation (s.2, s.4)."""

from __future__ import annotations

import random

import pytest
from core_helpers import (
    SEED,
    connect,
    connection_signals,
    is_synced,
    live_conn,
    make,
    open_times,
    reconnecting,
    signals_since,
)

from client.core import signals as sig
from client.core.actions import ConnectServer, ReconnectServer
from client.core.io import HttpRequest, OpenSocket, RngDraw, SendText


def test_first_connect_sequence_and_rest_chain() -> None:
    core, r, _peers = make()
    connect(core, r)
    assert connection_signals(r) == [
        (sig.SERVER_CONNECTING,),
        (sig.SERVER_CONNECTED,),
        (sig.SERVER_SYNCED,),
    ]
    paths = [req.url.split("/api/v1")[1] for req in r.requests()]
    assert paths[:5] == [
        "/auth/login",
        "/users/@me",
        "/users/@me/spaces",
        "/spaces/100",
        "/spaces/100/channels",
    ]
    frames = r.sent_frames()
    assert frames[0]["op"] == 2 and frames[0]["data"]["token"] == "Bearer tok1"
    assert core.mode == "LIVE"
    assert core.gateway_state("alpha") == "CONNECTED"


def test_first_connect_rest_failure_goes_to_error_without_retries() -> None:
    core, r, peers = make()
    peers["alpha"].rest_enabled = False
    r.do(ConnectServer("alpha"))
    r.advance(3600)
    assert connection_signals(r) == [
        (sig.SERVER_CONNECTING,),
        (sig.SERVER_CONNECTION_FAILED, "Could not connect to server"),
    ]
    assert core.status("alpha") == "error"
    assert len(r.requests()) == 1 and not r.opens()


def test_first_connect_gateway_failure_uses_close_text_and_no_retry() -> None:
    core, r, peers = make()
    peers["alpha"].close_on_open = (4004, "authentication failed")
    r.do(ConnectServer("alpha"))
    r.advance(3600)
    assert connection_signals(r)[-1] == (sig.SERVER_CONNECTION_FAILED, "Session expired")
    assert len(r.opens()) == 1
    assert core.status("alpha") == "error" and core.mode == "CONNECTING"


def test_first_connect_refused_gateway() -> None:
    _core, r, peers = make()
    peers["alpha"].gateway_refuse = True
    r.do(ConnectServer("alpha"))
    r.advance(3600)
    assert connection_signals(r)[-1] == (
        sig.SERVER_CONNECTION_FAILED,
        "Could not connect to server",
    )
    assert len(r.opens()) == 1


def test_first_connect_login_rejected() -> None:
    _core, r, peers = make()
    peers["alpha"].password = "changed"
    r.do(ConnectServer("alpha"))
    r.settle()
    assert connection_signals(r)[-1] == (sig.SERVER_CONNECTION_FAILED, "Authentication failed")


def _lose_and_recover_on_attempt(k: int) -> tuple[list[tuple[object, ...]], list[float]]:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: len(open_times(r, mark)) == k - 1 and not r.open_sockets, within=600)
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core), within=600)
    return signals_since(r, mark), open_times(r, mark)


def test_loss_recovered_by_attempt_k() -> None:
    for k in (1, 3, 6):
        seq, opens = _lose_and_recover_on_attempt(k)
        assert seq == [
            (sig.SERVER_DISCONNECTED, 1006, ""),
            *reconnecting(k),
            (sig.SERVER_RECONNECTED,),
            (sig.SERVER_SYNCED,),
        ]
        assert len(opens) == k


def test_recovery_resumes_with_last_seq() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.store_message("201", "one")
    r.push(peer)
    r.settle()
    conn = live_conn(peer)
    r.close(conn, 1001, "going away")
    r.run_until(lambda: is_synced(core), within=60)
    resume = [f for f in r.sent_frames() if f["op"] == 3]
    assert resume == [{"op": 3, "data": {"token": "Bearer tok1", "session_id": "s1", "seq": 2}}]


def test_backoff_delays_for_attempts_1_to_10_are_exact() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    peer.gateway_refuse = True
    lost_at = r.now
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: core.status("alpha") == "error", within=600)
    opens = open_times(r, mark)
    assert len(opens) == 11  # ten attempts, then the single re-auth attempt
    delays = [b - a for a, b in zip([lost_at, *opens[:9]], opens[:10], strict=True)]
    stream = random.Random(f"{SEED}:alpha")
    jitters = [stream.random() for _ in range(10)]
    expected = [2 ** min(n - 1, 5) + jitters[n - 1] for n in range(1, 11)]
    assert delays == pytest.approx(expected, abs=1e-9)
    # seed 7, server "alpha": pinned so a change of stream or formula shows up
    assert [round(d, 6) for d in delays] == [
        1.219801, 2.159535, 4.052251, 8.704726, 16.681211,
        32.171538, 32.551871, 32.726556, 32.178644, 32.626604,
    ]  # fmt: skip
    for n, d in enumerate(delays, start=1):
        low = 2 ** min(n - 1, 5)
        assert low <= d < low + 1
    draws = [e for _, e in r.log[mark:] if isinstance(e, RngDraw)]
    assert [d.value for d in draws] == jitters
    assert all(d.stream == "alpha:gateway" for d in draws)


def test_backoff_is_scaled() -> None:
    core, r, peers = make(scale=0.05)
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    lost_at = r.now
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: is_synced(core), within=60)
    (first,) = open_times(r, mark)
    jitter = random.Random(f"{SEED}:alpha").random()
    assert first - lost_at == pytest.approx(0.05 * 1 + jitter * 0.05, abs=1e-12)


def test_attempt_10_fails_escalates_at_once_then_reconnection_failed() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: core.status("alpha") == "error", within=600)
    assert signals_since(r, mark) == [
        (sig.SERVER_DISCONNECTED, 1006, ""),
        *reconnecting(10),
        (sig.SERVER_REAUTHENTICATING,),
        (sig.SERVER_CONNECTION_FAILED, "Reconnection failed"),
    ]
    opens = open_times(r, mark)
    reauth_at = next(
        t for t, e in r.log[mark:] if getattr(e, "name", "") == sig.SERVER_REAUTHENTICATING
    )
    assert reauth_at == opens[9]  # no 11th wait
    assert peer.logins == 2  # re-auth logged in again
    r.advance(3600)
    assert len(open_times(r, mark)) == 11  # nothing after the failure


def test_attempt_10_fails_then_reauth_succeeds() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: len(open_times(r, mark)) == 10 and not r.open_sockets, within=600)
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core), within=60)
    assert signals_since(r, mark)[-3:] == [
        (sig.SERVER_REAUTHENTICATING,),
        (sig.SERVER_RECONNECTED,),
        (sig.SERVER_SYNCED,),
    ]
    identify = [f for f in r.sent_frames() if f["op"] == 2]
    assert identify[-1]["data"]["token"] == "Bearer tok2"


@pytest.mark.parametrize("code", [4003, 4004, 4012, 4013, 4014])
def test_fatal_close_while_connected_reauthenticates(code: int) -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    r.close(live_conn(peer), code, "fatal")
    r.run_until(lambda: is_synced(core), within=60)
    assert signals_since(r, mark) == [
        (sig.SERVER_DISCONNECTED, code, "fatal"),
        (sig.SERVER_REAUTHENTICATING,),
        (sig.SERVER_RECONNECTED,),
        (sig.SERVER_SYNCED,),
    ]
    assert peer.logins == 2
    assert len(open_times(r, mark)) == 1  # no gateway-level retry


def test_fatal_close_then_reauth_fails() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    peer.password = "rotated"
    r.close(live_conn(peer), 4004, "")
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    assert signals_since(r, mark) == [
        (sig.SERVER_DISCONNECTED, 4004, ""),
        (sig.SERVER_REAUTHENTICATING,),
        (sig.SERVER_CONNECTION_FAILED, "Reconnection failed"),
    ]
    assert not open_times(r, mark)


def test_fatal_close_on_the_reauth_attempt_ends_there() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mark = len(r.log)
    peer.close_on_open = (4003, "not authenticated")
    r.close(live_conn(peer), 4003, "not authenticated")
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    r.advance(3600)
    assert len(open_times(r, mark)) == 1
    assert peer.logins == 2
    assert signals_since(r, mark)[-1] == (sig.SERVER_CONNECTION_FAILED, "Reconnection failed")


def test_user_reconnect_from_error() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: core.status("alpha") == "error", within=600)
    peer.gateway_refuse = False
    mark = len(r.log)
    r.do(ReconnectServer("alpha"))
    r.run_until(lambda: is_synced(core), within=60)
    assert signals_since(r, mark) == [
        (sig.SERVER_REAUTHENTICATING,),
        (sig.SERVER_RECONNECTED,),
        (sig.SERVER_SYNCED,),
    ]


def test_user_reconnect_while_reconnecting_cancels_the_backoff() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: len(r.opens()) == 4, within=600)
    r.settle()
    peer.gateway_refuse = False
    mark = len(r.log)
    r.do(ReconnectServer("alpha"))
    r.run_until(lambda: is_synced(core), within=60)
    assert signals_since(r, mark) == [
        (sig.SERVER_REAUTHENTICATING,),
        (sig.SERVER_RECONNECTED,),
        (sig.SERVER_SYNCED,),
    ]
    r.advance(600)
    assert len(open_times(r, mark)) == 1  # the old backoff timer did not fire


def test_user_reconnect_ignored_while_connected() -> None:
    core, r, _peers = make()
    connect(core, r)
    mark = len(r.log)
    r.do(ReconnectServer("alpha"))
    r.settle()
    assert signals_since(r, mark) == []
    assert not [e for _, e in r.log[mark:] if isinstance(e, HttpRequest | OpenSocket | SendText)]
