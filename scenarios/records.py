"""Reading the facts the rig needs out of a timeline's records.

The timeline (`client.timeline`) holds `Record(t, src, kind, name, data)`. This
module is the one place that knows how the recorder spells signals, effects and
inputs, so assertions and the delivery checker read plain tuples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class RecordLike(Protocol):
    @property
    def t(self) -> float: ...
    @property
    def src(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Rec:
    """A plain record, for synthetic timelines and for records read back from JSON."""

    t: float
    src: str
    kind: str
    name: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class SignalAt:
    t: float
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class EffectAt:
    t: float
    name: str  # the effect's class name: SetTimer, RngDraw, SendText, ...
    data: Mapping[str, Any]


def signals(records: Iterable[RecordLike]) -> list[SignalAt]:
    out = []
    for r in records:
        if r.src != "client":
            continue
        if r.kind == "signal":
            out.append(SignalAt(r.t, r.name, tuple(r.data.get("args", ()))))
        elif r.kind == "effect" and r.name == "Signal":
            out.append(SignalAt(r.t, str(r.data["name"]), tuple(r.data.get("args", ()))))
    return out


# The recorder may file timers and draws under their own kinds.
_EFFECT_KINDS = {"effect", "timer", "rng", "log"}
_KIND_TO_EFFECT = {"timer": "SetTimer", "rng": "RngDraw"}


def effects(records: Iterable[RecordLike], *names: str) -> list[EffectAt]:
    """Client effects with the given class names (all when none given)."""
    out = []
    for r in records:
        if r.src != "client" or r.kind not in _EFFECT_KINDS:
            continue
        name = r.name
        if r.kind in _KIND_TO_EFFECT and name not in ("SetTimer", "CancelTimer", "RngDraw"):
            # e.g. kind=timer name=set/cancel, or kind=rng name=<purpose>
            name = "CancelTimer" if name in ("cancel", "CancelTimer") else _KIND_TO_EFFECT[r.kind]
        if not names or name in names:
            out.append(EffectAt(r.t, name, r.data))
    return out


def inputs(records: Iterable[RecordLike], *names: str) -> list[EffectAt]:
    """Client inputs (transport events and user actions) with the given class names."""
    return [
        EffectAt(r.t, r.name, r.data)
        for r in records
        if r.src == "client" and r.kind == "input" and (not names or r.name in names)
    ]


def of_kind(records: Iterable[RecordLike], src: str, kind: str) -> list[RecordLike]:
    return [r for r in records if r.src == src and r.kind == kind]
