"""A close the core starts must go out with the core's code, even when a frame
arrives just as it starts.

Found by the catalogue (scenarios/toxics/slow_close_reconnect): op 6 followed at
once by an event made the server see close code 1000 instead of 4000 "server
requested reconnect", so it ended the session and the RESUME got INVALID_SESSION.
Cause: after the core began its close, the reader called aiohttp's receive()
again, and receive() on a closing socket calls close() itself with the default
1000, which beats the core's close to the wire. The invariant tested here: once
the core has closed the socket, the reader never calls receive() again.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import aiohttp

from client.core.io import SocketText, TransportInput
from client.driver.websocket import GatewaySocket

LIVENESS = 10.0  # generous bound for "at once"


class _Transport:
    def abort(self) -> None:
        pass


class _Connection:
    transport = _Transport()


class _Response:
    connection = _Connection()

    def close(self) -> None:
        pass


class RacyWebSocket:
    """Stands in for aiohttp's ClientWebSocketResponse: scripted frames, each one
    after a loop turn (so the core's close task runs in between, as on the wire)."""

    def __init__(self, frames: list[str]) -> None:
        self._frames = list(frames)
        self._response = _Response()
        self.closed_with: list[int] = []
        self.receives_after_close = 0

    async def receive(self) -> aiohttp.WSMessage:
        await asyncio.sleep(0)
        if self.closed_with:
            # aiohttp would now send its own close frame with code 1000
            self.receives_after_close += 1
            return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
        if self._frames:
            return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, self._frames.pop(0), None)
        await asyncio.Event().wait()  # nothing more from the peer
        raise AssertionError("unreachable")

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed_with.append(code)
        await asyncio.sleep(0.01)  # the close handshake: the peer's answer takes a while
        return True

    async def send_str(self, text: str) -> None:
        pass


class _Session:
    def __init__(self, ws: RacyWebSocket) -> None:
        self._ws = ws

    async def ws_connect(self, url: str, **kwargs: Any) -> RacyWebSocket:
        return self._ws


async def test_a_frame_arriving_as_the_core_closes_does_not_change_the_close_code() -> None:
    event = json.dumps({"op": 0, "type": "message.create", "seq": 2, "data": {}})
    ws = RacyWebSocket([json.dumps({"op": 6}), event, event])
    reported: list[TransportInput] = []
    socket: GatewaySocket | None = None

    def report(item: TransportInput) -> None:
        reported.append(item)
        if isinstance(item, SocketText) and json.loads(item.text).get("op") == 6:
            assert socket is not None
            socket.close(4000, "server requested reconnect", handshake_timeout=1.0)

    socket = GatewaySocket(
        7,
        "wss://127.0.0.1:1/ws",
        _Session(ws),  # type: ignore[arg-type]
        ssl.create_default_context(),
        report,
    )
    await asyncio.wait_for(socket.wait_closed(), LIVENESS)

    assert ws.closed_with == [4000]
    assert ws.receives_after_close == 0, "the reader kept reading after the core's close"
    # nothing after the op 6 is reported: the core already counted the close
    assert [type(r).__name__ for r in reported] == ["SocketOpened", "SocketText"]
