"""`accord-rig report`: the HTML report, rendered by the real Allure CLI (npm allure 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLI = REPO_ROOT / ".tools" / "allure" / "node_modules" / ".bin" / "allure"
ENV_CLI = "ALLURE_CLI"


class AllureCliMissing(RuntimeError):
    """The Allure CLI is not installed; the message says how to get it."""


class AllureReportFailed(RuntimeError):
    """The Allure CLI ran and failed; the message carries its output."""


def find_allure_cli() -> Path:
    """`$ALLURE_CLI`, else `.tools/allure/node_modules/.bin/allure`."""
    override = os.environ.get(ENV_CLI)
    candidate = Path(override) if override else DEFAULT_CLI
    if candidate.is_file() and os.access(candidate, os.X_OK):
        if shutil.which("node") is None:
            raise AllureCliMissing("the Allure CLI needs Node.js (>= 20) on PATH")
        return candidate
    raise AllureCliMissing(
        f"Allure CLI not found at {candidate}; run scripts/setup "
        "(it installs the npm package allure@3 into .tools/allure)"
    )


def generate_html(results: Path, out: Path, *, cli: Path | None = None,
                  timeout: float = 300.0) -> Path:  # fmt: skip
    """`allure generate RESULTS -o OUT`; returns OUT/index.html."""
    if not results.is_dir():
        raise AllureReportFailed(f"no Allure results folder at {results}")
    if not any(results.glob("*-result.json")):
        raise AllureReportFailed(f"{results} holds no *-result.json (was --alluredir used?)")
    exe = cli or find_allure_cli()
    try:
        done = subprocess.run(
            [str(exe), "generate", str(results), "-o", str(out)],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AllureReportFailed(f"allure generate took longer than {timeout:.0f}s") from None
    index = out / "index.html"
    if done.returncode != 0 or not index.is_file():
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise AllureReportFailed(f"allure generate failed (exit {done.returncode}): {output}")
    return index


# The name the scenario engine's `accord-rig report` looks for.
render_html = generate_html
