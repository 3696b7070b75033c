"""Allure output for one scenario run, written after the run from its timeline.

Steps are emitted synchronously after the fact: `@allure.step` on an `async def`
closes when the coroutine is created (toolchain-facts.md), so the runner records
steps on the timeline and this module replays them as Allure steps. Outside a
pytest run with `--alluredir` every call here is a harmless no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import allure

from reports.redact import redact
from reports.timeline_data import StepMark, as_dict, build_lanes


class ScenarioStepFailed(AssertionError):
    """Raised inside a replayed step so Allure marks it failed (caught right here)."""


def step_title(step: StepMark) -> str:
    end = f"{step.end - step.start:.2f}s" if step.end is not None else "did not finish"
    return f"{step.index + 1}. {step.text}  [+{step.start:.2f}s, {end}]"


def emit_steps(records: Iterable[Any], details: Mapping[int, str] | None = None) -> int:
    """One Allure step per scenario step (`kind="step"` records); returns how many.

    A step that ended with `ok: false` is marked failed with its `detail`
    (from the end record, or `details[index]`); one that never ended is broken.
    """
    rows = [as_dict(r) for r in records]
    ends = {
        r["data"].get("index"): r["data"]
        for r in rows
        if r["kind"] == "step" and r["data"].get("phase") == "end"
    }
    steps = build_lanes(rows).steps
    for step in steps:
        detail = (details or {}).get(step.index) or str(ends.get(step.index, {}).get("detail", ""))
        try:
            with allure.step(step_title(step)):
                if step.ok is False:
                    raise ScenarioStepFailed(detail or "step failed")
                if step.ok is None:
                    raise RuntimeError("the step did not finish (the run stopped inside it)")
        except (ScenarioStepFailed, RuntimeError):
            pass  # recorded by Allure; the test's own verdict comes from the runner
    return len(steps)


def attach_png(path: Path, name: str = "timeline") -> None:
    allure.attach.file(str(path), name=name, attachment_type=allure.attachment_type.PNG)  # type: ignore[no-untyped-call]


def attach_timeline(records: Iterable[Any] | Path, name: str = "timeline.jsonl") -> None:
    """The timeline as JSON lines (redacted again on the way out)."""
    if isinstance(records, Path):
        text = records.read_text(encoding="utf-8")
    else:
        text = "".join(json.dumps(as_dict(r), ensure_ascii=False) + "\n" for r in records)
    # JSON lines are not one JSON document: plain text keeps Allure from parsing it.
    allure.attach(redact(text), name=name, attachment_type=allure.attachment_type.TEXT,
                  extension="jsonl")  # fmt: skip


def attach_text_file(
    path: Path, name: str, secrets: Iterable[str] = (), extension: str = "txt"
) -> bool:
    """Attach a text file, redacted; False (nothing attached) when it does not exist."""
    if not path.is_file():
        return False
    text = redact(path.read_text(encoding="utf-8", errors="replace"), secrets)
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT,
                  extension=extension)  # fmt: skip
    return True


def attach_server_history(server: str, path: Path, secrets: Iterable[str] = ()) -> bool:
    return attach_text_file(path, f"{server} server history", secrets, extension="jsonl")


def attach_client_log(log: Path | str, secrets: Iterable[str] = ()) -> None:
    """The client log (a file or the text itself), tokens redacted."""
    if isinstance(log, Path):
        attach_text_file(log, "client log", secrets, extension="log")
    else:
        allure.attach(redact(log, secrets), name="client log",
                      attachment_type=allure.attachment_type.TEXT, extension="log")  # fmt: skip


def attach_run(
    records: Iterable[Any],
    *,
    png: Path | None = None,
    histories: Mapping[str, Path] | None = None,
    client_log: Path | str | None = None,
    secrets: Iterable[str] = (),
    step_details: Mapping[int, str] | None = None,
) -> None:
    """Everything for one scenario run: steps, picture, timeline, histories, client log."""
    rows = [as_dict(r) for r in records]
    secrets = list(secrets)
    emit_steps(rows, step_details)
    if png is not None and png.is_file():
        attach_png(png)
    attach_timeline(rows)
    for server, path in (histories or {}).items():
        attach_server_history(server, path, secrets)
    if client_log is not None:
        attach_client_log(client_log, secrets)
