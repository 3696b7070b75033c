"""One chat user: the real client (sans-I/O core + asyncio driver) on one account.

Each load user registers its own account on the fake server, connects through the
full first-connect sequence (login, REST chain, gateway IDENTIFY/READY, refetch)
and then sends messages, timing each send until the server accepted it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass

import aiohttp

from client.core import signals as sig
from client.core.actions import (
    ConfigureServer,
    ConnectServer,
    SelectChannel,
    SendMessage,
    ServerConfig,
)
from client.core.client import ClientCore
from client.core.timings import Timings
from client.driver import AsyncClientDriver
from client.driver.tls import client_ssl_context

SERVER = "load"
CHANNEL = "general"
PASSWORD = "load-password"


@dataclass
class Timed:
    seconds: float
    error: str = ""


async def register(base_url: str, username: str, ssl_context: ssl.SSLContext) -> None:
    """Create the account (`POST /auth/register`); an existing one is fine."""
    body = json.dumps({"username": username, "password": PASSWORD})
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/api/v1/auth/register",
            data=body,
            headers={"Content-Type": "application/json"},
            ssl=ssl_context,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        if response.status not in (200, 409):
            raise RuntimeError(f"register {username}: HTTP {response.status}")


class ChatSession:
    """A connected client for one user; `send` returns how long the server took."""

    def __init__(self, base_url: str, username: str, ca_file: str, seed: int) -> None:
        self.base_url = base_url
        self.username = username
        self._ssl = client_ssl_context(ca_file)
        self.core = ClientCore(timings=Timings(), seed=seed, environ={}, instance=username)
        self.driver = AsyncClientDriver(self.core, ssl_context=self._ssl)
        self.attempted = 0

    def _sent(self) -> int:
        return len(self.driver.timeline.signals(sig.MESSAGE_SENT))

    def _failures(self) -> list[str]:
        names = (sig.MESSAGE_SEND_FAILED, sig.SERVER_CONNECTION_FAILED, sig.MESSAGE_SEND_REFUSED)
        return [str(s.args[-1]) for name in names for _, s in self.driver.timeline.signals(name)]

    async def connect(self, timeout: float) -> Timed:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await register(self.base_url, self.username, self._ssl)
        await self.driver.start()
        config = ServerConfig(
            name=SERVER,
            base_url=self.base_url,
            username=self.username,
            password=PASSWORD,
            space="accord",
        )
        await self.driver.act(ConfigureServer(config))
        await self.driver.act(ConnectServer(SERVER))
        await self.driver.act(SelectChannel(SERVER, CHANNEL))
        await self.driver.wait_for(
            lambda: (
                self.core.status(SERVER) in ("connected", "error") and not self.core.syncing(SERVER)
            ),
            timeout,
            "connected and synced",
        )
        error = self.core.last_failure(SERVER) if self.core.status(SERVER) == "error" else ""
        return Timed(loop.time() - start, error)

    async def send(self, text: str, timeout: float) -> Timed:
        loop = asyncio.get_running_loop()
        sent, failed = self._sent(), len(self._failures())
        start = loop.time()
        self.attempted += 1
        await self.driver.act(SendMessage(SERVER, CHANNEL, text))
        await self.driver.wait_for(
            lambda: self._sent() > sent or len(self._failures()) > failed, timeout, "send answered"
        )
        failures = self._failures()
        return Timed(loop.time() - start, failures[-1] if len(failures) > failed else "")

    async def settle(self, timeout: float) -> int:
        """Wait until every send has its answer; the client's own count of accepted
        sends (Locust may stop a user mid-send, before it reported)."""
        await self.driver.wait_for(
            lambda: self._sent() + len(self._failures()) >= self.attempted,
            timeout,
            "every send answered",
        )
        return self._sent()

    async def close(self) -> None:
        await self.driver.stop()
