"""Catalogue scenarios against an external server: the fake started as the real server
would be (`python -m fake_server --plain-http --no-control`, by the rig from
--server-command), accounts registered over REST, the rig's TLS front before it.
Network- and process-fault scenarios pass; fault-control ones are skipped, named."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chaos import ToxiproxyServer
from chaos.tls_front import CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, TlsFront
from client.core.timings import Timings
from client.timeline import Timeline
from fake_server.tls import ensure_test_pki
from scenarios.delivery import attribute_sends, check_delivery
from scenarios.external import ExternalTarget
from scenarios.loader import load_scenario
from scenarios.needs import Need
from scenarios.pytest_plugin import scenario_timeout
from scenarios.runner import longest_wait
from scenarios.schema import STEP_KINDS

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 180
FAKE = f"{sys.executable} -m fake_server --no-control --port {{port}} --db {{work}}/server.db"
PLAIN_COMMAND = (
    FAKE + " --plain-http --timescale {timescale} --heartbeat-interval {heartbeat_ms}"
)
NETWORK = [
    "toxics/latency.scenario.yaml",
    "gateway_disconnect/proxy_down.scenario.yaml",  # user_post / user_edit over REST
    "rest_send_failure/proxy_down.scenario.yaml",
]
PROCESS = [
    "starter/server_restart.scenario.yaml",  # kill_server, restart_server
    "heartbeat_timeout/freeze_then_kill.scenario.yaml",  # freeze_server, kill_server
]
FAULT_CONTROL = {
    "starter/withheld_acks.scenario.yaml": "server_fault withhold_acks needs "
    "the fake server's control API",
    "starter/fatal_close.scenario.yaml": "server_close needs the fake server's control API",
}


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer.start()
    try:
        yield server
    finally:
        server.stop()


def rig(*args: str, toxiproxy: ToxiproxyServer | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"TOXIPROXY_URL": toxiproxy.url} if toxiproxy else {})}
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", *args],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in ET.parse(path).getroot().iter("testcase")}


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_catalogue_on_the_fake_as_an_external_server(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    files = [str(REPO / "scenarios" / f) for f in [*NETWORK, *PROCESS, *FAULT_CONTROL]]
    run = rig(
        "run", *files, "-n", "2", "--out", str(out), "--junitxml", str(junit),
        "--target", "external", "--server-url", "http://127.0.0.1:{port}",
        "--server-command", PLAIN_COMMAND, "--register",
        toxiproxy=toxiproxy,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cases = junit_cases(junit)
    assert len(cases) == len(files)
    skipped = {name: c.find("skipped") for name, c in cases.items()}
    failed = [
        name for name, c in cases.items()
        if c.find("failure") is not None or c.find("error") is not None
    ]  # fmt: skip
    assert failed == []
    reasons = sorted(
        s.attrib.get("message", "") for s in skipped.values() if s is not None
    )
    assert len(reasons) == len(FAULT_CONTROL)
    for expected in FAULT_CONTROL.values():
        assert any(expected in r for r in reasons), (expected, reasons)
    assert "SKIP" in run.stderr and "needs the fake server's control API" in run.stderr

    runs = sorted(p.parent for p in out.rglob("timeline.jsonl"))
    assert len(runs) == len(NETWORK) + len(PROCESS)  # the skipped ones never started
    for folder in runs:
        timeline = records(folder / "timeline.jsonl")
        # The client spoke HTTPS to Toxiproxy's ports only, never to the server's own.
        server_ports = set()
        for log in folder.glob("*.log"):
            for line in log.read_text().splitlines():
                if line.startswith("{"):
                    info = json.loads(line)
                    assert info["control"] is None  # started without a control API
                    assert info["rest"].startswith("http://")  # plain HTTP behind the front
                    server_ports.add(urlsplit(info["rest"]).port)
        assert server_ports
        client_urls = {
            str(r["data"]["url"])  # type: ignore[index]
            for r in timeline
            if r["src"] == "client" and r["name"] in ("HttpRequest", "OpenSocket")
        }
        assert client_urls and all(u.startswith(("https://", "wss://")) for u in client_urls)
        assert not {urlsplit(u).port for u in client_urls} & server_ports
        # Fresh accounts, registered over REST (the fake's own record of its requests).
        history = records(next(folder.rglob("server.history.jsonl")))
        assert any(
            h["kind"] == "http" and "/auth/register" in json.dumps(h["data"]) for h in history
        )
        delivery = [r for r in timeline if r["name"] == "delivery"]
        assert delivery, f"{folder.name}: the delivery checker did not run"
    restart = next(f for f in runs if "killed-and-restarted" in f.name)
    counts = next(r["data"] for r in records(restart / "timeline.jsonl") if r["name"] == "delivery")
    assert counts["delivered"] >= 1 and counts["lost"] == 0  # type: ignore[index]


def test_https_server_is_reached_directly_with_its_ca(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    pki = ensure_test_pki(tmp_path / "pki", ())
    command = (
        f"{FAKE} --tls-cert {pki.cert} --tls-key {pki.key} --timescale {{timescale}} "
        "--heartbeat-interval {heartbeat_ms}"
    )
    out = tmp_path / "out"
    run = rig(
        "run", str(REPO / "scenarios" / NETWORK[0]), "--out", str(out),
        "--target", "external", "--server-url", "https://127.0.0.1:{port}",
        "--server-ca", str(pki.ca), "--server-command", command, "--register",
        toxiproxy=toxiproxy,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (folder,) = [p.parent for p in out.rglob("timeline.jsonl")]
    assert not list(folder.rglob("front-tls"))  # no front: Toxiproxy forwards to the server
    log = (folder / "alpha.log").read_text()
    assert '"rest": "https://127.0.0.1' in log


def test_list_shows_what_can_run_and_why_not() -> None:
    run = rig(
        "list", "scenarios/", "--target", "external", "--server-url", "http://127.0.0.1:9",
        "--register",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = {line.split("\t")[1]: line.split("\t")[2:] for line in run.stdout.splitlines()}
    assert len(rows) == 73
    assert rows["scenarios/gateway_disconnect/proxy_down.scenario.yaml"][0] == "run"
    kill = rows["scenarios/starter/server_restart.scenario.yaml"]
    assert kill[0] == "skip" and "kill_server needs a server process the rig starts" in kill[1]
    acks = rows["scenarios/starter/withheld_acks.scenario.yaml"]
    assert acks[0] == "skip" and "server_fault withhold_acks needs" in acks[1]
    hb = rows["scenarios/toxics/bandwidth.scenario.yaml"]
    assert hb[0] == "skip" and "setup.servers.alpha.heartbeat needs" in hb[1]
    assert "can run on external server http://127.0.0.1:9" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "external", "--register"], "needs --server-url"),
        (["--target", "external", "--server-url", "http://127.0.0.1:9"], "--accounts FILE or"),
        (["--server-url", "http://127.0.0.1:9"], "need --target external"),
        (["--target", "external", "--server-url", "http://127.0.0.1:{port}", "--register"],
         "{port} needs a --server-command"),
        (["--target", "external", "--server-url", "http://h:1", "--server-ca", "x.pem",
          "--register"], "only for an https://"),
        (["--target", "external", "--server-url", "http://h:1", "--register",
          "--server-command", "serve {nope}"], "unknown placeholder"),
    ],
)
def test_bad_target_options_are_usage_errors(args: list[str], message: str) -> None:
    run = rig("list", "scenarios/starter", *args)
    assert run.returncode == 4 and message in run.stderr, run.stderr


def test_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("alice: qa1:secret1\nbob: {username: qa2, password: secret2}\n")
    target = ExternalTarget.create("http://127.0.0.1:9", accounts=str(path))
    assert {k: (a.name, a.password) for k, a in target.accounts.items()} == {
        "alice": ("qa1", "secret1"), "bob": ("qa2", "secret2")
    }
    assert target.offered() == frozenset()
    path.write_text("alice: no-password\n")
    with pytest.raises(Exception, match="alice: expected NAME:PASSWORD"):
        ExternalTarget.create("http://127.0.0.1:9", accounts=str(path))


def test_command_placeholders_decide_what_is_offered() -> None:
    target = ExternalTarget.create(
        "http://127.0.0.1:{port}", command="serve --port {port} --hb {heartbeat_ms}",
        register=True,
    )
    assert target.offered() == {Need.OWN_PROCESS, Need.SET_HEARTBEAT, Need.SERVER_PER_NAME}
    assert target.run_timescale(0.05) == 1.0  # no {timescale}: the server's own
    assert ExternalTarget.create(
        "http://127.0.0.1:9", command="serve {timescale}", register=True
    ).run_timescale(0.05) == 0.05


def test_every_step_kind_has_a_handler_and_the_faults_need_the_fake() -> None:
    assert all(entry.handler is not None and entry.doc for entry in STEP_KINDS.values())
    import scenarios.runner  # noqa: F401  (ties the handlers)

    needing = {kind for kind, entry in STEP_KINDS.items() if Need.FAKE_CONTROL in entry.needs}
    assert needing == {"server_fault", "server_close", "invalid_session"}
    own = {kind for kind, entry in STEP_KINDS.items() if Need.OWN_PROCESS in entry.needs}
    assert own == {"kill_server", "freeze_server", "thaw_server", "restart_server"}


# --------------------------------------------------------------------------- the TLS front


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_tls_front_forwards_both_ways_and_closes_when_the_server_is_down(
    tmp_path: Path,
) -> None:
    pki = ensure_test_pki(tmp_path / "pki", ())
    assert pki.ca is not None
    listener, _ = _echo_server()
    front = TlsFront("127.0.0.1", listener.getsockname()[1], pki.cert, pki.key)
    port = front.start()
    context = ssl.create_default_context(cafile=str(pki.ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
            tls.sendall(b"x" * 200_000)
            got = b""
            while len(got) < 200_000:
                chunk = tls.recv(65536)
                assert chunk, "the front closed early"
                got += chunk
            assert got == b"X" * 200_000
        listener.close()
        # Nothing listens upstream now: the handshake succeeds, then the front closes.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
            tls.settimeout(5)
            # An abort instead of close_notify is a close too; a timeout is not.
            with contextlib.suppress(ssl.SSLError, ConnectionResetError):
                assert tls.recv(10) == b""
    finally:
        front.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_tls_front_waits_out_a_slow_handshake_longer_than_the_clients_timeouts(
    tmp_path: Path,
) -> None:
    # Measured against accordserver v0.1.32 at timescale 1: a 3 s latency toxic made the
    # handshake take over 6 s, and a front that gave up after 5 s turned the client's
    # "Request timed out" into "Could not connect" (docs/external.md).
    assert Timings().rest_timeout < HANDSHAKE_TIMEOUT
    pki = ensure_test_pki(tmp_path / "pki", ())
    assert pki.ca is not None
    listener, _ = _echo_server()
    front = TlsFront("127.0.0.1", listener.getsockname()[1], pki.cert, pki.key)
    port = front.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            # No ClientHello for longer than the front's upstream connect timeout: still open.
            raw.settimeout(CONNECT_TIMEOUT + 1.0)
            with pytest.raises(TimeoutError):
                raw.recv(10)
    finally:
        front.stop()
        listener.close()


def test_a_scenario_played_in_real_time_gets_a_timeout_from_its_own_waits() -> None:
    # Measured against accordserver v0.1.32: reconnect_failed/manual_reconnect_flushes
    # (setup.timescale 0.02) played at the server's 1.0 ran into the 120 s timeout.
    loaded = load_scenario(
        REPO / "scenarios" / "reconnect_failed" / "manual_reconnect_flushes.scenario.yaml"
    )
    url = "http://127.0.0.1:{port}"
    real = ExternalTarget.create(url, command="server --port {port}", register=True)
    timeout = scenario_timeout(loaded, real, None, 120.0)
    assert timeout is not None
    assert timeout >= longest_wait(loaded.scenario, 1.0) > 120.0
    # A server the rig sets the timescale of, or no configured timeout: nothing changes.
    scaled = ExternalTarget.create(
        url, command="server --port {port} --ts {timescale}", register=True
    )
    assert scenario_timeout(loaded, scaled, None, 120.0) is None
    assert scenario_timeout(loaded, None, None, 120.0) is None
    assert scenario_timeout(loaded, real, None, 0.0) is None


# --------------------------------------------------------------------------- delivery over REST


def test_delivery_without_nonces_credits_by_answer_id_then_text() -> None:
    timeline = Timeline(origin=0.0)
    timeline.add(1.0, "client", "signal", "message_sending", {"args": ["alpha", "c1", "hi", "n1"]})
    timeline.add(1.1, "client", "signal", "message_sent", {"args": ["alpha", "c1", "n1", "11"]})
    timeline.add(2.0, "client", "signal", "message_queued", {"args": ["alpha", "c1", "late", "n2"]})
    sends = timeline.records
    users = {"alpha": "u1"}
    listed = {"alpha": [
        {"id": "11", "channel_id": "c1", "author_id": "u1", "content": "hi"},
        {"id": "12", "channel_id": "c1", "author_id": "u2", "content": "late"},  # bob's
        {"id": "13", "channel_id": "c1", "author_id": "u1", "content": "late"},
        {"id": "14", "channel_id": "c1", "author_id": "u1", "content": "late"},  # a 2nd copy
        {"id": "15", "channel_id": "c1", "author_id": "u1", "content": "never sent"},
    ]}  # fmt: skip
    credited = attribute_sends(sends, listed, users)["alpha"]
    assert [m.get("nonce") for m in credited] == ["n1", None, "n2", "n2", None]
    report = check_delivery(sends, {"alpha": credited}, users)
    assert report.delivered == 1 and report.pending == 1
    assert len(report.duplicated) == 1 and len(report.unexpected) == 1


def test_the_docs_tables_follow_the_registry() -> None:
    from scenarios.needs import DOC, render

    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "run: python -m scenarios.needs"


MIXED = """\
name: one scenario server is external, the other a fake
setup:
  timescale: 0.05
  servers:
    alpha:
      external:
        url: "http://127.0.0.1:{{port}}"
        command: "{command}"
        register: true
    beta: {{}}
steps:
  - connect: alpha
  - connect: beta
  - select_channel: alpha/general
  - wait_for: {{status: {{alpha: connected, beta: connected}}, eventually: 10s}}
  - send: "hello over the front"
  - user_post: {{channel: alpha/general, text: "bob says hi"}}
  - wait_for:
      messages: {{channel: alpha/general, includes: ["hello over the front", "bob says hi"]}}
      eventually: 10s
  - kill_server: alpha
  - wait_for: {{status: {{alpha: reconnecting}}, eventually: 10s}}
  - restart_server: alpha
  # A process start does not scale: a liveness bound.
  - wait_for: {{status: {{alpha: connected}}, eventually: 200s}}
  - {last}
timeline:
  alpha:
    server: {{received: {{heartbeat: {{seq: latest}}}}}}
  beta:
    server: {{received: {{heartbeat: {{seq: latest}}}}}}
  delivery: {{delivered: 1}}
"""


def test_a_scenario_server_names_its_own_external_server(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    case = tmp_path / "mixed.scenario.yaml"
    case.write_text(MIXED.format(command=PLAIN_COMMAND, last="kill_server: beta"))
    out = tmp_path / "out"
    run = rig("run", str(case), "--out", str(out), toxiproxy=toxiproxy)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # Only alpha's history assertion is left out; beta is a fake and is judged.
    assert "not judged: timeline.alpha.server needs the fake server's history)" in run.stderr
    (folder,) = [p.parent for p in out.rglob("timeline.jsonl")]
    assert (folder / "alpha" / "front-tls").is_dir() and (folder / "beta.history.jsonl").exists()
    # A fault step on the external server that the rig did not start is skipped, named.
    case.write_text(
        MIXED.format(command=PLAIN_COMMAND, last="server_close: {server: alpha, code: 4000}")
    )
    run = rig("run", str(case), toxiproxy=toxiproxy)
    assert run.returncode == 0 and "server_close needs the fake server's control API" in run.stderr


def test_a_scenario_external_server_is_checked_when_loaded(tmp_path: Path) -> None:
    case = tmp_path / "bad.scenario.yaml"
    case.write_text(
        MIXED.format(command=PLAIN_COMMAND, last="pause: 1s").replace("register: true", "")
    )
    run = rig("validate", str(case))
    assert run.returncode == 4
    assert "bad.scenario.yaml:6: setup.servers.alpha.external" in run.stderr
    assert "accounts or register" in run.stderr


def test_several_servers_need_one_server_each_only_when_they_share_the_runs(
    tmp_path: Path,
) -> None:
    from scenarios.external import needs_missing
    from scenarios.loader import load_scenario

    run_target = ExternalTarget.create("http://127.0.0.1:9", register=True)
    case = tmp_path / "two.scenario.yaml"
    case.write_text(
        "name: two\nsetup: {servers: [alpha, beta]}\nsteps: [{connect: alpha}]\n"
    )
    skip, _ = needs_missing(load_scenario(case), run_target)
    assert skip.startswith("setup.servers (alpha, beta) needs one server per name")
    case.write_text(
        "name: two\nsetup:\n  servers:\n    alpha: {external: {url: 'http://127.0.0.1:8',"
        " register: true}}\n    beta: {}\nsteps: [{connect: alpha}, {kill_server: alpha}]\n"
    )
    skip, _ = needs_missing(load_scenario(case), run_target)
    assert skip == (
        "step 2 (line 6) kill_server needs a server process the rig starts (--server-command)"
    )
    assert needs_missing(load_scenario(case), None)[0] == skip  # alpha's own target decides


SEND_ONCE = """\
name: one message on a shared server
setup: {servers: [alpha]}
steps:
  - connect: alpha
  - select_channel: alpha/general
  - wait_for: {status: {alpha: connected}, eventually: 10s}
  - send: "hello again"
  - wait_for: {signal: {name: message_sent, args: [alpha]}, eventually: 10s}
timeline:
  delivery: {delivered: 1, pending: 0}
"""


def test_a_shared_server_keeps_earlier_runs_messages_out_of_the_delivery_check(
    tmp_path: Path, toxiproxy: ToxiproxyServer
) -> None:
    """One server the rig does not start, one fixed account, the same scenario
    twice: the second run's checker must not count the first run's message (same
    user, same text) as `unexpected`, nor credit it to its own send."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "fake_server", "--plain-http", "--no-control",
         "--port", str(port), "--db", str(tmp_path / "shared.db")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("{")
        case = tmp_path / "once.scenario.yaml"
        case.write_text(SEND_ONCE)
        accounts = tmp_path / "accounts.yaml"
        accounts.write_text("alice: alice:password\n")
        out = tmp_path / "out"
        run = rig(
            "run", str(case), "--repeat", "2", "--out", str(out),
            "--target", "external", "--server-url", f"http://127.0.0.1:{port}",
            "--accounts", str(accounts), toxiproxy=toxiproxy,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        deliveries = [
            next(r["data"] for r in records(p) if r["name"] == "delivery")
            for p in sorted(out.rglob("timeline.jsonl"))
        ]
        assert len(deliveries) == 2
        assert all(d["delivered"] == 1 and d["unexpected"] == 0 for d in deliveries), deliveries  # type: ignore[index]
    finally:
        server.terminate()
        server.wait(10)
