"""Allure output of one scenario run: labels, one step per scenario step, the
timeline (JSON lines) and its picture attached. Does nothing when Allure is not
collecting (no --alluredir)."""

from __future__ import annotations

import contextlib
from typing import Any

from scenarios.render import failure_report, side_by_side
from scenarios.runner import ScenarioResult


class _StepFailed(AssertionError):
    pass


def attach_run(allure: Any, result: ScenarioResult) -> None:
    scenario = result.loaded.scenario
    allure.dynamic.title(scenario.name)
    if scenario.description:
        allure.dynamic.description(scenario.description)
    for tag in scenario.tags:
        allure.dynamic.tag(tag)
        family, _, name = tag.partition(":")
        if family in ("flow", "feature"):
            allure.dynamic.feature(name)
    allure.dynamic.parameter("timescale", result.timescale)
    allure.dynamic.parameter("seed", result.seed)
    for step in result.steps:
        title = f"line {step.line}: {step.text}"
        # Leaving the block by an exception marks the Allure step failed.
        with contextlib.suppress(_StepFailed), allure.step(title):
            if not step.ok:
                raise _StepFailed(step.detail)
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
    if result.timeline_path is not None and result.timeline_path.exists():
        allure.attach.file(
            str(result.timeline_path),
            name="timeline.jsonl",
            attachment_type=allure.attachment_type.TEXT,
        )
        picture = _timeline_png(result)
        if picture is not None:
            allure.attach.file(
                str(picture), name="timeline.png", attachment_type=allure.attachment_type.PNG
            )


def _timeline_png(result: ScenarioResult) -> Any:
    """The timeline picture, drawn by reports/ (None if it cannot be drawn)."""
    assert result.timeline_path is not None
    try:
        from reports.timeline_png import render_timeline_png
    except ImportError:
        return None
    out = result.timeline_path.with_suffix(".png")
    try:
        render_timeline_png(result.timeline.records, out, title=result.loaded.scenario.name)
    except Exception:  # a picture must never turn a verdict around
        return None
    return out
