"""The virtual runner itself: time jumps, manual answers, dropped late inputs."""

from __future__ import annotations

import pytest
from core_helpers import connect, make

from client.core import signals as sig
from client.core.actions import ConnectServer, SendMessage
from client.core.io import HttpRequest
from client.virtual import HANG


def test_run_until_raises_when_the_condition_never_holds() -> None:
    core, r, _ = make()
    with pytest.raises(AssertionError, match="condition not met"):
        r.run_until(lambda: core.status("alpha") == "connected", within=5)


def test_unanswered_requests_can_be_answered_by_hand() -> None:
    core, r, peers = make()
    peers["alpha"].rules.append(lambda req: HANG if req.url.endswith("/auth/login") else None)
    r.do(ConnectServer("alpha"))
    (login,) = r.pending_http("/auth/login")
    assert isinstance(login, HttpRequest)
    r.answer(login, 401, {"error": {"code": "unauthorized", "message": "x"}})
    assert core.status("alpha") == "error"
    assert r.pending_http() == []


def test_time_only_moves_when_asked_and_jumps_to_deadlines() -> None:
    core, r, peers = make()
    connect(core, r)
    assert r.now == 0.0
    peers["alpha"].rules.append(lambda req: HANG if req.method == "POST" else None)
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=100)
    assert r.now == 30.0  # the REST timeout, nothing earlier was due


def test_livelock_is_reported_not_hung() -> None:
    core, r, peers = make(bugs=[2])  # bug 2 against a zero-latency peer loops instantly
    connect(core, r)
    peer = peers["alpha"]
    peer.close_on_open = (4003, "not authenticated")
    r.close(peer.live_conns()[0], 4003, "")
    r.MAX_STEPS_AT_ONE_INSTANT = 2_000
    with pytest.raises(AssertionError, match="no progress"):
        r.run_until(lambda: core.status("alpha") == "error", within=10)
