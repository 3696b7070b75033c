"""Runs the real Toxiproxy server (or attaches to one named by TOXIPROXY_URL).

The process is a plain `subprocess.Popen`, not an asyncio subprocess, so one
server can outlive event loops (a session-wide pytest fixture, a CLI run).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from chaos.lifetime import die_with_parent
from chaos.toxiproxy_api import ToxiproxyApi

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BINARY = REPO_ROOT / ".tools" / "bin" / "toxiproxy-server"
ENV_URL = "TOXIPROXY_URL"
ENV_BINARY = "TOXIPROXY_SERVER"


class ToxiproxyUnavailable(RuntimeError):
    """No Toxiproxy to use: the binary is missing, or it did not come up."""


def find_binary() -> Path:
    """`$TOXIPROXY_SERVER`, else `.tools/bin/toxiproxy-server`, else one on PATH."""
    override = os.environ.get(ENV_BINARY)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToxiproxyUnavailable(f"{ENV_BINARY}={override} is not an executable file")
        return path
    if DEFAULT_BINARY.is_file() and os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        return Path(on_path)
    raise ToxiproxyUnavailable(
        f"toxiproxy-server not found (looked at {DEFAULT_BINARY} and on PATH); "
        "run scripts/setup to build Toxiproxy v2.12.0 into .tools/bin"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ToxiproxyServer:
    """One Toxiproxy server: started here (and stopped here), or attached to."""

    def __init__(self, host: str, port: int, process: subprocess.Popen[bytes] | None) -> None:
        self.host = host
        self.port = port
        self.process = process

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def proxy_listen_host(self) -> str:
        """Where proxies bind: this host when it is loopback (one machine), else every
        interface (Toxiproxy in its own container, dialled by service name)."""
        if self.host == "localhost":
            return self.host
        try:
            return self.host if ipaddress.ip_address(self.host).is_loopback else "0.0.0.0"
        except ValueError:
            return "0.0.0.0"

    @property
    def owned(self) -> bool:
        """True when this object started the process (and so stops it)."""
        return self.process is not None

    def api(self, *, timeout: float = 5.0, retries: int = 3) -> ToxiproxyApi:
        return ToxiproxyApi(self.host, self.port, timeout=timeout, retries=retries)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def start(
        cls,
        *,
        host: str = "127.0.0.1",
        binary: Path | None = None,
        ready_timeout: float = 10.0,
        log_path: Path | None = None,
        seed: int | None = None,
    ) -> ToxiproxyServer:
        """Start `toxiproxy-server -host 127.0.0.1 -port P` on a free port and wait for it.

        `seed` makes toxicity (which connections a toxic with toxicity < 1 hits)
        reproducible."""
        exe = binary or find_binary()
        extra = ["-seed", str(seed)] if seed is not None else []
        problem = ""
        for _ in range(3):  # the free port can be taken between probe and bind
            port = free_port(host)
            log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
            try:
                process = subprocess.Popen(
                    [str(exe), "-host", host, "-port", str(port), *extra],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # a Ctrl-C on the rig does not hit it first
                    preexec_fn=die_with_parent,  # nor does it outlive a SIGKILLed rig
                )
            finally:
                if log_path:
                    log.close()  # type: ignore[union-attr]
            server = cls(host, port, process)
            problem = server._wait_ready(ready_timeout)
            if not problem:
                return server
            server.stop()
        raise ToxiproxyUnavailable(f"{exe} did not come up: {problem}")

    @classmethod
    def attach(cls, url: str, ready_timeout: float = 5.0) -> ToxiproxyServer:
        """Use an already running server, e.g. `http://127.0.0.1:8474`."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname or not parts.port:
            raise ToxiproxyUnavailable(f"{ENV_URL}={url!r}: expected http://HOST:PORT")
        server = cls(parts.hostname, parts.port, None)
        problem = server._wait_ready(ready_timeout)
        if problem:
            raise ToxiproxyUnavailable(f"Toxiproxy at {url} does not answer: {problem}")
        return server

    @classmethod
    def from_env_or_start(cls, **start_options: object) -> ToxiproxyServer:
        """Attach to `$TOXIPROXY_URL` when it is set, else start a private server."""
        url = os.environ.get(ENV_URL)
        if url:
            return cls.attach(url)
        return cls.start(**start_options)  # type: ignore[arg-type]

    def stop(self, grace: float = 3.0) -> None:
        """Terminate the server this object started, then kill it if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)

    def __enter__(self) -> ToxiproxyServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ readiness

    def _wait_ready(self, timeout: float) -> str:
        """'' once `/version` answers, else what went wrong by the deadline."""
        deadline = time.monotonic() + timeout
        problem = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return f"exited with code {self.process.returncode}"
            try:
                with urllib.request.urlopen(f"{self.url}/version", timeout=1.0) as response:
                    if response.status == 200:
                        return ""
                    problem = f"/version answered HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                problem = f"/version: {exc}"
            time.sleep(0.02)  # poll interval of the readiness condition
        return f"{problem} (after {timeout:.1f}s)"
