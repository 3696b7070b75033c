"""Both drivers behind the asyncio driver's interface, so one suite tests both.

`asyncio`: `client.driver.AsyncClientDriver` itself. `gevent`:
`client.driver.green.GeventClientDriver` on its own OS thread with its own gevent
hub (no monkey-patching: the driver uses gevent's sockets explicitly), each call
handed to that hub and its result (or exception) handed back to the test's loop.
The tests' servers stay on the test's asyncio loop; the two meet on real sockets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import gevent
import gevent.event

from client.driver import AsyncClientDriver
from client.driver.green import GeventClientDriver
from client.timeline import CoreLike, Record, Timeline
from client.ui.view_state import ViewState

DRIVERS = ("asyncio", "gevent")


class Driver(Protocol):
    @property
    def core(self) -> CoreLike: ...
    @property
    def view(self) -> ViewState: ...

    timeline: Timeline

    def now(self) -> float: ...
    def snapshot(self) -> dict[str, Any]: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def act(self, action: Any) -> None: ...
    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str = "condition"
    ) -> None: ...
    async def wait_for_record(self, timeout: float, **filters: Any) -> Record: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


MakeDriver = Callable[..., Driver]  # the new_driver fixture (conftest.py)


class GeventOnThread:
    """A GeventClientDriver living on a thread of its own, driven from asyncio."""

    def __init__(self, core: CoreLike, **options: Any) -> None:
        self._ready = threading.Event()
        self._hub_loop: Any = None
        self._done: gevent.event.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="gevent-driver", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.inner: GeventClientDriver = self._call_now(lambda: GeventClientDriver(core, **options))
        self.timeline = self.inner.timeline

    def _serve(self) -> None:
        hub = gevent.get_hub()
        self._hub_loop = hub.loop
        self._done = gevent.event.Event()
        keep_alive = hub.loop.async_()  # an active watcher: the hub never runs dry
        keep_alive.start(lambda: None)
        self._ready.set()
        self._done.wait()
        keep_alive.close()

    def _submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def job() -> None:
            try:
                value = fn()
            except BaseException as exc:  # handed to the test as raised
                loop.call_soon_threadsafe(settle, False, exc)
            else:
                loop.call_soon_threadsafe(settle, True, value)

        self._hub_loop.run_callback_threadsafe(lambda: gevent.spawn(job))
        return future

    def _call_now(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` in the hub and wait for it from a thread with no loop (setup)."""
        box: list[Any] = []
        done = threading.Event()

        def job() -> None:
            box.append(fn())
            done.set()

        self._hub_loop.run_callback_threadsafe(lambda: gevent.spawn(job))
        done.wait(10)
        return box[0]

    @property
    def core(self) -> CoreLike:
        return self.inner.core

    @property
    def view(self) -> ViewState:
        return self.inner.view

    def now(self) -> float:
        return self.inner.now()

    def snapshot(self) -> dict[str, Any]:
        return self.inner.snapshot()

    async def start(self) -> None:
        await self._submit(self.inner.start)

    async def stop(self) -> None:
        await self._submit(self.inner.stop)

    def close_thread(self) -> None:
        """End the hub's thread (the fixture's teardown: calls may follow stop())."""
        done = self._done
        if done is not None and self._thread.is_alive():
            self._hub_loop.run_callback_threadsafe(done.set)
            self._thread.join(10)

    async def act(self, action: Any) -> None:
        await self._submit(lambda: self.inner.act(action))

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str = "condition"
    ) -> None:
        await self._submit(lambda: self.inner.wait_for(predicate, timeout, what))

    async def wait_for_record(self, timeout: float, **filters: Any) -> Record:
        record: Record = await self._submit(lambda: self.inner.wait_for_record(timeout, **filters))
        return record

    async def __aenter__(self) -> GeventOnThread:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def leftovers(self) -> int:
        return self.inner.running()


def make_driver(kind: str, core: CoreLike, **options: Any) -> Driver:
    if kind == "asyncio":
        return AsyncClientDriver(core, **options)
    if kind == "gevent":
        return GeventOnThread(core, **options)
    raise ValueError(kind)


def leftovers(driver: Driver) -> int:
    """Work of the driver still running after stop(): its asyncio tasks, or its greenlets."""
    if isinstance(driver, GeventOnThread):
        return driver.leftovers()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return len([t for t in others if "client/driver" in repr(t.get_coro())])
