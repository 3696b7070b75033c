"""Schema details: durations, tags as markers, the exported JSON Schema is current,
and the starter catalogue is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.durations import Duration, parse_duration
from scenarios.loader import discover, load_all
from scenarios.pytest_plugin import marker_name
from scenarios.schema_export import SCHEMA_PATH, schema_text
from scenarios.timescale import scaled_deadline

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds", "beats"),
    [
        ("5s", 5.0, 0.0),
        ("300ms", 0.3, 0.0),
        ("1.5 s", 1.5, 0.0),
        ("2m", 120.0, 0.0),
        ("3 heartbeats", 0.0, 3.0),
        ("1 heartbeat", 0.0, 1.0),
        (7, 7.0, 0.0),
    ],
)
def test_durations(text: object, seconds: float, beats: float) -> None:
    assert parse_duration(text) == Duration(seconds, beats)


@pytest.mark.parametrize("text", ["-1s", "5 parsecs", "", True, "s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_deadlines_scale_with_a_real_time_floor() -> None:
    assert scaled_deadline(Duration(heartbeats=3), 1.0, 45.0) == 135.0
    assert scaled_deadline(Duration(seconds=100), 0.05, 45.0, floor=2.0) == 5.0
    assert scaled_deadline(Duration(seconds=1), 0.05, 45.0, floor=2.0) == 2.0


def test_tags_become_markers() -> None:
    assert marker_name("flow:gateway-disconnect") == "flow_gateway_disconnect"


def test_exported_json_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "run: python -m scenarios.schema_export"
    )


def test_starter_catalogue_is_valid_and_covers_every_fault_family() -> None:
    loaded, problems = load_all(discover([REPO / "scenarios" / "starter"]))
    assert problems == []
    kinds = {type(step).__name__ for item in loaded for step in item.scenario.steps}
    assert {
        "ToxicStep",
        "ServerFaultStep",
        "ServerCloseStep",
        "InvalidSessionStep",
        "KillServerStep",
        "RestartServerStep",
    } <= kinds
