"""The fake server's REST limiter as a load file chooses it.

`rate_limit_args` maps the file's setting to the fake server's `--rate-limit` flag
and says what really ran; the re-login storm against the faithful limiter must
show 429s on logins and still bring everyone back. The run test needs
ACCORD_LOAD_LONG=1 (it runs in real-client time).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from load.conductor import LoadOptions, play_load, rate_limit_args
from load.figures import compute
from load.loader import load_load_file

FILES = Path(__file__).parents[2] / "load" / "files"


def test_the_setting_maps_to_the_flag_and_says_what_ran() -> None:
    assert rate_limit_args("faithful")[0] == []
    assert "faithful (70 requests / 60 s" in rate_limit_args("faithful")[1]
    assert rate_limit_args("off") == (["--rate-limit", "off"], "off (capacity run)")
    assert rate_limit_args(500)[0] == ["--rate-limit", "500"]


@pytest.mark.skipif(
    not os.environ.get("ACCORD_LOAD_LONG"),
    reason="about 4 minutes in real-client time (the limiter's minute): ACCORD_LOAD_LONG=1",
)
@pytest.mark.timeout(480)  # the storm's own run length, in real-client time
def test_a_relogin_storm_against_the_faithful_limiter_is_throttled_and_recovers(
    tmp_path: Path,
) -> None:
    loaded = load_load_file(FILES / "fatal-close-relogin-storm.load.yaml")
    run = asyncio.run(play_load(loaded, LoadOptions(work_dir=tmp_path)))
    assert not run.error and not run.problems
    assert run.rate_limits["alpha"].startswith("faithful (")
    responses = [
        json.loads(line)
        for line in (tmp_path / "alpha.history.jsonl").read_text().splitlines()
        if '"response"' in line
    ]
    throttled = [
        r
        for r in responses
        if r["data"].get("status") == 429 and r["data"].get("path", "").endswith("/auth/login")
    ]
    assert throttled, "no login was throttled: the storm did not meet the limiter"
    figures = compute(run)
    assert figures.reauthenticated == figures.episodes == figures.clients
    assert figures.connected_at_end == 100.0
