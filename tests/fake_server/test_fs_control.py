"""The control API over HTTP: token, validation naming the field, every endpoint."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from fs_helpers import Client

from fake_server import FakeServer, FaultSpecError, parse_fault


async def _control(server: FakeServer, method: str, path: str, *, token: str | None = "ok",
                   body: Any = None) -> tuple[int, Any]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {server.control_token if token == 'ok' else token}"
    async with aiohttp.ClientSession() as http, http.request(
        method, f"{server.info.control}{path}", json=body, headers=headers,
        timeout=aiohttp.ClientTimeout(total=5),
    ) as resp:
        return resp.status, await resp.json()


async def test_control_listens_on_loopback(server: FakeServer) -> None:
    assert server.info.control is not None
    assert server.info.control.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_control_needs_the_token(server: FakeServer, token: str | None) -> None:
    status, body = await _control(server, "GET", "/faults", token=token)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = await _control(server, "POST", "/faults", token=token,
                               body={"kind": "withhold_acks"})
    assert status == 401 and server.faults() == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "no_such_fault"}, "kind"),
        ({}, "kind"),
        ({"kind": "withhold_acks", "count": 0}, "count"),
        ({"kind": "close", "code": 99}, "code"),
        ({"kind": "rest_fail", "status": 200}, "status"),
        ({"kind": "rest_hang", "seconds": -1}, "seconds"),
        ({"kind": "drop", "trigger": "sometimes"}, "trigger"),
        ({"kind": "withhold_acks", "bogus": 1}, "bogus"),
        ({"kind": "login_fail", "status": 403}, "status"),
    ],
)
async def test_invalid_spec_is_400_naming_the_field(
    server: FakeServer, spec: dict[str, Any], field: str
) -> None:
    status, body = await _control(server, "POST", "/faults", body=spec)
    assert status == 400
    assert body["error"]["code"] == "invalid_request" and body["error"]["field"] == field
    assert field in body["error"]["message"]
    with pytest.raises(FaultSpecError) as info:
        parse_fault(spec)
    assert info.value.field == field


async def test_act_as_missing_content_names_the_rule(server: FakeServer) -> None:
    status, body = await _control(server, "POST", "/faults",
                                  body={"kind": "act_as", "user": "bob", "action": "post"})
    assert status == 400 and "content is required" in body["error"]["message"]


async def test_body_not_json(server: FakeServer) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.info.control}/faults", data="{nope",
        headers={"Authorization": f"Bearer {server.control_token}"},
    ) as resp:
        assert resp.status == 400


async def test_fault_lifecycle_over_http(server: FakeServer) -> None:
    status, body = await _control(server, "POST", "/faults",
                                  body={"kind": "rest_latency", "seconds": 1, "count": 3})
    assert status == 200 and body["data"]["kind"] == "rest_latency"
    fault_id = body["data"]["id"]
    status, listed = await _control(server, "GET", "/faults")
    assert [f["id"] for f in listed["data"]] == [fault_id]
    assert listed["data"][0]["remaining"] == 3
    status, cleared = await _control(server, "DELETE", f"/faults/{fault_id}")
    assert (status, cleared["data"]) == (200, {"cleared": True})
    status, _ = await _control(server, "DELETE", f"/faults/{fault_id}")
    assert status == 404
    await _control(server, "POST", "/faults", body={"kind": "withhold_acks"})
    status, reset = await _control(server, "POST", "/reset")
    assert reset["data"] == {"cleared": 1} and server.faults() == []


async def test_info_sessions_messages_history(server: FakeServer, client: Client) -> None:
    status, info = await _control(server, "GET", "/info")
    assert status == 200 and info["data"]["rest"] == server.info.rest
    assert "control_token" not in info["data"] and info["data"]["timescale"] == 0.1
    assert info["data"]["behaviours"] == []
    assert info["data"]["rate_limit"] == {"limit": 70, "window_s": 60.0}
    gw, _ = await client.ready("alice")
    await client.post("alice", "hello")
    assert not gw.ws.closed
    _, sessions = await _control(server, "GET", "/sessions")
    assert [(s["user"], s["state"]) for s in sessions["data"]] == [("alice", "open")]
    _, counts = await _control(server, "GET", "/sessions?count=1")
    assert counts["data"] == {"open": 1, "parked": 0}
    _, messages = await _control(server, "GET", "/messages")
    assert [m["content"] for m in messages["data"]] == ["hello"]
    assert messages["data"][0]["nonce"] is None  # the rig's view keeps the nonce field
    _, history = await _control(server, "GET", "/history")
    assert history["next"] == history["data"][-1]["i"]
    _, later = await _control(server, "GET", f"/history?after={history['next'] - 2}")
    assert [r["i"] for r in later["data"]][:2] == [history["next"] - 1, history["next"]]
    status, _ = await _control(server, "GET", "/history?after=x")
    assert status == 400


async def test_act_as_over_http(server: FakeServer, client: Client) -> None:
    gw, _ = await client.ready("alice")
    status, body = await _control(server, "POST", "/faults", body={
        "kind": "act_as", "user": "bob", "action": "post", "content": "via control"})
    assert status == 200 and body["data"]["id"] is None
    frame = await gw.recv()
    assert frame["data"] == body["data"]["result"]["message"]


async def test_refused_act_as_is_an_http_error(server: FakeServer) -> None:
    status, body = await _control(server, "POST", "/faults", body={
        "kind": "act_as", "user": "bob", "action": "edit", "message_id": "42",
        "content": "x"})
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_info_reports_behaviours_and_the_limiter_off(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    config = make_config(rate_limit=None, behaviours=frozenset({"takeover_resume"}))
    async with FakeServer(config) as srv:
        status, info = await _control(srv, "GET", "/info")
        assert status == 200 and info["data"]["rate_limit"] is None
        assert info["data"]["behaviours"] == ["takeover_resume"]
        assert srv.info.to_json()["behaviours"] == ["takeover_resume"]
