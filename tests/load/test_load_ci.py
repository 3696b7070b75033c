"""CI's short load runs: tens of real clients through real Toxiproxy, one storm.

The storm file's thresholds hold; the same file with the `same_seed` regression
switch (every client draws the same backoff jitter: a thundering herd) fails on
its herd bound and on nothing else, which proves the thresholds can fail. Ctrl-C
on `accord-rig load` leaves no process and no port behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from load.cli import main
from load.conductor import LoadOptions, play_load
from load.figures import compute, judge
from load.loader import load_load_file

FILES = Path(__file__).parents[2] / "load" / "files"
REPO = FILES.parents[1]


def test_the_ci_storm_holds_its_thresholds(tmp_path: Path) -> None:
    junit = tmp_path / "load.xml"
    code = main([str(FILES / "smoke.load.yaml"), "--out", str(tmp_path), "--junitxml", str(junit)])
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert code == 0, ET.tostring(case, encoding="unicode")[:3000]
    assert case.find("failure") is None and case.find("error") is None
    assert properties["threshold lost"] == "0 (<= 0)"
    run_dir = tmp_path / "smoke"
    for report in ("locust.html", "locust_stats.csv", "load.png", "figures.json"):
        assert (run_dir / report).stat().st_size > 0, report


def test_a_crowd_without_jitter_fails_the_herd_bound_and_only_it(tmp_path: Path) -> None:
    loaded = load_load_file(Path(__file__).with_name("files") / "smoke-no-jitter.load.yaml")
    assert loaded.load.regression.same_seed
    run = asyncio.run(play_load(loaded, LoadOptions(work_dir=tmp_path)))
    figures = compute(run)
    verdicts = {v.name: v for v in judge(run, figures)}
    assert not run.error
    failed = sorted(name for name, v in verdicts.items() if not v.ok)
    assert failed == ["herd (peak/mean per 100 ms)"], verdicts
    # Everyone still came back (by RESUME): only the shape of the storm is wrong.
    assert figures.recovered == figures.episodes == figures.clients
    assert figures.resumed == figures.recovered


def test_a_master_and_two_workers_with_the_proxies_on_another_address(tmp_path: Path) -> None:
    """Distributed as on several machines, on loopback: a Locust master and two
    worker processes; the proxies listen on 127.0.0.2 only (a worker elsewhere would
    dial the master machine's address) and the servers' certificates carry that
    address (clients verify it). The schedule runs once; every client reports once."""
    loaded = load_load_file(FILES / "smoke.load.yaml")
    options = LoadOptions(work_dir=tmp_path, workers=2, proxy_host="127.0.0.2")
    run = asyncio.run(play_load(loaded, options))
    figures = compute(run)
    failed = [v for v in judge(run, figures) if not v.ok]
    assert not run.error and failed == [], (run.error, failed, run.problems)
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["workers"] == 2
    for server in config["servers"]:
        assert server["base_url"].startswith("https://127.0.0.2:")
        assert server["gateway_url"].startswith("wss://127.0.0.2:")
        assert "BEGIN CERTIFICATE" in server["ca_pem"]  # for a worker without the file
    users = [s["user"] for s in run.summaries]
    assert len(users) == len(set(users)) == loaded.load.crowd.clients
    assert [f.kind for f in run.fired] == ["proxy_down", "heal"]  # once, not per worker
    assert figures.recovered == figures.episodes == figures.clients


RETRY_FILE = """\
name: failed first connects are retried
crowd:
  clients: 6
  spawn_rate: 2
  servers: {alpha: {rate_limit: off}}
  send_every: null
run_for: 20s
schedule:
  - at: 0s
    server_fault: {server: alpha, kind: rest_fail, method: POST, path: /auth/login, count: 2}
thresholds:
  connected_at_end: 100%
"""


def test_a_client_whose_first_connect_failed_presses_reconnect(tmp_path: Path) -> None:
    """Two logins answer 500: those clients end their first connect with
    'Reconnection failed' (the core's rule: a failed first connect is final for
    the client), press Reconnect and connect; the crowd is whole at the end."""
    path = tmp_path / "retry.load.yaml"
    path.write_text(RETRY_FILE, encoding="utf-8")
    run = asyncio.run(play_load(load_load_file(path), LoadOptions(work_dir=tmp_path / "run")))
    figures = compute(run)
    failed = [v for v in judge(run, figures) if not v.ok]
    assert not run.error and failed == [], (run.error, failed, run.problems)
    tries = sorted(s["connect_tries"] for s in run.summaries)
    assert tries == [1, 1, 1, 1, 2, 2], tries
    assert all(s["connected_now"] and not s["connect_error"] for s in run.summaries)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_leaves_no_process_or_port_behind(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TOXIPROXY_URL", None)  # the run starts (and must stop) its own Toxiproxy
    cli = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "load", str(FILES / "smoke.load.yaml"),
         "--out", str(tmp_path)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert cli.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = cli.stderr.readline()
        lines.append(line)
        if "fault" in line or not line:
            break
    assert any("fault" in line for line in lines), "".join(lines)
    children = psutil.Process(cli.pid).children(recursive=True)
    names = {c.name() for c in children}
    assert any("toxiproxy" in n for n in names) and len(children) >= 3, names
    config = (tmp_path / "smoke" / "config.json").read_text()
    ports = [
        int(p.split(":")[2].split("/")[0]) for p in config.split('"') if p.startswith("https:")
    ]
    assert ports and all(_listening(p) for p in ports)
    cli.send_signal(signal.SIGINT)
    try:
        assert cli.wait(60) == 130, cli.stderr.read()
    finally:
        if cli.poll() is None:
            cli.kill()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    assert not any(_listening(p) for p in ports)


@pytest.fixture(autouse=True)
def _no_toxiproxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run here starts its own Toxiproxy (and so proves it stops it)."""
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
