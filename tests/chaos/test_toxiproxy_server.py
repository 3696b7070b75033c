"""Starting, attaching to and stopping the real Toxiproxy server."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from chaos import ToxiproxyServer, ToxiproxyUnavailable, find_binary
from chaos import toxiproxy_server as server_module


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_start_answers_and_stop_ends_the_process() -> None:
    server = ToxiproxyServer.start(seed=7)
    try:
        assert server.owned and server.host == "127.0.0.1"
        assert _answers(server.url)
        assert server.process is not None
        argv = server.process.args
        assert isinstance(argv, list) and argv[-2:] == ["-seed", "7"]
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None
    assert not _answers(server.url)


async def test_api_reports_the_version(toxiproxy: ToxiproxyServer) -> None:
    assert await toxiproxy.api().version() != ""


def test_attach_uses_a_running_server_and_never_stops_it(
    toxiproxy: ToxiproxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", toxiproxy.url)
    attached = ToxiproxyServer.from_env_or_start()
    assert (attached.port, attached.owned) == (toxiproxy.port, False)
    attached.stop()
    assert _answers(toxiproxy.url)


def test_attach_to_nothing_is_a_clear_error() -> None:
    with pytest.raises(ToxiproxyUnavailable, match="does not answer"):
        ToxiproxyServer.attach("http://127.0.0.1:1", ready_timeout=0.3)


def test_missing_binary_says_to_run_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TOXIPROXY_SERVER", raising=False)
    monkeypatch.setattr(server_module, "DEFAULT_BINARY", tmp_path / "nope")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToxiproxyUnavailable, match="run scripts/setup"):
        find_binary()
    with pytest.raises(ToxiproxyUnavailable, match="run scripts/setup"):
        ToxiproxyServer.start()
