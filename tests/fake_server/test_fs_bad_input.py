"""accord-protocol.md section 5: the server's answers to bad gateway input.

Each case also checks that another session keeps working and nothing stored is lost."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from fs_helpers import Client, Gateway

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
        {"op": 2, "data": {"token": "Bearer " + "0" * 64}},  # invalid token
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
    await gw.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
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


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        ("{broken", 4002, "decode error"),
        (json.dumps({"op": 42}), 4001, "unknown opcode"),
        (json.dumps({"op": 2, "data": {}}), 4005, "already authenticated"),
        (json.dumps({"op": 3, "data": {}}), 4005, "already authenticated"),
    ],
)
async def test_after_ready_bad_frames_close_with_code(
    client: Client, payload: str, code: int, reason: str
) -> None:
    bob, _ = await client.ready("bob")
    alice, _ = await client.ready("alice")
    await alice.ws.send_str(payload)
    assert await alice.closed() == (code, reason)
    await _bystander_still_works(client, bob, 0)


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
    cases = [
        ("POST", f"/channels/{cid}/messages", '{"content": "\\ud800"}'),  # lone surrogate
        ("POST", f"/channels/{cid}/messages", '{"content": "x", "nonce": ' + "9" * 5000 + "}"),
        ("POST", f"/channels/{cid}/messages", "[" * 100_000),  # nested too deep
        ("POST", f"/channels/{cid}/messages", '{"content": "x", "nonce": true}'),
        ("POST", "/auth/login", '{"username": "\\udfff", "password": "p"}'),
        ("GET", f"/channels/{cid}/messages?limit=²", None),
        ("GET", f"/channels/{cid}/messages?after=99999999999999999999999", None),
    ]
    for method, path, body in cases:
        status, answer, _ = await client.request(method, path, token=token, data=body)
        assert status == 400, (path, body and body[:40], answer)
        assert answer["error"]["code"] == "invalid_request"
    assert client.server.messages() == []


async def test_nasty_gateway_inputs(client: Client) -> None:
    for text in ('{"op": 2, "data": {"token": "Bearer \\ud800"}}', "[" * 100_000):
        gw = await client.connect()
        await gw.recv()
        await gw.ws.send_str(text)
        assert await gw.recv() == INVALID
    alice, _ = await client.ready("alice")
    await alice.ws.send_str("[" * 100_000)
    assert await alice.closed() == (4002, "decode error")
