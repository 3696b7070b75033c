"""`accord-rig run --sim PATHS`: the scenario files in simulation, in-process (no
pytest, no Toxiproxy, no server processes), one line per scenario, and with
`--compare JUNIT` the agreement table against a real run's JUnit XML.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from scenarios.loader import LoadedScenario
from scenarios.render import failure_report
from scenarios.runner import ScenarioResult
from sim.scenario import play
from sim.world import fewer_full_collections

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 4
err = Console(stderr=True, highlight=False)


@dataclass
class SimVerdict:
    name: str
    path: Path
    passed: bool
    error: str
    cpu_s: float
    virtual_s: float
    result: ScenarioResult

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else ("error" if self.error else "fail")


@fewer_full_collections()
def run_catalogue(
    loaded: list[LoadedScenario],
    *,
    out: Path | None = None,
    timescale: float | None = None,
    seed: int | None = None,
    bugs: tuple[int, ...] = (),
) -> list[SimVerdict]:
    verdicts = []
    tmp = Path(tempfile.mkdtemp(prefix="accord-sim-")) if out is None else out
    try:
        for number, item in enumerate(loaded):
            work = tmp / f"{number:03d}"
            if work.exists():
                shutil.rmtree(work)
            started = time.process_time()
            result = play(
                item, work, keep_files=out is not None, timescale=timescale, seed=seed, bugs=bugs
            )
            cpu = time.process_time() - started
            verdicts.append(
                SimVerdict(
                    item.scenario.name,
                    item.path,
                    result.passed,
                    result.error,
                    cpu,
                    result.timeline.now(),
                    result,
                )
            )
    finally:
        if out is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return verdicts


def real_verdicts(junit: Path) -> dict[str, str]:
    """Scenario name -> pass | fail | error | skipped, from a real run's JUnit XML."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ValueError(f"{junit}: not a JUnit XML file ({exc})") from None
    found: dict[str, str] = {}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        if case.find("error") is not None:
            found[name] = "error"
        elif case.find("failure") is not None:
            found[name] = "fail"
        elif case.find("skipped") is not None:
            found[name] = "skipped"
        else:
            found[name] = "pass"
    return found


def agreement_table(verdicts: list[SimVerdict], real: dict[str, str]) -> tuple[list[str], int]:
    """Markdown rows (scenario, real, sim, agree) and how many agree."""
    rows = ["| scenario | real | sim | agree |", "|---|---|---|---|"]
    agree = 0
    for v in verdicts:
        seen = real.get(v.name, "not run")
        same = (seen == "pass") == v.passed and seen in ("pass", "fail", "error")
        agree += same
        rows.append(f"| {v.name} | {seen} | {v.verdict} | {'yes' if same else '**no**'} |")
    return rows, agree


def cmd_run_sim(args: argparse.Namespace, loaded: list[LoadedScenario]) -> int:
    if args.tag:
        loaded = [item for item in loaded if set(args.tag) & set(item.scenario.tags)]
    if args.keyword:
        loaded = [item for item in loaded if args.keyword in item.scenario.name]
    if not loaded:
        err.print("no scenario matched the selection")
        return EXIT_BAD_INPUT
    err.print(f"accord-rig: {len(loaded)} scenario(s) in simulation")
    started = time.perf_counter()
    cpu_started = time.process_time()
    verdicts = run_catalogue(
        loaded,
        out=Path(args.out) if args.out else None,
        timescale=args.timescale,
        seed=args.seed,
        bugs=tuple(args.bug),
    )
    for v in verdicts:
        mark = "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]"
        err.print(
            f"{mark} {escape(v.name)} [dim]({v.cpu_s:.3f}s cpu, {v.virtual_s:.1f}s virtual)[/dim]",
            soft_wrap=True,
        )
        if not v.passed and args.verbose:
            err.print(escape(failure_report(v.result)), soft_wrap=True)
    failed = [v for v in verdicts if not v.passed]
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    err.print(
        f"{len(verdicts) - len(failed)} passed, {len(failed)} failed in {wall:.2f}s "
        f"({cpu:.2f}s cpu, one core)"
    )
    if args.compare:
        real = real_verdicts(Path(args.compare))
        rows, agree = agreement_table(verdicts, real)
        print("\n".join(rows))
        print(f"\nagreement: {agree}/{len(verdicts)} scenarios reach the same verdict")
    return EXIT_OK if not failed else EXIT_FAILED
