"""Locust load test: every simulated user is a real accord-rig client.

The conductor (`load/conductor.py`, behind `accord-rig load`) writes a JSON config
and starts this file; by hand:

    ACCORD_LOAD_CONFIG=run/config.json locust -f load/locustfile.py --headless \
        -u 50 -r 10 -t 120s                       # one process
    ... --processes 2                             # master + one worker per core
    locust -f load/locustfile.py --worker --master-host HOST   # a worker elsewhere

Config (JSON): `servers` [{name, base_url, gateway_url, ca}] (client i uses server
i mod n, through its Toxiproxy proxies), `clients`, `workers`, `send_every` (real
seconds or null), `senders`, `channels`, `timescale`, `seed`, `same_seed`, `bugs`,
`timeout` (seconds per operation), `settle`, `report` (master: JSON lines, one
summary per client), `control` (master: folder with `started` and `wind_down`).

The run ends on the conductor's word, not on Locust's timer: it creates
`control/wind_down`; the master tells every worker; each user stops sending,
settles its sends, and sends its summary (recovery episodes, nonces...) to the
master, which writes it to `report` and quits once every client has reported.
Locust's `-t` is only the safety cap. Reported requests (type "client"):
`connect`, `send_message`, and one `recovery` per reconnection (its time).
"""

from __future__ import annotations

# locust first: it monkey-patches the process with gevent, and ssl (imported by
# aiohttp and the client below) must come after that patching.
from locust import User, constant, events, task  # isort: skip
from locust.exception import StopUser  # isort: skip
import locust.runners  # isort: skip
from locust.runners import MasterRunner, WorkerRunner  # isort: skip

import gc
import itertools
import json
import os
import random
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import gevent
import gevent.event

from load.bridge import _LoopThread, make_bridge
from load.session import ChatSession, GreenChatSession, SessionSpec, Timed, space_slug, user_name

CONFIG_ENV = "ACCORD_LOAD_CONFIG"
DRIVER_ENV = "ACCORD_LOAD_DRIVER"  # asyncio (default) or gevent, when the config says nothing
DRIVERS = ("asyncio", "gevent")
CLIENT_MESSAGE = "accord_client"
WIND_DOWN_MESSAGE = "accord_wind_down"
WIND_DOWN = gevent.event.Event()
_bridge: _LoopThread | None = None
_ids = itertools.count()
_config: dict[str, Any] | None = None
# A crowd that saturates the CPU (the point of a capacity run) starves Locust's own
# 1 s heartbeats; seen: both workers gave up on the master after 60 s mid-spawn and
# dropped every user. The conductor has its own deadlines, so be patient here.
locust.runners.MASTER_HEARTBEAT_TIMEOUT = 600
locust.runners.HEARTBEAT_LIVENESS = 120


def config(host: str | None = None) -> dict[str, Any]:
    global _config
    if _config is None:
        path = os.environ.get(CONFIG_ENV)
        if path:
            _config = json.loads(Path(path).read_text(encoding="utf-8"))
        elif host:
            _config = standalone_config(host)
        else:
            raise RuntimeError(f"set {CONFIG_ENV} to the load run's config.json, or give --host")
    return _config


def standalone_config(host: str) -> dict[str, Any]:
    """Without the conductor (the compose stack's load profile, or plain `locust
    --host URL`): one server at `host`, its CA in ACCORD_RIG_CA, each user registers
    its own account and sends every second until Locust's run time ends. No fault
    schedule, no figures: those need `accord-rig load`."""
    return {
        "servers": [
            {
                "name": "target",
                "base_url": host,
                "gateway_url": None,
                "ca": os.environ.get("ACCORD_RIG_CA"),
            }
        ],
        # One process's users are numbered 0, 1, ...: the run name keeps the
        # accounts of several workers (and of earlier runs) apart.
        "run": f"crowd{os.getpid()}x{random.SystemRandom().getrandbits(32):08x}",
        "clients": 0,
        "send_every": float(os.environ.get("ACCORD_LOAD_SEND_EVERY", "1.0")),
        "settle": 5.0,
    }


def ca_file(server: dict[str, Any]) -> str | None:
    """The server's CA file: the conductor's path, or (a worker on another machine,
    where that path does not exist) the config's copy of it written here once."""
    path = server.get("ca")
    pem = server.get("ca_pem")
    if path is None or Path(path).exists() or not pem:
        return path
    local = (
        Path(tempfile.gettempdir())
        / f"accord-load-{server['name']}-{zlib.crc32(pem.encode()):08x}.pem"
    )
    if not local.exists():
        local.write_text(pem, encoding="ascii")
    return str(local)


def bridge() -> _LoopThread:
    global _bridge
    if _bridge is None:  # lazily: after Locust's --processes fork, one per process
        _bridge = make_bridge()
    return _bridge


def report(name: str, timed: Timed) -> None:
    events.request.fire(  # type: ignore[no-untyped-call]
        request_type="client",
        name=name,
        response_time=timed.seconds * 1000.0,
        response_length=0,
        exception=RuntimeError(timed.error) if timed.error else None,
        context={},
    )


# --------------------------------------------------------------------------- master side


class _Collector:
    """On the master (or a lone local runner): the summaries, the start and end."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.users: set[str] = set()
        cfg = config()
        self.expected = int(cfg["clients"])
        self.report = Path(cfg["report"])
        self.control = Path(cfg["control"])

    def on_client(self, environment: Any, msg: Any, **_: Any) -> None:
        """One client's summary. Written whatever it holds (`default=str`: a value JSON
        cannot carry must not drop the report, as a handler's exception would on the
        master); counted once per user, so a repeated report cannot end the run
        before every client is in."""
        user = str(msg.data.get("user", ""))
        if user in self.users:
            return
        self.users.add(user)
        with self.report.open("a", encoding="utf-8") as f:
            f.write(json.dumps(msg.data, default=str) + "\n")
        if len(self.users) >= self.expected:
            gevent.spawn_later(0.5, self.environment.runner.quit)

    def watch_wind_down(self) -> None:
        flag = self.control / "wind_down"
        while not flag.exists():
            gevent.sleep(0.2)
        self.environment.runner.send_message(WIND_DOWN_MESSAGE, None)


def _on_wind_down(environment: Any, msg: Any, **_: Any) -> None:
    WIND_DOWN.set()


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if os.environ.get(CONFIG_ENV) is None or runner is None:
        return
    if not isinstance(runner, WorkerRunner):
        collector = _Collector(environment)
        runner.register_message(CLIENT_MESSAGE, collector.on_client)
        gevent.spawn(collector.watch_wind_down)

        @events.test_start.add_listener  # type: ignore[untyped-decorator]
        def _started(environment: Any, **_: Any) -> None:
            (collector.control / "started").write_text(repr(time.time()))

    if not isinstance(runner, MasterRunner):
        runner.register_message(WIND_DOWN_MESSAGE, _on_wind_down)


# --------------------------------------------------------------------------- users


class ChatUser(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        cfg = config(self.host)
        runner = self.environment.runner
        workers = max(1, int(cfg.get("workers", 1)))
        worker = int(getattr(runner, "worker_index", 0) or 0)
        self.index = next(_ids) * workers + worker
        servers = cfg["servers"]
        server = servers[self.index % len(servers)]
        username = user_name(cfg["run"], self.index)
        seed = int(cfg["seed"]) if cfg.get("same_seed") else zlib.crc32(username.encode())
        self.timeout = float(cfg.get("timeout", 30))
        self.driver = str(cfg.get("driver") or os.environ.get(DRIVER_ENV, DRIVERS[0]))
        if self.driver not in DRIVERS:
            raise ValueError(f"driver {self.driver!r}: expected one of {DRIVERS}")
        kind = GreenChatSession if self.driver == "gevent" else ChatSession
        self.session: ChatSession | GreenChatSession = kind(
            SessionSpec(
                base_url=server["base_url"],
                gateway_url=server["gateway_url"],
                ca_file=ca_file(server),
                username=username,
                seed=seed,
                channels=tuple(cfg.get("channels") or ("general",)),
                timescale=float(cfg.get("timescale", 1.0)),
                bugs=tuple(cfg.get("bugs") or ()),
                keepalive=bool(cfg.get("keepalive", True)),
                space=space_slug(self.index, cfg.get("space_size"))
                if self.index < int(cfg["clients"])
                else "accord",
                registered=bool(cfg.get("preregistered")) and self.index < int(cfg["clients"]),
            )
        )
        self.server_name = str(server["name"])
        senders = cfg.get("senders")
        every = cfg.get("send_every")
        self.interval = float(every) if every and (senders is None or self.index < senders) else 0
        self.sent = 0
        self.reported = False
        timed = self._call(lambda s: s.connect(self.timeout))
        report("connect", timed)
        for _ in range(int(cfg.get("connect_tries", 1)) - 1):
            if not timed.error or WIND_DOWN.wait(random.uniform(1.0, 5.0)):
                break
            timed = self._call(lambda s: s.reconnect(self.timeout))
            report("connect", timed)
        # What a connected client holds lives as long as the run: out of the
        # collector's sight, a full collection no longer walks the whole crowd
        # (the crowd's largest cost after the client itself in a storm profile).
        gc.collect(1)
        gc.freeze()

    @task
    def chat(self) -> None:
        if self.interval:
            WIND_DOWN.wait(random.uniform(0, self.interval))  # spread the crowd's sends
        while not WIND_DOWN.is_set():
            if self.interval:
                self.sent += 1
                text = f"{self.session.username} message {self.sent} at {time.time():.3f}"
                report("send_message", self._call(lambda s, text=text: s.send(text, self.timeout)))
                WIND_DOWN.wait(self.interval)
            else:
                WIND_DOWN.wait(1.0)
        self._finish()
        raise StopUser()

    def _finish(self) -> None:
        if self.reported:
            return
        settle = float(config().get("settle", self.timeout))
        try:
            summary = self._call(lambda s: self._summary(s, settle))
        except gevent.GreenletExit:
            # Stopped while settling (Locust's stop or its -t cap): report what there is
            # now. Marking the user reported before its summary went out lost the
            # report of a user interrupted here, its stored messages then "unexpected".
            self._send({**self.session.summary(), "settle_error": "stopped while settling"})
            raise
        self._send(summary)

    def _send(self, summary: dict[str, Any] | Timed) -> None:
        """Send this client's summary to the master, once; `reported` only after it went."""
        if self.reported:
            return
        if isinstance(summary, Timed):  # the loop did not answer: say so, do not vanish
            summary = {"user": self.session.username, "error": summary.error, "episodes": []}
        summary["server"] = self.server_name
        for episode in summary.get("episodes", []):
            if episode.get("back") is not None:
                report("recovery", Timed(episode["back"] - episode["lost"]))
            else:
                report("recovery", Timed(0.0, "not recovered"))
        if os.environ.get(CONFIG_ENV):  # a conductor's run collects them (standalone: no)
            self.environment.runner.send_message(CLIENT_MESSAGE, summary)
        self.reported = True

    def _summary(self, session: Any, settle: float) -> Any:
        """The summary after settling (a coroutine for the asyncio session)."""
        if isinstance(session, GreenChatSession):
            try:
                session.settle(settle)
            except Exception as exc:  # unanswered sends are counted from the summary
                return {**session.summary(), "settle_error": f"{type(exc).__name__}: {exc}"}
            return {**session.summary(), "settle_error": ""}

        async def settled() -> dict[str, Any]:
            try:
                await session.settle(settle)
            except Exception as exc:
                return {**session.summary(), "settle_error": f"{type(exc).__name__}: {exc}"}
            return {**session.summary(), "settle_error": ""}

        return settled()

    def on_stop(self) -> None:
        if not self.reported:  # stopped by Locust's cap, not by the conductor
            self._finish()
        self._call(lambda s: s.close())

    def _call(self, step: Any) -> Any:
        """`step(session)`: blocking on the gevent driver, a coroutine run through the
        bridge on the asyncio one. A failure becomes a failed `Timed`."""
        try:
            if isinstance(self.session, GreenChatSession):
                with gevent.Timeout(self.timeout + 5, TimeoutError("no answer in time")):
                    return step(self.session)
            return bridge().run(step(self.session), self.timeout + 5)
        except Exception as exc:  # a load run reports failures, it does not stop
            return Timed(self.timeout, f"{type(exc).__name__}: {exc}")
