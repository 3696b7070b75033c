"""The Toxiproxy adapter retries 503s and connection failures, and bounds every call.

A small stand-in HTTP server answers 503 a chosen number of times, or not at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chaos import ToxiproxyApi, ToxiproxyError


class Flaky(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.unavailable = 0  # how many 503s before answering
        self.silent = threading.Event()  # never answer while set
        self.requests = 0
        self.release = threading.Event()


class Handler(BaseHTTPRequestHandler):
    server: Flaky

    def do_GET(self) -> None:
        self.server.requests += 1
        if self.server.silent.is_set():
            self.server.release.wait(5)
            return
        if self.server.unavailable > 0:
            self.server.unavailable -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"version": "2.12.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    server = Flaky()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _api(server: Flaky, timeout: float = 5.0, retries: int = 3) -> ToxiproxyApi:
    port = int(server.server_address[1])
    return ToxiproxyApi("127.0.0.1", port, timeout=timeout, retries=retries, retry_backoff=0.01)


async def test_503s_are_retried(flaky: Flaky) -> None:
    flaky.unavailable = 2
    assert await _api(flaky).version() == "2.12.0"
    assert flaky.requests == 3


async def test_persistent_503_is_a_clear_error(flaky: Flaky) -> None:
    flaky.unavailable = 100
    with pytest.raises(ToxiproxyError, match=r"GET .*/version: failed after 4 tries: 503"):
        await _api(flaky).version()
    assert flaky.requests == 4


async def test_a_silent_server_times_out(flaky: Flaky) -> None:
    flaky.silent.set()
    with pytest.raises(ToxiproxyError, match=r"failed after 2 tries: .*Timeout"):
        await _api(flaky, timeout=0.2, retries=1).version()


async def test_nothing_listening_is_a_clear_error() -> None:
    api = ToxiproxyApi("127.0.0.1", 1, retries=1, retry_backoff=0.01)
    with pytest.raises(ToxiproxyError, match="failed after 2 tries: ConnectionError"):
        await api.version()
