"""Fixtures for the chaos tests: one real Toxiproxy per test process, a TCP echo server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from chaos_helpers import EchoServer

from chaos import ListSink, NetworkChaos, ToxiproxyServer


@pytest.fixture(scope="session")
def toxiproxy() -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer.from_env_or_start()
    yield server
    server.stop()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def network(toxiproxy: ToxiproxyServer) -> AsyncIterator[NetworkChaos]:
    chaos = NetworkChaos(toxiproxy.api(), timescale=1.0, sink=ListSink())
    yield chaos
    await chaos.close()
    left = [name for name in await toxiproxy.api().proxies() if name.startswith(chaos.run_id)]
    assert left == [], f"proxies left behind: {left}"


@pytest.fixture
async def toxiproxy_scaled(toxiproxy: ToxiproxyServer) -> AsyncIterator[NetworkChaos]:
    """Like `network`, at timescale 0.5."""
    chaos = NetworkChaos(toxiproxy.api(), timescale=0.5, sink=ListSink())
    yield chaos
    await chaos.close()
