"""The real ClientCore through the driver, over TLS on 127.0.0.1, against a
small in-test Accord server: connect, heartbeat, send, survive a drop without a
close frame, resume with the missed events; and the error rows a real socket
produces, as the user reads them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from drivers import Driver, MakeDriver
from mini_accord import MiniAccord
from tls_servers import closed_port, serve_app, serve_raw

from client.core import signals as sig
from client.core.actions import AddServer, SelectChannel, SendMessage, ServerConfig
from client.core.client import ClientCore
from client.core.timings import Timings

TIMINGS = Timings(scale=0.05)  # REST timeout 1.5 s, backoff 0.05-0.1 s
LIVENESS = 10.0
PASSWORD = "s3cret-pw"


def config(base_url: str, name: str = "alpha") -> ServerConfig:
    return ServerConfig(
        name=name, base_url=base_url, username="alice", password=PASSWORD, space="accord"
    )


@pytest.fixture
async def driver(ca_file: Path, new_driver: MakeDriver) -> AsyncIterator[Driver]:
    core = ClientCore(timings=TIMINGS, seed=7, bugs=())
    async with new_driver(core, ca_file=ca_file, timings=TIMINGS) as drv:
        yield drv


def core_of(driver: Driver) -> ClientCore:
    assert isinstance(driver.core, ClientCore)
    return driver.core


def signals(driver: Driver, name: str) -> list[list[Any]]:
    return [r.data["args"] for r in driver.timeline.select(kind="signal", name=name)]


async def synced(driver: Driver, count: int = 1) -> None:
    await driver.wait_for(
        lambda: len(signals(driver, sig.SERVER_SYNCED)) >= count, LIVENESS, f"{count} sync(s)"
    )


async def test_connect_heartbeat_send_drop_resume_and_missed_events(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    server = MiniAccord(heartbeat_ms=50, password=PASSWORD)
    server.post("bob", "before")
    core = core_of(driver)
    async with serve_app(server.app, server_ssl) as port:
        await driver.act(AddServer(config(f"https://127.0.0.1:{port}")))
        await synced(driver)
        await driver.act(SelectChannel("alpha", "general"))
        await driver.wait_for(lambda: bool(signals(driver, sig.MESSAGES_LOADED)), LIVENESS)
        assert server.identifies == 1
        assert driver.snapshot()["composer"]["placeholder"] == "Message #general"

        await driver.wait_for(lambda: server.heartbeats >= 3, LIVENESS, "3 heartbeats")
        assert core.status("alpha") == "connected"  # every beat was ACKed

        await driver.act(SendMessage("alpha", "general", "hello"))
        await driver.wait_for(lambda: bool(signals(driver, sig.MESSAGE_SENT)), LIVENESS)
        assert [m["content"] for m in server.messages] == ["before", "hello"]

        server.drop_all()  # no close frame
        server.post("bob", "missed while away")  # parked: comes back by replay
        await synced(driver, 2)
        assert signals(driver, sig.SERVER_DISCONNECTED) == [["alpha", 1006, ""]]
        assert signals(driver, sig.SERVER_RECONNECTING)[0] == ["alpha", 1, 10]
        assert signals(driver, sig.SERVER_RECONNECTED) == [["alpha"]]
        assert (server.identifies, server.resumes) == (1, 1)
        contents = [m["content"] for m in core.messages("alpha", "100")]
        assert contents == ["before", "hello", "missed while away"]

        banners = [
            r.data["changes"]["banner.text"][1]
            for r in driver.timeline.select(kind="view", name="diff")
            if "banner.text" in r.data["changes"]
        ]
        assert banners[:6] == [
            "Connecting...",
            "",
            "Connection lost. Reconnecting...",
            "Reconnecting... (attempt 1/10)",
            "Reconnected — syncing data...",
            "Reconnected!",
        ]
    dump = driver.timeline.dumps()
    assert PASSWORD not in dump
    assert not any(token in dump for token in server.tokens)


async def test_refused_reads_could_not_connect(driver: Driver) -> None:
    await driver.act(AddServer(config(f"https://127.0.0.1:{closed_port()}")))
    await driver.wait_for(lambda: bool(signals(driver, sig.SERVER_ADD_FAILED)), LIVENESS)
    assert signals(driver, sig.SERVER_ADD_FAILED) == [["alpha", "Could not connect to server"]]
    assert driver.snapshot()["add_server"]["error"] == "Could not connect to server"


async def test_untrusted_certificate_reads_tls_failed(driver: Driver) -> None:
    stranger = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(stranger)
    async with serve_app(MiniAccord().app, stranger) as port:
        await driver.act(AddServer(config(f"https://127.0.0.1:{port}")))
        await driver.wait_for(lambda: bool(signals(driver, sig.SERVER_ADD_FAILED)), LIVENESS)
    assert signals(driver, sig.SERVER_ADD_FAILED) == [["alpha", "TLS/SSL handshake failed"]]


async def test_closed_before_response_reads_no_response(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    async def read_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with serve_raw(read_then_close, server_ssl) as port:
        await driver.act(AddServer(config(f"https://127.0.0.1:{port}")))
        await driver.wait_for(lambda: bool(signals(driver, sig.SERVER_ADD_FAILED)), LIVENESS)
    assert signals(driver, sig.SERVER_ADD_FAILED) == [["alpha", "No response from server"]]


async def test_a_hung_send_reads_request_timed_out_and_restores_the_text(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    server = MiniAccord(heartbeat_ms=200, password=PASSWORD)
    async with serve_app(server.app, server_ssl) as port:
        await driver.act(AddServer(config(f"https://127.0.0.1:{port}")))
        await synced(driver)
        await driver.act(SelectChannel("alpha", "general"))
        server.hang_posts = True
        await driver.act(SendMessage("alpha", "general", "into the void"))
        await driver.wait_for(lambda: bool(signals(driver, sig.MESSAGE_SEND_FAILED)), LIVENESS)
        composer = driver.snapshot()["composer"]
    assert signals(driver, sig.MESSAGE_SEND_FAILED) == [
        ["alpha", "100", "into the void", "Request timed out"]
    ]
    assert (composer["text"], composer["label"]) == (
        "into the void",
        "Failed to send: Request timed out",
    )
    assert driver.timeline.first(kind="effect", name="CancelHttp") is not None


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:{port}", "ws://127.0.0.1:{port}"],
)
async def test_plain_http_is_refused_before_any_socket_opens(driver: Driver, base_url: str) -> None:
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    async with serve_raw(count) as port:
        await driver.act(AddServer(config(base_url.format(port=port))))
        await driver.wait_for(lambda: bool(signals(driver, sig.SERVER_ADD_FAILED)), LIVENESS)
    assert signals(driver, sig.SERVER_ADD_FAILED) == [
        ["alpha", "Only https:// servers are supported"]
    ]
    assert driver.timeline.select(kind="effect") == []  # no request, no socket
    assert connections == 0
    assert driver.snapshot()["add_server"]["error"] == "Only https:// servers are supported"


async def test_withheld_acks_close_4000_heartbeat_timeout_then_resume(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    server = MiniAccord(heartbeat_ms=50, password=PASSWORD)
    async with serve_app(server.app, server_ssl) as port:
        await driver.act(AddServer(config(f"https://127.0.0.1:{port}")))
        await synced(driver)
        server.acks = False
        await driver.wait_for(lambda: bool(signals(driver, sig.SERVER_DISCONNECTED)), LIVENESS)
        assert signals(driver, sig.SERVER_DISCONNECTED) == [["alpha", 4000, "heartbeat timeout"]]
        server.acks = True
        await synced(driver, 2)

        def banner_texts() -> list[str]:
            return [
                r.data["changes"]["banner.text"][1]
                for r in driver.timeline.select(kind="view", name="diff")
                if "banner.text" in r.data["changes"]
            ]

        # The green banner hides by itself: the driver wakes up for the view's deadline
        # and records the hide (the snapshot alone would read hidden by the clock
        # before any step noted it).
        await driver.wait_for(lambda: banner_texts()[-1:] == [""], LIVENESS, "banner hidden")
        assert not driver.snapshot()["banner"]["visible"]
        # (checked before the server shuts down: its shutdown stops the ACKs)
        texts = banner_texts()
        assert texts[2:] == [
            "Heartbeat timeout. Reconnecting...",
            "Reconnecting... (attempt 1/10)",
            "Reconnected — syncing data...",
            "Reconnected!",
            "",
        ]
        # No close frame (a frame would end the session): the RESUME succeeds.
        assert server.close_frames == []
        assert (server.identifies, server.resumes) == (1, 1)
        dropped = driver.timeline.select(kind="conn", name="dropped_without_close_frame")
        assert [(r.data["code"], r.data["reason"]) for r in dropped] == [
            (4000, "heartbeat timeout")
        ]


async def test_message_view_times_out_then_shows_the_late_failure(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    server = MiniAccord(heartbeat_ms=200, password=PASSWORD)
    async with serve_app(server.app, server_ssl) as port:
        await driver.act(AddServer(config(f"https://127.0.0.1:{port}")))
        await synced(driver)
        server.hang_lists = True
        await driver.act(SelectChannel("alpha", "general"))

        def view_text() -> str:
            return str(driver.snapshot()["message_view"]["text"])

        await driver.wait_for(lambda: view_text() == "Loading timed out. Click to retry", LIVENESS)
        # The request is still running; the REST timeout (30 s scaled) ends it later.
        failed = "Failed to load messages: Request timed out\nClick to retry"
        await driver.wait_for(lambda: view_text() == failed, LIVENESS)
    states = [
        r.data["changes"]["message_view.state"][1]
        for r in driver.timeline.select(kind="view", name="diff")
        if "message_view.state" in r.data["changes"]
    ]
    assert states == ["loading", "timed_out", "failed"]
