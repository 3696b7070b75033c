"""`accord-rig run --sim`: the catalogue in simulation reaches the real verdicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from client.core.bugs import Bug
from scenarios.loader import discover, load_all, load_scenario
from sim import scenario as sim_scenario
from sim.cli import run_catalogue
from sim.scenario import play

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "scenarios"


def _catalogue() -> list:  # type: ignore[type-arg]
    loaded, problems = load_all(discover([str(CATALOGUE)]))
    assert not problems
    return loaded


def test_the_whole_catalogue_passes_in_simulation() -> None:
    verdicts = run_catalogue(_catalogue())
    failed = [
        f"{v.name}: {v.error or [f.title for f in v.result.failures]}"
        for v in verdicts
        if not v.passed
    ]
    assert len(verdicts) >= 70
    assert not failed, failed


@pytest.mark.parametrize("bug", [int(b) for b in Bug])
def test_each_bug_fails_its_scenarios_in_simulation(bug: int) -> None:
    tagged = [item for item in _catalogue() if f"bug:{bug}" in item.scenario.tags]
    assert tagged
    verdicts = run_catalogue(tagged, bugs=(bug,))
    still_passing = [v.name for v in verdicts if v.passed]
    rig_errors = [v.name for v in verdicts if v.error]
    assert not still_passing and not rig_errors, (still_passing, rig_errors)


def test_a_step_the_simulator_cannot_model_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sim_scenario.UNSUPPORTED_STEPS, "pause", "no reason, in this test")
    path = tmp_path / "p.scenario.yaml"
    path.write_text(
        "name: p\nsetup: {servers: [alpha]}\nsteps:\n  - connect: alpha\n  - pause: 1s\n",
        encoding="utf-8",
    )
    result = play(load_scenario(path), tmp_path / "run")
    assert not result.passed
    assert "step 2 (line 5) pause: cannot simulate" in result.error, result.error


def test_run_sim_cli_compare_prints_the_agreement_table(tmp_path: Path) -> None:
    junit = tmp_path / "real.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase name="a fatal close code makes the client log in '
        'again and reconnect"/></testsuite></testsuites>',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios.cli",
            "run",
            "--sim",
            str(CATALOGUE / "starter"),
            "--compare",
            str(junit),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "| a fatal close code makes the client log in again and reconnect | pass | pass | yes |"
        in proc.stdout
    )
    assert "agreement: 1/6 scenarios reach the same verdict" in proc.stdout
