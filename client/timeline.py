"""One timestamped record of everything observable, and the recorder that fills
it from a client core (docs/architecture.md, "The timeline").

Records are redacted on the way in, so no token or password is ever stored,
dumped or attached to a report.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from client.core.io import (
    IO_EFFECTS,
    CancelTimer,
    Effect,
    HttpFailed,
    HttpResponse,
    Log,
    RngDraw,
    SetTimer,
    Signal,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
)
from client.core.redact import REDACTED, redact_text
from client.core.timings import Timings
from client.ui.view_state import ViewState, diff_snapshots

SECRET_KEYS = frozenset({"token", "password", "authorization", "access_token", "refresh_token"})
MAX_TEXT = 4096  # longer texts (message pages) are cut; the timeline is for reading

_TRANSPORT = (SocketOpened, SocketText, SocketClosed, SocketOpenFailed, HttpResponse, HttpFailed)


# --------------------------------------------------------------------------- redaction


def json_safe(value: Any) -> Any:
    """A JSON-able, redacted copy of `value` (dataclasses, enums, bytes, tuples...)."""
    if isinstance(value, str):
        text = value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}…(+{len(value) - MAX_TEXT})"
        return redact_text(text)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, bytes | bytearray):
        return json_safe(bytes(value).decode("utf-8", errors="replace"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return json_safe(fields)
    if isinstance(value, dict):
        return {
            str(k): REDACTED if str(k).lower() in SECRET_KEYS and v else json_safe(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return redact_text(repr(value))


# --------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    t: float  # seconds since the run began
    src: str  # client | ui | server:<name> | chaos | rig
    kind: str  # input | effect | signal | view | timer | rng | log | fault | step | ...
    name: str
    data: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {"t": self.t, "src": self.src, "kind": self.kind, "name": self.name, "data": self.data},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, line: str) -> Record:
        raw = json.loads(line)
        return cls(float(raw["t"]), raw["src"], raw["kind"], raw["name"], dict(raw["data"]))


class Timeline:
    """Append-only, thread-safe list of records on one clock.

    `origin` is a `time.monotonic()` value (asyncio's default loop clock too), so
    code in other threads or tasks can stamp records with `now()`.
    """

    def __init__(self, origin: float | None = None) -> None:
        self.origin = time.monotonic() if origin is None else origin
        self._records: list[Record] = []
        self._by_kind: dict[str, list[Record]] = {}  # so polling one kind stays cheap
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.origin

    def add(
        self, t: float, src: str, kind: str, name: str, data: dict[str, Any] | None = None
    ) -> Record:
        return self.append(Record(t, src, kind, name, json_safe(data or {})))

    def append(self, record: Record) -> Record:
        """Append a record as it is (already redacted, e.g. loaded from a dump)."""
        with self._lock:
            self._records.append(record)
            self._by_kind.setdefault(record.kind, []).append(record)
        return record

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def select(
        self,
        kind: str | None = None,
        name: str | None = None,
        src: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Record]:
        """Records matching every given filter, `since <= t <= until`, in order."""
        with self._lock:
            pool = list(self._records if kind is None else self._by_kind.get(kind, ()))
        return [
            r
            for r in pool
            if (kind is None or r.kind == kind)
            and (name is None or r.name == name)
            and (src is None or r.src == src)
            and (since is None or r.t >= since)
            and (until is None or r.t <= until)
        ]

    def first(self, **filters: Any) -> Record | None:
        found = self.select(**filters)
        return found[0] if found else None

    def signals(self, name: str | None = None) -> list[tuple[float, Signal]]:
        """The recorded signal stream, for folding a ViewState after the fact."""
        return [
            (r.t, Signal(r.name, tuple(r.data.get("args", ()))))
            for r in self.select(kind="signal", name=name)
        ]

    def dumps(self) -> str:
        return "".join(r.to_json() + "\n" for r in self.records)

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def loads(cls, text: str, origin: float = 0.0) -> Timeline:
        timeline = cls(origin)
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = Record.from_json(line)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"timeline line {number}: not a record ({exc})") from exc
            timeline.append(record)
        return timeline

    @classmethod
    def load(cls, path: str | Path) -> Timeline:
        try:
            return cls.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------- recorder


class CoreLike(Protocol):
    """What the recorder (and the driver) need of `client.core.client.ClientCore`."""

    def handle(self, now: float, event: Any) -> None: ...
    def advance(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def take_effects(self) -> list[Effect]: ...


class Recorder:
    """Wraps a core: every input, effect, signal and view change goes on the
    timeline, stamped with the time the driver passed in. Returns the effects
    the driver must perform (`IO_EFFECTS`)."""

    def __init__(
        self,
        core: CoreLike,
        timeline: Timeline,
        timings: Timings | None = None,
        view: ViewState | None = None,
    ) -> None:
        self.core = core
        self.timeline = timeline
        self.view = view if view is not None else ViewState(timings)
        self._snapshot: dict[str, Any] | None = None

    def handle(self, now: float, event: Any) -> list[Effect]:
        """Feed one transport input or user action to the core."""
        self._note_view(now)  # a timed hide that happened before this input
        src = "client" if isinstance(event, _TRANSPORT) else "ui"
        self.timeline.add(now, src, "input", type(event).__name__, _fields(event))
        self.core.handle(now, event)
        return self._drain(now)

    def advance(self, now: float) -> list[Effect]:
        """Fire the core's due timers and note timed view changes."""
        self.core.advance(now)
        return self._drain(now)

    def next_deadline(self, now: float) -> float | None:
        """When `advance` is next needed: a core timer or a timed view change."""
        candidates = (self.core.next_deadline(), self.view.next_deadline(now))
        return min((c for c in candidates if c is not None), default=None)

    def snapshot(self, now: float) -> dict[str, Any]:
        return self.view.snapshot(now)

    def _drain(self, now: float) -> list[Effect]:
        io: list[Effect] = []
        for effect in self.core.take_effects():
            self._record_effect(now, effect)
            if isinstance(effect, Signal):
                self.view.apply(now, effect)
                # Per signal, not per step: one step often passes the banner through
                # several states (disconnected, then attempt 1/10) and each counts.
                self._note_view(now)
            elif isinstance(effect, IO_EFFECTS):
                io.append(effect)
        self._note_view(now)
        return io

    def _record_effect(self, now: float, effect: Effect) -> None:
        add = self.timeline.add
        if isinstance(effect, Signal):
            add(now, "client", "signal", effect.name, {"args": effect.args})
        elif isinstance(effect, SetTimer | CancelTimer):
            add(now, "client", "timer", type(effect).__name__, _fields(effect))
        elif isinstance(effect, RngDraw):
            add(now, "client", "rng", effect.purpose, _fields(effect))
        elif isinstance(effect, Log):
            data = {"message": effect.message, "server": effect.server, **effect.extra}
            add(now, "client", "log", effect.level, data)
        else:
            add(now, "client", "effect", type(effect).__name__, _fields(effect))

    def _note_view(self, now: float) -> None:
        snapshot = self.view.snapshot(now)
        if self._snapshot is None:
            self.timeline.add(now, "ui", "view", "snapshot", snapshot)
        else:
            changes = diff_snapshots(self._snapshot, snapshot)
            if changes:
                self.timeline.add(now, "ui", "view", "diff", {"changes": changes})
        self._snapshot = snapshot


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
