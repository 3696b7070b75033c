"""A cap on gateway opens in flight that serves the newest waiter first.

A crowd of thousands of clients on a few cores needs a cap on simultaneous opens
(load.session), or every TLS handshake of a storm shares the CPU with every other
and none finishes in time. A first-come queue behind the cap hands each free slot
to the open that has waited longest, whose client open timeout (10 s, s.2) is then
nearly spent: it pays for its TLS handshake and times out anyway. Measured in a
5,000-client storm (docs/load.md): 7,060 attempts failed by "open timed out", each
about a handshake's CPU wasted. Newest first gives a slot to an open with its whole
timeout ahead; the ones left waiting time out in the queue, where it costs nothing,
and come back after their backoff with a fresh timeout.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class NewestFirstGate:
    """At most `limit` holders (`async with gate:`); when all are taken, a freed slot
    goes to the waiter that arrived last."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._free = limit
        # Waiters, newest last. A cancelled waiter stays until a release skips it;
        # a live one exists only while no slot is free.
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in self._waiters)

    async def __aenter__(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():  # handed a slot as it was cancelled
                self._release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            slot = self._waiters.pop()
            if not slot.done():
                slot.set_result(None)
                return
        self._free += 1
