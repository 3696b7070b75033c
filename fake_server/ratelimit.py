"""The REST rate limiter (accord-protocol.md s.4): N requests per 60 s per
`Authorization` value, every request without one sharing a single bucket.

Modelled as GCRA, a token bucket without a timer: a burst of N, then one request
comes back every window/N. That is how the reference "lets requests through again at
about one per second before the 60 s are over" (70 per 60 s: one per 0.86 s). The
window is scaled by the timescale, the counts are not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RATE_LIMIT = 70
"""Reference: requests per window per Authorization value."""
RATE_WINDOW_S = 60.0
"""Reference window, real-client seconds; also the Retry-After the server sends."""
_PRUNE_AT = 10_000


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    reset_epoch: int
    """Epoch seconds when the bucket is full again (the window's end)."""


@dataclass
class RateLimiter:
    limit: int
    window: float
    """Already scaled (real seconds)."""
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _tat: dict[str, float] = field(default_factory=dict)
    """Per key: the theoretical arrival time, when the bucket would be full again."""

    @property
    def interval(self) -> float:
        return self.window / self.limit

    def check(self, key: str) -> Verdict:
        now = self.clock()
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + self.interval
        allowed = new_tat - now <= self.window + 1e-9
        if allowed:
            if len(self._tat) >= _PRUNE_AT:  # forget full buckets (many distinct bad tokens)
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            self._tat[key] = new_tat
            tat = new_tat
        remaining = max(0, math.floor((self.window - (tat - now)) / self.interval + 1e-9))
        return Verdict(allowed, remaining, math.ceil(self.wall() + (tat - now)))

    def exhaust(self, key: str, hold: float = 0.0) -> None:
        """Empty `key`'s bucket now, as a burst of `limit` requests would have, and keep
        it empty for `hold` real seconds (requests taken at the refill pace meanwhile):
        the next request is let through `hold + interval` from now."""
        now = self.clock()
        self._tat[key] = max(self._tat.get(key, now), now + self.window + hold)
