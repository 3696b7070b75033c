"""REST policy: envelopes, the error table, 429, timeout, the 401 policy (s.1, s.3, s.5)."""

from __future__ import annotations

import itertools
import json

import pytest
from core_helpers import connect, make

from client.core import signals as sig
from client.core.actions import SendMessage
from client.core.io import CancelHttp, HttpFailed, HttpRequest, HttpResponse, NetError
from client.core.rest import USER_AGENT
from client.virtual import HANG, HttpAnswer, VirtualRunner


def _posts(r: VirtualRunner) -> list[tuple[float, HttpRequest]]:
    return [
        (t, e)
        for t, e in r.log
        if isinstance(e, HttpRequest) and e.method == "POST" and "/messages" in e.url
    ]


def _send_failed(r: VirtualRunner) -> list[str]:
    return [s.args[3] for s in r.signals("alpha", [sig.MESSAGE_SEND_FAILED])]


def test_request_headers_and_body() -> None:
    core, r, _peers = make()
    connect(core, r)
    r.do(SendMessage("alpha", "general", "hello"))
    r.settle()
    ((_, post),) = _posts(r)
    headers = dict(post.headers)
    assert headers["Authorization"] == "Bearer tok1"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == USER_AGENT
    assert post.url == "https://alpha.test:8443/api/v1/channels/201/messages"
    body = json.loads(post.body or b"")
    assert body["content"] == "hello" and body["nonce"]
    login = r.requests("POST", "/auth/login")[0]
    assert "Authorization" not in dict(login.headers)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (NetError.REFUSED, "Could not connect to server"),
        (NetError.DNS, "Could not resolve hostname"),
        (NetError.TLS, "TLS/SSL handshake failed"),
        (NetError.NO_RESPONSE, "No response from server"),
        (NetError.OTHER, "Connection error"),
    ],
)
def test_network_error_texts(error: NetError, text: str) -> None:
    core, r, peers = make()
    connect(core, r)
    peers["alpha"].rules.append(lambda req: error if req.method == "POST" else None)
    r.do(SendMessage("alpha", "general", "x"))
    r.settle()
    assert _send_failed(r) == [text]


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (403, {"error": {"code": "forbidden", "message": "not allowed here"}}, "not allowed here"),
        (400, b"Json deserialize error: missing field", "Server error (HTTP 400)"),
        (404, b"", "Server error (HTTP 404)"),
        (500, b"<html>oops</html>", "Server error (HTTP 500)"),
        (415, {"unexpected": True}, "Server error (HTTP 415)"),
        (422, {"error": "just a string"}, "Server error (HTTP 422)"),
    ],
)
def test_http_error_texts(status: int, body: object, text: str) -> None:
    core, r, peers = make()
    connect(core, r)
    peers["alpha"].rules.append(
        lambda req: HttpAnswer(status, body) if req.method == "POST" else None
    )
    r.do(SendMessage("alpha", "general", "x"))
    r.settle()
    assert _send_failed(r) == [text]
    assert core.status("alpha") == "connected"


def test_plain_text_success_body_never_crashes() -> None:
    core, r, peers = make()
    connect(core, r)
    peers["alpha"].rules.append(
        lambda req: HttpAnswer(200, b"ok, not json") if req.method == "POST" else None
    )
    r.do(SendMessage("alpha", "general", "x"))
    r.settle()
    assert [s.args[3] for s in r.signals("alpha", [sig.MESSAGE_SENT])] == [""]


def _rate_limit_first(n: int, headers: tuple[tuple[str, str], ...] = (), body: object = None):  # type: ignore[no-untyped-def]
    state = {"left": n}

    def rule(req: HttpRequest) -> HttpAnswer | None:
        if req.method == "POST" and state["left"] > 0:
            state["left"] -= 1
            return HttpAnswer(
                429, body or {"error": {"code": "rate_limited", "message": "slow"}}, headers
            )
        return None

    return rule


@pytest.mark.parametrize(
    ("headers", "body", "waits"),
    [
        ((("Retry-After", "0.25"),), None, [0.25, 0.25, 0.25]),  # fractions allowed
        ((("retry-after", "2"),), None, [2.0, 2.0, 2.0]),  # header name case-insensitive
        ((), {"retry_after": 1.5}, [1.5, 1.5, 1.5]),  # body field
        ((), None, [1.0, 2.0, 4.0]),  # fallback
        ((("Retry-After", "600"),), None, [60.0, 60.0, 60.0]),  # capped at 60 s
        ((("Retry-After", "soon"),), None, [1.0, 2.0, 4.0]),  # unreadable -> fallback
    ],
)
def test_429_waits_then_succeeds_on_the_fourth_request(
    headers: tuple[tuple[str, str], ...], body: object, waits: list[float]
) -> None:
    core, r, peers = make()
    connect(core, r)
    peers["alpha"].rules.append(_rate_limit_first(3, headers, body))
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SENT])), within=300)
    times = [t for t, _ in _posts(r)]
    assert len(times) == 4
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx(waits)
    assert len({p.req for _, p in _posts(r)}) == 4  # every retry is a new request id


def test_429_after_three_retries_gives_up() -> None:
    core, r, peers = make()
    connect(core, r)
    peers["alpha"].rules.append(_rate_limit_first(99))
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(_send_failed(r)), within=300)
    assert len(_posts(r)) == 4
    assert _send_failed(r) == ["Rate limited after 3 retries"]


def test_429_fallback_waits_are_scaled_but_retry_after_is_not() -> None:
    core, r, peers = make(scale=0.1)
    connect(core, r)
    peers["alpha"].rules.append(_rate_limit_first(1))
    peers["alpha"].rules.append(lambda req: None)
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SENT])), within=300)
    times = [t for t, _ in _posts(r)]
    assert times[1] - times[0] == pytest.approx(0.1)

    core, r, peers = make(scale=0.1)
    connect(core, r)
    peers["alpha"].rules.append(_rate_limit_first(1, (("Retry-After", "0.05"),)))
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SENT])), within=300)
    times = [t for t, _ in _posts(r)]
    assert times[1] - times[0] == pytest.approx(0.05)


def test_rest_timeout_cancels_and_reports() -> None:
    core, r, peers = make()
    connect(core, r)
    peers["alpha"].rules.append(lambda req: HANG if req.method == "POST" else None)
    start = r.now
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(_send_failed(r)), within=300)
    assert r.now - start == 30.0
    ((_, post),) = _posts(r)
    assert CancelHttp(post.req) in r.effects(CancelHttp)
    assert _send_failed(r) == ["Request timed out"]
    # a late answer for the abandoned request changes nothing
    r.do(HttpResponse(post.req, 200, (), b'{"data": {"id": "9", "channel_id": "201"}}'))
    r.do(HttpFailed(post.req, NetError.OTHER))
    assert not r.signals("alpha", [sig.MESSAGE_SENT])


def test_each_429_retry_has_its_own_timeout() -> None:
    core, r, peers = make()
    connect(core, r)
    state = {"n": 0}

    def rule(req: HttpRequest) -> HttpAnswer | object | None:
        if req.method != "POST":
            return None
        state["n"] += 1
        return HttpAnswer(429, None, (("Retry-After", "5"),)) if state["n"] == 1 else HANG

    peers["alpha"].rules.append(rule)  # type: ignore[arg-type]
    start = r.now
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(_send_failed(r)), within=300)
    assert r.now - start == 35.0
    assert _send_failed(r) == ["Request timed out"]


def test_rest_timeout_is_scaled() -> None:
    core, r, peers = make(scale=0.01)
    connect(core, r)
    peers["alpha"].rules.append(lambda req: HANG if req.method == "POST" else None)
    start = r.now
    r.do(SendMessage("alpha", "general", "x"))
    r.run_until(lambda: bool(_send_failed(r)), within=300)
    assert r.now - start == pytest.approx(0.3)


def test_401_relogs_in_once_and_retries_once() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.tokens.append("rotated-by-server")  # our token no longer valid
    r.do(SendMessage("alpha", "general", "x"))
    r.settle()
    assert peer.logins == 2
    assert len(_posts(r)) == 2
    assert dict(_posts(r)[1][1].headers)["Authorization"] == "Bearer tok2"
    assert len(r.signals("alpha", [sig.MESSAGE_SENT])) == 1
    assert core.status("alpha") == "connected"


def test_401_relogin_fails_goes_to_error_with_authentication_failed() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.tokens.append("rotated-by-server")
    peer.password = "changed"
    r.do(SendMessage("alpha", "general", "x"))
    r.settle()
    assert core.status("alpha") == "error"
    assert r.signals("alpha", [sig.SERVER_CONNECTION_FAILED])[-1].args == (
        "alpha",
        "Authentication failed",
    )
    assert _send_failed(r) == ["Authentication failed"]
    assert len(_posts(r)) == 1  # no retry without a token


def test_concurrent_401s_share_one_login() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.tokens.append("rotated-by-server")
    peer.latency = 0.1
    r.do(SendMessage("alpha", "general", "a"))
    r.do(SendMessage("alpha", "general", "b"))
    r.run_until(lambda: len(r.signals("alpha", [sig.MESSAGE_SENT])) == 2, within=10)
    assert peer.logins == 2


def test_first_connect_401_on_rest_is_not_relogged() -> None:
    core, r, peers = make()
    peer = peers["alpha"]
    peer.rules.append(
        lambda req: (
            HttpAnswer(401, {"error": {"code": "unauthorized", "message": "nope"}})
            if req.url.endswith("/users/@me")
            else None
        )
    )
    from client.core.actions import ConnectServer

    r.do(ConnectServer("alpha"))
    r.settle()
    assert core.status("alpha") == "error"
    assert peer.logins == 1
    assert core.last_failure("alpha") == "nope"
