"""Allure output of one scenario run (labels, one step per scenario step, the
timeline picture and records, server histories) through reports/, plus the
failure report with expected and observed side by side. Outside a pytest run
with --alluredir, Allure calls do nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenarios.render import failure_report, side_by_side
from scenarios.runner import ScenarioResult


def attach_run(allure: Any, result: ScenarioResult, secrets: list[str]) -> None:
    from reports.allure import attach_run as attach_records

    scenario = result.loaded.scenario
    allure.dynamic.title(scenario.name)
    if scenario.description:
        allure.dynamic.description(scenario.description)
    for tag in scenario.tags:
        allure.dynamic.tag(tag)
        family, _, name = tag.partition(":")
        if family == "flow":
            allure.dynamic.feature(name)
        else:
            allure.dynamic.story(tag)
    allure.dynamic.parameter("timescale", result.timescale)
    allure.dynamic.parameter("seed", result.seed)
    records = result.records
    attach_records(
        records,
        png=_timeline_png(result),
        histories=result.histories,
        secrets=secrets,
        step_details={s.index: s.detail for s in result.steps if s.detail},
    )
    for failure in result.failures:
        allure.attach(
            side_by_side(failure), name=failure.title, attachment_type=allure.attachment_type.TEXT
        )
    if not result.passed:
        allure.attach(
            failure_report(result),
            name="failure report",
            attachment_type=allure.attachment_type.TEXT,
        )


def _timeline_png(result: ScenarioResult) -> Path | None:
    """The timeline picture (None if it cannot be drawn: a picture never changes a verdict)."""
    from reports.timeline_png import render_timeline_png

    if result.timeline_path is None:
        return None
    try:
        return render_timeline_png(
            result.records,
            result.timeline_path.with_suffix(".png"),
            title=result.loaded.scenario.name,
        )
    except Exception:
        return None
