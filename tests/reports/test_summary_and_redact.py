"""The terminal summary's facts and table, and report redaction."""

from __future__ import annotations

from synthetic_timeline import outage_timeline

from reports.redact import redact
from reports.summary import render_summary, run_facts, summary_row


def test_facts_come_from_the_timeline() -> None:
    facts = run_facts(outage_timeline(failed_last_step=True))
    assert facts.duration == 3.4
    assert (facts.steps, facts.steps_failed) == (6, 1)
    assert (facts.faults, facts.disconnects, facts.attempts, facts.max_queue) == (3, 1, 3, 2)


def test_the_table_shows_each_run() -> None:
    rows = [
        summary_row("gateway outage", True, outage_timeline()),
        summary_row(
            "banner hides", False, outage_timeline(True), "step 6 (line 15) wait_for\nmore"
        ),
    ]
    text = render_summary(rows)
    assert "1 passed, 1 failed" in text
    assert "gateway outage" in text and "PASS" in text
    assert "FAIL" in text and "step 6 (line 15) wait_for" in text and "more" not in text
    assert "6 (1 failed)" in text and "3.40s" in text


def test_redact_masks_tokens_and_named_secrets() -> None:
    text = (
        'Authorization: Bearer abc.def {"token": "t0k", "password": "hunter2"} '
        f"token=xyz control-{'a' * 64} secret-value-9"
    )
    out = redact(text, ["secret-value-9"])
    for secret in ("abc.def", "t0k", "hunter2", "xyz", "a" * 64, "secret-value-9"):
        assert secret not in out
    assert out.count("<redacted>") >= 6
    assert redact("nothing to hide") == "nothing to hide"
