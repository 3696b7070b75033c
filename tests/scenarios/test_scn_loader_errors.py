"""Bad scenario files: `accord-rig validate` exits 4 and names file, line and field;
nothing is a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.cli import main

GOOD = """\
name: {name}
tags: [flow:ok]
setup:
  servers: [alpha]
steps:
  - connect: alpha
  - wait_for: {{status: {{alpha: connected}}, within: 5s}}
"""

# (kind, file text, expected line, text the message must contain)
BAD_FILES = [
    ("yaml syntax", "name: x\nsetup: {servers: [alpha]\nsteps: []\n", 3, "YAML syntax error"),
    (
        "unknown step",
        GOOD.format(name="x") + "  - teleport: alpha\n",
        8,
        "steps[2]: unknown step 'teleport'",
    ),
    (
        "unknown toxic",
        GOOD.format(name="x") + "  - toxic: {proxy: alpha.gateway, type: earthquake}\n",
        8,
        "steps[2].toxic.type",
    ),
    (
        "wrong type",
        GOOD.format(name="x") + "  - select_channel: [alpha, general]\n",
        8,
        "steps[2].select_channel: Input should be a valid string",
    ),
    (
        "missing field",
        GOOD.format(name="x") + "  - edit: {message: hello}\n",
        8,
        "steps[2].edit.text: missing required field",
    ),
    (
        "bad duration",
        GOOD.format(name="x") + "  - wait_for:\n      status: {alpha: connected}\n"
        "      within: 5 fortnights\n",
        10,
        "steps[2].wait_for.within: expected a duration",
    ),
    (
        "negative timeout",
        GOOD.format(name="x") + "  - wait_for: {status: {alpha: connected}, within: -3s}\n",
        8,
        "steps[2].wait_for.within: a duration cannot be negative",
    ),
    (
        "bad close code",
        GOOD.format(name="x") + "  - server_close: {server: alpha, code: 4242}\n",
        8,
        "steps[2].server_close.code: close code 4242",
    ),
    ("bad tag", GOOD.format(name="x").replace("flow:ok", "Flow Ok"), 2, "tags[0]: a tag is"),
    (
        "undeclared server",
        GOOD.format(name="x") + "  - kill_server: beta\n",
        8,
        "server 'beta' is not declared",
    ),
    (
        "bad fault spec",
        GOOD.format(name="x")
        + "  - server_fault:\n      server: alpha\n      kind: hang_forever\n",
        10,
        "steps[2].server_fault.kind",
    ),
    ("duplicate key", GOOD.format(name="x") + "name: again\n", 8, "name: duplicate key"),
    (
        "toxic attribute",
        GOOD.format(name="x") + "  - toxic:\n      proxy: alpha.gateway\n      type: latency\n"
        "      attributes: {jitter: 5}\n",
        11,
        "steps[2].toxic.attributes.latency",
    ),
    (
        "client floor in heartbeats",
        GOOD.format(name="x").replace("[alpha]", "[alpha]\n  client_floor: 1 heartbeat"),
        5,
        "setup.client_floor: client_floor is real seconds (e.g. 3s), not heartbeats",
    ),
]


@pytest.mark.parametrize(
    ("kind", "text", "line", "needle"), BAD_FILES, ids=[b[0] for b in BAD_FILES]
)
def test_bad_file_exits_4_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, text: str, line: int, needle: str
) -> None:
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 4
    err = capsys.readouterr().err
    assert f"{path}:{line}:" in err, err
    assert needle in err, err
    assert "Traceback" not in err


def test_duplicate_scenario_name_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.scenario.yaml").write_text(GOOD.format(name="same story"))
    (tmp_path / "b.scenario.yaml").write_text(GOOD.format(name="same story"))
    assert main(["validate", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert f"{tmp_path / 'b.scenario.yaml'}:1: name: duplicate scenario name 'same story'" in err
    assert "a.scenario.yaml:1" in err


def test_run_refuses_bad_files_before_running_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.scenario.yaml").write_text(GOOD.format(name="fine"))
    (tmp_path / "bad.scenario.yaml").write_text(BAD_FILES[1][1])
    assert main(["run", str(tmp_path)]) == 4
    assert "nothing was run" in capsys.readouterr().err


def test_usage_errors_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "missing")]) == 4
    assert main(["run", "--timescale", "-1"]) == 4
    assert main(["frobnicate"]) == 4
    assert main(["validate", str(tmp_path)]) == 4  # an empty folder holds no scenario
    assert "Traceback" not in capsys.readouterr().err


def test_good_files_validate_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "one.scenario.yaml").write_text(GOOD.format(name="one"))
    (tmp_path / "notes.yaml").write_text("not: a scenario\n")  # only *.scenario.yaml count
    assert main(["validate", str(tmp_path)]) == 0
    assert main(["list", str(tmp_path), "--tags"]) == 0
    assert capsys.readouterr().out.strip() == "flow:ok\t1"


def test_plain_pytest_reports_a_bad_file_as_a_clean_collection_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(BAD_FILES[7][1])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode != 0
    assert f"{path}:8: steps[2].server_close.code: close code 4242" in done.stdout
    assert "Traceback" not in done.stdout
