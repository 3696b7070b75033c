"""Where the chaos layer writes its fault records.

Every fault applied or removed becomes one timeline record
`(src="chaos", kind="fault", name=<toxic type or fault>, data={"phase", "id", "target", ...})`.
A sink is either anything with `add(src, kind, name, data)` (the recorders
below), or a clocked timeline with `now()` and `add(t, src, kind, name, data)`
(`client.timeline.Timeline`), which is stamped with its own clock.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Phase = Literal["start", "end"]


class RecordSink(Protocol):
    def add(self, src: str, kind: str, name: str, data: Mapping[str, Any]) -> object: ...


class ClockedTimeline(Protocol):
    def now(self) -> float: ...
    def add(
        self, t: float, src: str, kind: str, name: str, data: dict[str, Any] | None = None
    ) -> object: ...


class TimelineSink:
    """Adapts a clocked timeline: each record is stamped with `timeline.now()`."""

    def __init__(self, timeline: ClockedTimeline) -> None:
        self.timeline = timeline

    def add(self, src: str, kind: str, name: str, data: Mapping[str, Any]) -> object:
        return self.timeline.add(self.timeline.now(), src, kind, name, dict(data))


def as_sink(target: RecordSink | ClockedTimeline | None) -> RecordSink:
    """A `RecordSink` for a sink, a clocked timeline, or nothing."""
    if target is None:
        return NullSink()
    if callable(getattr(target, "now", None)):
        return TimelineSink(target)  # type: ignore[arg-type]
    return target  # type: ignore[return-value]


class NullSink:
    """Records nothing: for callers that do not keep a timeline."""

    def add(self, src: str, kind: str, name: str, data: Mapping[str, Any]) -> object:
        return None


@dataclass
class ListSink:
    """Keeps records in memory with seconds since creation (tests, small tools)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    _origin: float = field(default_factory=time.monotonic)

    def add(self, src: str, kind: str, name: str, data: Mapping[str, Any]) -> object:
        record = {
            "t": time.monotonic() - self._origin,
            "src": src,
            "kind": kind,
            "name": name,
            "data": dict(data),
        }
        self.records.append(record)
        return record

    def faults(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "fault"]


class FaultLog:
    """Hands out fault ids and writes start/end records to a sink."""

    def __init__(self, sink: RecordSink | ClockedTimeline | None = None) -> None:
        self.sink: RecordSink = as_sink(sink)
        self._counter = itertools.count(1)

    def new_id(self, name: str) -> str:
        return f"{name}-{next(self._counter)}"

    def record(
        self, phase: Phase, name: str, fault_id: str, target: str, **attributes: Any
    ) -> None:
        data = {"phase": phase, "id": fault_id, "target": target, **attributes}
        self.sink.add("chaos", "fault", name, data)
