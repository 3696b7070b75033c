"""The HTML report from Allure results, rendered by reports/ with the Allure CLI."""

from __future__ import annotations

from pathlib import Path

from scenarios.errors import UsageError


def render_html(results: Path, out: Path) -> Path:
    """`out/index.html` from the results; a missing CLI or bad results is a UsageError."""
    from reports.html import AllureCliMissing, AllureReportFailed, generate_html

    try:
        return generate_html(results, out)
    except (AllureCliMissing, AllureReportFailed) as exc:
        raise UsageError(str(exc)) from None
