"""Load files under pytest through the rig's plugin: collected like scenario files,
graded like `accord-rig load` (a threshold that fails fails the test, with the
thresholds table as its report), a bad file is a collection error naming file,
line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]
NO_JITTER = Path(__file__).with_name("files") / "smoke-no-jitter.load.yaml"


def _pytest(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_repo_load_files_are_collected_as_tests() -> None:
    result = _pytest("--collect-only", "load/files")
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if ".load.yaml::" in line]
    assert len(collected) == len(list((REPO / "load" / "files").glob("*.load.yaml")))
    assert "load/files/smoke.load.yaml::smoke storm" in collected


def test_a_bad_load_file_is_a_collection_error_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.load.yaml"
    bad.write_text("name: bad\ncrowd:\n  clients: -3\n", encoding="utf-8")
    result = _pytest(str(bad), cwd=tmp_path)
    assert result.returncode == 2, result.stdout  # pytest: interrupted by a collection error
    assert f"{bad}:3: crowd.clients: Input should be greater than or equal to 1" in result.stdout
    assert f"{bad}:1: run_for: missing required field" in result.stdout


def test_a_load_file_whose_threshold_fails_fails_its_test_with_the_thresholds_table(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "junit.xml"
    result = _pytest(str(NO_JITTER), "--rig-out", str(tmp_path / "out"), f"--junitxml={junit}")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 failed" in result.stdout
    assert "thresholds: smoke storm, no jitter" in result.stdout
    herd = [line for line in result.stdout.splitlines() if "herd (peak/mean" in line]
    assert herd and "FAIL" in herd[0], result.stdout[-3000:]
    assert 'name="threshold lost"' in junit.read_text(encoding="utf-8")
