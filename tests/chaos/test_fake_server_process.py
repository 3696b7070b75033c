"""FakeServerProcess against the real `python -m fake_server`: its startup line,
TLS through a Toxiproxy proxy, and kill -9 + restart on the same port and database."""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos import FakeServerProcess, NetworkChaos

pytestmark = pytest.mark.timeout(60)


def _health(url: str, ca: str) -> int:
    context = ssl.create_default_context(cafile=ca)  # the client's rule: verify the test CA
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        return int(response.status)


@pytest.fixture
def alpha(tmp_path: Path) -> Iterator[FakeServerProcess]:
    server = FakeServerProcess(
        tmp_path / "alpha.db", timescale=0.05, log_path=tmp_path / "alpha.log"
    )
    yield server
    server.stop()


async def test_health_over_tls_through_the_rest_proxy(
    alpha: FakeServerProcess, network: NetworkChaos
) -> None:
    info = await asyncio.to_thread(alpha.start)
    assert info.rest.startswith(f"https://127.0.0.1:{info.port}")
    proxies = await network.add_server("alpha", info.port)
    status = await asyncio.to_thread(_health, f"{proxies.base_url}/health", info.ca)
    assert status == 200


async def test_kill_and_restart_keep_port_and_database(alpha: FakeServerProcess) -> None:
    first = await asyncio.to_thread(alpha.start)
    await asyncio.to_thread(alpha.kill)
    assert not alpha.alive
    with pytest.raises(OSError):
        await asyncio.to_thread(_health, first.health, first.ca)
    second = await asyncio.to_thread(alpha.restart)
    assert second.port == first.port and alpha.db.exists()
    assert await asyncio.to_thread(_health, second.health, second.ca) == 200
