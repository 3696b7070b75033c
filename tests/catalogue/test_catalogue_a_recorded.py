"""Catalogue-A facts that a scenario file cannot state, checked on recorded runs.

One `accord-rig run ... --out DIR` subprocess plays four catalogue scenarios; the
tests then read their timelines and the fake servers' histories:
- a heartbeat timeout closes at the *first* beat that finds the previous one
  unacknowledged: at the heartbeat timer's due time (recorded `SetTimer`), with
  every earlier beat acknowledged; on the wall clock within three intervals of
  the fault (client-behaviour.md s.1, s.10);
- a beat requested by op 1 closes on that op 1, not on the timer;
- a post made while the client was away arrives by replay: on the resumed
  connection, before its `resumed` event;
- after INVALID_SESSION the extra uniform(1, 5) s wait (scaled, from the recorded
  draw) passes before the next attempt's own backoff delay starts;
- INVALID_SESSION on attempt 10 escalates at once: re-authentication starts at
  the client's close, with no 11th backoff wait;
- the green "Reconnected!" hides 3 s (scaled) after it appears, not earlier;
- a manual removal logs out of each server it removes (`POST /auth/logout`, s.7).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "scenarios"
RUN_TIMEOUT = 180  # seconds: a liveness bound for one CLI run, not a timing assertion
TIMER_SLACK = 0.5  # real seconds a driver timer may fire late on a shared machine

BLACK_HOLE = "heartbeat_timeout/black_hole.scenario.yaml"
LATENCY = "heartbeat_timeout/downstream_latency.scenario.yaml"
OP1 = "heartbeat_timeout/op1_finds_beat_unacked.scenario.yaml"
REMOVAL = "manual_removal/remove_both_servers.scenario.yaml"
PROXY_DOWN = "gateway_disconnect/proxy_down.scenario.yaml"
INVALID = "invalid_session/resumable_bool.scenario.yaml"
AT_LIMIT = "invalid_session/at_attempt_limit.scenario.yaml"
GREEN_BANNER = 3.0  # seconds, real-client time (client-behaviour.md s.1)


@dataclass(frozen=True)
class Run:
    records: list[dict[str, Any]]
    folder: Path

    def client(self, kind: str, name: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if r["src"] in ("client", "ui") and r["kind"] == kind and r["name"] == name
        ]


def _folder_of(out: Path, scenario_file: str) -> Path:
    """The --out folder of one scenario (named after its `name:`)."""
    for folder in out.iterdir():
        timeline = folder / "timeline.jsonl"
        if not timeline.exists():
            continue
        first = json.loads(timeline.read_text().splitlines()[0])
        if str(first["data"].get("file", "")).endswith(scenario_file):
            return folder
    raise AssertionError(f"no recorded run of {scenario_file} under {out}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    out = tmp_path_factory.mktemp("catalogue-a")
    files = [BLACK_HOLE, LATENCY, OP1, REMOVAL, PROXY_DOWN, INVALID, AT_LIMIT]
    env = {k: v for k, v in os.environ.items() if k != "ACCORD_RIG_BUGS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios.cli",
            "run",
            *(str(CATALOGUE / f) for f in files),
            "--out",
            str(out),
            "-n",
            "2",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    result = {}
    for f in files:
        folder = _folder_of(out, f)
        lines = (folder / "timeline.jsonl").read_text().splitlines()
        result[f] = Run([json.loads(line) for line in lines], folder)
    yield result


def _op(record: dict[str, Any]) -> Any:
    try:
        return json.loads(record["data"]["text"]).get("op")
    except (ValueError, AttributeError, KeyError):
        return None


def _heartbeat_close(run: Run) -> dict[str, Any]:
    closes = [
        c
        for c in run.client("effect", "CloseSocket")
        if c["data"]["code"] == 4000 and c["data"]["reason"] == "heartbeat timeout"
    ]
    assert closes, "no close 4000 'heartbeat timeout' was recorded"
    return closes[0]


def _beats_and_acks(run: Run, conn: int, until: float) -> tuple[list[float], list[float]]:
    beats = [
        r["t"]
        for r in run.client("effect", "SendText")
        if r["data"]["conn"] == conn and _op(r) == 1 and r["t"] <= until
    ]
    acks = [
        r["t"]
        for r in run.client("input", "SocketText")
        if r["data"]["conn"] == conn and _op(r) == 4 and r["t"] <= until
    ]
    return beats, acks


def _fault_start(run: Run) -> float:
    starts: list[float] = [
        r["t"]
        for r in run.records
        if r["src"] == "chaos" and r["kind"] == "fault" and r["data"].get("phase") == "start"
    ]
    assert starts, "the toxic was not recorded"
    return starts[0]


def _hello_interval(run: Run, conn: int) -> float:
    for r in run.client("input", "SocketText"):
        if r["data"]["conn"] == conn and _op(r) == 5:
            return float(json.loads(r["data"]["text"])["data"]["heartbeat_interval"]) / 1000
    raise AssertionError(f"no HELLO on conn {conn}")


@pytest.mark.parametrize("scenario", [BLACK_HOLE, LATENCY])
def test_heartbeat_timeout_closes_at_the_first_beat_finding_one_unacked(
    runs: dict[str, Run], scenario: str
) -> None:
    run = runs[scenario]
    close = _heartbeat_close(run)
    conn, t_close = close["data"]["conn"], close["t"]
    beats, acks = _beats_and_acks(run, conn, t_close)
    assert beats, "no heartbeat was sent before the timeout"
    # Every beat but the last was acknowledged before the next beat went out ...
    for sent, following in itertools.pairwise(beats):
        assert any(sent <= a <= following for a in acks), (
            f"the beat at t={sent:.3f} had no ACK before the next beat at t={following:.3f}: "
            "the close should have come then"
        )
    # ... the last one never was ...
    assert not any(a >= beats[-1] for a in acks), "the last beat was acknowledged"
    # ... and the close came when the heartbeat timer set at that beat fell due.
    timers = [
        r
        for r in run.client("timer", "SetTimer")
        if r["data"]["kind"] == "heartbeat" and r["t"] <= t_close
    ]
    assert timers, "no heartbeat timer was recorded"
    due = float(timers[-1]["data"]["at"])
    assert abs(timers[-1]["t"] - beats[-1]) < 0.05, "the last timer was not set at the last beat"
    assert due - 0.005 <= t_close <= due + TIMER_SLACK, (
        f"closed at t={t_close:.3f}, the heartbeat timer was due at t={due:.3f}"
    )
    # Wall clock: within three intervals of the fault (a generous liveness bound).
    interval = _hello_interval(run, conn)
    assert t_close - _fault_start(run) <= 3 * interval + TIMER_SLACK


def test_op1_closes_on_the_request_not_on_the_timer(runs: dict[str, Run]) -> None:
    run = runs[OP1]
    close = _heartbeat_close(run)
    conn, t_close = close["data"]["conn"], close["t"]
    requests = [
        r["t"]
        for r in run.client("input", "SocketText")
        if r["data"]["conn"] == conn and _op(r) == 1 and r["t"] <= t_close
    ]
    assert len(requests) >= 2, "the server's two op 1 requests were not both received"
    assert t_close - requests[-1] < 0.05, "the close did not answer the second op 1"
    timers = [
        r
        for r in run.client("timer", "SetTimer")
        if r["data"]["kind"] == "heartbeat" and r["t"] <= t_close
    ]
    assert t_close < float(timers[-1]["data"]["at"]), "the close waited for the timer"


def test_manual_removal_logs_out_of_each_server(runs: dict[str, Run]) -> None:
    run = runs[REMOVAL]
    removed = [r["t"] for r in run.client("signal", "server_removed")]
    logouts = [
        r
        for r in run.client("effect", "HttpRequest")
        if r["data"]["method"] == "POST" and r["data"]["url"].endswith("/auth/logout")
    ]
    assert len(removed) == 2 and len(logouts) == 2, (removed, logouts)
    # one logout per server (two different origins), each issued by its removal
    assert len({r["data"]["url"] for r in logouts}) == 2
    for t_removed, logout in zip(removed, logouts, strict=True):
        assert abs(logout["t"] - t_removed) < 0.05


def test_green_banner_hides_after_three_scaled_seconds(runs: dict[str, Run]) -> None:
    run = runs[PROXY_DOWN]
    scale = float(run.records[0]["data"]["timescale"])
    shown = hidden = None
    for r in run.records:
        if r["src"] != "ui" or r["kind"] != "view" or r["name"] != "diff":
            continue
        color = r["data"]["changes"].get("servers.alpha.banner.color")
        if color == ["yellow", "green"]:
            shown = r["t"]
        elif color == ["green", None] and shown is not None:
            hidden = r["t"]
    assert shown is not None and hidden is not None, "no green banner shown and hidden"
    assert GREEN_BANNER * scale - 0.005 <= hidden - shown <= GREEN_BANNER * scale + TIMER_SLACK


def _event(record: dict[str, Any]) -> dict[str, Any]:
    try:
        frame = json.loads(record["data"]["text"])
    except (ValueError, KeyError):
        return {}
    return frame if isinstance(frame, dict) and frame.get("op") == 0 else {}


def test_post_missed_during_the_outage_arrives_by_replay(runs: dict[str, Run]) -> None:
    frames = [(r, _event(r)) for r in runs[PROXY_DOWN].client("input", "SocketText")]
    resumed = [r for r, e in frames if e.get("type") == "resumed"]
    assert len(resumed) == 1, "the session was not resumed exactly once"
    conn, t_resumed = resumed[0]["data"]["conn"], resumed[0]["t"]
    posts = [
        r
        for r, e in frames
        if e.get("type") == "message.create"
        and e.get("data", {}).get("content") == "bob posted during the outage"
    ]
    assert len(posts) == 1, "bob's post did not arrive exactly once as an event"
    assert posts[0]["data"]["conn"] == conn and posts[0]["t"] <= t_resumed, (
        "bob's post did not come as a replay ahead of `resumed`"
    )


def test_invalid_session_waits_one_to_five_seconds_before_the_backoff(
    runs: dict[str, Run],
) -> None:
    run = runs[INVALID]
    scale = float(run.records[0]["data"]["timescale"])
    draws = [
        r for r in run.records if r["kind"] == "rng" and r["data"]["kind"] == "invalid-session-wait"
    ]
    assert len(draws) == 1, "no (or more than one) invalid-session wait was drawn"
    wait = float(draws[0]["data"]["value"])
    assert 1.0 <= wait <= 5.0
    timers = run.client("timer", "SetTimer")
    extra = [r for r in timers if r["data"]["kind"] == "invalid-session-wait"]
    assert len(extra) == 1 and abs(float(extra[0]["data"]["delay"]) - wait * scale) < 1e-9
    due = float(extra[0]["data"]["at"])
    backoff = [r for r in timers if r["data"]["kind"] == "backoff"]
    assert backoff and backoff[0]["t"] >= due - 0.005, "the backoff started before the extra wait"
    opened = [r["t"] for r in run.client("effect", "OpenSocket") if r["t"] > extra[0]["t"]]
    assert opened and opened[0] >= float(backoff[0]["data"]["at"]) - 0.005


def test_invalid_session_on_attempt_ten_escalates_without_an_eleventh_wait(
    runs: dict[str, Run],
) -> None:
    run = runs[AT_LIMIT]
    attempts = [r for r in run.client("signal", "server_reconnecting")]
    assert [r["data"]["args"][1] for r in attempts] == list(range(1, 11))
    closes = [
        r for r in run.client("effect", "CloseSocket") if r["data"]["reason"] == "invalid session"
    ]
    assert len(closes) == 1 and closes[0]["t"] > attempts[-1]["t"]
    reauth = run.client("signal", "server_reauthenticating")
    assert len(reauth) == 1 and abs(reauth[0]["t"] - closes[0]["t"]) < 0.05
    backoffs_after = [
        r
        for r in run.client("timer", "SetTimer")
        if r["data"]["kind"] == "backoff" and r["t"] > attempts[-1]["t"]
    ]
    assert backoffs_after == [], "a backoff was scheduled after attempt 10"
