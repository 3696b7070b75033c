"""Load files go through the scenario loader family: the repo's files are valid, a
bad file gets file:line: field: message errors, and the CLI exits 4 on one."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.cli import main
from load.loader import discover, load_all, load_load_file
from scenarios.errors import ScenarioError

REPO_FILES = Path(__file__).parents[2] / "load" / "files"


def test_every_repo_load_file_is_valid() -> None:
    loaded, problems = load_all(discover([REPO_FILES]))
    assert problems == []
    names = {item.load.name for item in loaded}
    assert len(loaded) >= 5 and len(names) == len(loaded)


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.load.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_load_file(path)
    return [str(p).replace(str(path), "F") for p in caught.value.problems]


def test_schema_errors_name_file_line_and_field(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """name: bad
crowd:
  clients: 0
  send_every: 2x
run_for: 10s
schedule:
  - at: 3s
    frobnicate: alpha
  - at: 1s
    after: 1s
    kill_server: alpha
  - when: {connected: 95}
    toxic: {proxy: alpha.gateway, type: latency, attributes: {bogus: 1}}
thresholds:
  recovery: {p42: 1s}
""",
    )
    assert errors == [
        "F:3: crowd.clients: Input should be greater than or equal to 1 (got 0)",
        "F:4: crowd.send_every: expected a duration like '5s', '300ms' or '3 heartbeats', got '2x'",
        "F:7: schedule[0]: unknown fault 'frobnicate' (expected one of: toxic, proxy_down, "
        "heal, kill_server, restart_server, freeze_server, thaw_server, server_fault, "
        "server_close, invalid_session)",
        "F:9: schedule[1]: give one trigger (at, after or when), found at, after",
        "F:13: schedule[2].toxic: toxic 'latency' has no attribute 'bogus' (it takes "
        "latency, jitter)",
        "F:15: thresholds.recovery.p42: unknown field",
    ]


def test_semantic_errors_unknown_server_bad_fault_and_late_at(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """name: bad
crowd: {clients: 5, servers: [alpha]}
run_for: 10s
schedule:
  - at: 2s
    proxy_down: beta.gateway
  - at: 20s
    kill_server: alpha
  - after: 1s
    server_fault: {server: alpha, kind: rest_fail, status: 99}
""",
    )
    assert errors[0] == "F:6: schedule[0].proxy_down: server 'beta' is not in crowd.servers (alpha)"
    assert errors[1] == "F:7: schedule[1].at: at 20s is not before run_for 10s"
    assert errors[2].startswith("F:10: schedule[2].server_fault.status: ")


def test_cli_exits_4_on_a_bad_file_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.load.yaml"
    path.write_text("name: bad\ncrowd: {clients: 1}\nrun_for: soon\n")
    assert main([str(path)]) == 4
    err = capsys.readouterr().err
    assert f"{path}:3: run_for: expected a duration" in err
    assert "nothing was run" in err


def test_cli_validate_accepts_the_repo_files() -> None:
    assert main(["--validate", str(REPO_FILES)]) == 0
