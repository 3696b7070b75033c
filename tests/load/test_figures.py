"""Figures from client summaries: recovery episodes, the herd ratio, delivery."""

from __future__ import annotations

from pathlib import Path

from client.core import signals as sig
from client.core.io import (
    AbortSocket,
    CloseSocket,
    Effect,
    NetError,
    OpenSocket,
    Signal,
    SocketClosed,
    SocketOpenFailed,
)
from client.timeline import Timeline
from load.conductor import FiredFault, LoadRun
from load.figures import compute, herd_ratio, judge, percentile
from load.loader import LoadedLoad
from load.schema import LoadFile
from load.session import CrowdRecorder, client_summary
from scenarios.yaml_lines import LineMap


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([], 50) is None


def test_a_crowd_in_one_window_is_a_herd_and_a_spread_one_is_not() -> None:
    fault = 100.0
    herd = [fault + 1.0 + i * 0.001 for i in range(40)]  # everyone at +1.0 s
    spread = [fault + 1.0 + i * 0.025 for i in range(40)]  # over the 1 s jitter window
    assert herd_ratio(herd, fault) == 11.0  # 40 in window 10 of 11
    ratio = herd_ratio(spread, fault)
    assert ratio is not None and ratio < 3.0


def _run(summaries: list[dict[str, object]], stored: list[str]) -> LoadRun:
    load = LoadFile.model_validate(
        {"name": "t", "crowd": {"clients": len(summaries)}, "run_for": "10s",
         "thresholds": {"recovery": {"all_within": "5s"}}}
    )  # fmt: skip
    run = LoadRun(LoadedLoad(Path("t.load.yaml"), load, LineMap()), len(summaries), 1.0)
    run.summaries = summaries
    run.stored = {"alpha": [{"nonce": n} for n in stored]}
    run.fired = [FiredFault(0, "proxy_down", 5, "proxy_down: alpha.gateway", 10.0)]
    return run


def _client(user: str, lost: float, back: float | None, how: str, nonces: list[str],
            accepted: list[str]) -> dict[str, object]:  # fmt: skip
    return {
        "user": user, "connected_now": back is not None, "connect_seconds": 0.5,
        "connect_error": "", "attempted": len(nonces), "send_failed": 0, "send_refused": 0,
        "episodes": [{"lost": lost, "back": back, "attempts": 1, "how": how, "reauth": False,
                      "gave_up": back is None}],
        "attempt_times": [lost + 1.0], "nonces": nonces, "accepted": accepted,
    }  # fmt: skip


def test_recovery_delivery_and_verdicts_from_summaries() -> None:
    run = _run(
        [
            _client("a", 10.0, 11.5, "resume", ["a-1", "a-2"], ["a-1", "a-2"]),
            _client("b", 10.0, None, "", ["b-1"], ["b-1"]),
        ],
        stored=["a-1", "a-2", "a-2", "x-9"],  # b-1 lost, a-2 twice, x-9 from nobody
    )
    figures = compute(run)
    assert (figures.episodes, figures.recovered, figures.unrecovered) == (2, 1, 1)
    assert figures.recovery["p50"] == 1.5 and figures.resumed == 1
    assert (figures.lost, figures.duplicated, figures.unexpected) == (1, 1, 1)
    assert figures.connected_at_end == 50.0
    failed = {v.name for v in judge(run, figures) if not v.ok}
    assert failed == {"recovery all_within", "lost", "duplicated", "unexpected stored"}


class _QueuedCore:
    """A core that returns whatever the test queued: the recorder is what is tested."""

    def __init__(self) -> None:
        self.queued: list[Effect] = []

    def handle(self, now: float, event: object) -> None:
        pass

    def advance(self, now: float) -> None:
        pass

    def take_effects(self) -> list[Effect]:
        out, self.queued = self.queued, []
        return out

    def next_deadline(self) -> float | None:
        return None


def test_the_crowd_recorder_keeps_why_each_reconnect_attempt_failed() -> None:
    core = _QueuedCore()
    timeline = Timeline(origin=0.0)
    recorder = CrowdRecorder(core, timeline)

    def step(t: float, event: object, *effects: Effect) -> None:
        core.queued = list(effects)
        recorder.handle(t, event)

    step(1.0, SocketClosed(1, 1006, ""), Signal(sig.SERVER_DISCONNECTED, ("alpha", 1006, "")))
    step(2.0, "backoff", OpenSocket(2, "wss://x"))
    step(2.1, SocketOpenFailed(2, NetError.REFUSED), OpenSocket(3, "wss://x"))
    step(12.1, "open timeout", AbortSocket(3), OpenSocket(4, "wss://x"))
    step(22.2, "hello timeout", CloseSocket(4, 4000, "hello timeout", 1.0, frame=False))
    step(22.2, SocketClosed(4, 4000, "hello timeout"))  # the same attempt: counted once
    step(25.0, "backoff", OpenSocket(5, "wss://x"))
    step(25.5, "resumed", Signal(sig.SERVER_RECONNECTED, ("alpha",)))
    step(30.0, SocketClosed(5, 1006, ""))  # a later loss, not an attempt

    summary = client_summary(timeline.records, 0.0)
    assert summary["episodes"][0]["attempts"] == 4
    assert summary["attempt_failures"] == {
        "open failed: refused": 1,
        "open timed out": 1,
        "client closed: hello timeout": 1,
    }
