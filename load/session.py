"""One chat user: the real client (sans-I/O core + a driver) on one account.

Two session kinds, one per driver: `ChatSession` (asyncio driver, coroutines run
through `load.bridge`) and `GreenChatSession` (the gevent driver, blocking calls
from the user's greenlet).

Each load user registers its own account on the fake server (through the REST
proxy), connects through the full first-connect sequence (login, REST chain,
gateway IDENTIFY/READY, refetch) through the Toxiproxy proxies, then sends
messages. What it lived through comes from its own timeline: `summary()` turns the
recorded signals and effects into recovery episodes (loss -> reconnected, attempts,
resume or identify), connection changes and the nonces it saw accepted.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from client.core import signals as sig
from client.core.actions import (
    ConfigureServer,
    ConnectServer,
    ReconnectServer,
    SelectChannel,
    SendMessage,
    ServerConfig,
)
from client.core.client import ClientCore
from client.core.io import (
    IO_EFFECTS,
    AbortSocket,
    CloseSocket,
    Effect,
    HttpFailed,
    OpenSocket,
    SendText,
    Signal,
    SocketClosed,
    SocketOpenFailed,
)
from client.core.timings import Timings
from client.driver import AsyncClientDriver
from client.driver.green import GeventClientDriver
from client.driver.tls import client_ssl_context
from client.timeline import Recorder

SERVER = "load"
PASSWORD = "load-password"
REGISTER_ATTEMPTS = 8
IDENTIFY_OP, RESUME_OP = 2, 3  # gateway opcodes (accord-protocol.md s.3)
OPENS_IN_FLIGHT = 50  # per crowd process, as the raw connect rate is measured (bench_storm)
_OPEN_GATE = asyncio.Semaphore(OPENS_IN_FLIGHT)  # the process's one loop (load.bridge) uses it


def space_slug(index: int, size: int | None) -> str:
    """The space crowd member `index` opens (the seed space, or its group's)."""
    return "accord" if size is None else f"crowd-{index // size}"


def user_name(run: str, index: int) -> str:
    """The account of crowd member `index` in run `run`."""
    return f"{run}-{index}"


@dataclass
class Timed:
    seconds: float
    error: str = ""


async def register(base_url: str, username: str, ssl_context: ssl.SSLContext) -> None:
    """Create the account (`POST /auth/register`); an existing one is fine. A 429 (the
    shared unauthenticated bucket of a faithful limiter) is waited out as told."""
    body = json.dumps({"username": username, "password": PASSWORD})
    async with aiohttp.ClientSession() as http:
        for _ in range(REGISTER_ATTEMPTS):
            async with http.post(
                f"{base_url}/api/v1/auth/register",
                data=body,
                headers={"Content-Type": "application/json"},
                ssl=ssl_context,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                if response.status in (200, 201, 409):
                    return
                if response.status != 429:
                    raise RuntimeError(f"register {username}: HTTP {response.status}")
                wait = float(response.headers.get("Retry-After", "1") or 1)
            await asyncio.sleep(min(wait, 60.0))
    raise RuntimeError(f"register {username}: still rate limited after {REGISTER_ATTEMPTS} tries")


@dataclass(frozen=True)
class SessionSpec:
    base_url: str  # through the REST proxy
    gateway_url: str | None  # through the gateway proxy (None: derived from base_url)
    ca_file: str | None  # None: the system trust store
    username: str
    seed: int
    channels: tuple[str, ...] = ("general",)
    timescale: float = 1.0
    bugs: tuple[int, ...] = ()
    space: str = "accord"  # the space's slug
    registered: bool = False  # the account exists already (the conductor made it)
    keepalive: bool = True  # REST connections reused (the driver's keep-alive option)


class CrowdRecorder(Recorder):
    """The timeline recorder of a crowd client: the records `client_summary` reads
    and nothing else. Signals with their arguments, each `OpenSocket`, and each
    `SendText` of an IDENTIFY or RESUME as its opcode only, and how each gateway
    socket ended (its close or failure: why a reconnect attempt failed); no other
    inputs (HTTP bodies, frames), timers, draws, logs or view snapshots. In a
    1,000-client storm profile (bench/bench_storm.py) the full records (each REST
    answer walked and redacted) and the per-signal view diff took about a fifth of
    the crowd's CPU; a load run reads none of them. The view is not folded either
    (`driver.view` stays empty)."""

    def handle(self, now: float, event: Any) -> list[Effect]:
        if isinstance(event, SocketClosed):
            self.timeline.add(now, "client", "input", "SocketClosed", {"code": event.code})
        elif isinstance(event, SocketOpenFailed):
            error = {"error": event.error.value}
            self.timeline.add(now, "client", "input", "SocketOpenFailed", error)
        self.core.handle(now, event)
        return self._drain(now)

    def next_deadline(self, now: float) -> float | None:
        return self.core.next_deadline()

    def _drain(self, now: float) -> list[Effect]:
        io: list[Effect] = []
        add = self.timeline.add
        for effect in self.core.take_effects():
            if isinstance(effect, Signal):
                add(now, "client", "signal", effect.name, {"args": effect.args})
            elif isinstance(effect, IO_EFFECTS):
                io.append(effect)
                op = _op(effect.text) if isinstance(effect, SendText) else None
                if op in (IDENTIFY_OP, RESUME_OP):
                    add(now, "client", "effect", "SendText", {"op": op})
                elif isinstance(effect, OpenSocket):
                    add(now, "client", "effect", "OpenSocket")
                elif isinstance(effect, CloseSocket):
                    add(now, "client", "effect", "CloseSocket", {"reason": effect.reason})
                elif isinstance(effect, AbortSocket):
                    add(now, "client", "effect", "AbortSocket")
        return io


class _Session:
    """What both session kinds share: the core, the spec, counting from the timeline,
    the summary. The driver (and so the blocking style) is the subclass's."""

    driver: AsyncClientDriver | GeventClientDriver

    def __init__(self, spec: SessionSpec) -> None:
        self.spec = spec
        self.username = spec.username
        self._ssl = client_ssl_context(spec.ca_file)
        self.core = ClientCore(
            timings=Timings(scale=spec.timescale),
            seed=spec.seed,
            bugs=spec.bugs,
            environ={},
            instance=spec.username,
            trace=False,  # the crowd recorder keeps no timer, draw or log records
        )
        self.attempted = 0
        self.connect_seconds: float | None = None
        self.connect_error = ""
        self.connect_tries = 0  # first connect + Reconnects after it failed

    def _attach(self, driver: AsyncClientDriver | GeventClientDriver) -> None:
        self.driver = driver
        driver.recorder = CrowdRecorder(self.core, driver.timeline, self.core.timings)
        # Timeline times are monotonic; summaries carry wall time so figures from
        # workers on other machines can be merged.
        origin = driver.timeline.origin
        self._wall_offset = time.time() - (time.monotonic() - origin)

    def _count(self, *names: str) -> int:
        return sum(len(self.driver.timeline.select(kind="signal", name=n)) for n in names)

    def _failures(self) -> int:
        return self._count(sig.MESSAGE_SEND_FAILED, sig.MESSAGE_SEND_REFUSED)

    def _connect_actions(self) -> list[Any]:
        config = ServerConfig(
            name=SERVER,
            base_url=self.spec.base_url,
            username=self.username,
            password=PASSWORD,
            space=self.spec.space,
            gateway_url=self.spec.gateway_url,
        )
        return [
            ConfigureServer(config),
            ConnectServer(SERVER),
            SelectChannel(SERVER, self.spec.channels[0]),
        ]

    def _synced(self) -> bool:
        return self.core.status(SERVER) in ("connected", "error") and not self.core.syncing(SERVER)

    def _connected(self, seconds: float) -> Timed:
        error = self.core.last_failure(SERVER) if self.core.status(SERVER) == "error" else ""
        self.connect_seconds = seconds
        self.connect_error = error
        return Timed(seconds, error)

    def _next_channel(self) -> str:
        channel = self.spec.channels[self.attempted % len(self.spec.channels)]
        self.attempted += 1
        return channel

    def _all_answered(self) -> bool:
        return self._count(sig.MESSAGE_SENT) + self._failures() >= self.attempted

    def summary(self) -> dict[str, Any]:
        """What this client lived through, from its own timeline (JSON-able)."""
        return client_summary(
            self.driver.timeline.records,
            self._wall_offset,
            user=self.username,
            connected_now=self.core.status(SERVER) == "connected",
            connect_seconds=self.connect_seconds,
            connect_error=self.connect_error,
            connect_tries=self.connect_tries,
            attempted=self.attempted,
        )


class ChatSession(_Session):
    """A connected client for one user on the asyncio driver (run through a bridge);
    `send` returns how long the server took."""

    def __init__(self, spec: SessionSpec) -> None:
        super().__init__(spec)
        self._attach(
            AsyncClientDriver(
                self.core, ssl_context=self._ssl, keepalive=spec.keepalive, open_gate=_OPEN_GATE
            )
        )
        self.driver: AsyncClientDriver

    async def connect(self, timeout: float) -> Timed:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.connect_tries += 1
        if not self.spec.registered:
            await register(self.spec.base_url, self.username, self._ssl)
        await self.driver.start()
        for action in self._connect_actions():
            await self.driver.act(action)
        await self.driver.wait_for(self._synced, timeout, "connected and synced")
        return self._connected(loop.time() - start)

    async def reconnect(self, timeout: float) -> Timed:
        """The user's Reconnect after a failed first connect (s.4: a fresh login)."""
        start = asyncio.get_running_loop().time()
        self.connect_tries += 1
        await self.driver.act(ReconnectServer(SERVER))
        await self.driver.wait_for(self._synced, timeout, "connected and synced")
        return self._connected(asyncio.get_running_loop().time() - start)

    async def send(self, text: str, timeout: float) -> Timed:
        loop = asyncio.get_running_loop()
        sent, failed = self._count(sig.MESSAGE_SENT), self._failures()
        start = loop.time()
        await self.driver.act(SendMessage(SERVER, self._next_channel(), text))
        await self.driver.wait_for(
            lambda: self._count(sig.MESSAGE_SENT) > sent or self._failures() > failed,
            timeout,
            "send answered",
        )
        error = "send failed" if self._failures() > failed else ""
        return Timed(loop.time() - start, error)

    async def settle(self, timeout: float) -> None:
        """Wait (bounded) until every send has its answer."""
        await self.driver.wait_for(self._all_answered, timeout, "every send answered")

    async def close(self) -> None:
        await self.driver.stop()


class GreenChatSession(_Session):
    """The same client on the gevent driver: every call blocks only its greenlet."""

    def __init__(self, spec: SessionSpec) -> None:
        super().__init__(spec)
        self._attach(GeventClientDriver(self.core, ssl_context=self._ssl, keepalive=spec.keepalive))
        self.driver: GeventClientDriver

    def connect(self, timeout: float) -> Timed:
        start = time.monotonic()
        self.connect_tries += 1
        if not self.spec.registered:
            register_green(self.spec.base_url, self.username, self._ssl)
        self.driver.start()
        for action in self._connect_actions():
            self.driver.act(action)
        self.driver.wait_for(self._synced, timeout, "connected and synced")
        return self._connected(time.monotonic() - start)

    def reconnect(self, timeout: float) -> Timed:
        start = time.monotonic()
        self.connect_tries += 1
        self.driver.act(ReconnectServer(SERVER))
        self.driver.wait_for(self._synced, timeout, "connected and synced")
        return self._connected(time.monotonic() - start)

    def send(self, text: str, timeout: float) -> Timed:
        sent, failed = self._count(sig.MESSAGE_SENT), self._failures()
        start = time.monotonic()
        self.driver.act(SendMessage(SERVER, self._next_channel(), text))
        self.driver.wait_for(
            lambda: self._count(sig.MESSAGE_SENT) > sent or self._failures() > failed,
            timeout,
            "send answered",
        )
        error = "send failed" if self._failures() > failed else ""
        return Timed(time.monotonic() - start, error)

    def settle(self, timeout: float) -> None:
        self.driver.wait_for(self._all_answered, timeout, "every send answered")

    def close(self) -> None:
        self.driver.stop()


def register_green(base_url: str, username: str, ssl_context: ssl.SSLContext) -> None:
    """`register` for a greenlet (the gevent driver's HTTPS client, no asyncio)."""
    import gevent

    from client.driver.green_transport import HttpClient

    body = json.dumps({"username": username, "password": PASSWORD}).encode()
    http = HttpClient(ssl_context, keepalive=False)
    headers = (("Content-Type", "application/json"),)
    for _ in range(REGISTER_ATTEMPTS):
        with gevent.Timeout(30, TimeoutError(f"register {username}: no answer within 30 s")):
            answer = http.request(0, "POST", f"{base_url}/api/v1/auth/register", headers, body)
        if isinstance(answer, HttpFailed):
            raise RuntimeError(f"register {username}: {answer.detail}")
        if answer.status in (200, 201, 409):
            return
        if answer.status != 429:
            raise RuntimeError(f"register {username}: HTTP {answer.status}")
        retry = dict((k.lower(), v) for k, v in answer.headers).get("retry-after", "1")
        gevent.sleep(min(float(retry or 1), 60.0))
    raise RuntimeError(f"register {username}: still rate limited after {REGISTER_ATTEMPTS} tries")


def _op(text: str) -> int | None:
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame.get("op") if isinstance(frame, dict) else None


# How a reconnect attempt's socket ended, as the crowd recorder writes it, by record name.
_SOCKET_ENDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "SocketOpenFailed": lambda d: f"open failed: {d.get('error')}",
    "SocketClosed": lambda d: f"socket closed: {d.get('code')}",
    "CloseSocket": lambda d: f"client closed: {d.get('reason')}",
    "AbortSocket": lambda d: "open timed out",
}


def client_summary(records: list[Any], wall_offset: float, **facts: Any) -> dict[str, Any]:
    """Recovery episodes, connection changes, reconnect attempts and send outcomes
    from one client's timeline records. An episode opens at `server_disconnected`
    and closes at `server_reconnected` (or `server_connection_failed`: gave up)."""
    episodes: list[dict[str, Any]] = []
    changes: list[tuple[float, int]] = []  # (wall, +1 connected / -1 lost)
    attempts: list[float] = []  # wall time of every socket opened during a loss
    failures: dict[str, int] = {}  # why attempts failed: the first end seen after an open
    attempt_open = False
    accepted: list[str] = []
    sending: list[str] = []
    failed_entries: list[str] = []
    send_failed = 0
    send_refused = 0  # the composer was disabled: no message existed, nothing was sent
    send_errors: list[str] = []
    open_episode: dict[str, Any] | None = None
    last_hello_op: int | None = None
    for r in records:
        wall = round(r.t + wall_offset, 4)
        if r.kind == "effect" and r.name == "SendText":
            op = r.data.get("op")
            if op in (IDENTIFY_OP, RESUME_OP):
                last_hello_op = op
        elif r.kind == "effect" and r.name == "OpenSocket" and open_episode is not None:
            attempts.append(wall)
            open_episode["attempts"] += 1
            attempt_open = True
        elif r.name in _SOCKET_ENDS and attempt_open and open_episode is not None:
            why = _SOCKET_ENDS[r.name](r.data)
            failures[why] = failures.get(why, 0) + 1
            attempt_open = False
        elif r.kind == "signal":
            args = r.data.get("args") or []
            if r.name == sig.SERVER_CONNECTED:
                changes.append((wall, 1))
                if open_episode is not None:  # a reconnect that went through a fresh login
                    open_episode.update(back=wall, how="identify")
                    open_episode = None
            elif r.name == sig.SERVER_DISCONNECTED and open_episode is None:
                changes.append((wall, -1))
                code = args[1] if len(args) > 1 else None
                open_episode = {"lost": wall, "back": None, "attempts": 0, "code": code,
                                "how": None, "reauth": False, "gave_up": False}  # fmt: skip
                episodes.append(open_episode)
            elif r.name == sig.SERVER_REAUTHENTICATING and open_episode is not None:
                open_episode["reauth"] = True
            elif r.name == sig.SERVER_RECONNECTED and open_episode is not None:
                attempt_open = False
                changes.append((wall, 1))
                open_episode.update(
                    back=wall, how="resume" if last_hello_op == RESUME_OP else "identify"
                )
                open_episode = None
            elif r.name == sig.SERVER_CONNECTION_FAILED and open_episode is not None:
                open_episode["gave_up"] = True
                open_episode = None
            elif r.name == sig.MESSAGE_SENT and len(args) > 2:
                accepted.append(str(args[2]))
            elif r.name in (sig.MESSAGE_SENDING, sig.MESSAGE_QUEUED) and len(args) > 3:
                sending.append(str(args[3]))
            elif r.name == sig.MESSAGE_FAILED_ENTRY and len(args) > 2:
                failed_entries.append(str(args[2]))
            elif r.name in (sig.MESSAGE_SEND_FAILED, sig.MESSAGE_SEND_REFUSED):
                if r.name == sig.MESSAGE_SEND_FAILED:
                    send_failed += 1
                else:
                    send_refused += 1
                if len(send_errors) < 5:
                    send_errors.append(f"{r.name}: {args[-1] if args else ''}")
    return {
        **facts,
        "episodes": episodes,
        "changes": changes,
        "attempt_times": attempts,
        "attempt_failures": failures,
        "accepted": accepted,
        "nonces": sorted(set(sending)),
        "failed_entries": failed_entries,
        "send_failed": send_failed,
        "send_refused": send_refused,
        "send_errors": send_errors,
    }
