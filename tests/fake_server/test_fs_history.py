"""History: everything on the wire, timestamped, redacted, as a file and over the API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from fs_helpers import Client, eventually

from fake_server import FakeServer, ServerConfig
from fake_server.history import History
from fake_server.tls import TlsFiles, client_context


async def test_history_records_http_frames_and_connections(
    client: Client, server: FakeServer
) -> None:
    before = time.time()
    gw, _ = await client.ready("alice")
    await client.post("alice", "recorded", nonce="n-9")
    await gw.recv()
    await gw.ws.close(code=4000, message=b"bye")  # a close frame: the session ends
    await eventually(lambda: any(r["kind"] == "conn" and r["name"] == "close"
                                 for r in server.history_records()))
    records = server.history_records()
    kinds = {(r["kind"], r["name"]) for r in records}
    assert {("server", "start"), ("http", "request"), ("http", "response"), ("conn", "open"),
            ("conn", "close"), ("frame", "in"), ("frame", "out")} <= kinds
    assert all(before - 5 < r["t"] < time.time() + 1 for r in records)
    assert [r["i"] for r in records] == sorted(r["i"] for r in records)
    create = next(r for r in records if r["kind"] == "frame" and r["name"] == "out"
                  and r["data"].get("frame", {}).get("type") == "message.create")
    assert create["data"]["frame"]["data"]["content"] == "recorded"
    close = next(r for r in records if r["kind"] == "conn" and r["name"] == "close")
    assert close["data"] | {"conn": 0} == close["data"] | {
        "conn": 0, "code": 4000, "reason": "bye", "by": "client", "parked": False}
    # The file holds the same records, one JSON object per line.
    lines = server.config.history_path.read_text().splitlines()
    assert [json.loads(line)["i"] for line in lines] == [r["i"] for r in records]


async def test_tokens_and_passwords_are_redacted(client: Client, server: FakeServer) -> None:
    token = await client.login("alice")
    gw = await client.connect()
    await gw.recv()
    await gw.identify(token)
    await gw.ws.send_str(f"garbage with {token} inside")  # a non-JSON frame: ignored
    await gw.send({"op": 1, "data": 1})
    assert await gw.recv() == {"op": 4}
    await client.request("GET", "/users/@me", token=token)
    text = server.config.history_path.read_text()
    assert token not in text
    assert '"password"' in text and '"password":"password"' not in text
    assert "[redacted]" in text


async def test_history_spans_restarts(make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    async with FakeServer(config) as first:
        boot1 = first.history.boot
        last1 = first.history_records()[-1]["i"]
    async with FakeServer(config) as second:
        records = second.history_records()
        assert {r["boot"] for r in records} == {boot1, second.history.boot}
        assert [r["i"] for r in records] == list(range(1, len(records) + 1))
        names = [r["name"] for r in second.history_records(after=last1)]
        assert names == ["stop", "start"]


def test_reads_seek_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "h.history.jsonl"
    first = History(path)
    for n in range(1500):
        first.record("frame", "out", {"n": n})
    assert [r["i"] for r in first.read(after=1000, limit=3)] == [1001, 1002, 1003]
    assert len(first.read(after=1)) == 1499
    first.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"i": 1501, "t": 1, "kind": "fra')  # what kill -9 can leave behind
    second = History(path)
    second.record("server", "start", {})
    records = second.read(after=1499)
    assert [(r["i"], r["kind"]) for r in records] == [(1500, "frame"), (1501, "server")]
    assert second.read(after=0, limit=1)[0]["data"] == {"n": 0}


async def test_a_light_history_counts_frames_and_requests_and_keeps_the_rest(
    make_config: Callable[..., ServerConfig], pki: TlsFiles
) -> None:
    assert pki.ca is not None
    config = make_config(history="light")
    async with FakeServer(config) as server:
        async with Client(server, client_context(pki.ca)) as client:
            gw, _ = await client.ready("alice")
            await client.post("alice", "counted", nonce="n-1")
            await gw.recv()
            await gw.ws.close(code=4000, message=b"bye")
            await eventually(lambda: any(r["kind"] == "conn" and r["name"] == "close"
                                         for r in server.history_records()))
        kinds = {r["kind"] for r in server.history_records()}
        assert "frame" not in kinds and "http" not in kinds
        assert {"server", "conn", "session"} <= kinds
    last = server.history_records()[-2:]  # written on close, before `server stop`
    skipped = next(r for r in last if r["kind"] == "history" and r["name"] == "skipped")
    counts = skipped["data"]
    assert counts["detail"] == "light"
    assert counts["frame.in"] >= 1 and counts["frame.out"] >= 3  # HELLO, READY, the message
    assert counts["http.request"] >= 2 and counts["http.response"] >= 2  # login, the post
