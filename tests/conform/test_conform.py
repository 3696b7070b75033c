"""`accord-rig conform` against a fake server started as any external server would be
(its own process, TLS with its CA, reached only over REST and the gateway)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.processes import FakeServerInfo, FakeServerProcess
from client.driver.tls import client_ssl_context
from conform.command import Outcome, Row, timescale_hint
from conform.probes import PROBES
from scenarios.cli import main

TIMESCALE = "0.05"
ROOT = Path(__file__).resolve().parents[2]
SEED_ACCOUNTS = ["--user", "alice:password", "--user", "bob:password"]
START_DEADLINE = 20.0  # real seconds: interpreter start and TLS setup do not scale


def start_target(tmp_path: Path, *behaviours: str) -> tuple[FakeServerProcess, FakeServerInfo]:
    extra = [arg for name in behaviours for arg in ("--behaviour", name)]
    process = FakeServerProcess(tmp_path / "target.db", timescale=float(TIMESCALE),
                                extra_args=extra, log_path=tmp_path / "target.log")
    return process, process.start()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[FakeServerInfo]:
    process, info = start_target(tmp_path)
    try:
        yield info
    finally:
        process.stop()


def conform_args(info: FakeServerInfo, *extra: str) -> list[str]:
    origin = info.rest.removesuffix("/api/v1")
    return ["conform", origin, "--ca", info.ca, "--timescale", TIMESCALE, *extra]


def table_rows(text: str) -> dict[str, str]:
    """probe name -> its match cell, from the first line of each table row."""
    rows = {}
    names = {p.name for p in PROBES}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] in names:
            rows[cells[0]] = cells[-1]
    return rows


def test_every_probe_matches_against_the_fake(target: FakeServerInfo,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(conform_args(target, *SEED_ACCOUNTS, "--json"))
    elapsed = time.monotonic() - started
    report = json.loads(capsys.readouterr().out)
    mismatched = {p["name"]: p for p in report["probes"] if not p["match"]}
    assert mismatched == {}
    assert code == 0
    assert report["match"] is True
    assert [p["name"] for p in report["probes"]] == [p.name for p in PROBES]
    for row in report["probes"]:
        assert row["target"]["error"] is None and row["target"]["answer"], row
    by_name = {p["name"]: p["target"]["answer"] for p in report["probes"]}
    # Scaled values are read from the server, never assumed (HELLO 45000 ms x 0.05).
    assert by_name["gateway.hello"]["data"] == '{"heartbeat_interval":2250}'
    assert by_name["rate_limit.burst"]["429 Retry-After"] == '"3"'
    assert elapsed < 60, f"a whole run took {elapsed:.1f}s"
    # A probe broken alike on both sides would still match: pin what the spec says.
    invalid = 'INVALID_SESSION {"resumable":false}, then dropped (no close frame)'
    for name in ("bad_token", "seq_0", "unknown", "other_user", "seq_ahead", "while_open",
                 "after_close"):
        assert by_name[f"invalid_session.{name}"]["answer"] == invalid, name
    assert by_name["invalid_session.while_open"]["old socket, heartbeat"] == '{"op":4}'
    assert by_name["gateway.resume"]["missed message"] == "replayed"
    assert by_name["gateway.resume"]["replay"] == "consecutive from 3"
    assert by_name["gateway.seq"]["events"] == "consecutive from 2"
    assert by_name["gateway.identify_twice"]["answer"] == "close 4005 'already authenticated'"
    assert by_name["gateway.frame_limit"]["answer"] == (
        "close 4008 'rate limit exceeded' after frame 121")
    assert by_name["intents.filter"]["without message_typing"] == "0 typing.start"
    assert by_name["intents.filter"]["with message_typing"] == "1 typing.start"
    assert by_name["rest.nonce"]["stored"] == "2 message(s), different ids"
    assert by_name["rest.list_cursors"]["limit=2"] == "[m3, m2]; cursor.after m2; has_more true"
    assert by_name["rate_limit.burst"]["X-RateLimit-Remaining"] == "from 69 down to 0"
    assert by_name["rate_limit.burst"]["after 1.5 x Retry-After / limit"] == "200"
    assert by_name["rest.no_json_type"]["stored"] == "no"


def test_dedupe_nonce_mismatches_only_the_nonce_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process, info = start_target(tmp_path, "dedupe_nonce")
    try:
        code = main(conform_args(info, "--register"))  # fresh accounts, the table
    finally:
        process.stop()
    out, err = capsys.readouterr()
    rows = table_rows(out)
    assert set(rows) == {p.name for p in PROBES}
    assert {name for name, mark in rows.items() if mark != "yes"} == {"rest.nonce"}
    assert rows["rest.nonce"] == "NO"
    assert "stored: 1 message(s), the same id twice" in out
    assert "stored: 2 message(s), different ids" in out
    assert "mismatch: rest.nonce" in err
    assert code == 1


@pytest.mark.parametrize(
    ("behaviour", "probe", "target_answer"),
    [
        ("takeover_resume", "invalid_session.while_open",
         {"answer": "resumed (replayed 0)",
          "old socket, heartbeat": "close 4000 'session taken over'"}),
        ("park_on_client_close", "invalid_session.after_close",
         {"answer": "resumed (replayed 0)"}),
    ],
)
def test_a_session_behaviour_mismatches_its_resume_probe(
    behaviour: str, probe: str, target_answer: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    process, info = start_target(tmp_path, behaviour)
    try:
        code = main(conform_args(info, *SEED_ACCOUNTS, "--json"))
    finally:
        process.stop()
    report = json.loads(capsys.readouterr().out)
    mismatched = {p["name"]: p for p in report["probes"] if not p["match"]}
    assert set(mismatched) == {probe}
    assert mismatched[probe]["target"]["answer"] == target_answer
    assert mismatched[probe]["fake"]["answer"]["answer"].startswith(
        'INVALID_SESSION {"resumable":false}')
    assert code == 1


def test_probe_selection_runs_only_the_named_probes(target: FakeServerInfo,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(conform_args(target, *SEED_ACCOUNTS, "--json", "--probe", "rest.nonce",
                             "--probe", "gateway.hello"))
    report = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in report["probes"]] == ["gateway.hello", "rest.nonce"]
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["conform", "ftp://127.0.0.1:1", "--register"], "expected http://HOST:PORT"),
        (["conform", "https://127.0.0.1:1/x", "--register"], "expected no path"),
        (["conform", "http://127.0.0.1:1", "--ca", "ca.pem", "--register"], "only for an https"),
        (["conform", "https://127.0.0.1:1", "--ca", "/no/such/ca.pem", "--register"],
         "no such file"),
        (["conform", "https://127.0.0.1:1", "--user", "alice:password"], "needs 2 accounts"),
        (["conform", "https://127.0.0.1:1", "--user", "alice"], "expected NAME:PASSWORD"),
        (["conform", "https://127.0.0.1:1", "--register", "--probe", "nope"],
         "--probe nope: unknown"),
        (["conform", "https://127.0.0.1:1", "--register", "--timescale", "0"], "must be > 0"),
        (["conform"], "url"),
    ],
)
def test_bad_usage_exits_4_naming_the_problem(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 4
    assert message in capsys.readouterr().err


def test_an_unreachable_target_exits_4_before_any_probe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code = main(["conform", f"http://127.0.0.1:{port}", "--register"])
    assert code == 4
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().err


def test_ctrl_c_exits_130(target: FakeServerInfo, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; from scenarios.cli import main; sys.exit(main())",
            *conform_args(target, *SEED_ACCOUNTS)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()  # printed once the run has begun
        assert line.startswith("conform:"), line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(START_DEADLINE) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_docs_name_every_probe() -> None:
    text = (ROOT / "docs" / "conform.md").read_text()
    missing = [p.name for p in PROBES if f"`{p.name}`" not in text]
    assert missing == []


def test_the_rate_limit_probe_runs_last() -> None:
    # It exhausts its token's bucket; nothing may come after it.
    assert PROBES[-1].name == "rate_limit.burst"


class PlainFront:
    """A plain-TCP listener that forwards every connection over TLS to the fake: a
    server that speaks plain HTTP, as accordserver itself does (run in its own thread,
    since `main` runs its own event loop)."""

    def __init__(self, info: FakeServerInfo) -> None:
        self.upstream = info.port
        self.ssl = client_ssl_context(info.ca)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PlainFront:
        self.thread.start()
        assert self.ready.wait(START_DEADLINE), "the plain front did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START_DEADLINE)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._forward, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream, ssl=self.ssl, server_hostname="127.0.0.1")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:  # one side ended (EOF or reset): end the other without more ado
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_a_plain_http_server_is_probed_over_http_and_ws(
    target: FakeServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    probes = ["gateway.hello", "gateway.resume", "invalid_session.while_open", "rest.envelope",
              "rest.unauthorized"]
    with PlainFront(target) as front:
        code = main(["conform", f"http://127.0.0.1:{front.port}", "--register", "--json",
                     "--timescale", TIMESCALE, *(a for p in probes for a in ("--probe", p))])
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == f"http://127.0.0.1:{front.port}"
    assert [(p["name"], p["match"]) for p in report["probes"]] == [(p, True) for p in probes]
    assert code == 0


def _hello_row(target: Outcome, fake: Outcome) -> Row:
    return Row(next(p for p in PROBES if p.name == "gateway.hello"), target, fake)


def test_a_probe_that_errors_never_matches_even_on_both_sides() -> None:
    failed = Outcome(None, "no answer on the gateway within 10s")
    assert not _hello_row(failed, failed).match
    answer = Outcome({"data": '{"heartbeat_interval":45000}'})
    assert _hello_row(answer, answer).match
    assert not _hello_row(failed, answer).match


def test_differing_hello_intervals_suggest_the_targets_timescale() -> None:
    scaled = Outcome({"data": '{"heartbeat_interval":2250}'})
    reference = Outcome({"data": '{"heartbeat_interval":45000}'})
    hint = timescale_hint([_hello_row(scaled, reference)], 1.0)
    assert hint is not None and "pass --timescale 0.05" in hint
    assert timescale_hint([_hello_row(reference, reference)], 1.0) is None
