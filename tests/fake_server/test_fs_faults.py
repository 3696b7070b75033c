"""Every fault of the control surface, applied through the Python API over real sockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from fs_helpers import TIMESCALE, Client, eventually

from fake_server import ApiError, FakeServer

INVALID = {"op": 7, "data": {"resumable": False}}


# ---------------------------------------------------------------------- heartbeats


async def test_withhold_next_n_acks(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready()
    result = await server.apply({"kind": "withhold_acks", "count": 2})
    assert result.id is not None
    for seq in (1, 1):
        await gw.send({"op": 1, "data": seq})
    await eventually(lambda: not server.faults())  # both beats consumed
    await server.apply({"kind": "send_frame", "frame": {"marker": 1}})
    assert await gw.recv() == {"marker": 1}  # no ACK went out before it
    await gw.send({"op": 1, "data": 1})
    assert await gw.recv() == {"op": 4}  # the third beat is answered


async def test_withhold_all_acks_until_cleared(client: Client, server: FakeServer) -> None:
    alice, _ = await client.ready("alice")
    bob, _ = await client.ready("bob")
    result = await server.apply({"kind": "withhold_acks", "user": "alice"})
    await alice.send({"op": 1, "data": 1})
    await bob.send({"op": 1, "data": 1})
    assert await bob.recv() == {"op": 4}  # other users unaffected
    await eventually(lambda: server.faults()[0]["fired"] == 1)
    await server.apply({"kind": "send_frame", "frame": {"marker": 1}, "user": "alice"})
    assert await alice.recv() == {"marker": 1}  # no ACK went out before it
    assert result.id is not None and server.clear(result.id)
    await alice.send({"op": 1, "data": 1})
    assert await alice.recv() == {"op": 4}


async def test_request_heartbeat_and_reconnect(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready()
    result = await server.apply({"kind": "request_heartbeat"})
    assert result.id is None and len(result.result["affected"]) == 1
    assert await gw.recv() == {"op": 1}
    await server.apply({"kind": "reconnect"})
    assert await gw.recv() == {"op": 6}


# ---------------------------------------------------------------------- closes and drops


async def test_close_with_code_parks_or_ends(client: Client, server: FakeServer) -> None:
    gw, ready = await client.ready()
    await server.apply({"kind": "close", "code": 4000, "reason": "go away"})
    assert await gw.closed() == (4000, "go away")
    await eventually(lambda: server.session_list() and server.session_list()[0]["state"]
                     == "parked")
    gw2 = await client.connect()
    await gw2.recv()
    await gw2.resume(client.tokens["alice"], ready["data"]["session_id"], 1)
    assert (await gw2.recv())["type"] == "resumed"
    await server.apply({"kind": "close", "code": 4004, "reason": "authentication failed"})
    assert await gw2.closed() == (4004, "authentication failed")
    await eventually(lambda: server.session_list() == [])  # fatal code ends the session


async def test_drop_without_close_frame(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready()
    await server.apply({"kind": "drop"})
    code, reason = await gw.closed()
    assert code in (None, 1006) and reason == ""
    await eventually(lambda: server.session_list()[0]["state"] == "parked")


async def test_targeting_one_user(client: Client, server: FakeServer) -> None:
    alice, _ = await client.ready("alice")
    bob, _ = await client.ready("bob")
    result = await server.apply({"kind": "drop", "user": "bob"})
    assert len(result.result["affected"]) == 1
    await bob.closed()
    await alice.send({"op": 1, "data": 1})
    assert await alice.recv() == {"op": 4}


@pytest.mark.parametrize("form", ["object", "bool"])
async def test_invalid_session_resumable_keeps_session(
    client: Client, server: FakeServer, form: str
) -> None:
    gw, ready = await client.ready()
    await server.apply({"kind": "invalid_session", "resumable": True, "form": form})
    frame = await gw.recv()
    assert frame == ({"op": 7, "data": {"resumable": True}} if form == "object"
                     else {"op": 7, "data": True})
    gw.cut()
    gw2 = await client.connect()
    await gw2.recv()
    await gw2.resume(client.tokens["alice"], ready["data"]["session_id"], 1)
    assert (await gw2.recv())["type"] == "resumed"


async def test_invalid_session_not_resumable_ends_session(
    client: Client, server: FakeServer
) -> None:
    gw, ready = await client.ready()
    await server.apply({"kind": "invalid_session", "resumable": False, "form": "bool"})
    assert await gw.recv() == {"op": 7, "data": False}
    gw.cut()
    gw2 = await client.connect()
    await gw2.recv()
    await gw2.resume(client.tokens["alice"], ready["data"]["session_id"], 1)
    assert await gw2.recv() == INVALID


async def test_forget_sessions_makes_resume_fail(client: Client, server: FakeServer) -> None:
    gw, ready = await client.ready()
    result = await server.apply({"kind": "forget_sessions"})
    assert result.result == {"forgotten": 1}
    await gw.send({"op": 1, "data": 1})
    assert await gw.recv() == {"op": 4}  # the open socket keeps working
    gw.cut()  # would park it, were it not forgotten
    gw2 = await client.connect()
    await gw2.recv()
    await gw2.resume(client.tokens["alice"], ready["data"]["session_id"], 1)
    assert await gw2.recv() == INVALID


# ---------------------------------------------------------------------- handshake faults


async def test_bad_token_close_instead_of_invalid_session(
    client: Client, server: FakeServer
) -> None:
    await server.apply({"kind": "bad_token_close"})
    gw = await client.connect()
    await gw.recv()
    await gw.send({"op": 2, "data": {"token": "Bearer nope", "intents": []}})
    assert await gw.closed() == (4004, "authentication failed")


async def test_reject_every_identify_with_4004(client: Client, server: FakeServer) -> None:
    token = await client.login()
    await server.apply({"kind": "close", "code": 4004, "reason": "authentication failed",
                        "trigger": "on_identify"})
    for _ in range(2):
        gw = await client.connect()
        assert (await gw.recv())["op"] == 5  # the socket is accepted
        await gw.send({"op": 2, "data": {"token": f"Bearer {token}", "intents": []}})
        assert await gw.closed() == (4004, "authentication failed")
    assert server.session_list() == []


async def test_invalid_session_on_resume_trigger(client: Client, server: FakeServer) -> None:
    gw, ready = await client.ready()
    gw.cut()
    await eventually(lambda: server.session_list()[0]["state"] == "parked")
    await server.apply({"kind": "invalid_session", "resumable": True, "trigger": "on_resume",
                        "count": 1})
    gw2 = await client.connect()
    await gw2.recv()
    await gw2.resume(client.tokens["alice"], ready["data"]["session_id"], 1)
    assert await gw2.recv() == {"op": 7, "data": {"resumable": True}}


async def test_drop_on_heartbeat_trigger(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready()
    await server.apply({"kind": "drop", "trigger": "on_heartbeat", "count": 1})
    await gw.send({"op": 1, "data": 1})
    code, _ = await gw.closed()
    assert code in (None, 1006)


async def test_delay_hello_and_heartbeat_interval(client: Client, server: FakeServer) -> None:
    await server.apply({"kind": "delay_hello", "seconds": 2.0, "count": 1})
    await server.apply({"kind": "heartbeat_interval", "ms": 10_000})
    start = time.monotonic()
    gw = await client.connect()
    hello = await gw.recv()
    assert time.monotonic() - start >= 2.0 * TIMESCALE  # the delay is a lower bound
    assert hello == {"op": 5, "data": {"heartbeat_interval": round(10_000 * TIMESCALE)}}
    start = time.monotonic()
    gw2 = await client.connect()
    assert (await gw2.recv())["data"]["heartbeat_interval"] == 1000  # standing until cleared
    server.reset()
    gw3 = await client.connect()
    assert (await gw3.recv())["data"]["heartbeat_interval"] == round(45_000 * TIMESCALE)


# ---------------------------------------------------------------------- frames


async def test_garbage_and_raw_frames(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready()
    await server.apply({"kind": "garbage", "text": "<<garbage>>"})
    msg = await gw.recv_raw()
    assert msg.data == "<<garbage>>"
    await server.apply({"kind": "send_frame", "frame": {"op": 0, "type": "odd"}})
    assert await gw.recv() == {"op": 0, "type": "odd"}


async def test_emit_event_is_sequenced_and_replayable(client: Client, server: FakeServer) -> None:
    gw, ready = await client.ready()
    result = await server.apply({"kind": "emit_event", "type": "space.update",
                                 "data": {"id": "1"}})
    assert result.result == {"dispatched": 1}
    assert await gw.recv() == {"op": 0, "type": "space.update", "data": {"id": "1"}, "seq": 2}
    gw.cut()
    await eventually(lambda: server.session_list()[0]["state"] == "parked")
    await server.apply({"kind": "emit_event", "type": "channel.update", "data": {}})
    gw2 = await client.connect()
    await gw2.recv()
    await gw2.resume(client.tokens["alice"], ready["data"]["session_id"], 2)
    assert (await gw2.recv())["type"] == "channel.update"
    assert (await gw2.recv())["data"]["replayed"] == 1


async def test_act_as_bob_posts_edits_deletes(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready("alice")
    posted = await server.apply({"kind": "act_as", "user": "bob", "action": "post",
                                 "content": "from bob", "nonce": "b1"})
    message = posted.result["message"]
    frame = await gw.recv()
    assert frame["type"] == "message.create" and frame["data"] == message
    assert server.store.message(message["id"]) == message
    await server.apply({"kind": "act_as", "user": "bob", "action": "edit",
                        "message_id": message["id"], "content": "edited"})
    assert (await gw.recv())["data"]["content"] == "edited"
    await server.apply({"kind": "act_as", "user": "bob", "action": "delete",
                        "message_id": message["id"]})
    deleted = await gw.recv()
    assert deleted["type"] == "message.delete" and deleted["data"]["id"] == message["id"]
    assert server.messages() == []
    with pytest.raises(ApiError) as refused:
        await server.apply({"kind": "act_as", "user": "carol", "action": "delete",
                            "message_id": "1"})
    assert refused.value.status == 404
    with pytest.raises(ApiError) as unknown:
        await server.apply({"kind": "act_as", "user": "mallory", "action": "typing"})
    assert unknown.value.status == 404


# ---------------------------------------------------------------------- REST


async def test_rest_hang_forever_before_store(client: Client, server: FakeServer) -> None:
    await server.apply({"kind": "rest_hang", "method": "POST", "path": "/channels/*/messages"})
    token = await client.login()
    cid = await client.channel_id()
    with pytest.raises(asyncio.TimeoutError):
        await client.request("POST", f"/channels/{cid}/messages", token=token,
                             json_body={"content": "lost?"}, timeout=0.5)
    assert server.messages() == []
    await eventually(lambda: any(r["data"].get("cancelled") for r in server.history_records()
                                 if r["kind"] == "http"))


async def test_rest_hang_after_store(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready()
    await server.apply({"kind": "rest_hang", "method": "POST", "path": "/channels/*/messages",
                        "stage": "after", "count": 1})
    cid = await client.channel_id()
    with pytest.raises(asyncio.TimeoutError):
        await client.request("POST", f"/channels/{cid}/messages", token=client.tokens["alice"],
                             json_body={"content": "stored", "nonce": "n1"}, timeout=0.5)
    assert [m["content"] for m in server.messages()] == ["stored"]
    assert (await gw.recv())["data"]["content"] == "stored"
    await client.post("alice", "stored", nonce="n1")  # a blind retry: stored again
    assert [m["nonce"] for m in server.messages()] == ["n1", "n1"]


async def test_rest_hang_for_seconds(client: Client, server: FakeServer) -> None:
    await server.apply({"kind": "rest_hang", "path": "/users/@me", "seconds": 1.0})
    token = await client.login()
    start = time.monotonic()
    status, _, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 200 and time.monotonic() - start >= 1.0 * TIMESCALE


async def test_rest_fail_with_status_and_body(client: Client, server: FakeServer) -> None:
    token = await client.login()
    await server.apply({"kind": "rest_fail", "method": "GET", "path": "/users/@me",
                        "status": 503, "body": "upstream down", "count": 1})
    await server.apply({"kind": "rest_fail", "path": "/users/@me/spaces", "status": 500,
                        "count": 1})
    status, body, _ = await client.request("GET", "/users/@me", token=token)
    assert (status, body) == (503, "upstream down")
    status, body, _ = await client.request("GET", "/users/@me/spaces", token=token)
    assert status == 500 and body["error"]["code"] == "internal_error"
    status, _, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 200


async def test_rest_rate_limit_next_n(client: Client, server: FakeServer) -> None:
    token = await client.login()
    await server.apply({"kind": "rest_rate_limit", "path": "/users/@me", "retry_after": 2.0,
                        "count": 2})
    for _ in range(2):
        status, body, resp = await client.request("GET", "/users/@me", token=token)
        assert status == 429 and body["error"]["code"] == "rate_limited"
        assert resp.headers["Retry-After"] == "0.2" and body["retry_after"] == 0.2
    status, _, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 200


async def test_rest_latency_and_malformed(client: Client, server: FakeServer) -> None:
    token = await client.login()
    await server.apply({"kind": "rest_latency", "seconds": 1.0, "count": 1})
    start = time.monotonic()
    status, _, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 200 and time.monotonic() - start >= 0.1
    await server.apply({"kind": "rest_malformed", "path": "/users/@me"})
    status, body, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 200 and body == '{"data": {"id": '
    with pytest.raises(ValueError):
        json.loads(body)


async def test_revoke_tokens(client: Client, server: FakeServer) -> None:
    token = await client.login()
    result = await server.apply({"kind": "revoke_tokens"})
    assert result.result["revoked"] >= 1
    status, _, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 401
    gw = await client.connect()
    await gw.recv()
    assert await gw.identify(token) == INVALID


@pytest.mark.parametrize(("status", "code"), [(401, "unauthorized"), (500, "internal_error")])
async def test_login_fail(client: Client, server: FakeServer, status: int, code: str) -> None:
    await server.apply({"kind": "login_fail", "status": status, "count": 1})
    got, body, _ = await client.request(
        "POST", "/auth/login", json_body={"username": "alice", "password": "password"}
    )
    assert got == status and body["error"]["code"] == code
    await client.login()  # count 1: the next login works


async def test_reset_clears_all(server: FakeServer) -> None:
    await server.apply({"kind": "withhold_acks"})
    await server.apply({"kind": "rest_latency", "seconds": 1})
    assert len(server.faults()) == 2
    assert server.reset() == 2 and server.faults() == []


async def test_act_as_typing_and_reactions(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready("alice")
    message = await client.post("alice", "for bob to react to")
    await gw.recv()
    await server.apply({"kind": "act_as", "user": "bob", "action": "typing"})
    typing = await gw.recv()
    assert typing["type"] == "typing.start" and typing["data"]["channel_id"] == message[
        "channel_id"]
    await server.apply({"kind": "act_as", "user": "bob", "action": "react",
                        "message_id": message["id"], "emoji": "+1"})
    assert (await gw.recv())["type"] == "reaction.add"
    await server.apply({"kind": "act_as", "user": "bob", "action": "unreact",
                        "message_id": message["id"], "emoji": "+1"})
    assert (await gw.recv())["type"] == "reaction.remove"
