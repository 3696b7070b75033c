"""Run asyncio code from Locust's gevent world.

Importing locust monkey-patches the process with gevent, and an asyncio loop on the
patched selector dies with gevent's LoopExit (toolchain-facts.md). So the loop runs
on a real OS thread over an unpatched epoll selector, and greenlets wait for its
futures by polling with gevent.sleep, which lets the other users run meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import gevent
import gevent.monkey

T = TypeVar("T")


class AsyncioBridge:
    """One asyncio loop on one real thread, shared by every user of a Locust process."""

    def __init__(self) -> None:
        selector = gevent.monkey.get_original("selectors", "EpollSelector")()
        self.loop = asyncio.SelectorEventLoop(selector)
        # Name lookups (a hostname such as `fake-server` in the compose stack) would go
        # to the loop's default executor, whose threads are patched greenlets that
        # never run from this OS thread: the lookup hung forever. The original
        # getaddrinfo on the loop's thread instead (container DNS answers at once).
        self.loop.getaddrinfo = self._getaddrinfo  # type: ignore[method-assign]
        start_thread = gevent.monkey.get_original("_thread", "start_new_thread")
        start_thread(self._serve, ())

    @staticmethod
    async def _getaddrinfo(
        host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        lookup = gevent.monkey.get_original("socket", "getaddrinfo")
        return lookup(host, port, family, type, proto, flags)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop; block this greenlet (not the process) until done."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                future.cancel()
                raise TimeoutError(f"no answer from the asyncio loop within {timeout:.0f} s")
            gevent.sleep(0.002)
        return future.result()
