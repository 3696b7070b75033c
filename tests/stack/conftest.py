"""The compose stack on a real Docker engine (never a mock). `scripts/stack test`
starts the engine, builds the rig image and runs these with ACCORD_RIG_STACK_TESTS=1;
an engine that does not answer is an error here, never a skip."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaos.containers import COMPOSE_PROJECT, docker_client

REPO = Path(__file__).resolve().parents[2]
PROFILES = ["--profile", "catalogue", "--profile", "load"]


@pytest.fixture(scope="session")
def engine() -> Any:
    """The engine at $DOCKER_HOST, with the rig image built (DockerUnavailable fails)."""
    client = docker_client()
    image = os.environ.get("ACCORD_RIG_IMAGE", "accord-rig:local")
    client.images.get(image)  # ImageNotFound: run through scripts/stack test
    return client


@dataclass
class Stack:
    """One compose project: its name, environment and mounted out/ folder."""

    project: str
    out: Path
    env: dict[str, str]
    engine: Any

    def compose(self, *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", self.project, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def down(self) -> None:
        self.compose(*PROFILES, "down", "-v", "--remove-orphans", "-t", "3", timeout=120)

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes of this project still on the engine."""
        label = {"label": f"{COMPOSE_PROJECT}={self.project}"}
        containers = self.engine.containers.list(all=True, filters=label)
        found = [f"container {c.name}" for c in containers]
        found += [f"network {n.name}" for n in self.engine.networks.list(filters=label)]
        found += [f"volume {v.name}" for v in self.engine.volumes.list(filters=label)]
        return found


@pytest.fixture
def stack(engine: Any, tmp_path: Path) -> Iterator[Stack]:
    """A fresh project; torn down afterwards, and nothing of it may be left."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o1777)  # the rig writes as its own non-root user
    sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    env = {
        **os.environ,
        "ACCORD_RIG_OUT": str(out),
        "DOCKER_SOCKET": sock,
        "DOCKER_SOCKET_GID": str(os.stat(sock).st_gid),
    }
    env.pop("COMPOSE_PROJECT_NAME", None)
    made = Stack(f"accord-rig-test-{secrets.token_hex(3)}", out, env, engine)
    try:
        yield made
    finally:
        made.down()
    assert made.leftovers() == [], "the stack left things behind"
