"""The client under test, in-process: ClientCore driven by the asyncio driver, every
input, effect and signal recorded on the run's timeline.

The one place that knows how to assemble the client, so the runner only calls
`act(action)`, `wait(predicate, timeout)` and reads `core` (read-only queries).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from client.core.client import ClientCore
from client.core.timings import Timings
from client.driver.driver import AsyncClientDriver
from client.driver.tls import client_ssl_context
from client.timeline import Timeline


class ClientHarness:
    def __init__(
        self,
        timeline: Timeline,
        timings: Timings,
        *,
        seed: int,
        bugs: Iterable[int],
        ca_files: Iterable[str],
        instance: str = "",
    ) -> None:
        cas = list(ca_files)
        context = client_ssl_context(cas[0] if cas else None)
        for ca in cas[1:]:
            context.load_verify_locations(cafile=ca)  # each fake server has its own test CA
        # ACCORD_RIG_BUGS=N runs a whole catalogue against a buggy client (mutation
        # runs); the core never reads the environment, the rig passes it in.
        self.core = ClientCore(
            timings=timings, seed=seed, bugs=frozenset(bugs), instance=instance, environ=os.environ
        )
        self.driver = AsyncClientDriver(
            self.core, ssl_context=context, timeline=timeline, timings=timings
        )
        self._started = False

    async def start(self) -> None:
        await self.driver.start()
        self._started = True

    async def act(self, action: Any) -> None:
        """A user action, now."""
        await self.driver.act(action)

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once `predicate()` holds (re-checked after every client step), False
        after `timeout` seconds."""
        try:
            await self.driver.wait_for(predicate, timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self.driver.stop()
