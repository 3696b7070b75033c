"""One virtual clock for a whole simulated run (trio MockClock style).

Time moves only by jumping to the next due event; callbacks scheduled for the
same instant run in the order they were scheduled, so a run is a pure function
of its inputs and seeds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class _Event:
    at: float
    order: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Handle:
    """What `call_at` returns: `cancel()` it to skip the callback."""

    __slots__ = ("_event",)

    def __init__(self, event: _Event) -> None:
        self._event = event

    def cancel(self) -> None:
        self._event.cancelled = True


class SimClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[_Event] = []
        self._order = 0

    def call_at(self, at: float, action: Callable[[], None]) -> Handle:
        self._order += 1
        event = _Event(max(at, self.now), self._order, action)
        heapq.heappush(self._heap, event)
        return Handle(event)

    def call_later(self, delay: float, action: Callable[[], None]) -> Handle:
        return self.call_at(self.now + max(0.0, delay), action)

    def next_time(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].at if self._heap else None

    def run_one(self) -> bool:
        """Run the earliest event (moving time to it); False when none is left."""
        if self.next_time() is None:
            return False
        event = heapq.heappop(self._heap)
        self.now = max(self.now, event.at)
        event.action()
        return True
