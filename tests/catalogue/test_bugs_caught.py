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

import functools
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from client.core.bugs import Bug
from scenarios.loader import discover, load_all
from scenarios.runner import longest_wait
from scenarios.schema import Scenario

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "scenarios"
BUGS = [int(bug) for bug in Bug]  # every switch of client.core.bugs, 1..12
SCENARIO_OVERHEAD_S = 10.0
"""Real seconds one scenario of a CLI run takes beyond its steps: fake server, two
proxies and client up (p95 1.4 s, docs/scenarios.md; 2.6 s seen at load 12), then
teardown, the verdict and the report. Measured at load 10-12 on the 2-core machine:
5-10 s of wall time per scenario beyond its steps' own span."""
CLI_START_S = 15.0
"""Real seconds for the CLI itself: imports, loading the catalogue, Toxiproxy up."""


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    text: str  # the failure report ("" when passed)


@functools.cache
def catalogue() -> list[Scenario]:
    """The catalogue's scenarios, loaded once (collection sizes a timeout per case)."""
    loaded, problems = load_all(discover([str(CATALOGUE)]))
    assert not problems, "\n".join(str(p) for p in problems)
    return [item.scenario for item in loaded]


def tagged(tag: str) -> list[str]:
    """Names of the catalogue's scenarios carrying `tag`."""
    return sorted(s.name for s in catalogue() if tag in s.tags)


def run_bound(tags: list[str]) -> float:
    """Real seconds a passing `accord-rig run --tag ...` over `tags` can take: each
    scenario's longest wait (every wait_for at its deadline, every pause) and its
    overhead, plus the CLI's start. A liveness bound sized from what the run plays
    (21 scenarios, ~420 s, for every bug tag), not a timing assertion."""
    chosen = [s for s in catalogue() if set(tags) & set(s.tags)]
    bound = CLI_START_S + sum(longest_wait(s) + SCENARIO_OVERHEAD_S for s in chosen)
    return max(bound, MIN_BOUND_S)


# Never below the suite's own pytest timeout: the estimate's overheads are guesses.
MIN_BOUND_S = 120.0
ALL_BUG_TAGS = [f"bug:{n}" for n in BUGS]
# The pytest timeout sits above the run's own bound, so a slow run fails with the
# subprocess's TimeoutExpired (naming the bound) rather than pytest-timeout's kill.
PYTEST_MARGIN_S = 30.0


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
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=run_bound(tags)
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


@pytest.mark.parametrize(
    "bug",
    [
        pytest.param(bug, marks=pytest.mark.timeout(run_bound([f"bug:{bug}"]) + PYTEST_MARGIN_S))
        for bug in BUGS
    ],
)
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


@pytest.mark.timeout(run_bound(ALL_BUG_TAGS) + PYTEST_MARGIN_S)
def test_bug_scenarios_pass_without_switches(tmp_path: Path) -> None:
    tags = ALL_BUG_TAGS
    names = sorted({name for tag in tags for name in tagged(tag)})
    code, outcomes, output = run_catalogue(tags, "", tmp_path / "junit.xml")
    failed = [o.name for o in outcomes if not o.passed]
    assert code == 0 and not failed, f"exit {code}, failed: {failed}\n{output[-3000:]}"
    assert sorted(o.name for o in outcomes) == names
