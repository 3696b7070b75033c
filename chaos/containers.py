"""Process faults on containers, through the Docker engine (the `docker` SDK).

In the compose stack the rig runs in a container and each scenario server is a
container of its own: `FakeServerContainer` starts `python -m fake_server` in the
rig's image, with the run's folder on the shared work volume (so the rig reads
the database, CA file and history the server writes). Each run gets an internal
network of its own (`RunNetwork`), joined by the rig's and Toxiproxy's
containers, where each server has a fixed address: Toxiproxy dials that address
(a name lookup for a dead container hangs on the embedded DNS, and Go's resolver
makes every later lookup of the name wait for it), the same before a kill and
after the restart, and no other server can take it over meanwhile.
`DockerBackend` is the `FaultBackend` for them, and for any other container by
name (a team's own server):

    kill    SIGKILL the container (state "exited", exit code 137)
    freeze  pause it (cgroup freezer: sockets stay open, nothing answers)
    thaw    unpause it
    restart start the same container again: same volume, same name and port,
            so the SQLite database survives and the proxies keep pointing right

Settings come from the environment, else from the rig's own container
(`DockerSettings.discover`). The SDK's calls block: async callers go through
`asyncio.to_thread`, as `DockerBackend` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.faults import NamedTargets
from chaos.processes import FakeServerInfo, ProcessFailed

ENV_IMAGE = "ACCORD_RIG_IMAGE"
ENV_VOLUME = "ACCORD_RIG_WORK_VOLUME"
ENV_MOUNT = "ACCORD_RIG_WORK_MOUNT"
ENV_TOXIPROXY_CONTAINER = "ACCORD_RIG_TOXIPROXY_CONTAINER"
COMPOSE_SERVICE = "com.docker.compose.service"
DEFAULT_MOUNT = "/runs"
# Inside its own container a fake server can take fixed ports.
SERVER_PORT = 8443
CONTROL_PORT = 8081
LABEL_ROLE = "accord-rig.role"
LABEL_OWNER = "accord-rig.owner"
COMPOSE_PROJECT = "com.docker.compose.project"
KILLED_EXIT_CODE = 137  # 128 + SIGKILL


class DockerUnavailable(RuntimeError):
    """No engine answers, or the rig cannot tell which image/network/volume to use."""


def docker_client() -> Any:
    """A client for `$DOCKER_HOST` (else the default socket) that answers, or DockerUnavailable."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailable(
            "the docker servers need the `docker` package: pip install 'accord-rig[docker]'"
        ) from None
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise DockerUnavailable(f"no Docker engine answers at {where}: {exc}") from None
    return client


@dataclass(frozen=True)
class DockerSettings:
    """Where the rig's server containers go: image, work volume and its mount, and
    the network (each run's own: `RunNetwork`)."""

    image: str
    volume: str
    network: str = ""
    mount: str = DEFAULT_MOUNT  # where the work volume is mounted, in every container
    labels: Mapping[str, str] = field(default_factory=dict)
    joiners: tuple[str, ...] = ()  # containers that join each run's network (rig, Toxiproxy)

    @classmethod
    def discover(cls, client: Any) -> DockerSettings:
        """From the environment, else from the container this rig runs in."""
        mount = os.environ.get(ENV_MOUNT, DEFAULT_MOUNT)
        image = os.environ.get(ENV_IMAGE)
        volume = os.environ.get(ENV_VOLUME)
        labels = {LABEL_ROLE: "fake-server"}
        joiners = [c for c in os.environ.get(ENV_TOXIPROXY_CONTAINER, "").split(",") if c]
        own = _own_container(client)
        if own is not None:
            labels[LABEL_OWNER] = own.id
            joiners.append(own.id)
            project = (own.labels or {}).get(COMPOSE_PROJECT)
            if project:  # `docker compose down --remove-orphans` then finds leftovers
                labels[COMPOSE_PROJECT] = project
                if not os.environ.get(ENV_TOXIPROXY_CONTAINER):
                    toxiproxy = {
                        "label": [f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_SERVICE}=toxiproxy"]
                    }
                    joiners += [c.id for c in client.containers.list(filters=toxiproxy)]
            image = image or own.attrs["Config"]["Image"]
            volume = volume or next(
                (
                    m["Name"]
                    for m in own.attrs.get("Mounts", [])
                    if m.get("Type") == "volume" and m.get("Destination") == mount
                ),
                None,
            )
        missing = [env for env, value in ((ENV_IMAGE, image), (ENV_VOLUME, volume)) if not value]
        if missing:
            raise DockerUnavailable(
                f"docker servers: set {', '.join(missing)} (or run the rig in its compose "
                f"container, with the work volume mounted at {mount})"
            )
        assert image and volume
        return cls(image, volume, "", mount, labels, tuple(joiners))


class RunNetwork:
    """One run's internal network, joined by the rig and Toxiproxy; removed at the end."""

    def __init__(self, client: Any, settings: DockerSettings) -> None:
        import docker.errors
        import docker.types

        self.client = client
        self.name = f"accord-run-{secrets.token_hex(4)}"
        labels = {**settings.labels, LABEL_ROLE: "run-network"}
        for _ in range(8):  # a random /24 in 10.128.0.0/9; the engine refuses overlaps
            prefix = f"10.{128 + secrets.randbelow(128)}.{secrets.randbelow(256)}"
            # Joiners get addresses from .0/25; servers fixed ones from .200 up.
            pool = docker.types.IPAMPool(
                subnet=f"{prefix}.0/24", iprange=f"{prefix}.0/25", gateway=f"{prefix}.1"
            )
            try:
                self.network = client.networks.create(
                    self.name,
                    driver="bridge",
                    internal=True,
                    labels=labels,
                    ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                )
                break
            except docker.errors.APIError as exc:
                if "overlap" not in str(exc).lower():
                    raise
        else:
            raise DockerUnavailable("no free 10.x.y.0/24 subnet for the run's network")
        self._prefix = prefix
        self._next_host = 200
        self._joined: list[str] = []
        try:
            for container in settings.joiners:
                self.network.connect(container)
                self._joined.append(container)
        except Exception:
            self.remove()
            raise

    def next_address(self) -> str:
        """A fixed address for one more server of the run."""
        if self._next_host > 254:
            raise DockerUnavailable(f"run network {self.name}: no server address left")
        self._next_host += 1
        return f"{self._prefix}.{self._next_host - 1}"

    def remove(self) -> None:
        """Disconnect the joiners and remove the network (its servers are gone by now)."""
        import docker.errors

        for container in self._joined:
            with contextlib.suppress(docker.errors.APIError):
                self.network.disconnect(container, force=True)
        self._joined.clear()
        with contextlib.suppress(docker.errors.NotFound):
            self.network.remove()


def _own_container(client: Any) -> Any:
    """The container this process runs in, or None outside one."""
    import docker.errors

    if not Path("/.dockerenv").exists():
        return None
    try:
        return client.containers.get(socket.gethostname())
    except docker.errors.NotFound:
        return None


class ContainerTarget:
    """One container the faults can hit, by name."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.frozen = False

    def container(self) -> Any:
        import docker.errors

        try:
            return self.client.containers.get(self.name)
        except docker.errors.NotFound:
            raise ProcessFailed(f"container {self.name} does not exist") from None

    @property
    def status(self) -> str:
        """created, running, paused, exited... (fresh from the engine)."""
        return str(self.container().status)

    @property
    def exit_code(self) -> int | None:
        state = self.container().attrs["State"]
        return None if state.get("Running") else int(state["ExitCode"])

    @property
    def alive(self) -> bool:
        try:
            return self.status in ("running", "paused")
        except ProcessFailed:
            return False

    def kill(self) -> None:
        """SIGKILL, and wait (bounded) until the engine says exited."""
        container = self.container()
        if container.status == "paused":
            container.unpause()  # a frozen cgroup cannot die
        if container.status in ("running", "paused"):
            container.kill(signal="SIGKILL")
            container.wait(timeout=10)
        self.frozen = False

    def freeze(self) -> None:
        container = self.container()
        if container.status != "running":
            raise ProcessFailed(f"cannot freeze: container {self.name} is {container.status}")
        container.pause()
        self.frozen = True

    def thaw(self) -> None:
        container = self.container()
        if container.status != "paused":
            raise ProcessFailed(f"cannot thaw: container {self.name} is {container.status}")
        container.unpause()
        self.frozen = False

    def halt(self, grace: float = 3.0) -> None:
        """SIGTERM, SIGKILL after `grace`; the container (and its volume) stays."""
        container = self.container()
        if container.status == "paused":
            container.unpause()
            self.frozen = False
        if container.status in ("running", "restarting"):
            container.stop(timeout=max(1, round(grace)))

    def restart(self) -> None:
        """Start again (after a kill, or stop first if it runs): same container and volume."""
        self.halt()
        self.container().start()


class FakeServerContainer(ContainerTarget):
    """`python -m fake_server` in a container of its own; the same surface as
    `chaos.FakeServerProcess` (start, stop, kill, freeze, thaw, restart, info, port)."""

    def __init__(
        self,
        client: Any,
        settings: DockerSettings,
        server: str,
        db: Path,
        *,
        timescale: float = 1.0,
        extra_args: Sequence[str] = (),
        tls_names: Sequence[str] = (),
        address: str | None = None,
        log_path: Path | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        safe = re.sub(r"[^a-z0-9-]+", "-", server.lower()).strip("-") or "server"
        super().__init__(client, f"accord-{safe[:30]}-{secrets.token_hex(4)}")
        self.settings = settings
        self.server = server
        self.db = db
        self.timescale = timescale
        self.extra_args = list(extra_args)
        self.tls_names = list(tls_names)
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.address = address  # fixed on the run's network; else the engine's choice
        self.host = address or self.name  # what Toxiproxy dials
        self.port = SERVER_PORT
        self.info: FakeServerInfo | None = None
        self.starts = 0
        self._created = False

    def argv(self) -> list[str]:
        names = [arg for name in [self.name, *self.tls_names] for arg in ("--tls-name", name)]
        return [
            "python", "-m", "fake_server",
            "--host", "0.0.0.0", "--port", str(SERVER_PORT),
            "--control-host", "0.0.0.0", "--control-port", str(CONTROL_PORT),
            "--db", str(self.db),
            "--timescale", repr(self.timescale),
            *names,
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> FakeServerInfo:
        """Create (first time) or start the container, and wait for its JSON line."""
        if not self._created:
            self._check_on_volume()
            self.client.containers.run(
                self.settings.image,
                self.argv(),
                name=self.name,
                detach=True,
                network=self.settings.network,
                networking_config={
                    self.settings.network: self.client.api.create_endpoint_config(
                        ipv4_address=self.address
                    )
                },
                volumes={self.settings.volume: {"bind": self.settings.mount, "mode": "rw"}},
                labels=dict(self.settings.labels),
                # The rig's own uid, so it can open the SQLite files; root gets the image's user.
                user=f"{os.getuid()}:{os.getgid()}" if os.getuid() != 0 else None,
                working_dir=self.settings.mount,
            )
            self._created = True
        else:
            self.container().start()
        self.starts += 1
        self.frozen = False
        info = self._wait_ready()
        # The server reports its bind address (0.0.0.0); the rig dials the container.
        self.info = dataclasses.replace(info, control=f"http://{self.host}:{CONTROL_PORT}")
        return self.info

    def restart(self) -> FakeServerInfo:  # type: ignore[override]
        """Stop (if running) and start the same container again: same database, port."""
        if not self._created:
            raise ProcessFailed("restart before the first start")
        self.halt()
        return self.start()

    def stop(self) -> None:
        """Stop, keep its output in `log_path`, remove the container (the volume stays)."""
        if not self._created:
            return
        import docker.errors

        try:
            self.halt()
            container = self.container()
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.write_bytes(container.logs(stdout=True, stderr=True))
            container.remove(force=True)
        except (ProcessFailed, docker.errors.NotFound):
            pass
        self._created = False

    def _check_on_volume(self) -> None:
        try:
            Path(self.db).resolve().relative_to(self.settings.mount)
        except ValueError:
            raise ProcessFailed(
                f"{self.db}: a server container's database must lie on the work volume "
                f"(mounted at {self.settings.mount}); run with the work dir under it"
            ) from None

    def _wait_ready(self) -> FakeServerInfo:
        """The `starts`-th JSON line of the container's output (bounded)."""
        deadline = time.monotonic() + self.ready_timeout
        container = self.container()
        while True:
            output = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            lines = [line for line in output.splitlines() if line.lstrip().startswith("{")]
            if len(lines) >= self.starts:
                try:
                    return FakeServerInfo.from_line(lines[self.starts - 1])
                except ValueError as exc:
                    raise ProcessFailed(
                        f"fake server container {self.name}: startup line unreadable: {exc}"
                    ) from None
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                why = (
                    f"exited with code {container.attrs['State']['ExitCode']}"
                    if container.status == "exited"
                    else f"printed no JSON line within {self.ready_timeout:.0f}s"
                )
                tail = container.logs(stdout=False, stderr=True, tail=20).decode("utf-8", "replace")
                raise ProcessFailed(
                    f"fake server container {self.name} {why}; stderr: {tail.strip()[-800:]}"
                )
            time.sleep(0.05)  # poll interval of the readiness condition


class DockerBackend(NamedTargets[ContainerTarget]):
    """`FaultBackend` on containers: the rig's fake-server containers, or any by name."""

    what = "container"

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def register(self, name: str, target: ContainerTarget | str) -> ContainerTarget:
        """`target`: a `ContainerTarget` (e.g. a `FakeServerContainer`), or a container name."""
        if isinstance(target, str):
            target = ContainerTarget(self.client, target)
        return super().register(name, target)

    async def restart(self, target: str) -> None:
        await asyncio.to_thread(self.target(target).restart)
