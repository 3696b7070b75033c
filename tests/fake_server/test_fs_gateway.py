"""Gateway behaviour of the protocol page: handshake, seq, heartbeat, resume, parking."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
from typing import Any

import aiohttp
import pytest
from fs_helpers import TIMESCALE, Client, eventually, session_records

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


async def test_ready_users_and_presences_are_those_sharing_a_space(
    client: Client, server: FakeServer
) -> None:
    """A user in no space of alice's is neither in her READY's users nor its presences
    (everyone on the server made each READY grow with a load run's whole crowd)."""
    stranger = server.store.register("stranger", "password", None)
    with server.store._db:
        server.store._db.execute("DELETE FROM members WHERE user_id=?", (stranger["id"],))
    await client.ready("stranger")  # online, but shares no space with alice
    _, bob_ready = await client.ready("bob")
    _, ready = await client.ready("alice")
    names = {u["username"] for u in ready["data"]["users"]}
    assert names == {"alice", "bob", "carol"}
    online = {p["user_id"] for p in ready["data"]["presences"]}
    assert bob_ready["data"]["user_id"] in online and stranger["id"] not in online


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


async def test_presence_update_goes_to_everyone_the_acting_user_too(client: Client) -> None:
    alice, _ = await client.ready("alice")
    bob, _ = await client.ready("bob")
    await alice.send({"op": 8, "data": {"status": "idle"}})
    for gw in (bob, alice):
        frame = await gw.recv()
        assert frame["type"] == "presence.update" and frame["data"]["status"] == "idle"
        assert frame["data"]["user_id"] == client.server.store.user_by_name("alice")["id"]  # type: ignore[index]


async def _park_and_post(client: Client) -> tuple[str, int]:
    """alice's session, parked by a cut without a close frame after seq 2."""
    gw, ready = await client.ready("alice")
    await client.post("bob", "before")
    assert (await gw.recv())["seq"] == 2
    gw.cut()
    sid = ready["data"]["session_id"]
    await eventually(lambda: [s["state"] for s in client.server.session_list()
                              if s["session_id"] == sid] == ["parked"])
    return sid, 2


async def test_resume_replays_missed_events(client: Client, server: FakeServer) -> None:
    session_id, seq = await _park_and_post(client)
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


def _ssl_abort_without_a_guard(self: asyncio.sslproto._SSLProtocolTransport) -> None:
    """`_SSLProtocolTransport.abort` as in Debian's Python 3.11.2 (the rig image's):
    on a transport closed twice (its protocol gone) it raises AttributeError; 3.11.7
    checks. The host venv then fails as the container does."""
    self._closed = True
    self._ssl_protocol._abort()  # type: ignore[union-attr, call-arg]


async def test_a_peer_gone_without_a_close_frame_is_closed_at_once_and_resumes(
    client: Client, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's heartbeat-timeout drop (or a proxy's reset) while the server still
    dispatches to the socket: the server records the close at once and parks the
    session, so RESUME on the next socket replays, not INVALID_SESSION (the starter
    scenarios in containers failed so)."""
    monkeypatch.setattr(asyncio.sslproto._SSLProtocolTransport, "abort",
                        _ssl_abort_without_a_guard)
    gw, ready = await client.ready("alice")
    session_id = ready["data"]["session_id"]
    await client.login("bob")
    gw.cut()
    for i in range(3):  # frames for the socket that is gone
        await client.post("bob", f"after the cut {i}")

    def closed() -> list[dict[str, Any]]:
        return [r["data"] for r in server.history_records()
                if r["kind"] == "conn" and r["name"] == "close"]

    # Well within the silence drop (9 s here): the server must not wait for it.
    [close] = await eventually(closed, deadline=2.0)
    assert (close["by"], close["code"], close["parked"]) == ("lost", 1006, True)
    assert [s["state"] for s in server.session_list()] == ["parked"]
    again = await client.connect()
    await again.recv()
    await again.resume(client.tokens["alice"], session_id, 1)
    frames = [await again.recv() for _ in range(4)]
    assert [f["data"]["content"] for f in frames[:3]] == [
        f"after the cut {i}" for i in range(3)]
    assert frames[3]["type"] == "resumed"


@pytest.mark.parametrize("code", [1000, 1001, 4000, 4999])
async def test_any_client_close_frame_ends_the_session(client: Client, code: int) -> None:
    gw, ready = await client.ready("alice")
    session_id = ready["data"]["session_id"]
    await gw.ws.close(code=code)
    await eventually(lambda: client.server.session_list() == [])
    again = await client.connect()
    await again.recv()
    await again.resume(client.tokens["alice"], session_id, 1)
    assert await again.recv() == {"op": 7, "data": {"resumable": False}}
    assert (await again.closed())[0] in (None, 1006)
    ended = session_records(client.server, "ended")
    assert [(r["session_id"], r["reason"]) for r in ended] == [(session_id,
                                                                 "client close frame")]


async def test_resume_rejections(client: Client) -> None:
    session_id, _ = await _park_and_post(client)
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
        session_id, seq = await _park_and_post(c)
        for i in range(3):
            await c.post("bob", f"overflow {i}")
        gw = await c.connect()
        await gw.recv()
        await gw.resume(c.tokens["alice"], session_id, seq)
        assert await gw.recv() == {"op": 7, "data": {"resumable": False}}


async def test_resume_of_a_session_with_an_open_socket_is_refused(client: Client) -> None:
    old, ready = await client.ready("alice")
    session_id = ready["data"]["session_id"]
    new = await client.connect()
    await new.recv()
    await new.resume(client.tokens["alice"], session_id, 1)
    assert await new.recv() == {"op": 7, "data": {"resumable": False}}
    assert (await new.closed())[0] in (None, 1006)
    await client.post("bob", "to the old socket")  # left as it was
    assert (await old.recv())["data"]["content"] == "to the old socket"
    assert [s["state"] for s in client.server.session_list()] == ["open"]


async def test_expired_session_cannot_resume(make_config, pki) -> None:  # type: ignore[no-untyped-def]
    from fake_server.tls import client_context

    async with FakeServer(make_config(resume_window_s=0.5)) as srv, Client(
        srv, client_context(pki.ca)
    ) as c:
        session_id, seq = await _park_and_post(c)
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


async def test_a_nonce_posted_twice_is_stored_and_dispatched_twice(
    client: Client, server: FakeServer
) -> None:
    gw, _ = await client.ready("bob")
    first = await client.post("alice", "twice", nonce="dup")
    again = await client.post("alice", "twice", nonce="dup")
    assert again["id"] != first["id"] and "nonce" not in first
    frames = [await gw.recv(), await gw.recv()]
    assert [(f["type"], f["data"]["id"]) for f in frames] == [
        ("message.create", first["id"]), ("message.create", again["id"])]
    assert all("nonce" not in f["data"] for f in frames)
    assert [m["nonce"] for m in server.messages()] == ["dup", "dup"]  # kept for the rig


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
