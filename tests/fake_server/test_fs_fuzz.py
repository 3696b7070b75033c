"""Fuzz: 1,200 random gateway frames and REST bodies; the server stays up and correct."""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from fs_helpers import Client, Gateway

from fake_server import FakeServer, ServerConfig

FRAMES = 600
BODIES = 600
ALLOWED_STATUSES = {200, 400, 401, 403, 404, 405, 409, 413, 415, 422}
PLAIN_TEXT_STATUSES = {400, 415, 422}  # the reference's body errors


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(8 if depth < 2 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.randint(-(2**63), 2**63)
    if choice == 3:
        return rng.random() * 1e6
    if choice == 4:
        alphabet = string.printable + "ü€😀\x00"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
    if choice == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["op", "data", "seq", "type", "token", "session_id", "content", "nonce", "status"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


NASTY = ['{"op": 2, "data": {"token": "Bearer \\ud800"}}', "[" * 20_000,
         '{"op": 1, "data": ' + "9" * 5000 + "}", '{"content": "\\udfff", "nonce": "\\ud800"}',
         '{"content": "x", "nonce": ' + "1" * 30 + "}"]


def _random_frame(rng: random.Random, token: str) -> str:
    kind = rng.randrange(7)
    if kind == 6:
        return rng.choice(NASTY)
    if kind == 0:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(60)))
    if kind == 1:
        text = json.dumps({"op": rng.randrange(-2, 13), "data": _random_value(rng)})
        return text[: rng.randrange(len(text) + 1)]  # maybe truncated
    if kind == 2:
        data = {"token": rng.choice([f"Bearer {token}", "Bearer x", _random_value(rng)]),
                "session_id": _random_value(rng), "seq": _random_value(rng)}
        return json.dumps({"op": rng.choice([2, 3]), "data": data})
    if kind == 3:
        return json.dumps({"op": rng.choice([1, 8, 9, 10]), "data": _random_value(rng)})
    return json.dumps(_random_value(rng))


async def _acked_or_closed(gw: Gateway) -> bool:
    """True once an ACK arrives; False when the socket ends (close frame or drop)."""
    while True:
        msg = await gw.ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return False
        if msg.data == '{"op":4}':
            return True


@pytest.fixture
async def server(make_config: Callable[..., ServerConfig]) -> AsyncIterator[FakeServer]:
    """The limiter off: 600 requests would be 429s after the first 70."""
    async with FakeServer(make_config(rate_limit=None)) as srv:
        yield srv


async def test_fuzz_frames_and_bodies(
    client: Client, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    rng = random.Random(20261127)
    token = await client.login("alice")
    bystander, _ = await client.ready("bob")
    before = await client.post("carol", "stored before the fuzz")
    seq = (await bystander.recv())["seq"]

    gw: Gateway | None = None
    sockets = 0
    for _ in range(FRAMES):
        if gw is None:
            gw, sockets = await client.connect(), sockets + 1
            await gw.recv()  # HELLO
            if rng.random() < 0.5:
                await gw.identify(token)
        await gw.ws.send_str(_random_frame(rng, token))
        # A heartbeat after each frame: either it is ACKed, or the socket has ended.
        await gw.ws.send_str('{"op":1,"data":0}')
        if not await _acked_or_closed(gw):
            await gw.ws.close()
            gw = None
    if gw is not None:
        await gw.ws.close()
    assert sockets > 50  # the fuzz really did break many connections

    cid = await client.channel_id()
    paths = ["/auth/login", "/auth/register", "/users/@me", f"/channels/{cid}/messages",
             f"/channels/{cid}/messages/1", f"/channels/{cid}/typing", "/spaces/1/channels",
             "/nowhere", f"/channels/{cid}/messages/1/reactions/x/@me"]
    for _ in range(BODIES):
        method = rng.choice(["GET", "POST", "PATCH", "DELETE", "PUT"])
        body = rng.choice([json.dumps(_random_value(rng)), "{", "", "\x00\xff", rng.choice(NASTY),
                           json.dumps({"content": _random_value(rng), "nonce": _random_value(rng),
                                       "username": "alice", "password": _random_value(rng)})])
        query = rng.choice(["", "?limit=²", "?after=" + "9" * 25, "?limit=0", "?after=x&limit=7"])
        headers = rng.choice([{"Content-Type": "application/json"}, {}])
        status, answer, _ = await client.request(
            method, rng.choice(paths) + query, token=rng.choice([token, None, "bad"]), data=body,
            headers=headers,
        )
        assert status in ALLOWED_STATUSES, (status, answer)
        if status in PLAIN_TEXT_STATUSES and isinstance(answer, str):
            assert answer, status
        elif status not in (200, 404, 405):
            assert answer["error"]["code"], answer

    # Still up and correct: the bystander's session saw only whole, ordered events.
    after = await client.post("carol", "stored after the fuzz")
    while True:
        frame = await bystander.recv()
        seq += 1
        assert frame["seq"] == seq
        if frame.get("type") == "message.create" and frame["data"]["id"] == after["id"]:
            break
    stored = {m["id"] for m in server.messages()}
    assert {before["id"], after["id"]} <= stored
    async with client.http.get(server.info.health, ssl=client.ssl,
                               timeout=aiohttp.ClientTimeout(total=5)) as resp:
        assert resp.status == 200
    # No handler crashed on the way (aiohttp logs unhandled errors at ERROR).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
