"""Snowflake ids: (ms since 2024-01-01T00:00:00Z) << 22 | sequence, as decimal text."""

from __future__ import annotations

import time
from collections.abc import Callable

EPOCH_MS = 1_704_067_200_000
_SEQ_BITS = 22
_SEQ_MASK = (1 << _SEQ_BITS) - 1


class SnowflakeGenerator:
    """Strictly increasing ids, also across restarts (seeded with the largest stored id)."""

    def __init__(self, floor: int = 0, clock: Callable[[], float] = time.time) -> None:
        self._last = floor
        self.clock = clock
        """Epoch seconds (the server core sets its own)."""

    def next_int(self) -> int:
        candidate = (int(self.clock() * 1000) - EPOCH_MS) << _SEQ_BITS
        # Same millisecond (or a clock step back): continue after the last id.
        self._last = max(candidate, self._last + 1)
        return self._last

    def next(self) -> str:
        return str(self.next_int())

    def bump(self, floor: int) -> None:
        self._last = max(self._last, floor)
