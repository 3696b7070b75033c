"""The driver's transport mechanics over real TLS on 127.0.0.1, with a scripted
stand-in core: what each socket and request does is reported exactly once, and
every network failure is classified once (client.core.io.NetError)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import WSMsgType, web
from drivers import Driver, MakeDriver, leftovers
from tls_servers import accept_websocket, closed_port, serve_app, serve_raw

from client.core.io import (
    AbortSocket,
    CancelHttp,
    CloseSocket,
    Effect,
    HttpFailed,
    HttpRequest,
    HttpResponse,
    NetError,
    OpenSocket,
    SendText,
    Signal,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
)
from client.driver import DriverError

LIVENESS = 10.0  # generous bound for anything that should happen "at once"


@dataclass(frozen=True)
class Do:
    """The scripted core's only action: perform these effects now."""

    effects: tuple[Effect, ...]


@dataclass
class ScriptedCore:
    inputs: list[Any] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    deadline: float | None = None
    fired_at: list[float] = field(default_factory=list)

    def handle(self, now: float, event: Any) -> None:
        self.inputs.append(event)
        if isinstance(event, Do):
            self.effects.extend(event.effects)

    def advance(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self.fired_at.append(now)
            self.deadline = None
            self.effects.append(Signal("tick", ("alpha",)))

    def next_deadline(self) -> float | None:
        return self.deadline

    def take_effects(self) -> list[Effect]:
        taken, self.effects = self.effects, []
        return taken

    def of(self, kind: type) -> list[Any]:
        return [i for i in self.inputs if isinstance(i, kind)]


@pytest.fixture
async def driver(ca_file: Path, new_driver: MakeDriver) -> Any:
    async with new_driver(ScriptedCore(), ca_file=ca_file) as drv:
        yield drv


def core_of(driver: Driver) -> ScriptedCore:
    core = driver.core
    assert isinstance(core, ScriptedCore)
    return core


async def wait_input(driver: Driver, kind: type, count: int = 1) -> list[Any]:
    core = core_of(driver)
    await driver.wait_for(lambda: len(core.of(kind)) >= count, LIVENESS, kind.__name__)
    return core.of(kind)


class GatewayApp:
    """A WebSocket endpoint whose behaviour each test picks."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.close_frames: list[tuple[int, str]] = []
        self.ended = asyncio.Event()
        self.hanging = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get("/ws", self.ws)
        self.app.router.add_get("/hang", self.hang)
        self.app.router.add_post("/api", self.api)

    async def ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"op":5,"data":{"heartbeat_interval":45000}}')
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT:
                    self.received.append(msg.data)
                    if msg.data == "drop":
                        assert request.transport is not None
                        request.transport.abort()  # no close frame
                    elif msg.data == "close 4003":
                        await ws.close(code=4003, message=b"not authenticated")
                    else:
                        await ws.send_str(f"echo {msg.data}")
                elif msg.type is WSMsgType.CLOSE:
                    self.close_frames.append((int(msg.data), str(msg.extra or "")))
                    break  # aiohttp has answered it (autoclose)
                else:  # CLOSED / ERROR: the transport is gone
                    break
        finally:
            self.ended.set()
        return ws

    async def api(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"data": {"got": body.decode(), "auth": request.headers.get("Authorization")}},
            status=201,
            headers={"X-Test": "yes"},
        )

    async def hang(self, request: web.Request) -> web.Response:
        self.hanging.set()
        try:
            await asyncio.sleep(LIVENESS * 2)
        finally:
            self.ended.set()
        return web.Response()


async def test_socket_opens_reads_whole_messages_writes_in_order_and_reports_a_close_frame(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        url = f"wss://127.0.0.1:{port}/ws"
        await driver.act(Do((OpenSocket(1, url),)))
        await wait_input(driver, SocketOpened)
        big = "x" * 200_000  # spans many TCP segments, arrives as one message
        sends = tuple(SendText(1, text) for text in ("one", "two", big))
        await driver.act(Do(sends))
        texts = await wait_input(driver, SocketText, 4)
        assert [t.text for t in texts] == [
            '{"op":5,"data":{"heartbeat_interval":45000}}',
            "echo one",
            "echo two",
            f"echo {big}",
        ]
        await driver.act(Do((SendText(1, "close 4003"),)))
        (closed,) = await wait_input(driver, SocketClosed)
        assert closed == SocketClosed(1, 4003, "not authenticated")


async def test_a_drop_without_close_frame_is_1006_with_empty_reason(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        await driver.act(Do((OpenSocket(7, f"wss://127.0.0.1:{port}/ws"),)))
        await wait_input(driver, SocketOpened)
        await driver.act(Do((SendText(7, "drop"),)))
        (closed,) = await wait_input(driver, SocketClosed)
        assert closed == SocketClosed(7, 1006, "")


async def test_client_close_sends_code_and_reason_and_reports_nothing_more(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        await driver.act(Do((OpenSocket(2, f"wss://127.0.0.1:{port}/ws"),)))
        await wait_input(driver, SocketOpened)
        await driver.act(Do((CloseSocket(2, 4000, "heartbeat timeout", 5.0),)))
        await asyncio.wait_for(gateway.ended.wait(), LIVENESS)
        assert gateway.close_frames == [(4000, "heartbeat timeout")]
        await driver.wait_for_record(LIVENESS, kind="conn", name="close_handshake_done")
        await driver.act(Do((SendText(2, "late"),)))  # the core let go: ignored
    assert core_of(driver).of(SocketClosed) == []


async def test_client_close_without_frame_drops_the_transport_and_records_it(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        await driver.act(Do((OpenSocket(2, f"wss://127.0.0.1:{port}/ws"),)))
        await wait_input(driver, SocketOpened)
        await driver.act(Do((CloseSocket(2, 4000, "heartbeat timeout", 5.0, frame=False),)))
        # The server sees the transport end without any close frame (it would park
        # the session), at once rather than after the handshake timeout.
        await asyncio.wait_for(gateway.ended.wait(), LIVENESS)
        assert gateway.close_frames == []
    dropped = driver.timeline.first(kind="conn", name="dropped_without_close_frame")
    assert dropped is not None
    assert dropped.data == {"conn": 2, "code": 4000, "reason": "heartbeat timeout"}
    assert driver.timeline.first(kind="conn", name="close_handshake_done") is None
    assert core_of(driver).of(SocketClosed) == []


async def test_client_close_aborts_when_the_peer_never_answers(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    seen = bytearray()
    gone = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        try:  # read until the client drops the connection; never answer the close
            while chunk := await reader.read(4096):
                seen.extend(chunk)
        except (ConnectionError, ssl.SSLError):
            pass
        gone.set()
        writer.close()

    async with serve_raw(deaf, server_ssl) as port:
        await driver.act(Do((OpenSocket(3, f"wss://127.0.0.1:{port}/ws"),)))
        await wait_input(driver, SocketOpened)
        await driver.act(Do((CloseSocket(3, 4000, "server requested reconnect", 0.2),)))
        # Only the client's abort after the handshake timeout ends the server's read.
        await asyncio.wait_for(gone.wait(), LIVENESS)
    assert seen[:1] == b"\x88"  # the client did send its close frame first
    aborted = driver.timeline.first(kind="conn", name="close_handshake_timeout")
    assert aborted is not None and aborted.data == {"conn": 3, "aborted": True}
    assert core_of(driver).of(SocketClosed) == []


async def test_abort_cancels_a_connect_stuck_in_the_tls_handshake(
    driver: Driver,
) -> None:
    accepted = asyncio.Event()
    gone = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # EOF once the client gives up
        gone.set()
        writer.close()

    async with serve_raw(silent) as port:
        await driver.act(Do((OpenSocket(4, f"wss://127.0.0.1:{port}/ws"),)))
        await asyncio.wait_for(accepted.wait(), LIVENESS)
        await driver.act(Do((AbortSocket(4),)))
        await asyncio.wait_for(gone.wait(), LIVENESS)
    core = core_of(driver)
    assert core.of(SocketOpened) == [] and core.of(SocketOpenFailed) == []


async def test_https_request_response_and_headers(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        request = HttpRequest(
            5,
            "POST",
            f"https://127.0.0.1:{port}/api",
            (("Authorization", "Bearer abc"), ("Content-Type", "application/json")),
            b'{"content":"hi"}',
        )
        await driver.act(Do((request,)))
        (response,) = await wait_input(driver, HttpResponse)
    assert response.req == 5 and response.status == 201
    assert ("X-Test", "yes") in response.headers
    assert b'"got": "{\\"content\\":\\"hi\\"}"' in response.body
    assert b'"auth": "Bearer abc"' in response.body
    # The timeline never holds the token.
    assert "abc" not in driver.timeline.dumps()


async def test_cancel_http_drops_the_request_and_reports_nothing(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        await driver.act(Do((HttpRequest(6, "GET", f"https://127.0.0.1:{port}/hang", (), None),)))
        await asyncio.wait_for(gateway.hanging.wait(), LIVENESS)  # the request is in flight
        await driver.act(Do((CancelHttp(6),)))
    core = core_of(driver)
    assert core.of(HttpResponse) == [] and core.of(HttpFailed) == []


# ----------------------------------------------------------------- classification


async def test_refused_connection(driver: Driver) -> None:
    port = closed_port()
    await driver.act(
        Do(
            (
                OpenSocket(1, f"wss://127.0.0.1:{port}/ws"),
                HttpRequest(1, "GET", f"https://127.0.0.1:{port}/", (), None),
            )
        )
    )
    (failed,) = await wait_input(driver, SocketOpenFailed)
    (http,) = await wait_input(driver, HttpFailed)
    assert (failed.error, http.error) == (NetError.REFUSED, NetError.REFUSED)


async def test_untrusted_certificate_is_a_tls_error(driver: Driver) -> None:
    stranger = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(stranger)
    gateway = GatewayApp()
    async with serve_app(gateway.app, stranger) as port:
        await driver.act(
            Do(
                (
                    OpenSocket(1, f"wss://127.0.0.1:{port}/ws"),
                    HttpRequest(1, "GET", f"https://127.0.0.1:{port}/api", (), None),
                )
            )
        )
        (failed,) = await wait_input(driver, SocketOpenFailed)
        (http,) = await wait_input(driver, HttpFailed)
    assert (failed.error, http.error) == (NetError.TLS, NetError.TLS)
    assert "certificate" in failed.detail.lower()


async def test_wrong_host_name_is_a_tls_error(driver: Driver, test_ca: trustme.CA) -> None:
    other_name = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("accord.example").configure_cert(other_name)
    async with serve_app(GatewayApp().app, other_name) as port:
        await driver.act(Do((HttpRequest(1, "GET", f"https://127.0.0.1:{port}/", (), None),)))
        (http,) = await wait_input(driver, HttpFailed)
    assert http.error is NetError.TLS


async def test_closed_during_tls_handshake_reads_as_refused(driver: Driver) -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with serve_raw(slam) as port:
        await driver.act(
            Do(
                (
                    OpenSocket(1, f"wss://127.0.0.1:{port}/ws"),
                    HttpRequest(1, "GET", f"https://127.0.0.1:{port}/", (), None),
                )
            )
        )
        (failed,) = await wait_input(driver, SocketOpenFailed)
        (http,) = await wait_input(driver, HttpFailed)
    assert (failed.error, http.error) == (NetError.REFUSED, NetError.REFUSED)


async def test_closed_after_the_request_before_a_response_is_no_response(
    driver: Driver, server_ssl: ssl.SSLContext
) -> None:
    async def read_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the whole request head arrived
        writer.close()

    async with serve_raw(read_then_close, server_ssl) as port:
        await driver.act(
            Do(
                (
                    OpenSocket(1, f"wss://127.0.0.1:{port}/ws"),
                    HttpRequest(1, "POST", f"https://127.0.0.1:{port}/", (), b"{}"),
                )
            )
        )
        (failed,) = await wait_input(driver, SocketOpenFailed)
        (http,) = await wait_input(driver, HttpFailed)
    assert (failed.error, http.error) == (NetError.NO_RESPONSE, NetError.NO_RESPONSE)


async def test_insecure_urls_never_open_a_socket(driver: Driver) -> None:
    await driver.act(
        Do(
            (
                OpenSocket(1, "ws://127.0.0.1:9/ws"),
                HttpRequest(1, "GET", "http://127.0.0.1:9/", (), None),
            )
        )
    )
    (failed,) = await wait_input(driver, SocketOpenFailed)
    (http,) = await wait_input(driver, HttpFailed)
    assert (failed.error, http.error) == (NetError.OTHER, NetError.OTHER)


# ----------------------------------------------------------------- timers and lifecycle


async def test_the_core_timer_fires_at_its_deadline(driver: Driver) -> None:
    core = core_of(driver)
    deadline = core.deadline = driver.now() + 0.05
    await driver.act(Do(()))  # any step makes the driver look at next_deadline()
    await driver.wait_for(lambda: bool(core.fired_at), LIVENESS, "timer")
    assert core.fired_at == [pytest.approx(core.fired_at[0])]
    assert core.fired_at[0] >= deadline  # advance(now) is never called early
    assert driver.timeline.first(kind="signal", name="tick") is not None


async def test_stop_leaves_no_task_behind(
    ca_file: Path, server_ssl: ssl.SSLContext, new_driver: MakeDriver
) -> None:
    gateway = GatewayApp()
    async with serve_app(gateway.app, server_ssl) as port:
        driver = new_driver(ScriptedCore(), ca_file=ca_file)
        await driver.start()
        await driver.act(
            Do(
                (
                    OpenSocket(1, f"wss://127.0.0.1:{port}/ws"),
                    HttpRequest(1, "GET", f"https://127.0.0.1:{port}/hang", (), None),
                )
            )
        )
        await wait_input(driver, SocketOpened)
        await driver.stop()
        assert leftovers(driver) == 0
        await asyncio.wait_for(gateway.ended.wait(), LIVENESS)  # the server saw it go


class BrokenCore(ScriptedCore):
    def handle(self, now: float, event: Any) -> None:
        if isinstance(event, SocketOpenFailed):
            raise KeyError("core bug")
        super().handle(now, event)


async def test_a_core_exception_fails_the_run_loudly(ca_file: Path, new_driver: MakeDriver) -> None:
    async with new_driver(BrokenCore(), ca_file=ca_file) as driver:
        await driver.act(Do((OpenSocket(1, f"wss://127.0.0.1:{closed_port()}/ws"),)))
        with pytest.raises(DriverError, match="core failed on SocketOpenFailed: KeyError"):
            await driver.wait_for(lambda: False, LIVENESS)
        with pytest.raises(DriverError):
            await driver.act(Do(()))


async def test_stop_ends_waits_and_refuses_actions(ca_file: Path, new_driver: MakeDriver) -> None:
    driver = new_driver(ScriptedCore(), ca_file=ca_file)
    await driver.start()
    waiting = asyncio.create_task(driver.wait_for(lambda: False, LIVENESS, "never"))
    await driver.stop()
    with pytest.raises(RuntimeError, match="stopped while waiting for never"):
        await waiting
    with pytest.raises(RuntimeError, match="not running"):
        await driver.act(Do(()))
