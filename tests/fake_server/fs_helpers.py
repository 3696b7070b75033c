"""Test-side helpers for the fake server: a small REST + gateway client."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from fake_server import FakeServer
from fake_server.intents import ALL_INTENTS

TIMESCALE = 0.1  # HELLO 4500 ms, handshake 3 s, silence 9 s, resume window 6 s
DEADLINE = 5.0


def session_records(server: FakeServer, name: str | None = None) -> list[dict[str, Any]]:
    """The `session` history records' data (of one name, if given), oldest first."""
    return [r["data"] | {"name": r["name"]} for r in server.history_records()
            if r["kind"] == "session" and (name is None or r["name"] == name)]


async def eventually(check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll `check` until it returns something truthy, or fail at the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {deadline}s")
        await asyncio.sleep(0.01)


class Gateway:
    """One test-side gateway socket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def recv(self, timeout: float = DEADLINE) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg}"
        frame: dict[str, Any] = json.loads(msg.data)
        return frame

    async def recv_raw(self, timeout: float = DEADLINE) -> aiohttp.WSMessage:
        return await self.ws.receive(timeout=timeout)

    async def recv_until(
        self, want: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
    ) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, end - time.monotonic()))
            if want(frame):
                return frame

    async def send(self, frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    def cut(self) -> None:
        """End the socket without a close frame (as a reset or a proxy cut): the server parks."""
        conn = self.ws._conn  # aiohttp keeps the connection here; no public abort
        assert conn is not None and conn.transport is not None
        conn.transport.abort()

    async def closed(self, timeout: float = DEADLINE) -> tuple[int | None, str]:
        """Read until the socket ends; (close code, reason). A drop reads as (None/1006, '')."""
        end = time.monotonic() + timeout
        while True:
            msg = await self.ws.receive(timeout=max(0.01, end - time.monotonic()))
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data), msg.extra or ""
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return self.ws.close_code, ""

    async def identify(self, token: str, intents: Any = ALL_INTENTS) -> dict[str, Any]:
        await self.send({"op": 2, "data": {"token": f"Bearer {token}", "intents": list(intents),
                                           "properties": {"os": "linux", "client": "test",
                                                          "version": "0"}}})
        return await self.recv()

    async def resume(self, token: str, session_id: str, seq: int) -> None:
        await self.send({"op": 3, "data": {"token": f"Bearer {token}",
                                           "session_id": session_id, "seq": seq}})


class Client:
    def __init__(self, server: FakeServer, ssl_ctx: ssl.SSLContext) -> None:
        self.server = server
        self.ssl = ssl_ctx
        self.http = aiohttp.ClientSession()
        self.tokens: dict[str, str] = {}

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    async def request(
        self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
        data: str | bytes | None = None, timeout: float = DEADLINE,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """(status, parsed JSON body or raw text, response) for /api/v1 + path."""
        url = self.server.info.rest + path if path.startswith("/") else path
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        async with self.http.request(
            method, url, data=data, headers=headers, ssl=self.ssl,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            text = await resp.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = text
            return resp.status, body, resp

    async def login(self, user: str = "alice") -> str:
        status, body, _ = await self.request(
            "POST", "/auth/login", json_body={"username": user, "password": "password"}
        )
        assert status == 200, body
        token: str = body["data"]["token"]
        self.tokens[user] = token
        return token

    async def connect(self) -> Gateway:
        ws = await self.http.ws_connect(self.server.info.gateway, ssl=self.ssl,
                                        max_msg_size=0, autoclose=False)
        return Gateway(ws)

    async def ready(self, user: str = "alice") -> tuple[Gateway, dict[str, Any]]:
        """A gateway after HELLO + IDENTIFY + READY; returns (gateway, READY frame)."""
        token = self.tokens.get(user) or await self.login(user)
        gw = await self.connect()
        hello = await gw.recv()
        assert hello["op"] == 5
        ready = await gw.identify(token)
        assert ready["type"] == "ready", ready
        return gw, ready

    async def channel_id(self, name: str = "general") -> str:
        channel = self.server.store.channel_by_name(name)
        assert channel is not None
        return str(channel["id"])

    async def post(self, user: str, content: str, nonce: str | None = None,
                   channel: str = "general") -> dict[str, Any]:
        token = self.tokens.get(user) or await self.login(user)
        cid = await self.channel_id(channel)
        body: dict[str, Any] = {"content": content}
        if nonce is not None:
            body["nonce"] = nonce
        status, resp, _ = await self.request("POST", f"/channels/{cid}/messages",
                                             token=token, json_body=body)
        assert status == 200, resp
        message: dict[str, Any] = resp["data"]
        return message
