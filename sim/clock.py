"""One virtual clock for a whole simulated run (trio MockClock style).

Time moves only by jumping to the next due event; callbacks scheduled for the
same instant run in the order they were scheduled, so a run is a pure function
of its inputs and seeds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Handle:
    """What `call_at` returns: `cancel()` it to skip the callback."""

    __slots__ = ("action", "cancelled")

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        # (at, order, handle): plain tuples, so the heap compares in C
        self._heap: list[tuple[float, int, Handle]] = []
        self._order = 0

    def call_at(self, at: float, action: Callable[[], None]) -> Handle:
        self._order += 1
        handle = Handle(action)
        heapq.heappush(self._heap, (max(at, self.now), self._order, handle))
        return handle

    def call_later(self, delay: float, action: Callable[[], None]) -> Handle:
        return self.call_at(self.now + max(0.0, delay), action)

    def next_time(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_one(self) -> bool:
        """Run the earliest event (moving time to it); False when none is left."""
        if self.next_time() is None:
            return False
        at, _, handle = heapq.heappop(self._heap)
        self.now = max(self.now, at)
        handle.action()
        return True
