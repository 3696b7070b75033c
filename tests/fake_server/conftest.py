"""Fixtures: one test CA per session, an in-process server per test, a client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fs_helpers import TIMESCALE, Client

from fake_server import FakeServer, ServerConfig
from fake_server.tls import TlsFiles, client_context, ensure_test_pki


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test also fails if a server handler crashed (aiohttp logs it at ERROR)."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert errors == [], errors


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_config(pki: TlsFiles, tmp_path: Path) -> Callable[..., ServerConfig]:
    def make(**overrides: Any) -> ServerConfig:
        base: dict[str, Any] = {
            "db": tmp_path / "alpha.db",
            "tls_cert": pki.cert,
            "tls_key": pki.key,
            "tls_ca": pki.ca,
            "timescale": TIMESCALE,
        }
        base.update(overrides)
        return ServerConfig(**base)

    return make


@pytest.fixture
async def server(make_config: Callable[..., ServerConfig]) -> AsyncIterator[FakeServer]:
    async with FakeServer(make_config()) as srv:
        yield srv


@pytest.fixture
async def client(server: FakeServer, pki: TlsFiles) -> AsyncIterator[Client]:
    assert pki.ca is not None
    async with Client(server, client_context(pki.ca)) as c:
        yield c


