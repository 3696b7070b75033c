"""Run asyncio code from Locust's gevent world.

Importing locust monkey-patches the process with gevent, and an asyncio loop on the
patched selector dies with gevent's LoopExit (toolchain-facts.md). So the loop runs
on a real OS thread over an unpatched epoll selector, and a greenlet waits for its
future. Two ways to wait, measured against each other in bench/bench_storm.py:

- `PollingBridge` (the first one): the greenlet wakes every 2 ms to look at the
  future. Every waiting user costs 500 wake-ups a second, whether or not anything
  happened, so a crowd of waiting users eats the core the clients need.
- `NotifyBridge` (the default): the asyncio thread wakes exactly the waiting
  greenlet when its future is done, through gevent's thread-safe
  `loop.run_callback_threadsafe`; a waiting user costs nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.monkey

from fake_server.tls import small_tls_read_buffers

T = TypeVar("T")
ENV_VAR = "ACCORD_LOAD_BRIDGE"  # "notify" (default) or "poll"


class _LoopThread:
    """One asyncio loop on one real thread, shared by every user of a Locust process."""

    def __init__(self) -> None:
        small_tls_read_buffers()  # thousands of client sockets in one process
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

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        raise NotImplementedError


class PollingBridge(_LoopThread):
    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop; block this greenlet (not the process) until done."""
        future = self.submit(coro)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                future.cancel()
                raise TimeoutError(f"no answer from the asyncio loop within {timeout:.0f} s")
            gevent.sleep(0.002)
        return future.result()


class NotifyBridge(_LoopThread):
    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop; this greenlet sleeps until the loop thread wakes it."""
        done = gevent.event.Event()
        hub_loop = gevent.get_hub().loop
        future = self.submit(coro)
        future.add_done_callback(lambda _: hub_loop.run_callback_threadsafe(done.set))
        if not done.wait(timeout) and not future.done():
            future.cancel()
            raise TimeoutError(f"no answer from the asyncio loop within {timeout:.0f} s")
        return future.result()


AsyncioBridge = NotifyBridge


def make_bridge(kind: str | None = None) -> _LoopThread:
    kind = kind or os.environ.get(ENV_VAR, "notify")
    if kind == "poll":
        return PollingBridge()
    if kind == "notify":
        return NotifyBridge()
    raise ValueError(f"{ENV_VAR}: {kind!r} is not a bridge (notify or poll)")
