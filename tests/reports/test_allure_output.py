"""Allure steps and attachments land in a real --alluredir, and the real Allure CLI
renders them to HTML."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from synthetic_timeline import outage_timeline

from reports.html import AllureCliMissing, AllureReportFailed, find_allure_cli, generate_html
from reports.timeline_png import render_timeline_png

TOKEN = "f" * 64
CONTROL_TOKEN = "ctl-secret-123"

CHILD_TEST = """
import json
from pathlib import Path
from reports.allure import attach_run

HERE = Path(__file__).parent

def test_scenario():
    records = [json.loads(l) for l in (HERE / "timeline.jsonl").read_text().splitlines()]
    attach_run(
        records,
        png=HERE / "timeline.png",
        histories={"alpha": HERE / "alpha.history.jsonl", "beta": HERE / "missing.jsonl"},
        client_log="GET /users/@me Authorization: Bearer abc.def.ghi\\nok",
        secrets=["CONTROL_TOKEN_HERE"],
    )
""".replace("CONTROL_TOKEN_HERE", CONTROL_TOKEN)


@pytest.fixture(scope="module")
def allure_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs a tiny pytest with --alluredir that reports one synthetic scenario."""
    work = tmp_path_factory.mktemp("allure")
    records = outage_timeline(failed_last_step=True)
    records[-2]["data"]["detail"] = "banner still green after 4s"
    (work / "timeline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    render_timeline_png(records, work / "timeline.png")
    history = [
        {"kind": "http", "name": "POST /auth/login", "data": {"token": TOKEN}},
        {"kind": "control", "name": "hello", "data": {"note": f"control {CONTROL_TOKEN}"}},
    ]
    (work / "alpha.history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    (work / "test_child.py").write_text(textwrap.dedent(CHILD_TEST))
    results = work / "results"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:accord_rig",
         "-p", "no:xdist", f"--alluredir={results}", str(work / "test_child.py")],
        capture_output=True, text=True, timeout=120, cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return results


def _result(results: Path) -> dict[str, Any]:
    (path,) = results.glob("*-result.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_one_allure_step_per_scenario_step(allure_results: Path) -> None:
    steps = _result(allure_results)["steps"]
    assert len(steps) == 6
    assert steps[0]["name"].startswith("1. connect: alpha  [+0.00s, 0.50s]")
    assert [s["status"] for s in steps] == ["passed"] * 5 + ["failed"]
    assert "banner still green after 4s" in steps[5]["statusDetails"]["message"]


def test_png_timeline_history_and_log_are_attached(allure_results: Path) -> None:
    attachments = {a["name"]: a for a in _result(allure_results)["attachments"]}
    assert set(attachments) == {"timeline", "timeline.jsonl", "alpha server history", "client log"}
    assert attachments["timeline"]["type"] == "image/png"
    png = allure_results / attachments["timeline"]["source"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    timeline = (allure_results / attachments["timeline.jsonl"]["source"]).read_text()
    assert len(timeline.splitlines()) == len(outage_timeline())


def test_attachments_carry_no_tokens(allure_results: Path) -> None:
    for attachment in _result(allure_results)["attachments"]:
        if attachment["type"].startswith("image/"):
            continue
        text = (allure_results / attachment["source"]).read_text()
        assert TOKEN not in text and CONTROL_TOKEN not in text and "abc.def.ghi" not in text
    log = next(a for a in _result(allure_results)["attachments"] if a["name"] == "client log")
    assert "Bearer <redacted>" in (allure_results / log["source"]).read_text()


def test_the_allure_cli_renders_an_index_html(allure_results: Path, tmp_path: Path) -> None:
    index = generate_html(allure_results, tmp_path / "report")
    assert index.name == "index.html" and index.stat().st_size > 0


def test_missing_cli_says_to_run_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALLURE_CLI", str(tmp_path / "no-allure"))
    with pytest.raises(AllureCliMissing, match="run scripts/setup"):
        find_allure_cli()


def test_results_without_any_result_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AllureReportFailed, match="no Allure results folder"):
        generate_html(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AllureReportFailed, match=r"no \*-result\.json"):
        generate_html(tmp_path / "empty", tmp_path / "out")
