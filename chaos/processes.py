"""Processes the rig starts and may hurt: kill -9, freeze, thaw, restart.

`ManagedProcess` is a `subprocess.Popen` with the signals the faults need and a
reader thread that drains stdout into a log (a full pipe would stall the child).
`FakeServerProcess` starts `python -m fake_server`, waits for its one JSON line,
and restarts it on the same database and port so proxies keep pointing right.
Both are loop-independent (blocking, bounded calls); async callers use
`asyncio.to_thread`, as `chaos.faults.LocalProcessBackend` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from chaos.lifetime import die_with_parent


class ProcessFailed(RuntimeError):
    """A managed process did not start, or died when it was needed."""


class ManagedProcess:
    """One child process; stdout lines go to `on_line`, both streams to the log file,
    and the last stderr lines are kept for error messages."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False
        self._readers: list[threading.Thread] = []
        self._stderr_tail: deque[str] = deque(maxlen=40)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def start(self, on_line: Callable[[str], None] | None = None) -> None:
        if self.alive:
            raise ProcessFailed(f"already running (pid {self.pid}): {self.argv[0]}")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # a terminal Ctrl-C reaches the rig, not the child
            preexec_fn=die_with_parent,  # and a SIGKILLed rig takes it along
        )
        self.frozen = False
        self._stderr_tail.clear()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._drain, args=(self.process.stdout, on_line), daemon=True),
            threading.Thread(
                target=self._drain, args=(self.process.stderr, self._stderr_tail.append),
                daemon=True,
            ),
        ]  # fmt: skip
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[bytes], on_line: Callable[[str], None] | None) -> None:
        """Copy a pipe to the log line by line (a full pipe would stall the child)."""
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            for raw in stream:
                if log:
                    log.write(raw)
                    log.flush()
                if on_line:
                    on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
        finally:
            stream.close()
            if log:
                log.close()

    def stderr_tail(self, wait: float = 1.0) -> str:
        """The last stderr lines (all of them once the process has exited)."""
        if not self.alive:
            for reader in self._readers:
                reader.join(wait)
        return "\n".join(self._stderr_tail)

    def kill(self) -> None:
        """SIGKILL (kill -9) and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(5)
        self.frozen = False
        self._kill_group()

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        self._require_alive("freeze")
        os.kill(self.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        self.frozen = True

    def thaw(self) -> None:
        """SIGCONT: resume a frozen process."""
        self._require_alive("thaw")
        os.kill(self.pid, signal.SIGCONT)  # type: ignore[arg-type]
        self.frozen = False

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, wait `grace`, then SIGKILL. Safe to call on a dead process."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        if self.frozen:
            os.kill(process.pid, signal.SIGCONT)  # a stopped process never handles SIGTERM
            self.frozen = False
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)
        self._kill_group()

    def _kill_group(self) -> None:
        """SIGKILL what the process left in its session's group (Locust's forked
        workers outlive a master killed after its grace; seen at 5,000 clients)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its own group: start_new_session

    def _require_alive(self, what: str) -> None:
        if not self.alive:
            raise ProcessFailed(f"cannot {what}: process {self.argv[0]} is not running")


# --------------------------------------------------------------------------- fake server


@dataclass(frozen=True)
class FakeServerInfo:
    """The fake server's JSON startup line (rest, gateway, control, control_token, ca, health)."""

    rest: str
    gateway: str
    control: str
    control_token: str = field(repr=False)  # a secret: never in reprs or logs
    ca: str
    health: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_line(cls, line: str) -> FakeServerInfo:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("startup line is not a JSON object")
        missing = [
            k
            for k in ("rest", "gateway", "control", "control_token", "ca", "health")
            if k not in data
        ]
        if missing:
            raise ValueError(f"startup line lacks {', '.join(missing)}")
        return cls(
            rest=str(data["rest"]),
            gateway=str(data["gateway"]),
            control=str(data["control"]),
            control_token=str(data["control_token"]),
            ca=str(data["ca"]),
            health=str(data["health"]),
            raw=data,
        )

    @property
    def port(self) -> int:
        """The TLS port REST and the gateway listen on (the proxies' upstream)."""
        return _port_of(self.rest)


def _port_of(value: str) -> int:
    if value.isdigit():
        return int(value)
    parts = urlsplit(value if "://" in value else f"//{value}")
    if parts.port is None:
        raise ValueError(f"no port in {value!r}")
    return parts.port


class FakeServerProcess:
    """`python -m fake_server` on one database, restartable on the same port."""

    def __init__(
        self,
        db: Path,
        *,
        timescale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        log_path: Path | None = None,
        ready_timeout: float = 15.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db = db
        self.timescale = timescale
        self.host = host
        self.port = port  # 0 until the first start has chosen one
        self.extra_args = list(extra_args)
        # `command` replaces `python -m fake_server` (tests use a small stand-in).
        self.command = list(command) if command else [sys.executable, "-m", "fake_server"]
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.env = env
        self.info: FakeServerInfo | None = None
        self.starts = 0
        self._process: ManagedProcess | None = None

    @property
    def process(self) -> ManagedProcess:
        if self._process is None:
            raise ProcessFailed("the fake server was never started")
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.alive

    def argv(self) -> list[str]:
        return [
            *self.command,
            "--host", self.host,
            "--port", str(self.port),
            "--control-port", "0",
            "--db", str(self.db),
            "--timescale", repr(self.timescale),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> FakeServerInfo:
        """Start and wait (bounded) for the JSON startup line."""
        lines: list[str] = []
        ready = threading.Event()

        def on_line(line: str) -> None:
            if not ready.is_set():
                lines.append(line)
                if line.lstrip().startswith("{"):
                    ready.set()

        if self.alive:
            raise ProcessFailed(f"the fake server is already running (pid {self.pid})")
        self._process = ManagedProcess(self.argv(), log_path=self.log_path, env=self.env)
        self._process.start(on_line)
        self.starts += 1
        process = self._process
        # Wake early when the child dies, so a crash is reported at once.
        popen = process.process
        assert popen is not None

        def wake_on_exit() -> None:
            popen.wait()
            ready.set()

        threading.Thread(target=wake_on_exit, daemon=True).start()
        if (
            not ready.wait(self.ready_timeout)
            or not lines
            or not lines[-1].lstrip().startswith("{")
        ):
            process.stop()
            raise ProcessFailed(self._startup_problem(process))
        try:
            info = FakeServerInfo.from_line(lines[-1])
        except ValueError as exc:
            process.stop()
            raise ProcessFailed(f"fake server startup line unreadable: {exc}") from None
        self.info = info
        if self.port == 0:
            self.port = info.port
        return info

    def _startup_problem(self, process: ManagedProcess) -> str:
        code = process.returncode
        why = (
            f"exited with code {code}"
            if code is not None
            else (f"printed no JSON line within {self.ready_timeout:.1f}s")
        )
        stderr = process.stderr_tail()[-800:].strip()
        tail = f"; stderr: {stderr}" if stderr else ""
        where = f" (log: {self.log_path})" if self.log_path else ""
        return f"fake server ({' '.join(self.command)}) {why}{tail}{where}"

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        self.process.kill()

    def freeze(self) -> None:
        self.process.freeze()

    def thaw(self) -> None:
        self.process.thaw()

    def restart(self) -> FakeServerInfo:
        """Stop (if running) and start again: same database, same port."""
        if self.port == 0:
            raise ProcessFailed("restart before the first start chose a port")
        self.stop()
        return self.start()
