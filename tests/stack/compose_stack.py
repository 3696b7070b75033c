"""One compose project of the stack tests, driven through the docker-compose binary."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.containers import COMPOSE_PROJECT

REPO = Path(__file__).resolve().parents[2]
PROFILES = ["--profile", "catalogue", "--profile", "load"]


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
