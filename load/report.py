"""A load run's reports: the thresholds table (terminal), JUnit XML, a PNG picture
and `figures.json`. Locust's own CSV and HTML are written by Locust itself
(`locust_stats.csv`, `locust.html` in the run's folder)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from load.conductor import LoadRun
from load.figures import Figures, Verdict


def passed(run: LoadRun, verdicts: list[Verdict]) -> bool:
    return not run.error and all(v.ok for v in verdicts)


def print_run(run: LoadRun, figures: Figures, verdicts: list[Verdict], console: Console) -> None:
    load = run.loaded.load
    status = "[green]PASS[/green]" if passed(run, verdicts) else "[red]FAIL[/red]"
    console.print(f"{status} load {load.name!r} ({run.loaded.path}) — {run.clients} clients")
    for server, limit in run.rate_limits.items():
        console.print(f"  rate limit {server}: {limit}")
    if run.error:
        console.print(f"  [red]rig error[/red]: {run.error}", soft_wrap=True)
    rec = figures.recovery
    console.print(
        f"  reconnections {figures.episodes} (recovered {figures.recovered}, "
        f"resume {figures.resumed}, re-auth {figures.reauthenticated}), attempts mean "
        f"{figures.attempts_mean:.2f} max {figures.attempts_max}; recovery p50 "
        f"{_s(rec['p50'])} p95 {_s(rec['p95'])} p99 {_s(rec['p99'])} max {_s(rec['max'])}"
    )
    if figures.attempt_failures:
        why = ", ".join(f"{reason} {n}" for reason, n in figures.attempt_failures.items())
        console.print(f"  failed attempts: {why}", soft_wrap=True)
    console.print(
        f"  sends {figures.sends_attempted} accepted {figures.sends_accepted} failed "
        f"{figures.sends_failed} refused (composer disabled) {figures.sends_refused}; "
        f"lost {figures.lost} duplicated {figures.duplicated} "
        f"unexpected {figures.unexpected}; connected at end {figures.connected_at_end:.1f}%"
    )
    for storm in figures.storms:
        to = " ".join(f"{q}%:{_s(v)}" for q, v in storm.to_recovered.items())
        herd = "-" if storm.herd is None else f"{storm.herd:.2f}"
        console.print(
            f"  storm {storm.text}: losses {storm.losses}, attempts {storm.attempts}, "
            f"herd {herd}, recovered {to}",
            soft_wrap=True,
        )
    table = Table(title=f"thresholds: {load.name}", title_justify="left")
    for column in ("threshold", "limit", "measured", "verdict"):
        table.add_column(column)
    for v in verdicts:
        table.add_row(
            v.name, v.limit, v.measured, "[green]ok[/green]" if v.ok else "[red]FAIL[/red]"
        )
    console.print(table)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def write_junit(results: list[tuple[LoadRun, Figures, list[Verdict]]], path: Path) -> None:
    suite = ET.Element("testsuite", name="accord-rig load", tests=str(len(results)))
    failures = 0
    for run, figures, verdicts in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=str(run.loaded.path),
            name=run.loaded.load.name,
            time=f"{max(0.0, run.ended - run.started):.3f}",
        )
        props = ET.SubElement(case, "properties")
        for v in verdicts:
            ET.SubElement(
                props, "property", name=f"threshold {v.name}", value=f"{v.measured} ({v.limit})"
            )
        for server, limit in run.rate_limits.items():
            ET.SubElement(props, "property", name=f"rate limit {server}", value=limit)
        bad = [v for v in verdicts if not v.ok]
        if run.error:
            failures += 1
            ET.SubElement(case, "error", message=run.error)
        elif bad:
            failures += 1
            failure = ET.SubElement(
                case,
                "failure",
                message="; ".join(f"{v.name}: {v.measured} (limit {v.limit})" for v in bad),
            )
            failure.text = "\n".join(
                f"{v.name}\t{v.limit}\t{v.measured}\t{'ok' if v.ok else 'FAIL'}" for v in verdicts
            )
        out = ET.SubElement(case, "system-out")
        out.text = json.dumps(figures.as_dict(), indent=1, default=str)
    suite.set("failures", str(failures))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def write_figures(run: LoadRun, figures: Figures, verdicts: list[Verdict]) -> Path:
    path = run.work_dir / "figures.json"
    data: dict[str, Any] = {
        "load": run.loaded.load.name,
        "file": str(run.loaded.path),
        "rate_limits": run.rate_limits,
        "error": run.error,
        "figures": figures.as_dict(),
        "thresholds": [v.__dict__ for v in verdicts],
        "fired": [f.__dict__ for f in run.fired],
    }
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return path


def write_png(run: LoadRun, figures: Figures) -> Path | None:
    """Connected clients over time with the fault windows, reconnect attempts per
    second, and the recovery-time distribution."""
    if not run.summaries:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = run.started
    changes = sorted((w - t0, d) for s in run.summaries for w, d in s.get("changes", []))
    xs, ys, level = [0.0], [0], 0
    for t, d in changes:
        level += int(d)
        xs.append(t)
        ys.append(level)
    end = max([xs[-1], run.ended - t0, 1.0])
    xs.append(end)
    ys.append(level)
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 9))
    top.step(xs, ys, where="post", color="tab:blue", label="connected clients")
    top.axhline(run.clients, color="grey", lw=0.6, ls="--")
    for start, stop, name in _windows(run):
        top.axvspan(
            start - t0, (stop if stop is not None else run.ended) - t0, color="tab:red", alpha=0.15
        )
        top.text(start - t0, run.clients * 1.02, name, fontsize=7, color="tab:red")
    for fired in run.fired:
        top.axvline(fired.wall - t0, color="tab:red", lw=0.5)
    top.set_ylabel("connected")
    top.set_title(f"{run.loaded.load.name}: {run.clients} clients (fault windows shaded)")
    attempts = [t - t0 for s in run.summaries for t in s.get("attempt_times", [])]
    if attempts:
        bins = max(1, int(end * 10))
        middle.hist(
            attempts, bins=bins, range=(0, end), color="tab:orange", weights=[10.0] * len(attempts)
        )
    middle.set_ylabel("reconnect attempts / s\n(100 ms bins)")
    middle.set_xlim(0, end)
    top.set_xlim(0, end)
    middle.set_xlabel("seconds since the crowd started")
    durations = [
        e["back"] - e["lost"]
        for s in run.summaries
        for e in s.get("episodes", [])
        if e.get("back") is not None
    ]
    if durations:
        bottom.hist(durations, bins=min(50, max(5, len(durations) // 5)), color="tab:green")
    bottom.set_xlabel("recovery time (loss -> reconnected), s")
    bottom.set_ylabel("reconnections")
    fig.tight_layout()
    path = run.work_dir / "load.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _windows(run: LoadRun) -> list[tuple[float, float | None, str]]:
    opened: dict[str, tuple[float, str]] = {}
    out: list[tuple[float, float | None, str]] = []
    for record in run.fault_records:
        data = record["data"]
        fault_id = str(data.get("id"))
        if data.get("phase") == "start":
            opened[fault_id] = (record["wall"], f"{record['name']} {data.get('target', '')}")
        elif fault_id in opened:
            start, name = opened.pop(fault_id)
            out.append((start, record["wall"], name))
    out += [(start, None, name) for start, name in opened.values()]
    return out
