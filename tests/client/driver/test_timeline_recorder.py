"""client.timeline: redaction, JSON lines, queries, and the Recorder around a core."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from client.core import signals as sig
from client.core.io import (
    Effect,
    HttpRequest,
    HttpResponse,
    Log,
    NetError,
    OpenSocket,
    RngDraw,
    SendText,
    SetTimer,
    Signal,
    SocketOpenFailed,
)
from client.core.redact import REDACTED, redact_text
from client.core.timings import Timings
from client.timeline import Recorder, Timeline, json_safe


def test_bearer_tokens_and_secret_fields_are_redacted_everywhere() -> None:
    identify = '{"op":2,"data":{"token":"Bearer 9f8e7d","intents":[]}}'
    assert "9f8e7d" not in redact_text(identify)
    assert redact_text("Authorization: Bearer abc.def-123") == f"Authorization: Bearer {REDACTED}"
    assert redact_text("Bot xyz") == f"Bot {REDACTED}"
    login = '{"username": "alice", "password": "hunter2"}'
    assert redact_text(login) == f'{{"username": "alice", "password": "{REDACTED}"}}'
    data = json_safe(
        {
            "password": "hunter2",
            "Token": "t0k",
            "headers": (("Authorization", "Bearer t0k2"),),
            "body": b'{"data":{"token":"t0k3"}}',
            "nested": [{"password": "p"}],
        }
    )
    text = str(data)
    for secret in ("hunter2", "t0k", "t0k2", "t0k3", "'p'"):
        assert secret not in text
    assert data["headers"] == [["Authorization", f"Bearer {REDACTED}"]]


def test_json_safe_converts_dataclasses_enums_bytes_and_cuts_long_text() -> None:
    failed = json_safe(SocketOpenFailed(3, NetError.TLS, "certificate verify failed"))
    assert failed == {"conn": 3, "error": "tls", "detail": "certificate verify failed"}
    long = json_safe("x" * 10_000)
    assert len(long) < 5_000 and long.endswith("…(+5904)")


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    timeline = Timeline(origin=0.0)
    timeline.add(0.5, "client", "signal", sig.SERVER_CONNECTING, {"args": ("alpha",)})
    timeline.add(1.0, "chaos", "fault", "toxic", {"type": "latency", "token": "s"})
    path = tmp_path / "run.jsonl"
    timeline.dump(path)
    loaded = Timeline.load(path)
    assert loaded.records == timeline.records
    assert loaded.records[1].data["token"] == REDACTED


def test_load_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t": 0, "src": "rig", "kind": "step", "name": "a", "data": {}}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl: timeline line 2"):
        Timeline.load(path)


def test_select_filters_by_kind_name_src_and_window() -> None:
    timeline = Timeline(origin=0.0)
    for t in (0.0, 1.0, 2.0, 3.0):
        timeline.add(t, "client", "signal", "a" if t < 2 else "b")
    timeline.add(1.5, "rig", "step", "a")
    assert [r.t for r in timeline.select(kind="signal", since=1.0, until=2.0)] == [1.0, 2.0]
    assert [r.t for r in timeline.select(name="a")] == [0.0, 1.0, 1.5]
    assert [r.t for r in timeline.select(src="rig")] == [1.5]
    assert timeline.first(name="b") is not None and timeline.first(name="zz") is None


def test_appends_from_many_threads_are_all_kept() -> None:
    timeline = Timeline()

    def writer(n: int) -> None:
        for i in range(500):
            timeline.add(timeline.now(), f"server:{n}", "frame", "x", {"i": i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(timeline) == 2000


@dataclass
class OneShotCore:
    """Emits a fixed list of effects on its first input."""

    script: list[Effect]
    out: list[Effect] = field(default_factory=list)

    def handle(self, now: float, event: Any) -> None:
        self.out, self.script = self.script, []

    def advance(self, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def take_effects(self) -> list[Effect]:
        taken, self.out = self.out, []
        return taken


def test_recorder_records_inputs_effects_signals_and_view_changes() -> None:
    script: list[Effect] = [
        SetTimer("gateway:backoff", 2.0, 1.0),
        RngDraw("alpha", "backoff attempt 1", 0.25),
        Log("info", "connecting", "alpha"),
        OpenSocket(1, "wss://h/ws"),
        SendText(1, '{"op":2,"data":{"token":"Bearer sekret"}}'),
        HttpRequest(2, "POST", "https://h/api/v1/auth/login", (), b'{"password":"pw"}'),
        Signal(sig.SERVER_CONNECTING, ("alpha",)),
        Signal(sig.SERVER_CONNECTED, ("alpha",)),
    ]
    timeline = Timeline(origin=0.0)
    recorder = Recorder(OneShotCore(script), timeline, Timings(scale=0.1))
    io = recorder.handle(1.0, HttpResponse(9, 200, (), b"{}"))
    assert [type(e).__name__ for e in io] == ["OpenSocket", "SendText", "HttpRequest"]
    kinds = [(r.kind, r.name) for r in timeline.records]
    assert kinds == [
        ("view", "snapshot"),
        ("input", "HttpResponse"),
        ("timer", "SetTimer"),
        ("rng", "backoff attempt 1"),
        ("log", "info"),
        ("effect", "OpenSocket"),
        ("effect", "SendText"),
        ("effect", "HttpRequest"),
        ("signal", sig.SERVER_CONNECTING),
        ("view", "diff"),
        ("signal", sig.SERVER_CONNECTED),
        ("view", "diff"),
    ]
    assert all(r.t == 1.0 for r in timeline.records[1:])
    first_diff = timeline.select(kind="view", name="diff")[0].data["changes"]
    assert first_diff["banner.text"] == ["", "Connecting..."]
    dump = timeline.dumps()
    assert "sekret" not in dump and '"pw"' not in dump
    assert recorder.view.status("alpha") == "connected"
    # The recorded signals rebuild the same view after the fact.
    folded = type(recorder.view).fold(timeline.signals(), Timings(scale=0.1))
    assert folded.snapshot(1.0) == recorder.snapshot(1.0)


def test_recorder_notes_timed_view_changes_and_reports_their_deadline() -> None:
    script: list[Effect] = [
        Signal(sig.SERVER_RECONNECTED, ("alpha",)),
        Signal(sig.SERVER_SYNCED, ("alpha",)),
    ]
    timeline = Timeline(origin=0.0)
    recorder = Recorder(OneShotCore(script), timeline, Timings(scale=0.1))
    recorder.handle(1.0, SocketOpenFailed(1, NetError.REFUSED))
    assert recorder.next_deadline(1.0) == pytest.approx(1.3)  # green banner hides
    recorder.advance(1.31)
    last = timeline.records[-1]
    assert (last.t, last.kind) == (1.31, "view")
    assert last.data["changes"]["banner.text"] == ["Reconnected!", ""]
    assert recorder.next_deadline(1.31) is None
