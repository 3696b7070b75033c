"""The compose stack on a real Docker engine (never a mock). `scripts/stack test`
starts the engine, builds the rig image and runs these with ACCORD_RIG_STACK_TESTS=1;
an engine that does not answer is an error here, never a skip."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_stack import Stack

from chaos.containers import docker_client


@pytest.fixture(scope="session")
def engine() -> Any:
    """The engine at $DOCKER_HOST, with the rig image built (DockerUnavailable fails)."""
    client = docker_client()
    image = os.environ.get("ACCORD_RIG_IMAGE", "accord-rig:local")
    client.images.get(image)  # ImageNotFound: run through scripts/stack test
    return client


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
