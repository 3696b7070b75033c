"""Where a scenario's fake servers run, and so what `kill_server` & co. hit.

`process` (the default, a laptop): `python -m fake_server` processes, faults by
signal (chaos.LocalProcessBackend). `docker` (the compose stack): one container
per server, faults through the Docker engine (chaos.containers.DockerBackend).
The scenario file is the same for both; `accord-rig run --servers docker` or
`$ACCORD_RIG_SERVERS=docker` chooses. `external` (`accord-rig run --target external
--server-url URL ...`): a server the rig does not control, perhaps started by it from a
command line (scenarios.external); faults by signal to that process.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from chaos import FakeServerInfo, FakeServerProcess, FaultBackend, LocalProcessBackend
from chaos.toxiproxy_server import ToxiproxyServer
from scenarios.external import ExternalProcessBackend, ExternalServer, ExternalTarget

SERVER_BACKENDS = ("process", "docker")  # fake servers; EXTERNAL is chosen by --target
EXTERNAL = "external"
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


class _ByServer:
    """Process faults go to the backend of the server they name: an external server's
    (signals to the process the rig started from its command) or the fake servers'."""

    def __init__(self, fakes: FaultBackend | None, external: ExternalProcessBackend) -> None:
        self._fakes = fakes
        self._external = external

    def _of(self, target: str) -> FaultBackend:
        if target in self._external or self._fakes is None:
            return self._external
        return self._fakes

    async def kill(self, target: str) -> None:
        await self._of(target).kill(target)

    async def freeze(self, target: str) -> None:
        await self._of(target).freeze(target)

    async def thaw(self, target: str) -> None:
        await self._of(target).thaw(target)

    async def restart(self, target: str) -> None:
        await self._of(target).restart(target)


class ServerBackend:
    """The fault backend of a run and how it makes servers; `register` ties the two.
    `kind` is where fake servers run (EXTERNAL: the run has none); an external server
    (`new_server(..., external=target)`) can sit beside fake ones in any kind."""

    def __init__(self, kind: str, toxiproxy: ToxiproxyServer) -> None:
        if kind not in (*SERVER_BACKENDS, EXTERNAL):
            raise ValueError(f"servers: {kind!r} is not one of {', '.join(SERVER_BACKENDS)}")
        self.kind = kind
        self._toxiproxy = toxiproxy
        self._external = ExternalProcessBackend()
        fakes: FaultBackend | None = None
        if kind == "process":
            self._local = LocalProcessBackend()
            fakes = self._local
        elif kind == "docker":
            from chaos.containers import DockerBackend, DockerSettings, RunNetwork, docker_client

            self._client = docker_client()
            settings = DockerSettings.discover(self._client)
            self._network = RunNetwork(self._client, settings)
            self._settings = dataclasses.replace(settings, network=self._network.name)
            self._docker = DockerBackend(self._client)
            fakes = self._docker
        self.faults: FaultBackend = _ByServer(fakes, self._external)

    def close(self) -> None:
        """After the servers stopped: remove what the backend made (the run's network)."""
        if self.kind == "docker":
            self._network.remove()

    def new_server(
        self,
        server: str,
        db: Path,
        *,
        timescale: float,
        extra_args: Sequence[str],
        log_path: Path,
        heartbeat_ms: int = 0,
        external: ExternalTarget | None = None,
    ) -> FakeServerHandle:
        if external is not None:
            handle = ExternalServer(
                external,
                server,
                db.with_suffix(""),  # the run's folder for this server ({work})
                timescale=timescale,
                heartbeat_ms=heartbeat_ms,
                front_host=self._toxiproxy.host,
                log_path=log_path,
            )
            self._external.register(server, handle)
            return handle
        if self.kind == EXTERNAL:
            raise ValueError(f"server {server!r}: a run without fake servers needs its target")
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
