"""Named one-shot timers inside the core (aioquic style: `now` is passed in).

Setting a timer that exists replaces it. Every set/cancel is reported as a
`SetTimer`/`CancelTimer` effect so the timeline shows what the core waits for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from client.core.io import CancelTimer, Effect, SetTimer

TimerCallback = Callable[[float], None]


@dataclass(slots=True)
class _Timer:
    at: float
    order: int  # ties fire in the order they were set
    callback: TimerCallback


class Timers:
    def __init__(self, out: list[Effect]) -> None:
        self._out = out
        self._timers: dict[str, _Timer] = {}
        self._order = 0

    def set(self, name: str, now: float, delay: float, callback: TimerCallback) -> None:
        self._order += 1
        at = now + max(delay, 0.0)
        self._timers[name] = _Timer(at, self._order, callback)
        self._out.append(SetTimer(name=name, at=at, delay=delay))

    def cancel(self, name: str) -> None:
        if self._timers.pop(name, None) is not None:
            self._out.append(CancelTimer(name=name))

    def cancel_prefix(self, prefix: str) -> None:
        for name in [n for n in self._timers if n.startswith(prefix)]:
            self.cancel(name)

    def is_set(self, name: str) -> bool:
        return name in self._timers

    def next_deadline(self) -> float | None:
        if not self._timers:
            return None
        return min(t.at for t in self._timers.values())

    def fire_due(self, now: float) -> int:
        """Fire every timer due at `now`, earliest first (including ones that
        callbacks set for a time <= now). Returns how many fired."""
        fired = 0
        while True:
            due = [(t.at, t.order, name) for name, t in self._timers.items() if t.at <= now]
            if not due:
                return fired
            _, _, name = min(due)
            timer = self._timers.pop(name)
            timer.callback(now)
            fired += 1
