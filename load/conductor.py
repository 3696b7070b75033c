"""Plays one load file: fake servers behind real Toxiproxy, a Locust crowd of real
clients (one process, or a master with one worker per core), the fault schedule
played once, here (the master side), then figures and thresholds.

Everything it starts it also stops, in `finally`, whatever happened (a failed
fault, an exception, Ctrl-C): Locust and its workers, the run's proxies (deleted
from Toxiproxy), the fake-server processes, a Toxiproxy it started itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import (
    FakeServerProcess,
    LocalProcessBackend,
    ManagedProcess,
    NetworkChaos,
    ProcessChaos,
    ServerProxies,
    ToxiproxyServer,
    free_port,
)
from fake_server.tls import DEFAULT_NAMES
from load.loader import LoadedLoad
from load.schema import LoadFile, LoadServer, RateLimit, ScheduledFault
from load.session import PASSWORD, space_slug, user_name
from scenarios.durations import Duration
from scenarios.fake_control import FakeServerControl, stored_messages
from scenarios.runner import CHAOS_STEPS, chaos_step, fault_spec, heal_network
from scenarios.schema import step_kind, step_value

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
HEARTBEAT = 45.0
STATE_POLL = 0.25  # seconds between looks at the crowd's state (anchored faults)
START_TIMEOUT = 60.0  # Locust (and its workers) up and spawning
OP_TIMEOUT = 30.0  # per client operation (connect, send), real seconds


class LoadError(RuntimeError):
    """The rig could not carry out the load run (not a threshold failure)."""


@dataclass
class LoadOptions:
    work_dir: Path
    toxiproxy: ToxiproxyServer | None = None  # None: $TOXIPROXY_URL or a private one
    workers: int = 0  # 0: one Locust process; N: master + N local workers (--processes N)
    remote_workers: int = 0  # more workers the master waits for (other machines)
    master_bind: str = "127.0.0.1"  # where the master listens for workers
    proxy_host: str = "127.0.0.1"  # where the run's proxies listen (workers elsewhere: reachable)
    tls_name: str | None = None  # the host clients dial; the servers' certificates carry it
    rate_limit: RateLimit | None = None  # overrides every server's limiter
    clients: int | None = None  # overrides crowd.clients (benchmarks)
    spawn_rate: float | None = None
    driver: str = "asyncio"  # each client's driver: asyncio (the faster, bench_drivers) or gevent
    bridge: str = "notify"  # asyncio driver only: how greenlets wait for its loop (load/bridge.py)
    op_timeout: float = OP_TIMEOUT  # per client operation; longer for a crowd at capacity
    on_progress: Callable[[str], None] = lambda line: None


@dataclass
class FiredFault:
    index: int
    kind: str
    line: int
    text: str
    wall: float  # when it was applied
    detail: str = ""


@dataclass
class LoadRun:
    """Everything measured; `load.figures` turns it into numbers and verdicts."""

    loaded: LoadedLoad
    clients: int
    timescale: float
    started: float = 0.0  # wall time the crowd started spawning
    ended: float = 0.0  # wall time wind-down began
    summaries: list[dict[str, Any]] = field(default_factory=list)
    fired: list[FiredFault] = field(default_factory=list)
    fault_records: list[dict[str, Any]] = field(default_factory=list)  # windows, wall time
    stored: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # server -> rows
    rate_limits: dict[str, str] = field(default_factory=dict)  # server -> what ran
    locust_exit: int | None = None
    locust_stats: Path | None = None
    crowd_rss_peak: int = 0  # bytes: Locust master + workers, sampled with the progress
    crowd_rss_at_storm: int = 0  # bytes, sampled when the first fault fired
    error: str = ""  # a failure of the rig itself
    problems: list[str] = field(default_factory=list)  # schedule items that did not fire
    work_dir: Path = Path()


class _WallSink:
    """Fault windows stamped with wall time (client summaries use wall time too)."""

    def __init__(self, out: list[dict[str, Any]]) -> None:
        self.out = out

    def add(self, src: str, kind: str, name: str, data: Mapping[str, Any]) -> object:
        record = {"wall": time.time(), "src": src, "kind": kind, "name": name, "data": dict(data)}
        self.out.append(record)
        return record


def rate_limit_args(limit: RateLimit) -> tuple[list[str], str]:
    """The fake server's arguments for a limiter setting, and what really runs."""
    if limit == "faithful":
        return [], "faithful (70 requests / 60 s per token, shared unauthenticated bucket)"
    if limit == "off":
        return ["--rate-limit", "off"], "off (capacity run)"
    return ["--rate-limit", str(limit)], f"raised to {limit} requests / 60 s (capacity run)"


@dataclass
class _Server:
    name: str
    setup: LoadServer
    process: FakeServerProcess
    db: Path
    control: FakeServerControl | None = None
    proxies: ServerProxies | None = None
    ca: str = ""


class LoadConductor:
    def __init__(self, loaded: LoadedLoad, options: LoadOptions) -> None:
        self.loaded = loaded
        self.load: LoadFile = loaded.load
        self.options = options
        self.timescale = self.load.timescale
        self.clients = options.clients or self.load.crowd.clients
        self.run = LoadRun(loaded, self.clients, self.timescale, work_dir=options.work_dir)
        self.servers: dict[str, _Server] = {}
        self.network: NetworkChaos | None = None
        self.processes: ProcessChaos | None = None
        self.toxiproxy: ToxiproxyServer | None = None
        self.rest_toxiproxy: ToxiproxyServer | None = None  # ours, for the REST proxies
        self.locust: ManagedProcess | None = None
        self.control_dir = options.work_dir / "control"
        self.report_path = options.work_dir / "clients.jsonl"

    @property
    def dial_host(self) -> str:
        """The host in the clients' URLs (through the proxies): `tls_name`, else the
        proxies' address; the fake servers' test certificates are made for it."""
        return self.options.tls_name or self.options.proxy_host

    def seconds(self, duration: Duration) -> float:
        """Real seconds for a duration written in real-client time."""
        return duration.resolve(HEARTBEAT) * self.timescale

    # ------------------------------------------------------------------ run

    async def play(self) -> LoadRun:
        try:
            await self._start()
            await self._run_crowd()
        except asyncio.CancelledError:
            self.run.error = "interrupted"
            raise
        except Exception as exc:
            self.run.error = f"{type(exc).__name__}: {exc}"
        finally:
            await self._stop()
        self._read_results()
        return self.run

    async def _start(self) -> None:
        work = self.options.work_dir
        work.mkdir(parents=True, exist_ok=True)
        # A folder reused from an earlier run must not hand us its start or its reports.
        shutil.rmtree(self.control_dir, ignore_errors=True)
        self.report_path.unlink(missing_ok=True)
        self.control_dir.mkdir()
        toxiproxy = self.options.toxiproxy or await asyncio.to_thread(
            ToxiproxyServer.from_env_or_start, log_path=work / "toxiproxy.log"
        )
        assert toxiproxy is not None
        self.toxiproxy = toxiproxy
        if toxiproxy.owned:
            # Our own Toxiproxy: the REST proxies get a second one, so a crowd's four
            # descriptors per client spread over two processes (chaos.NetworkChaos).
            self.rest_toxiproxy = await asyncio.to_thread(
                ToxiproxyServer.start, log_path=work / "toxiproxy-rest.log"
            )
        sink = _WallSink(self.run.fault_records)
        self.network = NetworkChaos(
            toxiproxy.api(timeout=10.0, retries=5),
            rest_api=self.rest_toxiproxy.api(timeout=10.0, retries=5)
            if self.rest_toxiproxy
            else None,
            host=self.dial_host,
            listen_host=self.options.proxy_host,
            timescale=self.timescale,
            sink=sink,
            run_id=f"load{secrets.token_hex(4)}",
        )
        backend = LocalProcessBackend()
        self.processes = ProcessChaos(backend, faults=self.network.faults)
        run_id = self.network.run_id
        for index, (name, setup) in enumerate(self.load.crowd.servers.items()):
            db = work / f"{name}.db"
            await asyncio.to_thread(self._preregister, db, run_id, index)
            limit = self.options.rate_limit or setup.rate_limit
            extra, running = rate_limit_args(limit)
            self.run.rate_limits[name] = running
            if self.dial_host not in DEFAULT_NAMES:
                extra += ["--tls-name", self.dial_host]
            if setup.history != "full":
                extra += ["--history", setup.history]
            if setup.heartbeat is not None:
                extra += [
                    "--heartbeat-interval",
                    str(round(setup.heartbeat.resolve(HEARTBEAT) * 1000)),
                ]
            process = FakeServerProcess(
                db, timescale=self.timescale, extra_args=extra, log_path=work / f"{name}.log"
            )
            server = _Server(name, setup, process, db)
            self.servers[name] = server
            info = await asyncio.to_thread(process.start)
            server.control = FakeServerControl(info.control, info.control_token)
            server.ca = info.ca
            server.proxies = await self.network.add_server(name, info.port)
            backend.register(name, process)
            self.options.on_progress(f"server {name}: rate limit {running}")

    def _preregister(self, db: Path, run_id: str, server_index: int) -> None:
        """Create this server's share of the crowd's accounts before it starts, with
        the fake server's own store code. Registering through REST while the crowd
        connects makes every registration a `member.join` to every open session: a
        fan-out that grows with the square of the crowd and was the spawn's wall."""
        from fake_server.store import Store

        store = Store(db)
        try:
            servers = len(self.load.crowd.servers)
            users = {
                i: store.register(user_name(run_id, i), PASSWORD, None)["id"]
                for i in range(server_index, self.clients, servers)
            }
        finally:
            store.close()
        size = self.load.crowd.space_size
        if size is not None:
            _make_spaces(db, users, size)

    def _config(self) -> dict[str, Any]:
        crowd = self.load.crowd
        return {
            "run": self.network.run_id if self.network else "load",
            "servers": [
                {
                    "name": s.name,
                    "base_url": s.proxies.base_url,
                    "gateway_url": s.proxies.gateway_url,
                    "ca": s.ca,
                    # The CA itself too: a worker on another machine has no such path.
                    "ca_pem": Path(s.ca).read_text(encoding="ascii") if s.ca else None,
                }
                for s in self.servers.values()
                if s.proxies is not None
            ],
            "clients": self.clients,
            "preregistered": True,  # accounts run-<i> for i < clients exist already
            "workers": max(1, self.options.workers + self.options.remote_workers),
            "send_every": self.seconds(crowd.send_every) if crowd.send_every else None,
            "senders": crowd.senders,
            "channels": crowd.channels,
            "keepalive": crowd.rest_keepalive,
            "connect_tries": crowd.connect_tries,
            "space_size": crowd.space_size,
            "timescale": self.timescale,
            "seed": self.load.seed,
            "same_seed": self.load.regression.same_seed,
            "bugs": self.load.regression.bugs,
            "driver": self.options.driver,
            "timeout": self.options.op_timeout,
            "settle": self.options.op_timeout * 0.8,
            "report": str(self.report_path),
            "control": str(self.control_dir),
        }

    def locust_argv(self) -> list[str]:
        rate = self.options.spawn_rate or self.load.crowd.spawn_rate
        run_for = self.seconds(self.load.run_for)
        spawn = self.clients / rate
        cap = run_for + spawn + START_TIMEOUT + 2 * self.options.op_timeout
        prefix = self.options.work_dir / "locust"
        argv = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(self.clients), "-r", f"{rate:g}", "-t", f"{int(cap)}s",
            "--csv", str(prefix), "--html", str(prefix) + ".html", "--only-summary",
            "--stop-timeout", str(int(self.options.op_timeout + 10)), "--loglevel", "WARNING",
        ]  # fmt: skip
        if self.options.workers or self.options.remote_workers:
            port = free_port(self.options.master_bind)
            argv += [
                "--master-bind-host",
                self.options.master_bind,
                "--master-bind-port",
                str(port),
                "--master-port",  # where the --processes workers look for it
                str(port),
            ]
            if self.options.remote_workers:
                expected = self.options.workers + self.options.remote_workers
                argv += ["--expect-workers", str(expected)]
                self.options.on_progress(
                    f"master waits for {expected} workers; start each remote one with: "
                    f"ACCORD_LOAD_CONFIG=<copy of {self.options.work_dir / 'config.json'}> "
                    f"locust -f load/locustfile.py --worker --master-host <this host> "
                    f"--master-port {port}"
                )
            argv += (
                ["--processes", str(self.options.workers)] if self.options.workers else ["--master"]
            )
        return argv

    async def _run_crowd(self) -> None:
        config_path = self.options.work_dir / "config.json"
        config_path.write_text(json.dumps(self._config(), indent=2), encoding="utf-8")
        env = {
            **os.environ,
            "ACCORD_LOAD_CONFIG": str(config_path),
            "ACCORD_LOAD_BRIDGE": self.options.bridge,
            "PYTHONUNBUFFERED": "1",  # locust.log keeps what a stopped Locust said last
        }
        self.locust = ManagedProcess(
            self.locust_argv(), log_path=self.options.work_dir / "locust.log", env=env
        )
        self.locust.start()
        started = self.control_dir / "started"
        deadline = time.monotonic() + START_TIMEOUT
        while not started.exists():
            if not self.locust.alive:
                raise LoadError(f"locust exited ({self.locust.returncode}): {self._locust_tail()}")
            if time.monotonic() > deadline:
                raise LoadError(f"locust did not start within {START_TIMEOUT:.0f} s")
            await asyncio.sleep(0.1)
        self.run.started = float(started.read_text())
        rate = self.options.spawn_rate or self.load.crowd.spawn_rate
        self.options.on_progress(f"crowd of {self.clients} spawning at {rate:g}/s")
        end = self.run.started + self.seconds(self.load.run_for)
        schedule = asyncio.create_task(self._play_schedule(end))
        progress = asyncio.create_task(self._report_progress(end))
        try:
            await asyncio.sleep(max(0.0, end - time.time()))
        finally:
            for task in (schedule, progress):
                task.cancel()
            await asyncio.gather(schedule, progress, return_exceptions=True)
        if schedule.done() and not schedule.cancelled() and schedule.exception():
            raise schedule.exception()  # type: ignore[misc]
        self.run.ended = time.time()
        self.options.on_progress("wind down: clients settle their sends and report")
        (self.control_dir / "wind_down").write_text(repr(self.run.ended))
        budget = self.options.op_timeout * 2 + 30
        deadline = time.monotonic() + budget
        while self.locust.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        self.run.locust_exit = self.locust.returncode

    def _locust_tail(self) -> str:
        return self.locust.stderr_tail()[-1500:] if self.locust else ""

    def crowd_rss(self) -> int:
        """Resident memory of the Locust processes (master and local workers)."""
        import psutil

        if self.locust is None or self.locust.pid is None:
            return 0
        try:
            root = psutil.Process(self.locust.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    async def _report_progress(self, end: float) -> None:
        while True:
            await asyncio.sleep(5.0)
            self.run.crowd_rss_peak = max(self.run.crowd_rss_peak, self.crowd_rss())
            share = await self.connected_share()
            left = max(0.0, end - time.time())
            self.options.on_progress(f"connected {share:5.1f}%  ({left:.0f} s left)")

    async def connected_share(self) -> float:
        """Percent of the crowd with an open gateway session on its fake server."""
        total = 0
        for server in self.servers.values():
            if server.control is None or not server.process.alive:
                continue
            with contextlib.suppress(Exception):
                total += int((await server.control.session_counts()).get("open", 0))
        return 100.0 * total / self.clients

    # ------------------------------------------------------------------ schedule

    async def _play_schedule(self, end: float) -> None:
        previous = self.run.started
        for index, item in enumerate(self.load.schedule):
            line = self.loaded.item_line(index)
            kind = step_kind(item.fault)
            if not await self._wait_trigger(item, previous, end):
                self.run.problems.append(
                    f"schedule[{index}] (line {line}) {kind}: its trigger was not reached "
                    "before the run ended"
                )
                return
            if not self.run.fired:
                self.run.crowd_rss_at_storm = self.crowd_rss()
            fired = FiredFault(index, kind, line, _item_text(item), time.time())
            try:
                await self._apply(kind, step_value(item.fault))
            except Exception as exc:
                fired.detail = f"{type(exc).__name__}: {exc}"
                self.run.fired.append(fired)
                raise LoadError(f"schedule[{index}] (line {line}) {kind}: {fired.detail}") from exc
            self.run.fired.append(fired)
            previous = fired.wall
            at = fired.wall - self.run.started
            self.options.on_progress(f"t={at:6.1f}s fault {fired.text}")

    async def _wait_trigger(self, item: ScheduledFault, previous: float, end: float) -> bool:
        if item.at is not None:
            target = self.run.started + self.seconds(item.at)
        elif item.after is not None:
            target = previous + self.seconds(item.after)
        elif item.when is not None:
            limit = end
            if item.when.within is not None:
                limit = min(end, time.time() + self.seconds(item.when.within))
            while await self.connected_share() < item.when.connected:
                if time.time() >= limit:
                    return False
                await asyncio.sleep(STATE_POLL)
            return True
        else:
            target = previous
        if target >= end:
            return False
        await asyncio.sleep(max(0.0, target - time.time()))
        return True

    async def _apply(self, kind: str, value: Any) -> None:
        """One fault step of the scenario vocabulary, on the shared proxies/servers."""
        assert self.network is not None and self.processes is not None
        if kind in ("server_fault", "server_close", "invalid_session"):
            server = self.servers[value.server]
            assert server.control is not None
            spec = fault_spec(kind, value)
            answer = await server.control.apply(spec)
            fault_id = self.network.faults.new_id(str(spec["kind"]))
            self.network.faults.record("start", str(spec["kind"]), fault_id, server.name, spec=spec)
            if answer.get("id") is None:
                self.network.faults.record("end", str(spec["kind"]), fault_id, server.name)
        elif kind in CHAOS_STEPS:
            await chaos_step(self.network, self.processes, kind, value)
        elif kind == "heal":
            await self._heal(value)
        elif kind == "restart_server":
            await self.processes.restart(value)
            server = self.servers[value]
            info = server.process.info
            assert info is not None
            if server.control is not None:
                await server.control.close()
            server.control = FakeServerControl(info.control, info.control_token)
        else:  # pragma: no cover - the schema admits no other kind
            raise LoadError(f"fault {kind!r} is not implemented")

    async def _heal(self, target: str) -> None:
        assert self.network is not None
        for name in await heal_network(self.network, target, list(self.servers)):
            server = self.servers[name]
            if server.control is not None and server.process.alive:
                with contextlib.suppress(Exception):
                    await server.control.reset()

    # ------------------------------------------------------------------ end

    async def _stop(self) -> None:
        problems: list[str] = []
        if self.locust is not None:
            # SIGTERM first: Locust writes its CSV and HTML on the way out.
            await asyncio.to_thread(self.locust.stop, 15.0)
            if self.run.locust_exit is None:
                self.run.locust_exit = self.locust.returncode
        for server in self.servers.values():
            if server.control is not None:
                with contextlib.suppress(Exception):
                    await server.control.close()
        if self.processes is not None:
            self.processes.close()
        if self.network is not None:
            try:
                await self.network.close()
            except Exception as exc:
                problems.append(f"proxies: {exc}")
        for server in self.servers.values():
            try:
                if server.process.alive and server.process.process.frozen:
                    await asyncio.to_thread(server.process.thaw)
                await asyncio.to_thread(server.process.stop)
            except Exception as exc:
                problems.append(f"fake server {server.name}: {exc}")
        if self.toxiproxy is not None and self.options.toxiproxy is None:
            await asyncio.to_thread(self.toxiproxy.stop)
        if self.rest_toxiproxy is not None:
            await asyncio.to_thread(self.rest_toxiproxy.stop)
        if problems and not self.run.error:
            self.run.error = "cleanup: " + "; ".join(problems)

    def _read_results(self) -> None:
        if self.report_path.exists():
            for line in self.report_path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    self.run.summaries.append(json.loads(line))
        for name, server in self.servers.items():
            self.run.stored[name] = stored_messages(server.db)
        stats = self.options.work_dir / "locust_stats.csv"
        self.run.locust_stats = stats if stats.exists() else None
        if not self.run.error and len(self.run.summaries) < self.clients:
            tail = self._locust_tail()
            run_id = self.network.run_id if self.network else ""
            seen = {str(s.get("user")) for s in self.run.summaries}
            missing = [
                name for i in range(self.clients) if (name := user_name(run_id, i)) not in seen
            ]
            self.run.problems.append(
                f"only {len(self.run.summaries)} of {self.clients} clients reported"
                + (f" (missing: {', '.join(missing[:10])})" if missing else "")
                + (f" (locust: {tail[-600:]})" if tail else "")
            )


def _make_spaces(db: Path, users: dict[int, str], size: int) -> None:
    """Move each account from the seed space to its own space of `size` members
    (spaces and channels written straight into the fake server's schema)."""
    import sqlite3

    from fake_server.store import SEED_CHANNELS

    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    with sqlite3.connect(db) as conn:
        owner = conn.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
        seed_space = conn.execute("SELECT id FROM spaces WHERE slug='accord'").fetchone()[0]
        made: dict[str, str] = {}
        for index, user_id in users.items():
            slug = space_slug(index, size)
            if slug not in made:
                space_id = f"9{len(made) + 1:017d}"  # ids far above the store's snowflakes
                conn.execute(
                    "INSERT INTO spaces VALUES (?,?,?,?,?)", (space_id, slug, slug, owner, now)
                )
                for pos, channel in enumerate(SEED_CHANNELS):
                    conn.execute(
                        "INSERT INTO channels VALUES (?,?,?,?,?)",
                        (f"{space_id}{pos}", space_id, channel, pos, now),
                    )
                made[slug] = space_id
            conn.execute(
                "DELETE FROM members WHERE space_id=? AND user_id=?", (seed_space, user_id)
            )
            conn.execute("INSERT INTO members VALUES (?,?,?)", (made[slug], user_id, now))


def _item_text(item: ScheduledFault) -> str:
    from scenarios.runner import step_text

    trigger = ""
    if item.at is not None:
        trigger = f"at {item.at}: "
    elif item.after is not None:
        trigger = f"after {item.after}: "
    elif item.when is not None:
        trigger = f"when connected {item.when.connected:g}%: "
    return trigger + step_text(item.fault)


async def play_load(loaded: LoadedLoad, options: LoadOptions) -> LoadRun:
    return await LoadConductor(loaded, options).play()
