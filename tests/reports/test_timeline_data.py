"""Lanes derived from timeline records: status, banners, queue, faults, steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_timeline import outage_timeline

from reports import TimelineFormatError, build_lanes, load_records


def test_status_follows_the_connection_signals() -> None:
    lanes = build_lanes(outage_timeline())
    assert lanes.servers == ["alpha", "beta"]
    alpha = [(s.value, s.label) for s in lanes.status["alpha"]]
    assert alpha == [
        ("connecting", "connecting"),
        ("syncing", "syncing"),
        ("connected", "connected"),
        ("disconnected", "disconnected 1006"),
        ("reconnecting", "reconnecting 1/10"),
        ("reconnecting", "reconnecting 2/10"),
        ("reconnecting", "reconnecting 3/10"),
        ("syncing", "syncing"),
        ("connected", "connected"),
    ]
    last = lanes.status["alpha"][-1]
    assert (last.start, last.end) == (2.6, lanes.end)


def test_banner_follows_the_view_diffs() -> None:
    banners = [(s.value, s.label) for s in build_lanes(outage_timeline()).banners["alpha"]]
    assert banners[0] == ("yellow", "Connecting...")
    assert ("green", "Reconnected!") in banners
    assert banners[-1] == ("none", "")  # the green banner hid again
    green = next(s for s in build_lanes(outage_timeline()).banners["alpha"] if s.value == "green")
    assert (green.start, green.end) == (2.6, 3.2)


def test_queue_depth_and_fault_windows() -> None:
    lanes = build_lanes(outage_timeline())
    assert lanes.queue["alpha"] == [(1.05, 1), (1.10, 2), (2.7, 1), (2.8, 0)]
    windows = [(w.name, w.target, w.start, w.end, w.open_ended) for w in lanes.faults]
    assert windows == [
        ("latency", "alpha.gateway", 0.55, 1.0, False),
        ("down", "alpha.gateway", 1.0, 2.2, False),
        ("freeze", "beta", 2.3, lanes.end, True),
    ]
    assert "latency=1000" in lanes.faults[0].detail


def test_steps_pair_start_and_end() -> None:
    steps = build_lanes(outage_timeline(failed_last_step=True)).steps
    assert [s.index for s in steps] == [0, 1, 2, 3, 4, 5]
    assert steps[0].text == "connect: alpha" and (steps[0].start, steps[0].end) == (0.0, 0.5)
    assert [s.ok for s in steps] == [True, True, True, True, True, False]


def test_client_timeline_records_are_accepted() -> None:
    from client.timeline import Timeline

    timeline = Timeline(origin=0.0)
    timeline.add(0.1, "client", "signal", "server_connecting", {"args": ["alpha"]})
    timeline.add(0.2, "client", "signal", "server_connected", {"args": ["alpha"]})
    lanes = build_lanes(timeline.records)
    assert [s.value for s in lanes.status["alpha"]] == ["connecting", "syncing"]


def test_load_records_reads_json_lines_and_names_a_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "timeline.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in outage_timeline()) + "\n")
    assert len(load_records(good)) == len(outage_timeline())
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(outage_timeline()[0]) + "\n{not json\n")
    with pytest.raises(TimelineFormatError, match=r"bad\.jsonl:2: not a timeline record"):
        load_records(bad)


def test_an_empty_timeline_has_empty_lanes() -> None:
    lanes = build_lanes([])
    assert (lanes.end, lanes.servers, lanes.faults, lanes.steps) == (0.0, [], [], [])
