"""Where a scenario's fake servers run, and so what `kill_server` & co. hit.

`process` (the default, a laptop): `python -m fake_server` processes, faults by
signal (chaos.LocalProcessBackend). `docker` (the compose stack): one container
per server, faults through the Docker engine (chaos.containers.DockerBackend).
The scenario file is the same for both; `accord-rig run --servers docker` or
`$ACCORD_RIG_SERVERS=docker` chooses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from chaos import FakeServerInfo, FakeServerProcess, FaultBackend, LocalProcessBackend
from chaos.toxiproxy_server import ToxiproxyServer

SERVER_BACKENDS = ("process", "docker")
ENV_SERVERS = "ACCORD_RIG_SERVERS"


class FakeServerHandle(Protocol):
    """What the runner needs of one fake server, process or container."""

    host: str  # where Toxiproxy reaches it
    info: FakeServerInfo | None

    @property
    def alive(self) -> bool: ...
    def start(self) -> FakeServerInfo: ...
    def stop(self) -> None: ...


class ServerFactory(Protocol):
    def __call__(
        self, server: str, db: Path, *, timescale: float, extra_args: Sequence[str], log_path: Path
    ) -> FakeServerHandle: ...


def default_backend() -> str:
    value = os.environ.get(ENV_SERVERS, "process")
    if value not in SERVER_BACKENDS:
        raise ValueError(f"${ENV_SERVERS}={value!r}: expected one of {', '.join(SERVER_BACKENDS)}")
    return value


class ServerBackend:
    """The fault backend of a run and how it makes servers; `register` ties the two."""

    def __init__(self, kind: str, toxiproxy: ToxiproxyServer) -> None:
        if kind not in SERVER_BACKENDS:
            raise ValueError(f"servers: {kind!r} is not one of {', '.join(SERVER_BACKENDS)}")
        self.kind = kind
        self._toxiproxy = toxiproxy
        self.faults: FaultBackend
        if kind == "process":
            self._local = LocalProcessBackend()
            self.faults = self._local
            return
        from chaos.containers import DockerBackend, DockerSettings, RunNetwork, docker_client

        self._client = docker_client()
        settings = DockerSettings.discover(self._client)
        self._network = RunNetwork(self._client, settings)
        self._settings = dataclasses.replace(settings, network=self._network.name)
        self._docker = DockerBackend(self._client)
        self.faults = self._docker

    def close(self) -> None:
        """After the servers stopped: remove what the backend made (the run's network)."""
        if self.kind == "docker":
            self._network.remove()

    def new_server(
        self, server: str, db: Path, *, timescale: float, extra_args: Sequence[str], log_path: Path
    ) -> FakeServerHandle:
        if self.kind == "process":
            process = FakeServerProcess(
                db, timescale=timescale, extra_args=extra_args, log_path=log_path
            )
            self._local.register(server, process)
            return process
        from chaos.containers import FakeServerContainer

        container = FakeServerContainer(
            self._client,
            self._settings,
            server,
            db,
            timescale=timescale,
            extra_args=extra_args,
            # The client dials the Toxiproxy host: the certificate must name it.
            tls_names=[self._toxiproxy.host],
            address=self._network.next_address(),
            log_path=log_path,
        )
        self._docker.register(server, container)
        return container
