"""Gateway behaviour of the protocol page: handshake, seq, heartbeat, resume, parking."""

from __future__ import annotations

import aiohttp
from fs_helpers import TIMESCALE, Client, eventually

from fake_server import FakeServer


async def test_hello_identify_ready(client: Client) -> None:
    token = await client.login()
    gw = await client.connect()
    hello = await gw.recv()
    assert hello == {"op": 5, "data": {"heartbeat_interval": round(45000 * TIMESCALE)}}
    ready = await gw.identify(token)
    assert ready["op"] == 0 and ready["type"] == "ready" and ready["seq"] == 1
    data = ready["data"]
    for key in ("session_id", "user_id", "user", "spaces", "channels", "members", "roles",
                "users", "dm_channels", "presences", "unread", "server_version"):
        assert key in data
    assert data["api_version"] == "v1" and data["user"]["username"] == "alice"
    assert [c["name"] for c in data["channels"]] == ["general", "random"]


async def test_heartbeat_acked_before_and_after_identify(client: Client) -> None:
    token = await client.login()
    gw = await client.connect()
    await gw.recv()
    await gw.send({"op": 1, "data": 0})
    assert await gw.recv() == {"op": 4}
    await gw.identify(token)
    await gw.send({"op": 1, "data": 1})
    assert await gw.recv() == {"op": 4}


async def test_events_fan_out_with_per_session_seq(client: Client) -> None:
    alice, _ = await client.ready("alice")
    bob, _ = await client.ready("bob")
    await client.post("alice", "hello")
    await client.post("bob", "hi")
    for gw in (alice, bob):
        first = await gw.recv()
        second = await gw.recv()
        assert (first["type"], first["seq"], first["data"]["content"]) == (
            "message.create", 2, "hello")
        assert (second["seq"], second["data"]["content"]) == (3, "hi")


async def test_typing_goes_to_others_only(client: Client) -> None:
    alice, _ = await client.ready("alice")
    bob, _ = await client.ready("bob")
    token = client.tokens["alice"]
    cid = await client.channel_id()
    await client.request("POST", f"/channels/{cid}/typing", token=token, json_body={})
    typing = await bob.recv()
    assert typing["type"] == "typing.start" and typing["data"]["channel_id"] == cid
    await client.post("alice", "after typing")
    assert (await alice.recv())["type"] == "message.create"  # no typing.start before it


async def test_presence_update_dispatched(client: Client) -> None:
    alice, _ = await client.ready("alice")
    bob, _ = await client.ready("bob")
    await alice.send({"op": 8, "data": {"status": "idle"}})
    frame = await bob.recv()
    assert frame["type"] == "presence.update" and frame["data"]["status"] == "idle"


async def _drop_and_post(client: Client, gw_close_code: int) -> tuple[str, int]:
    gw, ready = await client.ready("alice")
    await client.post("bob", "before")
    assert (await gw.recv())["seq"] == 2
    await gw.ws.close(code=gw_close_code)
    await eventually(lambda: all(s["state"] == "parked" for s in client.server.session_list())
                     or not client.server.session_list())
    return ready["data"]["session_id"], 2


async def test_resume_replays_missed_events(client: Client, server: FakeServer) -> None:
    session_id, seq = await _drop_and_post(client, 4000)
    for i in range(3):
        await client.post("bob", f"missed {i}")
    gw = await client.connect()
    await gw.recv()
    await gw.resume(client.tokens["alice"], session_id, seq)
    frames = [await gw.recv() for _ in range(4)]
    assert [f["seq"] for f in frames[:3]] == [3, 4, 5]
    assert [f["data"]["content"] for f in frames[:3]] == ["missed 0", "missed 1", "missed 2"]
    assert frames[3] == {"op": 0, "type": "resumed", "seq": 5,
                         "data": {"session_id": session_id, "seq": 5, "replayed": 3}}
    await client.post("bob", "live")
    assert (await gw.recv())["seq"] == 6


async def test_client_close_1000_ends_the_session(client: Client) -> None:
    session_id, seq = await _drop_and_post(client, 1000)
    assert client.server.session_list() == []
    gw = await client.connect()
    await gw.recv()
    await gw.resume(client.tokens["alice"], session_id, seq)
    assert await gw.recv() == {"op": 7, "data": {"resumable": False}}
    assert (await gw.closed())[0] in (None, 1006)


async def test_resume_rejections(client: Client) -> None:
    session_id, _ = await _drop_and_post(client, 4000)
    bob_token = await client.login("bob")
    cases = [
        (client.tokens["alice"], "no-such-session", 1),
        (bob_token, session_id, 2),  # another user's session
        (client.tokens["alice"], session_id, 0),
        (client.tokens["alice"], session_id, 99),  # ahead of the server
    ]
    for token, sid, seq in cases:
        gw = await client.connect()
        await gw.recv()
        await gw.resume(token, sid, seq)
        assert await gw.recv() == {"op": 7, "data": {"resumable": False}}, (sid, seq)
        await gw.closed()


async def test_resume_older_than_buffer_is_invalid(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    from fake_server.tls import client_context

    async with FakeServer(make_config(replay_buffer=2)) as srv, Client(
        srv, client_context(pki.ca)
    ) as c:
        session_id, seq = await _drop_and_post(c, 4000)
        for i in range(3):
            await c.post("bob", f"overflow {i}")
        gw = await c.connect()
        await gw.recv()
        await gw.resume(c.tokens["alice"], session_id, seq)
        assert await gw.recv() == {"op": 7, "data": {"resumable": False}}


async def test_resume_takes_over_an_open_socket(client: Client) -> None:
    old, ready = await client.ready("alice")
    session_id = ready["data"]["session_id"]
    new = await client.connect()
    await new.recv()
    await new.resume(client.tokens["alice"], session_id, 1)
    resumed = await new.recv()
    assert resumed["type"] == "resumed" and resumed["data"]["replayed"] == 0
    assert await old.closed() == (4000, "session taken over")
    await client.post("bob", "to the new socket")
    assert (await new.recv())["data"]["content"] == "to the new socket"


async def test_expired_session_cannot_resume(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    from fake_server.tls import client_context

    async with FakeServer(make_config(resume_window_s=0.5)) as srv, Client(
        srv, client_context(pki.ca)
    ) as c:
        session_id, seq = await _drop_and_post(c, 4000)
        # Window 0.5 s x 0.1 = 50 ms: wait until the registry lets it go.
        await eventually(lambda: srv.sessions.get_resumable(session_id) is None)
        gw = await c.connect()
        await gw.recv()
        await gw.resume(c.tokens["alice"], session_id, seq)
        assert await gw.recv() == {"op": 7, "data": {"resumable": False}}


async def test_silent_connection_is_dropped_and_parked(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    from fake_server.tls import client_context

    async with FakeServer(make_config(silence_drop_s=2.0)) as srv, Client(
        srv, client_context(pki.ca)
    ) as c:
        gw, _ = await c.ready("alice")
        code, reason = await gw.closed(timeout=5)  # 2 s x 0.1: no close frame
        assert code in (None, 1006) and reason == ""
        closes = [r for r in srv.history_records() if r["kind"] == "conn"
                  and r["name"] == "close"]
        assert closes[-1]["data"]["by"] == "drop" and closes[-1]["data"]["parked"] is True
        assert srv.session_list()[0]["state"] == "parked"


async def test_handshake_timeout(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    from fake_server.tls import client_context

    async with FakeServer(make_config(handshake_timeout_s=1.0)) as srv, Client(
        srv, client_context(pki.ca)
    ) as c:
        gw = await c.connect()
        await gw.recv()
        assert await gw.recv() == {"op": 7, "data": {"resumable": False}}
        assert (await gw.closed())[0] in (None, 1006)


async def test_ws_path_accepts_query(client: Client) -> None:
    ws = await client.http.ws_connect(client.server.info.gateway + "?v=1&encoding=json",
                                      ssl=client.ssl)
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.TEXT and '"op":5' in msg.data
    await ws.close()


async def test_stray_resume_does_not_kill_a_live_session(client: Client) -> None:
    live, ready = await client.ready("alice")
    stray = await client.connect()
    await stray.recv()
    await stray.resume(client.tokens["alice"], ready["data"]["session_id"], 99)
    assert await stray.recv() == {"op": 7, "data": {"resumable": False}}
    await client.post("bob", "still delivered")
    assert (await live.recv())["data"]["content"] == "still delivered"


async def test_duplicate_nonce_dispatches_once(client: Client, server: FakeServer) -> None:
    gw, _ = await client.ready("bob")
    first = await client.post("alice", "exactly once", nonce="dup")
    again = await client.post("alice", "exactly once", nonce="dup")
    assert again == first
    await server.apply({"kind": "send_frame", "frame": {"marker": 1}})
    frames = [await gw.recv(), await gw.recv()]
    assert [f.get("type") for f in frames] == ["message.create", None]  # then the marker
    assert frames[1] == {"marker": 1}


async def test_reactions_and_member_join_are_dispatched(client: Client) -> None:
    gw, _ = await client.ready("bob")
    message = await client.post("alice", "react")
    await gw.recv()
    token = client.tokens["alice"]
    url = f"/channels/{message['channel_id']}/messages/{message['id']}/reactions/ok/@me"
    await client.request("PUT", url, token=token)
    added = await gw.recv()
    assert added["type"] == "reaction.add"
    assert added["data"] == {"channel_id": message["channel_id"], "message_id": message["id"],
                             "user_id": message["author_id"], "emoji": "ok"}
    await client.request("DELETE", url, token=token)
    assert (await gw.recv())["type"] == "reaction.remove"
    await client.request("POST", "/auth/register",
                         json_body={"username": "erin", "password": "pw"})
    joined = await gw.recv()
    assert joined["type"] == "member.join" and joined["data"]["user"]["username"] == "erin"
