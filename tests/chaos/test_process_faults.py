"""Process faults on a small child process (the fake server's stand-in)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_helpers import open_conn, round_trip

from chaos import (
    FakeServerProcess,
    ListSink,
    LocalProcessBackend,
    ProcessChaos,
    ProcessFailed,
    UnknownTarget,
)

STUB = [sys.executable, str(Path(__file__).with_name("stub_fake_server.py"))]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeServerProcess]:
    process = FakeServerProcess(
        tmp_path / "alpha.sqlite", command=STUB, log_path=tmp_path / "alpha.log", timescale=0.05
    )
    yield process
    process.stop()


def test_start_reads_the_startup_line(server: FakeServerProcess, tmp_path: Path) -> None:
    info = server.start()
    assert "starting up" in (tmp_path / "alpha.log").read_text()  # stdout goes to the log
    assert server.alive and server.port == info.port > 0
    assert info.rest == f"https://127.0.0.1:{info.port}"
    assert info.raw["starts"] == 1
    assert "secret-token" not in repr(info)  # the control token stays out of logs
    assert "--timescale" in server.argv() and "0.05" in server.argv()


async def test_kill_refuses_and_restart_comes_back_on_the_same_port_and_db(
    server: FakeServerProcess,
) -> None:
    info = await asyncio.to_thread(server.start)
    await round_trip(info.port)
    await asyncio.to_thread(server.kill)
    assert not server.alive and server.process.returncode == -9
    with pytest.raises(ConnectionRefusedError):
        await open_conn(info.port)
    again = await asyncio.to_thread(server.restart)
    assert again.port == info.port
    assert again.raw["starts"] == 2  # same database
    await round_trip(info.port)


async def test_freeze_stalls_and_thaw_resumes(server: FakeServerProcess) -> None:
    info = await asyncio.to_thread(server.start)
    reader, writer = await open_conn(info.port)
    await asyncio.to_thread(server.freeze)
    writer.write(b"ping\n")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(5), 0.3)
    await asyncio.to_thread(server.thaw)
    assert await asyncio.wait_for(reader.readexactly(5), 5) == b"ping\n"
    writer.close()


def test_stop_ends_a_frozen_process(server: FakeServerProcess) -> None:
    server.start()
    server.freeze()
    server.stop()
    assert not server.alive


def test_a_crash_at_startup_is_reported_with_code_and_log(tmp_path: Path) -> None:
    process = FakeServerProcess(
        tmp_path / "db", command=STUB, extra_args=["--fail-with", "3"], log_path=tmp_path / "log"
    )
    with pytest.raises(ProcessFailed, match=r"exited with code 3.*cannot open the database"):
        process.start()
    assert "cannot open the database" in (tmp_path / "log").read_text()
    # Without a log file the error still carries the child's stderr.
    unlogged = FakeServerProcess(tmp_path / "db", command=STUB, extra_args=["--fail-with", "4"])
    with pytest.raises(ProcessFailed, match=r"exited with code 4.*cannot open the database"):
        unlogged.start()


def test_starting_a_running_server_again_is_refused(server: FakeServerProcess) -> None:
    server.start()
    with pytest.raises(ProcessFailed, match="already running"):
        server.start()


def test_an_unreadable_startup_line_is_a_clear_error(tmp_path: Path) -> None:
    process = FakeServerProcess(
        tmp_path / "db", command=STUB, extra_args=["--garbage"], ready_timeout=5
    )
    with pytest.raises(ProcessFailed, match="startup line unreadable"):
        process.start()
    assert not process.alive


async def test_process_chaos_records_fault_windows(server: FakeServerProcess) -> None:
    await asyncio.to_thread(server.start)
    backend = LocalProcessBackend()
    backend.register("alpha", server)
    sink = ListSink()
    chaos = ProcessChaos(backend, sink)
    freeze_id = await chaos.freeze("alpha")
    await chaos.thaw("alpha")
    kill_id = await chaos.kill("alpha")
    assert chaos.open_faults() == [("kill", "alpha", kill_id)]
    await chaos.restart("alpha")
    restart_id = await chaos.restart("alpha")
    events = [(r["name"], r["data"]["phase"], r["data"]["id"]) for r in sink.faults()]
    assert events == [
        ("freeze", "start", freeze_id),
        ("freeze", "end", freeze_id),
        ("kill", "start", kill_id),
        ("kill", "end", kill_id),
        ("restart", "start", restart_id),
        ("restart", "end", restart_id),
    ]
    assert all(r["data"]["target"] == "alpha" for r in sink.faults())
    assert server.alive and server.starts == 3
    with pytest.raises(UnknownTarget, match="unknown process 'beta'"):
        await chaos.kill("beta")
