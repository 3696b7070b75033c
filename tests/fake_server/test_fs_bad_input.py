"""accord-protocol.md section 5: the server's answers to bad gateway input.

Each case also checks that another session keeps working and nothing stored is lost."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from fs_helpers import Client, Gateway, eventually, session_records

INVALID = {"op": 7, "data": {"resumable": False}}


async def _bystander_still_works(client: Client, bob: Gateway, stored_before: int) -> None:
    await client.post("carol", "still here")
    frame = await bob.recv_until(lambda f: f.get("type") == "message.create")
    assert frame["data"]["content"] == "still here"
    assert len(client.server.messages()) == stored_before + 1


@pytest.mark.parametrize(
    "frame",
    [
        {"op": 8, "data": {"status": "online"}},  # anything but IDENTIFY/RESUME/HEARTBEAT
        {"op": 2, "data": {"token": "Bearer " + "0" * 64, "intents": []}},  # invalid token
        {"op": 2, "data": {"token": "TOKEN", "intents": []}},  # no Bearer / Bot scheme
        {"op": 2, "data": {"token": "Bearer TOKEN"}},  # an IDENTIFY without intents
        {"op": 2, "data": {"token": "Bearer TOKEN", "intents": "messages"}},  # wrong type
        {"op": 2, "data": "not an object"},  # invalid payload
        {"op": 3, "data": {"token": "x"}},  # RESUME missing fields
        "not json at all",
        {"no_op": 1},
    ],
)
async def test_before_identify_bad_frames_get_invalid_session_then_drop(
    client: Client, frame: Any
) -> None:
    bob, _ = await client.ready("bob")
    await client.post("alice", "stored")
    await bob.recv()
    gw = await client.connect()
    await gw.recv()
    token = client.tokens["bob"]
    text = frame if isinstance(frame, str) else json.dumps(frame).replace("TOKEN", token)
    await gw.ws.send_str(text)
    assert await gw.recv() == INVALID
    code, _ = await gw.closed()
    assert code in (None, 1006)  # dropped, no close frame
    await _bystander_still_works(client, bob, 1)


async def test_revoked_token_gets_invalid_session(client: Client) -> None:
    token = await client.login("alice")
    await client.request("POST", "/auth/logout", token=token)
    gw = await client.connect()
    await gw.recv()
    assert await gw.identify(token) == INVALID


async def test_bot_scheme_is_accepted(client: Client) -> None:
    token = await client.login("alice")
    gw = await client.connect()
    await gw.recv()
    await gw.send({"op": 2, "data": {"token": f"Bot {token}", "intents": []}})
    assert (await gw.recv())["type"] == "ready"


@pytest.mark.parametrize("payload", ["{broken", json.dumps({"op": 42}), json.dumps([1]),
                                     json.dumps({"op": 9, "data": {}})])
async def test_after_ready_junk_and_unknown_ops_are_ignored(client: Client, payload: str) -> None:
    alice, _ = await client.ready("alice")
    await alice.ws.send_str(payload)
    await alice.send({"op": 1, "data": 1})
    assert await alice.recv() == {"op": 4}  # still open, still served
    await client.post("bob", "still delivered")
    assert (await alice.recv())["data"]["content"] == "still delivered"


@pytest.mark.parametrize("op", [2, 3])
async def test_identify_or_resume_again_closes_4005_and_ends_the_session(
    client: Client, op: int
) -> None:
    bob, _ = await client.ready("bob")
    alice, ready = await client.ready("alice")
    await alice.send({"op": op, "data": {}})
    assert await alice.closed() == (4005, "already authenticated")
    await eventually(lambda: len(client.server.session_list()) == 1)
    ended = session_records(client.server, "ended")
    assert [(r["session_id"], r["reason"]) for r in ended] == [
        (ready["data"]["session_id"], "4005")]
    await _bystander_still_works(client, bob, 0)


async def test_more_than_120_frames_a_minute_closes_4008(client: Client) -> None:
    bob, _ = await client.ready("bob")
    alice, ready = await client.ready("alice")
    for _ in range(200):  # heartbeats do not count
        await alice.send({"op": 1, "data": 1})
    for _ in range(120):
        await alice.send({"op": 8, "data": {"status": "online"}})
    await alice.send({"op": 1, "data": 1})
    acks = 0
    while acks < 201:  # every beat answered, the presence updates fanned out: still open
        frame = await alice.recv()
        acks += frame == {"op": 4}
    await alice.ws.send_str("junk counts too")
    assert await alice.closed() == (4008, "rate limit exceeded")
    await eventually(lambda: len(client.server.session_list()) == 1)
    ended = session_records(client.server, "ended")
    assert [(r["session_id"], r["reason"]) for r in ended] == [
        (ready["data"]["session_id"], "4008")]
    resume = await client.connect()
    await resume.recv()
    await resume.resume(client.tokens["alice"], ready["data"]["session_id"], 1)
    assert await resume.recv() == INVALID  # not resumable
    await _bystander_still_works(client, bob, 0)


async def test_frame_limit_window_is_scaled(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    from fake_server import FakeServer
    from fake_server.tls import client_context

    # Timescale 0.01: the 60 s window is 0.6 s (handshake and silence limits kept long).
    config = make_config(timescale=0.01, handshake_timeout_s=3000, silence_drop_s=9000)
    async with FakeServer(config) as srv, Client(srv, client_context(pki.ca)) as c:
        alice, _ = await c.ready("alice")
        for _ in range(100):
            await alice.ws.send_str("junk")
        await alice.send({"op": 1, "data": 1})
        assert await alice.recv() == {"op": 4}  # the server has counted all 100
        await asyncio.sleep(0.7)  # the point of the test: let the scaled window pass
        for _ in range(100):
            await alice.ws.send_str("junk")
        await alice.send({"op": 1, "data": 1})
        assert await alice.recv() == {"op": 4}  # 200 in 0.7 s, never 121 in one window


async def test_frame_over_one_mib_closes_1009(client: Client) -> None:
    bob, _ = await client.ready("bob")
    alice, _ = await client.ready("alice")
    await alice.ws.send_str(json.dumps({"op": 1, "data": "x" * (1024 * 1024 + 10)}))
    code, _ = await alice.closed()
    assert code == 1009
    await _bystander_still_works(client, bob, 0)


async def test_binary_frames_and_pings_are_ignored(client: Client) -> None:
    alice, _ = await client.ready("alice")
    await alice.ws.send_bytes(b"\x00\x01binary")
    await alice.ws.ping(b"hi")
    await alice.send({"op": 1, "data": 1})
    msg = await alice.recv_raw()
    if msg.type is aiohttp.WSMsgType.PONG:
        msg = await alice.recv_raw()
    assert json.loads(msg.data) == {"op": 4}


async def test_nasty_rest_inputs_get_400_not_500(client: Client) -> None:
    token = await client.login()
    cid = await client.channel_id()
    json_type = {"Content-Type": "application/json"}
    bodies = [
        (f"/channels/{cid}/messages", '{"content": "\\ud800"}'),  # lone surrogate
        (f"/channels/{cid}/messages", '{"content": "x", "nonce": ' + "9" * 5000 + "}"),
        (f"/channels/{cid}/messages", "[" * 100_000),  # nested too deep
        ("/auth/login", '{"username": "\\udfff", "password": "p"}'),
    ]
    for path, body in bodies:
        status, answer, resp = await client.request("POST", path, token=token, data=body,
                                                    headers=json_type)
        assert status == 400, (path, body[:40], answer)
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert answer.startswith("Failed to parse the request body as JSON")
    for query in ("limit=²", "after=99999999999999999999999"):
        status, answer, _ = await client.request("GET", f"/channels/{cid}/messages?{query}",
                                                 token=token)
        assert status == 400 and answer["error"]["code"] == "invalid_request", query
    assert client.server.messages() == []


async def test_nasty_gateway_inputs(client: Client) -> None:
    for text in ('{"op": 2, "data": {"token": "Bearer \\ud800"}}', "[" * 100_000):
        gw = await client.connect()
        await gw.recv()
        await gw.ws.send_str(text)
        assert await gw.recv() == INVALID
    alice, _ = await client.ready("alice")
    await alice.ws.send_str("[" * 100_000)  # after READY: ignored
    await alice.send({"op": 1, "data": 1})
    assert await alice.recv() == {"op": 4}
