"""The rig in containers on a real engine: the Docker fault backend, the catalogue
profile, one freeze/kill scenario through the Docker backend, the load profile;
each leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from compose_stack import Stack

from chaos.containers import (
    KILLED_EXIT_CODE,
    LABEL_ROLE,
    DockerBackend,
    DockerSettings,
    FakeServerContainer,
    RunNetwork,
)

pytestmark = pytest.mark.timeout(900)
FREEZE_SCENARIO = "scenarios/heartbeat_timeout/freeze_then_kill.scenario.yaml"


def junit_counts(path: Path) -> dict[str, int]:
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    return {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}


def explain(result: Any) -> str:
    return f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"


async def test_backend_kill_is_sigkill_exit_137_and_restart_keeps_the_database(
    engine: Any,
) -> None:
    label = f"accord-rig-backend-test-{secrets.token_hex(3)}"
    labels = {LABEL_ROLE: "test", "com.docker.compose.project": label}
    volume = engine.volumes.create(labels=labels)
    settings = DockerSettings(
        image=os.environ.get("ACCORD_RIG_IMAGE", "accord-rig:local"),
        volume=volume.name,
        labels=labels,
    )
    network = RunNetwork(engine, settings)
    settings = DockerSettings(settings.image, settings.volume, network.name, labels=labels)
    server = FakeServerContainer(
        engine, settings, "alpha", Path("/runs/alpha.db"), address=network.next_address()
    )
    backend = DockerBackend(engine)
    backend.register("alpha", server)
    try:
        first = server.start()
        assert server.status == "running"

        await backend.freeze("alpha")
        assert server.status == "paused"
        await backend.thaw("alpha")
        assert server.status == "running"

        await backend.kill("alpha")
        assert server.status == "exited"
        assert server.exit_code == KILLED_EXIT_CODE  # SIGKILL, not a clean stop

        await backend.restart("alpha")
        assert server.status == "running"
        assert server.starts == 2
        assert server.info is not None
        assert server.info.ca == first.ca  # the same volume: CA (and database) survived
        assert server.info.control_token != first.control_token  # a new process
    finally:
        server.stop()
        network.remove()
        volume.remove(force=True)
    left = engine.containers.list(all=True, filters={"label": f"{LABEL_ROLE}=test"})
    assert left == []


def test_catalogue_profile_runs_the_starter_scenarios_in_containers(stack: Stack) -> None:
    result = stack.compose("--profile", "catalogue", "up", "--no-build", "--exit-code-from", "rig")
    assert result.returncode == 0, explain(result)
    counts = junit_counts(stack.out / "junit.xml")
    assert counts["tests"] >= 6 and counts["failures"] == counts["errors"] == 0, counts
    stack.down()
    assert stack.leftovers() == []


def test_freeze_and_kill_go_through_the_docker_backend(stack: Stack) -> None:
    """freeze_server pauses the container: the server sends no heartbeat ACK while
    paused and the client times out (4000 heartbeat timeout); kill_server SIGKILLs
    it, restart_server starts it again and the delivery check passes."""
    script = (
        f"accord-rig run {FREEZE_SCENARIO} --timescale 0.1 --out /runs/freeze "
        "--junitxml out/junit-freeze.xml; s=$?; cp -r /runs/freeze out/; exit $s"
    )
    result = stack.compose("--profile", "catalogue", "run", "--rm", "rig", "sh", "-c", script)
    assert result.returncode == 0, explain(result)
    assert junit_counts(stack.out / "junit-freeze.xml")["failures"] == 0
    [timeline] = (stack.out / "freeze").glob("*/timeline.jsonl")
    records = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert any(r["kind"] == "server" and r["name"] == "start" for r in records)
    window = {
        r["data"]["phase"]: r["t"]
        for r in records
        if r["kind"] == "fault" and r["name"] == "freeze" and r["src"] == "chaos"
    }
    start = window["start"]  # recorded once the pause call returned
    # The thawed server answers the beats it holds at once, maybe before the rig
    # records the window's end: bound the check by when the thaw was asked for.
    end = next(
        r["t"]
        for r in records
        if r["kind"] == "step" and r["name"] == "thaw_server" and r["data"]["phase"] == "start"
    )

    def acks(lo: float, hi: float) -> int:
        return sum(
            1
            for r in records
            if r["src"] == "server:alpha"
            and r["kind"] == "frame"
            and r["name"] == "out"
            and r["data"]["frame"].get("op") == 4
            and lo < r["t"] < hi
        )

    assert acks(0.0, start) > 0  # heartbeats were answered before the pause
    assert acks(start, end) == 0  # and not while paused
    timeouts = [
        r["t"]
        for r in records
        if r["name"] == "CloseSocket"
        and r["data"].get("code") == 4000
        and r["data"].get("reason") == "heartbeat timeout"
    ]
    assert timeouts and start < timeouts[0] < window["end"]
    kills = [r for r in records if r["kind"] == "fault" and r["name"] == "kill"]
    assert [r["data"]["phase"] for r in kills] == ["start", "end"]
    delivery = next(r for r in records if r["kind"] == "log" and r["name"] == "delivery")
    assert delivery["data"]["delivered"] == 3 and delivery["data"]["lost"] == 0
    stack.down()
    assert stack.leftovers() == []


def test_load_profile_runs_a_distributed_load_to_completion(stack: Stack) -> None:
    stack.env |= {"LOCUST_WORKERS": "2", "LOAD_USERS": "6", "LOAD_RUN_TIME": "10s"}
    result = stack.compose(
        "--profile", "load", "up", "--no-build", "--exit-code-from", "locust-master"
    )
    assert result.returncode == 0, explain(result)
    out = result.stdout + result.stderr  # locust logs on stderr, its tables on stdout
    assert "2 workers connected" in out
    assert "--run-time limit reached" in out
    # The master's last stats row: "client   send_message   <requests>   <failures>(...%)"
    sends = re.findall(r"client\s+send_message\s+(\d+)\s+(\d+)\(", out)
    assert sends, explain(result)
    requests, failures = map(int, sends[-1])
    assert requests > 0 and failures == 0, sends[-1]
    stack.down()
    assert stack.leftovers() == []
