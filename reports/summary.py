"""A terminal summary of scenario runs (rich table), with facts read from each timeline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from reports.timeline_data import as_dict


@dataclass(frozen=True)
class RunFacts:
    """What a run's timeline says, beyond pass/fail."""

    duration: float  # seconds, last record's t
    steps: int
    steps_failed: int
    faults: int  # fault windows started
    disconnects: int  # server_disconnected signals
    attempts: int  # server_reconnecting signals (gateway reconnect attempts)
    max_queue: int  # deepest offline queue seen


@dataclass(frozen=True)
class SummaryRow:
    scenario: str
    passed: bool
    facts: RunFacts
    failure: str = ""  # the first failure, one line


def run_facts(records: Iterable[Any]) -> RunFacts:
    rows = [as_dict(r) for r in records]
    signals = [r for r in rows if r["kind"] == "signal"]
    step_ends = [r for r in rows if r["kind"] == "step" and r["data"].get("phase") == "end"]
    depths = [
        int(r["data"]["args"][1])
        for r in signals
        if r["name"] == "queue_changed" and len(r["data"].get("args") or []) >= 2
    ]
    return RunFacts(
        duration=max((float(r["t"]) for r in rows), default=0.0),
        steps=len(step_ends),
        steps_failed=sum(1 for r in step_ends if r["data"].get("ok") is False),
        faults=sum(1 for r in rows if r["kind"] == "fault" and r["data"].get("phase") == "start"),
        disconnects=sum(1 for r in signals if r["name"] == "server_disconnected"),
        attempts=sum(1 for r in signals if r["name"] == "server_reconnecting"),
        max_queue=max(depths, default=0),
    )


def summary_row(
    scenario: str, passed: bool, records: Iterable[Any], failure: str = ""
) -> SummaryRow:
    first_line = failure.strip().splitlines()[0] if failure.strip() else ""
    return SummaryRow(scenario, passed, run_facts(records), first_line)


def summary_table(rows: Sequence[SummaryRow]) -> Table:
    passed = sum(1 for r in rows if r.passed)
    table = Table(
        title=f"accord-rig: {passed} passed, {len(rows) - passed} failed", title_justify="left"
    )
    table.add_column("scenario", overflow="fold")
    table.add_column("result")
    table.add_column("duration", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("faults", justify="right")
    table.add_column("drops", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("max queue", justify="right")
    table.add_column("first failure", overflow="fold", max_width=60)
    for row in rows:
        f = row.facts
        result = "[green]PASS[/green]" if row.passed else "[bold red]FAIL[/bold red]"
        steps = f"{f.steps}" if not f.steps_failed else f"{f.steps} ({f.steps_failed} failed)"
        table.add_row(
            row.scenario, result, f"{f.duration:.2f}s", steps, str(f.faults),
            str(f.disconnects), str(f.attempts), str(f.max_queue), row.failure,
        )  # fmt: skip
    return table


def print_summary(rows: Sequence[SummaryRow], console: Console | None = None) -> None:
    (console or Console()).print(summary_table(rows))


def render_summary(rows: Sequence[SummaryRow], width: int = 140) -> str:
    """The table as plain text (no colours), e.g. for a log file or a test."""
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(summary_table(rows))
    return capture.get()
