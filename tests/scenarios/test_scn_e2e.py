"""End to end through the real Toxiproxy: `accord-rig run` in a subprocess.

A wrong expectation fails with both timelines side by side; nothing is left
behind (processes, proxies, ports) after a pass, a failure or a Ctrl-C; a missing
Toxiproxy fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chaos import ToxiproxyServer
from chaos.toxiproxy_server import find_binary

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 120

PASSING = """\
name: connects and sends
tags: [flow:e2e-smoke]
setup: {servers: [alpha], timescale: 0.05}
steps:
  - connect: alpha
  - select_channel: alpha/general
  - wait_for: {status: {alpha: connected}, eventually: 10s}
  - send: hello
  - wait_for: {signal: {name: message_sent}, within: 10s}
timeline:
  alpha:
    status: [connecting, connected]
  delivery: {delivered: 1}
"""

WRONG_BANNER = """\
name: expects the wrong banner
tags: [flow:e2e-wrong]
setup:
  servers: {alpha: {heartbeat: 10s}}
  timescale: 0.05
steps:
  - connect: alpha
  - select_channel: alpha/general
  - wait_for: {status: {alpha: connected}, eventually: 10s}
  - server_close: {server: alpha, code: 1001, reason: bye}
  - wait_for: {banner: {color: green, text: "Reconnected!"}, within: 30s}
timeline:
  alpha:
    banners:
      in_order:
        - {color: yellow, text: "Heartbeat timeout. Reconnecting..."}
"""

MISSING_MESSAGE = """\
name: edits a message nobody sent
setup: {servers: [alpha], timescale: 0.05}
steps:
  - connect: alpha
  - select_channel: alpha/general
  - wait_for: {status: {alpha: connected}, eventually: 10s}
  - edit: {message: "never sent", text: "edited"}
"""

SLOW = """\
name: waits a long time
setup: {servers: [alpha], timescale: 0.05}
steps:
  - connect: alpha
  - wait_for: {status: {alpha: connected}, eventually: 10s}
  - pause: 20m
"""


EVERY_STEP = """\
name: every step kind once
tags: [flow:all-steps]
setup:
  servers: [alpha]
  timescale: 0.05
steps:
  - add_server: {server: alpha, url: "http://127.0.0.1:1"}
  - expect: {mode: CONNECTING}
  - connect: alpha
  - select_channel: alpha/general
  - wait_for: {status: {alpha: connected}, mode: LIVE, eventually: 10s}
  - send: "first"
  - wait_for: {signal: {name: message_sent}, within: 5s}
  - edit: {message: "first", text: "first, edited"}
  - wait_for: {messages: {channel: alpha/general, includes: ["first, edited"]}, within: 5s}
  - delete: {message: "first, edited"}
  - wait_for: {messages: {channel: alpha/general, excludes: ["first, edited"]}, within: 5s}
  - user_post: {user: bob, channel: alpha/general, text: "from bob"}
  - wait_for: {messages: {channel: alpha/general, includes: ["from bob"]}, within: 5s}
  - user_edit: {user: bob, channel: alpha/general, message: "from bob", text: "from bob, edited"}
  - wait_for: {messages: {channel: alpha/general, includes: ["from bob, edited"]}, within: 5s}
  - user_delete: {user: bob, channel: alpha/general, message: "from bob, edited"}
  - wait_for: {messages: {channel: alpha/general, excludes: ["from bob, edited"]}, within: 5s}
  - fetch: alpha/random
  - click_retry: alpha/general
  - proxy_down: alpha.rest
  - send: "no route"
  - wait_for: {composer: {label: "Failed to send: Could not connect to server"}, within: 35s}
  - heal: alpha.rest
  - freeze_server: alpha
  - pause: 1s
  - thaw_server: alpha
  - wait_for: {status: {alpha: connected}, within: 30s}
  - proxy_down: alpha.gateway
  - wait_for: {status: {alpha: reconnecting}, within: 5s}
  - reconnect: alpha
  - wait_for: {signal: {name: server_reauthenticating}, within: 5s}
  - wait_for:
      status: {alpha: error}
      banner: {color: red, text: "Connection failed: Reconnection failed", button: Reconnect}
      within: 30s
  - heal: all
  - reconnect: alpha
  - wait_for: {status: {alpha: connected}, within: 30s}
  - enable_bug: 7
  - proxy_down: alpha
  - wait_for: {status: {alpha: reconnecting}, dot: {alpha: yellow}, within: 5 heartbeats}
  - heal: all
  - wait_for: {status: {alpha: connected}, within: 60s}
  - remove_server: alpha
  - wait_for: {signal: {name: server_removed}, mode: CONNECTING, within: 5s}
timeline:
  alpha:
    logins: {min: 2}
  delivery: {messages_match_server: false}
"""


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer.start()
    try:
        yield server
    finally:
        server.stop()


def rig(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def proxies(server: ToxiproxyServer) -> dict[str, dict[str, Any]]:
    return asyncio.run(server.api().proxies())


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(proc.name) != os.getpid():
            found.append(f"{proc.name}: {cmdline}")
    return found


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_ports(out: Path) -> set[int]:
    """The fake servers' own ports (from their histories)."""
    ports: set[int] = set()
    for history in out.rglob("*.history.jsonl"):
        for line in history.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "server" and record.get("name") == "start":
                ports.add(int(urlsplit(record["data"]["rest"]).port or 0))
    return ports


def client_ports(out: Path) -> set[int]:
    """Every port the client sent a request or opened a socket to."""
    ports: set[int] = set()
    for timeline in out.rglob("timeline.jsonl"):
        for line in timeline.read_text().splitlines():
            record = json.loads(line)
            if record["src"] == "client" and record["name"] in ("HttpRequest", "OpenSocket"):
                ports.add(int(urlsplit(record["data"]["url"]).port or 0))
    return ports


def ports_of_run(out: Path) -> set[int]:
    """Every port the run listened on: fake servers and proxies (the client's targets)."""
    return (server_ports(out) | client_ports(out)) - {0}


def assert_nothing_left(out: Path, server: ToxiproxyServer, ports: set[int]) -> None:
    assert proxies(server) == {}, "the run left proxies in Toxiproxy"
    assert processes_mentioning(str(out)) == [], "the run left child processes"
    assert ports, "no ports were found for the run"
    assert [p for p in ports if port_in_use(p)] == [], "the run left ports open"


def test_pass_and_wrong_banner_then_nothing_left(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    scenarios = tmp_path / "cases"
    scenarios.mkdir()
    (scenarios / "pass.scenario.yaml").write_text(PASSING)
    (scenarios / "wrong.scenario.yaml").write_text(WRONG_BANNER)
    (scenarios / "missing.scenario.yaml").write_text(MISSING_MESSAGE)
    out = tmp_path / "out"
    junit = tmp_path / "junit.xml"
    allure = tmp_path / "allure-results"
    run = rig(
        "run", str(scenarios), "--out", str(out), "--junitxml", str(junit),
        "--alluredir", str(allure), env={"TOXIPROXY_URL": toxiproxy.url},
    )  # fmt: skip
    stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    assert run.returncode == 1, stdout + stderr
    assert "PASS connects and sends" in stderr
    assert "FAIL expects the wrong banner" in stderr
    # The failure shows the expected and the observed banners side by side.
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("banners of alpha"))
    assert "expected" in lines[header + 1] and "| observed" in lines[header + 1]
    table = "\n".join(lines[header : header + 12])
    row = next(line for line in lines[header:] if "Heartbeat timeout. Reconnecting..." in line)
    assert "| t=" in row, table
    assert "Server going away. Reconnecting..." in table, table
    # A step that cannot be done fails the scenario, naming the step and its line.
    assert "FAIL edits a message nobody sent" in stderr
    assert "step 4 (line 7) edit: the client shows no message 'never sent'" in stdout
    assert junit.read_text().count("<testcase") == 3
    # The client only ever talked to the proxies, never to a fake server directly.
    assert client_ports(out) and server_ports(out)
    assert client_ports(out).isdisjoint(server_ports(out))
    assert_nothing_left(out, toxiproxy, ports_of_run(out))
    assert_no_secrets(out)
    assert_allure_results(allure, tmp_path / "report")


def assert_allure_results(results: Path, report: Path) -> None:
    """One Allure step per scenario step, the timeline picture attached; the HTML renders."""
    cases = {}
    for path in results.glob("*-result.json"):
        case = json.loads(path.read_text())
        cases[case["name"]] = case
    passing = cases["connects and sends"]
    assert passing["status"] == "passed"
    assert len(passing["steps"]) == PASSING.count("\n  - ")
    assert "image/png" in {a["type"] for a in passing["attachments"]}
    failing = cases["expects the wrong banner"]
    assert failing["status"] == "failed"
    render = rig("report", "--alluredir", str(results), "-o", str(report))
    stdout, stderr = render.communicate(timeout=RUN_TIMEOUT)
    assert render.returncode == 0, stdout + stderr
    assert (report / "index.html").is_file()


def assert_no_secrets(out: Path) -> None:
    """The tokens the servers issued (and their control tokens) appear in no timeline."""
    secrets: set[str] = set()
    for db in out.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            secrets |= {row[0] for row in conn.execute("SELECT token FROM tokens")}
    for log in out.rglob("*.log"):
        for line in log.read_text().splitlines():
            if line.startswith("{") and "control_token" in line:
                secrets.add(json.loads(line)["control_token"])
    assert secrets, "no tokens found to look for"
    for timeline in out.rglob("timeline.jsonl"):
        text = timeline.read_text()
        assert [s for s in secrets if s in text] == [], f"a token leaked into {timeline}"


def test_ctrl_c_stops_the_run_and_leaves_nothing(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    case = tmp_path / "slow.scenario.yaml"
    case.write_text(SLOW)
    out = tmp_path / "out"
    run = rig("run", str(case), "--out", str(out), env={"TOXIPROXY_URL": toxiproxy.url})
    try:
        deadline = time.monotonic() + 60
        seen_ports: set[int] = set()
        # Wait until the run is in its pause: both proxies exist and the client connected.
        while time.monotonic() < deadline and run.poll() is None:
            listed = proxies(toxiproxy)
            servers = [p for p in processes_mentioning(str(out)) if "fake_server" in p]
            if len(listed) == 2 and servers:
                seen_ports = {int(str(p["listen"]).rsplit(":", 1)[1]) for p in listed.values()}
                break
            time.sleep(0.05)  # polling an external process, with a deadline
        assert seen_ports, "the run never got going"
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130, stdout + stderr
    assert_nothing_left(out, toxiproxy, seen_ports | ports_of_run(out))


def test_missing_toxiproxy_fails_instead_of_skipping(tmp_path: Path) -> None:
    case = tmp_path / "pass.scenario.yaml"
    case.write_text(PASSING)
    env = {"TOXIPROXY_SERVER": str(tmp_path / "no-such-toxiproxy"), "TOXIPROXY_URL": ""}
    run = rig("run", str(case), env=env)
    stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    assert run.returncode == 1, stdout + stderr
    assert "could not run: TOXIPROXY_SERVER=" in stdout and "no-such-toxiproxy" in stdout
    assert "skipped" not in stdout
    assert "Traceback" not in stdout and "def from_call" not in stdout


def test_toxiproxy_binary_is_installed() -> None:
    # The rig's own scripts build it; without it the scenarios above cannot pass.
    assert find_binary().exists()


def test_every_step_kind_with_tag_keyword_and_repeat(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "all.scenario.yaml").write_text(EVERY_STEP)
    (cases / "pass.scenario.yaml").write_text(PASSING)  # filtered out by the tag
    run = rig(
        "run",
        str(cases),
        "--tag",
        "flow:all-steps",
        "-k",
        "every",
        "--repeat",
        "2",
        env={"TOXIPROXY_URL": toxiproxy.url},
    )
    stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    assert run.returncode == 0, stdout + stderr
    assert stderr.count("PASS every step kind once[run") == 2, stderr
    assert "connects and sends" not in stderr


def test_timescale_one_works(tmp_path: Path, toxiproxy: ToxiproxyServer) -> None:
    # Real-time durations end to end (the fatal-close starter takes ~2-3 s at 1.0).
    case = REPO / "scenarios" / "starter" / "fatal_close.scenario.yaml"
    run = rig("run", str(case), "--timescale", "1.0", env={"TOXIPROXY_URL": toxiproxy.url})
    stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    assert run.returncode == 0, stdout + stderr
    assert "PASS a fatal close code" in stderr


# ------------------------------------------------------------------ the newer forms, for real

DOCS = REPO / "docs" / "scenarios.md"

LATE_HIDE = """\
name: the green banner must hide within 1 s of client time
tags: [flow:e2e-within]
setup: {servers: [alpha], timescale: 0.05}
steps:
  - connect: alpha
  - select_channel: alpha/general
  - wait_for: {status: {alpha: connected}, eventually: 10s}
  - server_fault: {server: alpha, kind: drop}
  - wait_for: {banner: {color: green, text: "Reconnected!"}, within: 30s}
  # it hides after 3 s (client time): the rig waits 2 s of real time (the floor),
  # which is 40 s of client time, but the bound is judged in client time
  - wait_for:
      banner: hidden
      within: 1s
      since: {holds: {banner: {color: green, text: "Reconnected!"}}}
"""

SLOW_CONNECT = """\
name: a first connect cannot take 0.1 s of client time
tags: [flow:e2e-within]
setup: {servers: [alpha], timescale: 0.05}
steps:
  - connect: alpha
  - wait_for: {status: {alpha: connected}, within: 100ms}
"""


def docs_example(marker: str) -> str:
    """The ```yaml block of docs/scenarios.md that contains `marker`."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return str(block)


def test_the_docs_example_of_the_newer_forms_passes_and_each_mutation_fails(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    example = docs_example("as: first")
    mutated = (
        example.replace("name: ", "name: mutated, ", 1)
        .replace("handshakes: [identify, resume]", "handshakes: [identify, identify]")
        .replace('"POST /auth/login": 1', '"POST /auth/login": 2')
        .replace("at_most: 2s", "at_most: 0.5s")
        .replace("reconnected_by: [resume]", "reconnected_by: [identify]")
        .replace("steps: [4, 7]", "steps: [4, 10]")  # the composer is disabled while syncing
    )
    assert mutated.count("mutated") == 1 and mutated != example
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "example.scenario.yaml").write_text(example)
    (cases / "mutated.scenario.yaml").write_text(mutated)
    (cases / "late_hide.scenario.yaml").write_text(LATE_HIDE)
    (cases / "slow_connect.scenario.yaml").write_text(SLOW_CONNECT)
    run = rig("run", str(cases), env={"TOXIPROXY_URL": toxiproxy.url})
    stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    assert run.returncode == 1, stdout + stderr
    assert "PASS a dropped connection, told with the newer forms" in stderr, stdout
    assert "FAIL mutated, a dropped connection" in stderr
    for title in (
        "handshakes alpha received (exactly)",
        "requests 'POST /auth/login' received by alpha",
        "between {\"signal\"",
        "reconnections of alpha (one entry each)",
        "throughout (steps 4-10)",
    ):
        assert title in stdout, (title, stdout)
    assert "FAIL the green banner must hide within 1 s" in stderr
    assert re.search(r"held only after 3\.\d+s of client time", stdout), stdout
    assert "FAIL a first connect cannot take 0.1 s" in stderr
    assert "later than within 100ms" in stdout
