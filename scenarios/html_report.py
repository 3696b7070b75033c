"""The HTML report from Allure results: reports/ renders it when it offers a
renderer, else the Allure CLI installed by scripts/setup is called directly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scenarios.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
ALLURE = REPO / ".tools" / "allure" / "node_modules" / ".bin" / "allure"
TIMEOUT = 300


def _allure_binary() -> Path:
    override = os.environ.get("ALLURE_BIN")
    if override:
        return Path(override)
    if ALLURE.exists():
        return ALLURE
    found = shutil.which("allure")
    if found:
        return Path(found)
    raise UsageError(f"the Allure CLI is missing ({ALLURE}); run scripts/setup")


def render_html(results: Path, out: Path) -> Path:
    try:
        from reports.html import render_html as reports_render  # type: ignore[import-not-found]
    except ImportError:
        reports_render = None
    if reports_render is not None:
        return Path(reports_render(results, out))
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(_allure_binary()), "generate", str(results), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise UsageError(
            f"allure generate failed ({done.returncode}): {done.stderr.strip()[-500:]}"
        )
    return out
