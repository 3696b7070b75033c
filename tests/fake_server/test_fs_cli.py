"""`python -m fake_server` as a subprocess: the JSON line, SIGTERM, kill -9 and restart."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fake_server.__main__ import parse_args
from fake_server.tls import client_context

START_DEADLINE = 20.0  # real seconds: process start and TLS setup do not scale


@asynccontextmanager
async def running(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fake_server", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), START_DEADLINE)
        assert line, (await proc.stderr.read()).decode() if proc.stderr else "no output"
        yield proc, json.loads(line)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _login_and_post(http: aiohttp.ClientSession, info: dict[str, Any], ssl: Any,
                          n: int) -> tuple[str, str, list[str]]:
    async with http.post(info["rest"] + "/auth/login", ssl=ssl,
                         json={"username": "alice", "password": "password"}) as resp:
        token = (await resp.json())["data"]["token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with http.get(info["rest"] + "/users/@me/spaces", ssl=ssl, headers=auth) as resp:
        space = (await resp.json())["data"][0]["id"]
    async with http.get(f"{info['rest']}/spaces/{space}/channels", ssl=ssl,
                        headers=auth) as resp:
        channel = (await resp.json())["data"][0]["id"]
    ids = []
    for i in range(n):
        async with http.post(f"{info['rest']}/channels/{channel}/messages", ssl=ssl,
                             headers=auth, json={"content": f"m{i}", "nonce": f"n{i}"}) as resp:
            ids.append((await resp.json())["data"]["id"])
    return token, channel, ids


async def test_cli_prints_one_json_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    async with running("--db", str(db), "--timescale", "0.1", "--behaviour", "takeover_resume",
                       "--behaviour", "dedupe_nonce") as (proc, info):
        assert set(info) == {"rest", "gateway", "control", "control_token", "ca", "health",
                             "behaviours"}
        assert info["behaviours"] == ["dedupe_nonce", "takeover_resume"]
        assert info["rest"].startswith("https://127.0.0.1:") and info["rest"].endswith("/api/v1")
        assert info["gateway"].startswith("wss://127.0.0.1:") and info["gateway"].endswith("/ws")
        assert info["control"].startswith("http://127.0.0.1:")
        assert Path(info["ca"]).parent == tmp_path / "cli-tls"
        ssl = client_context(Path(info["ca"]))
        async with aiohttp.ClientSession() as http:
            async with http.get(info["health"], ssl=ssl) as resp:
                assert await resp.json() == {"ok": True}
            token, _, _ = await _login_and_post(http, info, ssl, 0)
            ws = await http.ws_connect(info["gateway"], ssl=ssl)
            await ws.receive_json(timeout=5)
            await ws.send_json({"op": 2, "data": {"token": f"Bearer {token}", "intents": []}})
            assert (await ws.receive_json(timeout=5))["type"] == "ready"
            proc.send_signal(signal.SIGTERM)  # with a session open: it is closed cleanly
            msg = await ws.receive(timeout=START_DEADLINE)
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
            assert await asyncio.wait_for(proc.wait(), START_DEADLINE) == 0
        assert proc.stdout is not None and await proc.stdout.read() == b""  # exactly one line
    last = json.loads(db.with_name("cli.history.jsonl").read_text().splitlines()[-1])
    assert (last["kind"], last["name"]) == ("server", "stop")


async def test_kill_9_then_restart_keeps_messages_port_and_ca(tmp_path: Path) -> None:
    db = tmp_path / "alpha.db"
    async with running("--db", str(db), "--timescale", "0.1") as (proc, info):
        ssl = client_context(Path(info["ca"]))
        ca_before = Path(info["ca"]).read_bytes()
        port = info["rest"].split(":")[2].split("/")[0]
        async with aiohttp.ClientSession() as http:
            token, channel, ids = await _login_and_post(http, info, ssl, 20)
            ws = await http.ws_connect(info["gateway"], ssl=ssl)
            await ws.receive_json(timeout=5)
            await ws.send_json({"op": 2, "data": {"token": f"Bearer {token}", "intents": []}})
            ready = await ws.receive_json(timeout=5)
            session_id = ready["data"]["session_id"]
            proc.kill()  # SIGKILL: no clean shutdown
            await proc.wait()
            await ws.close()

    async with running("--db", str(db), "--port", port, "--timescale", "0.1") as (_, info2):
        assert info2["rest"] == info["rest"] and info2["ca"] == info["ca"]
        assert Path(info2["ca"]).read_bytes() == ca_before  # a running client keeps trusting
        async with aiohttp.ClientSession() as http:
            token2 = token  # tokens are stored too: the old one still works
            async with http.get(f"{info2['rest']}/channels/{channel}/messages?limit=100",
                                ssl=ssl, headers={"Authorization": f"Bearer {token2}"}) as resp:
                stored = [m["id"] for m in (await resp.json())["data"]]
            assert sorted(stored, key=int) == ids
            ws = await http.ws_connect(info2["gateway"], ssl=ssl)
            await ws.receive_json(timeout=5)
            await ws.send_json({"op": 3, "data": {"token": f"Bearer {token2}",
                                                  "session_id": session_id, "seq": 1}})
            assert await ws.receive_json(timeout=5) == {"op": 7, "data": {"resumable": False}}
            await ws.close()
    records = [json.loads(line) for line in
               db.with_name("alpha.history.jsonl").read_text().splitlines()]
    assert len({r["boot"] for r in records}) == 2
    posted = [r for r in records if r["kind"] == "http" and r["name"] == "response"
              and r["data"]["method"] == "POST" and r["data"]["path"].endswith("/messages")]
    assert len(posted) == 20  # written before the kill, kept


def test_flags_build_the_config(tmp_path: Path) -> None:
    config = parse_args([
        "--db", str(tmp_path / "x.db"), "--port", "8443", "--control-port", "9000",
        "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem",
        "--heartbeat-interval", "30000", "--timescale", "0.05", "--replay-buffer", "10",
        "--resume-window", "5",
    ])
    assert (config.port, config.control_port, config.host, config.control_host) == (
        8443, 9000, "127.0.0.1", "127.0.0.1")
    assert (config.tls_cert, config.tls_key, config.tls_ca) == (
        Path("c.pem"), Path("k.pem"), Path("ca.pem"))
    assert (config.heartbeat_interval_ms, config.timescale, config.replay_buffer,
            config.resume_window_s) == (30000, 0.05, 10, 5.0)
    assert config.scaled_ms(30000) == 1500
    assert (config.rate_limit, config.behaviours, config.tls_names) == (70, frozenset(), ())


def test_rate_limit_behaviour_and_tls_name_flags() -> None:
    config = parse_args(["--rate-limit", "500", "--behaviour", "dedupe_nonce", "--behaviour",
                         "park_on_client_close", "--tls-name", "toxiproxy", "--tls-name", "fake"])
    assert config.rate_limit == 500
    assert config.behaviours == frozenset({"dedupe_nonce", "park_on_client_close"})
    assert config.tls_names == ("toxiproxy", "fake")
    assert parse_args(["--rate-limit", "off"]).rate_limit is None


def test_unknown_behaviour_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--behaviour", "dedupe"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown server behaviour 'dedupe'" in err
    assert "dedupe_nonce, park_on_client_close, takeover_resume" in err


@pytest.mark.parametrize("argv", [["--tls-cert", "c.pem"], ["--timescale", "0"],
                                  ["--replay-buffer", "0"], ["--port", "x"],
                                  ["--rate-limit", "0"], ["--rate-limit", "many"]])
def test_bad_flags_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
