"""The catalogue catches every bug of client-behaviour.md s.9.

For each regression switch N, the scenarios tagged `bug:N` run through the real
CLI (`accord-rig run scenarios/ --tag bug:N`, a subprocess with
`ACCORD_RIG_BUGS=N`): the run must exit 1 and *every* one of those scenarios must
fail on its own assertions (a rig error does not count as catching the bug).
The other direction is batched: one run of all bug-tagged scenarios with no
switch on must exit 0 with every scenario passed, so each failure above is down
to its switch alone.

Each case is one subprocess (its own Toxiproxy), so `pytest -n 2` spreads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from client.core.bugs import Bug
from scenarios.loader import discover, load_all

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "scenarios"
BUGS = [int(bug) for bug in Bug]  # every switch of client.core.bugs, 1..12
RUN_TIMEOUT = 300  # seconds; a liveness bound for one CLI run, not a timing assertion


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    text: str  # the failure report ("" when passed)


def tagged(tag: str) -> list[str]:
    """Names of the catalogue's scenarios carrying `tag`."""
    loaded, problems = load_all(discover([str(CATALOGUE)]))
    assert not problems, "\n".join(str(p) for p in problems)
    return sorted(item.scenario.name for item in loaded if tag in item.scenario.tags)


def run_catalogue(tags: list[str], bugs: str, junit: Path) -> tuple[int, list[Outcome], str]:
    """`accord-rig run scenarios/ --tag ...` with ACCORD_RIG_BUGS=bugs; the exit
    code, each scenario's outcome (from the JUnit XML) and the output."""
    env = {k: v for k, v in os.environ.items() if k != "ACCORD_RIG_BUGS"}
    if bugs:
        env["ACCORD_RIG_BUGS"] = bugs
    command = [sys.executable, "-m", "scenarios.cli", "run", str(CATALOGUE)]
    for tag in tags:
        command += ["--tag", tag]
    command += ["--junitxml", str(junit)]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    outcomes = []
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            text = "" if problem is None else (problem.get("message", "") + (problem.text or ""))
            outcomes.append(Outcome(case.get("name", ""), problem is None, text))
    return proc.returncode, outcomes, proc.stdout + proc.stderr


@pytest.mark.parametrize("bug", BUGS)
def test_bug_is_caught(bug: int, tmp_path: Path) -> None:
    names = tagged(f"bug:{bug}")
    assert names, f"no scenario in the catalogue is tagged bug:{bug}"
    code, outcomes, output = run_catalogue([f"bug:{bug}"], str(bug), tmp_path / "junit.xml")
    assert code == 1, f"ACCORD_RIG_BUGS={bug}: expected exit 1, got {code}\n{output[-3000:]}"
    assert sorted(o.name for o in outcomes) == names, output[-3000:]
    passed = [o.name for o in outcomes if o.passed]
    assert not passed, f"with bug {bug} on these scenarios still pass: {passed}"
    rig_errors = [o.name for o in outcomes if "rig error:" in o.text]
    assert not rig_errors, f"failed by a rig error, not the bug: {rig_errors}\n{output[-3000:]}"


def test_bug_scenarios_pass_without_switches(tmp_path: Path) -> None:
    tags = [f"bug:{n}" for n in BUGS]
    names = sorted({name for tag in tags for name in tagged(tag)})
    code, outcomes, output = run_catalogue(tags, "", tmp_path / "junit.xml")
    failed = [o.name for o in outcomes if not o.passed]
    assert code == 0 and not failed, f"exit {code}, failed: {failed}\n{output[-3000:]}"
    assert sorted(o.name for o in outcomes) == names
