"""Process faults behind one small interface, recorded in the timeline.

A `FaultBackend` knows how to hurt a named target (kill -9, freeze, thaw,
restart). `LocalProcessBackend` does it to processes the rig started,
`chaos.containers.DockerBackend` to containers (both on `NamedTargets`).
`ProcessChaos` is what scenarios call: it applies a fault through the backend and
records its window: `kill` from the kill to the restart, `freeze` from the
freeze to the thaw, `restart` around the restart itself.
"""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar

from chaos.processes import FakeServerProcess, ManagedProcess
from chaos.recording import ClockedTimeline, FaultLog, RecordSink


class FaultBackend(Protocol):
    async def kill(self, target: str) -> None: ...
    async def freeze(self, target: str) -> None: ...
    async def thaw(self, target: str) -> None: ...
    async def restart(self, target: str) -> None: ...


class UnknownTarget(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class Hurtable(Protocol):
    def kill(self) -> None: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...


T = TypeVar("T", bound=Hurtable)


class NamedTargets(Generic[T]):
    """Targets by name; kill/freeze/thaw call theirs off the event loop."""

    what = "target"  # in the unknown-name error

    def __init__(self) -> None:
        self._targets: dict[str, T] = {}

    def register(self, name: str, target: T) -> T:
        self._targets[name] = target
        return target

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def target(self, name: str) -> T:
        try:
            return self._targets[name]
        except KeyError:
            known = ", ".join(sorted(self._targets)) or "none"
            raise UnknownTarget(f"unknown {self.what} {name!r} (known: {known})") from None

    async def kill(self, target: str) -> None:
        await asyncio.to_thread(self.target(target).kill)

    async def freeze(self, target: str) -> None:
        await asyncio.to_thread(self.target(target).freeze)

    async def thaw(self, target: str) -> None:
        await asyncio.to_thread(self.target(target).thaw)


class LocalProcessBackend(NamedTargets[FakeServerProcess | ManagedProcess]):
    """Faults on local processes by name (e.g. the fake server "alpha")."""

    what = "process"

    async def restart(self, target: str) -> None:
        process = self.target(target)
        if isinstance(process, FakeServerProcess):
            await asyncio.to_thread(process.restart)
            return
        await asyncio.to_thread(process.stop)
        await asyncio.to_thread(process.start)


class ProcessChaos:
    """Process faults with their timeline windows."""

    def __init__(
        self,
        backend: FaultBackend,
        sink: RecordSink | ClockedTimeline | None = None,
        faults: FaultLog | None = None,
    ) -> None:
        self.backend = backend
        # Sharing NetworkChaos's FaultLog keeps fault ids unique across both.
        self.faults = faults if faults is not None else FaultLog(sink)
        self._open: dict[tuple[str, str], str] = {}  # (fault, target) -> id

    async def kill(self, target: str) -> str:
        await self.backend.kill(target)
        return self._start("kill", target)

    async def freeze(self, target: str) -> str:
        await self.backend.freeze(target)
        return self._start("freeze", target)

    async def thaw(self, target: str) -> None:
        await self.backend.thaw(target)
        self._end("freeze", target)

    async def restart(self, target: str) -> str:
        """Restart (after a kill, or a running process); ends an open kill window."""
        killed = ("kill", target) in self._open
        fault_id = self.faults.new_id("restart")
        if not killed:
            self.faults.record("start", "restart", fault_id, target)
        if ("freeze", target) in self._open:
            self._end("freeze", target)  # a restart replaces the frozen process
        await self.backend.restart(target)
        if killed:
            self._end("kill", target)
        else:
            self.faults.record("end", "restart", fault_id, target)
        return fault_id

    def open_faults(self) -> list[tuple[str, str, str]]:
        """(fault, target, id) of every window still open."""
        return [(name, target, fid) for (name, target), fid in self._open.items()]

    def close(self) -> None:
        """End the open windows in the timeline (the processes are stopped elsewhere)."""
        for (name, target), fault_id in list(self._open.items()):
            self.faults.record("end", name, fault_id, target, reason="cleanup")
        self._open.clear()

    def _start(self, name: str, target: str) -> str:
        key = (name, target)
        if key in self._open:
            return self._open[key]  # already in this fault: one window
        fault_id = self.faults.new_id(name)
        self._open[key] = fault_id
        self.faults.record("start", name, fault_id, target)
        return fault_id

    def _end(self, name: str, target: str) -> None:
        fault_id = self._open.pop((name, target), None)
        if fault_id is not None:
            self.faults.record("end", name, fault_id, target)
