"""Timeline records turned into the lanes a report draws.

Input: timeline records (`{"t","src","kind","name","data"}` dicts, JSON lines,
or `client.timeline.Record` objects). Conventions read here (docs/reports.md):
- connection status: `kind="signal"` records whose name is a connection signal
  of `client/core/signals.py`; `data["args"][0]` is the server;
- banners: `kind="view"` records: `snapshot` (the whole view, banner at
  `servers.<server>.banner`) then `diff` (`data["changes"]`: dotted path -> [old, new]);
- queue depth: signal `queue_changed` with args `[server, depth]`;
- fault windows: `kind="fault"` records, `data["phase"]` start/end paired by `data["id"]`;
- scenario steps: `kind="step"` records (`data["phase"]` start/end, `index`, `text`, `ok`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.core.signals import SIGNAL_STATUS


@dataclass(frozen=True)
class Segment:
    """A span of one lane: [start, end) with a label; `value` picks the colour."""

    start: float
    end: float
    value: str
    label: str


@dataclass(frozen=True)
class FaultWindow:
    fault_id: str
    name: str
    target: str
    start: float
    end: float
    open_ended: bool  # no end record: drawn to the end of the run
    detail: str


@dataclass(frozen=True)
class StepMark:
    index: int
    start: float
    end: float | None
    kind: str
    text: str
    ok: bool | None  # None: the step never ended


@dataclass
class Lanes:
    end: float = 0.0
    servers: list[str] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    status: dict[str, list[Segment]] = field(default_factory=dict)
    banners: dict[str, list[Segment]] = field(default_factory=dict)
    queue: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    steps: list[StepMark] = field(default_factory=list)


class TimelineFormatError(ValueError):
    """A timeline file line that is not a record; names the file and line."""


# --------------------------------------------------------------------------- loading


def load_records(path: Path) -> list[dict[str, Any]]:
    """JSON-lines timeline file -> record dicts (blank lines skipped)."""
    records = []
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            record = {
                "t": float(raw["t"]),
                "src": str(raw["src"]),
                "kind": str(raw["kind"]),
                "name": str(raw["name"]),
                "data": dict(raw.get("data") or {}),
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise TimelineFormatError(f"{path}:{number}: not a timeline record ({exc})") from None
        records.append(record)
    return records


def as_dict(record: Any) -> dict[str, Any]:
    """A record dict from a dict or a `client.timeline.Record`-like object."""
    if isinstance(record, Mapping):
        return dict(record)
    return {
        "t": record.t,
        "src": record.src,
        "kind": record.kind,
        "name": record.name,
        "data": record.data,
    }


# --------------------------------------------------------------------------- lanes


def build_lanes(records: Iterable[Any]) -> Lanes:
    rows = sorted((as_dict(r) for r in records), key=lambda r: float(r["t"]))
    lanes = Lanes(end=max((float(r["t"]) for r in rows), default=0.0))
    _status_lanes(rows, lanes)
    _banner_lanes(rows, lanes)
    _queue_lanes(rows, lanes)
    _fault_windows(rows, lanes)
    _steps(rows, lanes)
    for server in [*lanes.status, *lanes.banners, *lanes.queue]:
        if server not in lanes.servers:
            lanes.servers.append(server)
    return lanes


def _server_of(record: Mapping[str, Any]) -> str | None:
    args = record["data"].get("args") or []
    return str(args[0]) if args else None


class _SegmentBuilder:
    """Open/close segments per key as values change over time."""

    def __init__(self) -> None:
        self.done: dict[str, list[Segment]] = {}
        self._open: dict[str, tuple[float, str, str]] = {}

    def set(self, key: str, t: float, value: str, label: str) -> None:
        current = self._open.get(key)
        if current is not None and (current[1], current[2]) == (value, label):
            return
        self.done.setdefault(key, [])
        if current is not None:
            self.done[key].append(Segment(current[0], t, current[1], current[2]))
        self._open[key] = (t, value, label)

    def finish(self, end: float) -> dict[str, list[Segment]]:
        for key, (start, value, label) in self._open.items():
            self.done[key].append(Segment(start, max(end, start), value, label))
        self._open.clear()
        return self.done


def _status_lanes(rows: list[dict[str, Any]], lanes: Lanes) -> None:
    builder = _SegmentBuilder()
    for record in rows:
        if record["kind"] != "signal" or record["name"] not in SIGNAL_STATUS:
            continue
        server = _server_of(record)
        if server is None:
            continue
        status = SIGNAL_STATUS[record["name"]].value  # `syncing` until server_synced
        label = status
        args = record["data"].get("args") or []
        if record["name"] == "server_reconnecting" and len(args) >= 3:
            label = f"reconnecting {args[1]}/{args[2]}"
        elif record["name"] == "server_reauthenticating":
            label = "re-auth"
        elif record["name"] == "server_disconnected" and len(args) >= 2:
            label = f"disconnected {args[1]}"
        builder.set(server, float(record["t"]), status, label)
    lanes.status = builder.finish(lanes.end)


def _banner_lanes(rows: list[dict[str, Any]], lanes: Lanes) -> None:
    builder = _SegmentBuilder()
    view: dict[str, Any] = {}
    for record in rows:
        if record["kind"] != "view":
            continue
        data = record["data"]
        if record["name"] == "snapshot":
            view = json.loads(json.dumps(data))  # a private deep copy
        elif isinstance(data.get("changes"), Mapping):
            for path, change in data["changes"].items():
                if isinstance(change, list | tuple) and len(change) == 2:
                    _set_path(view, str(path).split("."), change[1])
        servers = view.get("servers")
        if not isinstance(servers, Mapping):
            continue
        for server, shown in servers.items():
            banner = shown.get("banner") if isinstance(shown, Mapping) else None
            color, text = "none", ""
            if isinstance(banner, Mapping) and banner.get("visible") and banner.get("color"):
                color, text = str(banner["color"]), str(banner.get("text") or "")
            builder.set(str(server), float(record["t"]), color, text)
        for server in builder._open:
            if server not in servers:  # removed from the view: hidden
                builder.set(server, float(record["t"]), "none", "")
    lanes.banners = builder.finish(lanes.end)


def _set_path(target: dict[str, Any], parts: list[str], value: Any) -> None:
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _queue_lanes(rows: list[dict[str, Any]], lanes: Lanes) -> None:
    for record in rows:
        if record["kind"] != "signal" or record["name"] != "queue_changed":
            continue
        args = record["data"].get("args") or []
        if len(args) < 2:
            continue
        try:
            depth = int(args[1])
        except (TypeError, ValueError):
            continue
        lanes.queue.setdefault(str(args[0]), []).append((float(record["t"]), depth))


def _fault_windows(rows: list[dict[str, Any]], lanes: Lanes) -> None:
    started: dict[str, dict[str, Any]] = {}
    for record in rows:
        if record["kind"] != "fault":
            continue
        data = record["data"]
        fault_id = str(data.get("id") or f"{record['name']}@{record['t']}")
        if data.get("phase") == "start":
            started[fault_id] = record
        elif data.get("phase") == "end" and fault_id in started:
            begin = started.pop(fault_id)
            lanes.faults.append(_window(begin, float(record["t"]), open_ended=False))
    for begin in started.values():
        lanes.faults.append(_window(begin, lanes.end, open_ended=True))
    lanes.faults.sort(key=lambda w: (w.start, w.fault_id))


def _window(begin: Mapping[str, Any], end: float, open_ended: bool) -> FaultWindow:
    data = begin["data"]
    attributes = data.get("attributes") or {}
    detail = ", ".join(f"{k}={v}" for k, v in attributes.items())
    if data.get("stream"):
        detail = f"{data['stream']} {detail}".strip()
    return FaultWindow(
        fault_id=str(data.get("id", "")),
        name=str(begin["name"]),
        target=str(data.get("target", "")),
        start=float(begin["t"]),
        end=max(end, float(begin["t"])),
        open_ended=open_ended,
        detail=detail,
    )


def _steps(rows: list[dict[str, Any]], lanes: Lanes) -> None:
    open_steps: dict[Any, StepMark] = {}
    for record in rows:
        if record["kind"] != "step":
            continue
        data = record["data"]
        key = data.get("index", record["name"])
        t = float(record["t"])
        if data.get("phase") == "end" and key in open_steps:
            begin = open_steps.pop(key)
            ok = data.get("ok")
            lanes.steps.append(
                StepMark(begin.index, begin.start, t, begin.kind, begin.text, bool(ok))
            )
        else:
            index = int(data["index"]) if isinstance(data.get("index"), int) else len(lanes.steps)
            text = str(data.get("text") or record["name"])
            open_steps[key] = StepMark(index, t, None, str(record["name"]), text, None)
    lanes.steps.extend(open_steps.values())
    lanes.steps.sort(key=lambda s: (s.start, s.index))
