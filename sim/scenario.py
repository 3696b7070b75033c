"""Scenario files in simulation: `ScenarioRun` with every piece of I/O swapped for the
simulated world, so the steps, the timeline records and the verdict are the real
runner's own code.

What is swapped: Toxiproxy (`SimToxiproxyApi` under the real `NetworkChaos`, so the
fault records are the same), the process backend (`SimFaultBackend` under the real
`ProcessChaos`), the fake servers (`SimServer`s, their control API as
`SimControl`), the client driver (`SimClient`: the same `Recorder`, on the
virtual clock), and time (`pause` and `wait_for` jump the clock). The run keeps the
scenario's timescale and the rig's real-time floors, so it plays the very run
real mode plays, only on virtual time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from chaos import FakeServerInfo, NetworkChaos, ProcessChaos
from client.core.client import ClientCore
from client.core.timings import Timings
from client.timeline import Recorder, Timeline
from fake_server.behaviours import parse_behaviours
from fake_server.config import ServerConfig
from scenarios.fake_control import ControlError
from scenarios.loader import LoadedScenario
from scenarios.runner import (
    RunOptions,
    ScenarioResult,
    ScenarioRun,
    ServerRig,
    StepFailed,
    StepOutcome,
    _Sink,
)
from scenarios.schema import Step, step_kind
from scenarios.timescale import DEFAULT_HEARTBEAT, scaled_pause
from sim.world import WALL_ORIGIN, SimServer, SimTimeline, SimWorld

T = TypeVar("T")

# Steps the simulator cannot play, with why (none today; a new step kind that the
# simulator does not know is refused by name in `_do`, never skipped).
UNSUPPORTED_STEPS: dict[str, str] = {}
KNOWN_STEPS = frozenset(
    {
        "connect",
        "add_server",
        "connect_saved",
        "select_channel",
        "send",
        "edit",
        "delete",
        "fetch",
        "click_retry",
        "reconnect",
        "remove_server",
        "enable_bug",
        "user_post",
        "user_edit",
        "user_delete",
        "server_fault",
        "server_close",
        "invalid_session",
        "toxic",
        "proxy_down",
        "kill_server",
        "freeze_server",
        "thaw_server",
        "heal",
        "restart_server",
        "wait_for",
        "expect",
        "pause",
    }
)


class SimUnsupported(Exception):
    """A step the simulator cannot model."""


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never really waits (everything is on virtual time)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a simulated run awaited real I/O")


# ====================================================================== stand-ins


class SimToxiproxyApi:
    """The part of `chaos.ToxiproxyApi` NetworkChaos uses, on the simulated network."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    async def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> dict[str, Any]:
        proxy = self.world.net.create_proxy(name, upstream.rsplit(":", 1)[0])
        proxy.enabled = enabled
        return {"name": name, "listen": f"{proxy.host}:{proxy.port}", "upstream": upstream}

    async def delete_proxy(self, name: str) -> None:
        proxy = self.world.net.proxies.pop(name, None)
        if proxy is not None:
            for link in list(proxy.links):
                link.cut()

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        self.world.net.set_enabled(name, enabled)
        return {"name": name, "enabled": enabled}

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return [{"name": t.name, "type": t.type} for t in self.world.net.proxies[proxy].toxics]

    async def add_toxic(self, proxy: str, body: dict[str, Any]) -> dict[str, Any]:
        self.world.net.add_toxic(proxy, body)
        return body

    async def remove_toxic(self, proxy: str, toxic: str) -> None:
        self.world.net.remove_toxic(proxy, toxic)


class SimFaultBackend:
    """chaos.FaultBackend over simulated processes: kill, freeze, thaw, restart."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def _server(self, target: str) -> SimServer:
        try:
            return self.world.servers[target]
        except KeyError:
            from chaos import UnknownTarget

            raise UnknownTarget(f"no server {target!r}") from None

    async def kill(self, target: str) -> None:
        self._server(target).kill()

    async def freeze(self, target: str) -> None:
        self._server(target).freeze()

    async def thaw(self, target: str) -> None:
        self._server(target).thaw()

    async def restart(self, target: str) -> None:
        self._server(target).restart()


class SimProcessHandle:
    """What the runner reads of a fake-server process (scenarios.server_backends
    FakeServerHandle); starting and stopping are the world's."""

    host = "sim"

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.info: FakeServerInfo | None = None

    @property
    def alive(self) -> bool:
        return self.server.alive

    def start(self) -> FakeServerInfo:
        raise SimUnsupported("a simulated server is started by the world")

    def stop(self) -> None:
        self.server.kill()


class SimControl:
    """The fake server's control API, called in-process (same answers, same errors)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def _core(self, path: str) -> Any:
        server = self.server
        if not server.alive:
            raise ControlError(f"control POST {path}: ClientConnectorError: connection refused")
        if server.frozen:
            raise ControlError(f"control POST {path}: TimeoutError: no answer (frozen)")
        return server.core

    async def apply(self, spec: dict[str, Any]) -> dict[str, Any]:
        core = self._core("/faults")
        try:
            result = core.apply(self.server.world.clock.now, spec).to_json()
        except Exception as exc:
            raise ControlError(f"control POST /faults: {exc}") from None
        self.server.perform(core.take_outputs())
        return dict(result)

    async def reset(self) -> None:
        self._core("/reset").reset(self.server.world.clock.now)

    async def close(self) -> None:
        return None


class SimClient:
    """The client under test on virtual time (what `ClientHarness` is on real sockets)."""

    def __init__(
        self,
        world: SimWorld,
        timeline: Timeline,
        timings: Timings,
        *,
        seed: int,
        bugs: Any,
        instance: str = "",
    ) -> None:
        self.world = world
        self.core = ClientCore(timings=timings, seed=seed, bugs=frozenset(bugs), instance=instance)
        self.recorder = Recorder(self.core, timeline, timings)
        world.attach(self.recorder)

    def _raise(self) -> None:
        if self.world.error is not None:
            raise RuntimeError(
                f"the client core raised: {type(self.world.error).__name__}: {self.world.error}"
            ) from self.world.error

    async def start(self) -> None:
        return None  # nothing to start on virtual time

    async def act(self, action: Any) -> None:
        self._raise()
        self.world.client_input(action)
        self._raise()

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        held = self.world.run_until(self.world.clock.now + timeout, predicate)
        self._raise()
        return held

    async def close(self) -> None:
        return None


# ====================================================================== the run


def sim_server_config(rig_setup: Any, db: Path, timescale: float) -> ServerConfig:
    heartbeat = rig_setup.heartbeat.resolve(DEFAULT_HEARTBEAT) if rig_setup.heartbeat else None
    kwargs: dict[str, Any] = {"db": db, "timescale": timescale, "control_port": None}
    if heartbeat is not None:
        kwargs["heartbeat_interval_ms"] = round(heartbeat * 1000)
    if rig_setup.behaviours:
        kwargs["behaviours"] = frozenset(parse_behaviours(rig_setup.behaviours))
    return ServerConfig(**kwargs)


class SimScenarioRun(ScenarioRun):
    """One play of one scenario in simulation: `SimScenarioRun(loaded, options).play()`."""

    def __init__(
        self, loaded: LoadedScenario, options: RunOptions, *, keep_files: bool = False
    ) -> None:
        super().__init__(loaded, options)
        self.keep_files = keep_files  # databases on disk (--out), else in memory
        self.world = SimWorld(self.seed)
        self.timeline = SimTimeline(self.world.clock)
        self.result = ScenarioResult(loaded, self.timescale, self.seed, self.timeline)

    def play(self) -> ScenarioResult:
        try:
            return run_sync(self.run())
        finally:
            self.world.close()

    async def _start(self) -> None:
        work = self.options.work_dir
        work.mkdir(parents=True, exist_ok=True)
        for index, step in enumerate(self.scenario.steps):
            self._check_supported(index, step)
        self._record_run(0.0, WALL_ORIGIN, mode="sim")
        self.network = NetworkChaos(
            SimToxiproxyApi(self.world),  # type: ignore[arg-type]
            timescale=self.timescale,
            sink=_Sink(self.timeline),
            run_id=f"sim{self.seed}",
        )
        self.processes = ProcessChaos(
            SimFaultBackend(self.world),
            faults=self.network.faults,
        )
        for name, server_setup in self.scenario.setup.servers.items():
            db = work / f"{name}.db" if self.keep_files else Path(":memory:")
            config = sim_server_config(server_setup, db, self.timescale)
            server = self.world.add_server(name, config, trusted=server_setup.trusted)
            rig = ServerRig(name, server_setup, SimProcessHandle(server), db)
            rig.control = SimControl(server)  # type: ignore[assignment]
            self.servers[name] = rig
            rig.proxies = await self.network.add_server(name, 443, name)
        self.client = SimClient(  # type: ignore[assignment]
            self.world,
            self.timeline,
            self.timings,
            seed=self.seed,
            bugs=sorted({*self.scenario.setup.bugs, *self.options.bugs}),
            instance=self.network.run_id,
        )

    def _check_supported(self, index: int, step: Step) -> None:
        kind = step_kind(step)
        why = UNSUPPORTED_STEPS.get(kind) or (
            None if kind in KNOWN_STEPS else "the simulator does not know this step"
        )
        if why is not None:
            line = self.loaded.step_line(index)
            raise SimUnsupported(f"step {index + 1} (line {line}) {kind}: cannot simulate: {why}")

    async def _stop(self) -> None:
        if self.client is not None:
            self._final_lists = self._client_lists()
        for rig in self.servers.values():
            self._end_server_faults(rig, "cleanup")
        if self.network is not None:
            await self.network.close()
            self.network = None
        if self.processes is not None:
            self.processes.close()
        self.client = None  # the world closes after the verdict (it reads the stores)

    async def _do(self, step: Step, kind: str, value: Any, outcome: StepOutcome) -> None:
        if kind == "pause":
            seconds = scaled_pause(value, self.timescale, self._heartbeat())
            assert self.client is not None
            await self.client.wait(lambda: False, seconds)
        elif kind == "restart_server":
            assert self.processes is not None
            await self.processes.restart(value)
            self._end_server_faults(self.servers[value], "restarted")
        elif kind not in KNOWN_STEPS:
            raise StepFailed(f"step {kind!r}: cannot simulate")
        else:
            await super()._do(step, kind, value, outcome)

    def _stored(self, rig: ServerRig) -> list[dict[str, Any]]:
        store = self.world.servers[rig.name].store
        names: dict[str, str | None] = {}
        for m in store.all_messages():
            if m["channel_id"] not in names:
                channel = store.channel(m["channel_id"])
                names[m["channel_id"]] = channel["name"] if channel else None
        return [
            {
                "id": m["id"],
                "channel_id": m["channel_id"],
                "author_id": m["author_id"],
                "content": m["content"],
                "nonce": m.get("nonce"),
                "channel": names.get(m["channel_id"]),
            }
            for m in store.all_messages()
        ]

    def _user_id(self, rig: ServerRig) -> str | None:
        user = self.world.servers[rig.name].store.user_by_name(rig.setup.user)
        return str(user["id"]) if user else None

    def _merge_server_history(self) -> None:
        for name, rig in self.servers.items():
            server = self.world.servers[name]
            for h in server.history.read():
                self.timeline.add(
                    float(h.get("t", WALL_ORIGIN)) - WALL_ORIGIN,
                    f"server:{rig.name}",
                    str(h.get("kind", "")),
                    str(h.get("name", "")),
                    dict(h.get("data") or {}),
                )


def sim_options(work_dir: Path, base: RunOptions | None = None, **changes: Any) -> RunOptions:
    options = base or RunOptions(toxiproxy=None, work_dir=work_dir)  # type: ignore[arg-type]
    return replace(options, work_dir=work_dir, **changes)


def play(
    loaded: LoadedScenario, work_dir: Path, *, keep_files: bool = False, **changes: Any
) -> ScenarioResult:
    """Play one scenario in simulation and judge it."""
    started = time.perf_counter()
    run = SimScenarioRun(loaded, sim_options(work_dir, **changes), keep_files=keep_files)
    result = run.play()
    result.timeline.add(
        result.timeline.now(), "rig", "log", "sim", {"cpu_s": time.perf_counter() - started}
    )
    return result
