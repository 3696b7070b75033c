"""REST calls of the protocol page, the seed data, and section 5's REST rows."""

from __future__ import annotations

from fs_helpers import Client

from fake_server import FakeServer


async def test_health_needs_no_token(client: Client) -> None:
    async with client.http.get(client.server.info.health, ssl=client.ssl) as resp:
        assert resp.status == 200
        assert await resp.json() == {"ok": True}


async def test_login_and_seed_data(client: Client) -> None:
    token = await client.login("alice")
    assert len(token) == 64
    status, me, resp = await client.request("GET", "/users/@me", token=token)
    assert status == 200 and me["data"]["username"] == "alice"
    assert resp.headers["Content-Type"] == "application/json"  # no charset
    status, spaces, _ = await client.request("GET", "/users/@me/spaces", token=token)
    assert [(s["name"], s["slug"]) for s in spaces["data"]] == [("Accord", "accord")]
    assert "member_count" not in spaces["data"][0]
    space_id = spaces["data"][0]["id"]
    _, space, _ = await client.request("GET", f"/spaces/{space_id}", token=token)
    assert space["data"]["id"] == space_id
    _, channels, _ = await client.request("GET", f"/spaces/{space_id}/channels", token=token)
    assert [c["name"] for c in channels["data"]] == ["general", "random"]
    _, members, _ = await client.request("GET", f"/spaces/{space_id}/members", token=token)
    ids = {client.server.store.user_by_name(n)["id"]  # type: ignore[index]
           for n in ("alice", "bob", "carol")}
    assert {m["user_id"] for m in members["data"]} == ids
    assert all("user" not in m for m in members["data"])  # no embedded user
    status, roles, _ = await client.request("GET", f"/spaces/{space_id}/roles", token=token)
    assert status == 200 and [r["name"] for r in roles["data"]] == ["@everyone"]
    assert "space_id" not in roles["data"][0]
    assert all(m["roles"] == [roles["data"][0]["id"]] for m in members["data"])


async def test_login_probe_get_is_an_empty_405(client: Client) -> None:
    status, body, resp = await client.request("GET", "/auth/login")
    assert (status, body, resp.headers.get("Content-Type")) == (405, None, None)


async def test_wrong_credentials(client: Client) -> None:
    status, body, _ = await client.request(
        "POST", "/auth/login", json_body={"username": "alice", "password": "nope"}
    )
    assert status == 401
    assert body == {"error": {"code": "unauthorized", "message": "invalid credentials"}}


async def test_missing_or_bad_token_is_401(client: Client) -> None:
    expected = {"error": {"code": "unauthorized", "message": "invalid or missing authentication"}}
    for token in (None, "f" * 64):
        status, body, _ = await client.request("GET", "/users/@me", token=token)
        assert (status, body) == (401, expected)


async def test_unknown_route_is_empty_404(client: Client) -> None:
    token = await client.login()
    status, body, resp = await client.request("GET", "/no/such/route", token=token)
    assert (status, body, resp.headers.get("Content-Type")) == (404, None, None)


JSON_TYPE = {"Content-Type": "application/json"}


async def test_body_errors_are_plain_text_400_422_415(client: Client) -> None:
    token = await client.login()
    cid = await client.channel_id()
    path = f"/channels/{cid}/messages"
    cases = [
        ("{not json", JSON_TYPE, 400, "Failed to parse the request body as JSON: "),
        ("", JSON_TYPE, 400, "Failed to parse the request body as JSON: "),
        ('{"nonce": "x"}', JSON_TYPE, 422, "missing field `content`"),
        ('{"content": 5}', JSON_TYPE, 422, "field `content`: invalid type"),
        ('{"content": "x", "reply_to": []}', JSON_TYPE, 422, "field `reply_to`"),
        ('["content"]', JSON_TYPE, 422, "expected a JSON object"),
        ('{"content": "no type"}', {}, 415, "Content-Type: application/json"),
        ('{"content": "wrong type"}', {"Content-Type": "text/plain"}, 415, "Content-Type"),
    ]
    for body, headers, status, text in cases:
        got, answer, resp = await client.request("POST", path, token=token, data=body,
                                                 headers=headers)
        assert got == status and text in answer, (body, headers, got, answer)
        assert resp.headers["Content-Type"].startswith("text/plain")
    assert client.server.messages() == []  # nothing stored, the 415 ones included
    status, answer, _ = await client.request("POST", "/auth/login", json_body={"username": "a"})
    assert status == 422 and "missing field `password`" in answer


async def test_messages_create_list_edit_delete(client: Client) -> None:
    token = await client.login()
    cid = await client.channel_id()
    ids = [(await client.post("alice", f"m{i}"))["id"] for i in range(5)]
    assert ids == sorted(ids, key=int)
    _, newest, _ = await client.request("GET", f"/channels/{cid}/messages?limit=3", token=token)
    assert [m["content"] for m in newest["data"]] == ["m4", "m3", "m2"]
    # A newest-first page's cursor is its oldest id.
    assert newest["cursor"] == {"after": ids[2], "has_more": True}
    _, after, _ = await client.request(
        "GET", f"/channels/{cid}/messages?after={ids[1]}&limit=50", token=token
    )
    assert [m["content"] for m in after["data"]] == ["m2", "m3", "m4"]
    assert after["cursor"] == {"after": ids[4], "has_more": False}
    message = after["data"][0]
    for key in ("id", "channel_id", "space_id", "author_id", "content", "type", "timestamp",
                "edited_at", "mentions", "attachments", "embeds", "reactions", "reply_to"):
        assert key in message
    assert {k: message[k] for k in ("tts", "pinned", "mention_everyone", "mention_roles",
                                    "flags", "webhook_id", "thread_id", "reply_count",
                                    "title", "reactions")} == {
        "tts": False, "pinned": False, "mention_everyone": False, "mention_roles": [],
        "flags": 0, "webhook_id": None, "thread_id": None, "reply_count": 0, "title": None,
        "reactions": None}
    assert "nonce" not in message
    status, edited, _ = await client.request(
        "PATCH", f"/channels/{cid}/messages/{ids[0]}", token=token, json_body={"content": "e"}
    )
    assert status == 200 and edited["data"]["content"] == "e" and edited["data"]["edited_at"]
    status, deleted, _ = await client.request(
        "DELETE", f"/channels/{cid}/messages/{ids[0]}", token=token
    )
    assert (status, deleted) == (200, {"data": None})
    assert ids[0] not in [m["id"] for m in client.server.messages()]


async def test_only_the_author_edits(client: Client) -> None:
    message = await client.post("alice", "mine")
    bob = await client.login("bob")
    status, body, _ = await client.request(
        "PATCH", f"/channels/{message['channel_id']}/messages/{message['id']}",
        token=bob, json_body={"content": "hijack"},
    )
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_nonce_is_neither_echoed_nor_deduplicated(client: Client, server: FakeServer) -> None:
    first = await client.post("alice", "twice", nonce="n-1")
    again = await client.post("alice", "twice", nonce="n-1")
    assert again["id"] != first["id"] and "nonce" not in first and "nonce" not in again
    assert [(m["content"], m["nonce"]) for m in server.messages()] == [("twice", "n-1")] * 2
    rows = server.store._db.execute("SELECT nonce FROM messages").fetchall()
    assert [r["nonce"] for r in rows] == ["n-1", "n-1"]  # the column the rig reads


async def test_reactions_and_typing(client: Client) -> None:
    token = await client.login()
    message = await client.post("alice", "react to me")
    base = f"/channels/{message['channel_id']}/messages/{message['id']}/reactions/%F0%9F%91%8D/@me"
    status, body, _ = await client.request("PUT", base, token=token)
    assert (status, body) == (200, {"data": None})
    listing = f"/channels/{message['channel_id']}/messages"
    thumbs = {"emoji": {"id": None, "name": "👍"}, "count": 1}
    _, mine, _ = await client.request("GET", listing, token=token)
    assert mine["data"][0]["reactions"] == [{**thumbs, "me": True}]
    _, bobs, _ = await client.request("GET", listing, token=await client.login("bob"))
    assert bobs["data"][0]["reactions"] == [{**thumbs, "me": False}]  # relative to the reader
    status, _, _ = await client.request("DELETE", base, token=token)
    _, after, _ = await client.request("GET", listing, token=token)
    assert status == 200 and after["data"][0]["reactions"] is None
    status, _, _ = await client.request(
        "POST", f"/channels/{message['channel_id']}/typing", token=token, json_body={}
    )
    assert status == 200


async def test_register_and_logout(client: Client) -> None:
    status, body, _ = await client.request(
        "POST", "/auth/register", json_body={"username": "dave", "password": "pw"}
    )
    assert status == 200 and body["data"]["user"]["username"] == "dave"
    token = body["data"]["token"]
    status, again, _ = await client.request(
        "POST", "/auth/register", json_body={"username": "dave", "password": "pw"}
    )
    assert status == 409 and again["error"]["code"] == "already_exists"
    status, _, _ = await client.request("POST", "/auth/logout", token=token)
    assert status == 200
    status, _, _ = await client.request("GET", "/users/@me", token=token)
    assert status == 401


async def test_unknown_channel_is_404_envelope(client: Client) -> None:
    token = await client.login()
    status, body, _ = await client.request("GET", "/channels/12345/messages", token=token)
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_content_rules_are_the_same_for_create_and_edit(client: Client) -> None:
    message = await client.post("alice", "short")
    token = await client.login()
    path = f"/channels/{message['channel_id']}/messages"
    too_long = {"content": "x" * 4001}
    for method, url in (("POST", path), ("PATCH", f"{path}/{message['id']}")):
        status, body, _ = await client.request(method, url, token=token, json_body=too_long)
        assert (status, body["error"]["code"]) == (413, "payload_too_large"), method
        status, body, _ = await client.request(method, url, token=token, json_body={"content": " "})
        assert (status, body["error"]["code"]) == (400, "invalid_request"), method
