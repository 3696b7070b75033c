"""One simulated world: the client core, the server cores and the network between
them, on one virtual clock.

The client core is driven through `client.timeline.Recorder`, so the timeline holds
exactly the records a real run's driver writes. A server is a `SimServer`: its
`ServerCore` plus what a process does to sockets (alive, killed, frozen).
Time jumps to the earliest of: a network delivery, the client's next deadline,
a live server's next deadline.
"""

from __future__ import annotations

import functools
import gc
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from client.core import actions as act
from client.core.io import (
    IO_EFFECTS,
    AbortSocket,
    CancelHttp,
    CloseSocket,
    Effect,
    HttpFailed,
    HttpRequest,
    HttpResponse,
    NetError,
    OpenSocket,
    SendText,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
)
from client.timeline import CoreLike, Record, Timeline
from fake_server.config import ServerConfig
from fake_server.core import Close, Drop, HttpReply, Out, ServerCore
from fake_server.core import SendText as ServerSendText
from fake_server.history import History
from fake_server.store import Store
from sim.clock import SimClock
from sim.network import (
    HTTP_HEADER_BYTES,
    TLS_CLIENT_FLIGHT,
    TLS_SERVER_FLIGHT,
    WS_UPGRADE_BYTES,
    Chunk,
    Link,
    SimNetwork,
    ws_frame_size,
)

WALL_ORIGIN = 1_767_225_600.0  # the servers' wall clock at virtual t = 0
CLOSE_FRAME_BYTES = 40
# How long the server waits for the client's close reply before dropping (aiohttp's).
SERVER_CLOSE_WAIT = 10.0
# A loop that never lets virtual time move is reported instead of hanging.
MAX_STEPS_AT_ONE_INSTANT = 50_000
# A simulated run allocates fast and keeps a growing heap (histories, timelines), so
# the default third threshold (10) makes full collections a third of the CPU time.
FULL_COLLECTION_EVERY = 100  # second-generation collections per full one


@contextmanager
def fewer_full_collections() -> Iterator[None]:
    """Run a batch of simulations with rarer full garbage collections."""
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], max(old[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*old)


class NoProgress(RuntimeError):
    """Virtual time stopped moving: the run is stuck in a loop at one instant."""


class SimTimeline(Timeline):
    """A timeline whose `now()` is the virtual clock."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(origin=0.0)
        self.clock = clock

    def now(self) -> float:
        return self.clock.now

    @property
    def records(self) -> list[Record]:
        """The records themselves, not a copy: a simulated run is one thread, and the
        runner reads the new tail after every step (a copy each time is quadratic)."""
        return self._records


# ====================================================================== servers


class SimServer:
    """One fake-server process in simulation: a ServerCore over a Store that outlives
    restarts, and the process states a fault puts it in."""

    def __init__(
        self, world: SimWorld, name: str, config: ServerConfig, *, trusted: bool = True
    ) -> None:
        self.world = world
        self.name = name
        self.config = config
        self.trusted = trusted
        self.store = Store(config.db)
        self.history = History(None)
        self.alive = False
        self.frozen = False
        self.boots = 0
        self.core: ServerCore | None = None
        self._held: list[Callable[[], None]] = []  # input a frozen process has not read
        self._conns: dict[int, Link] = {}
        self._reqs: dict[int, Link] = {}
        self.start()

    # ------------------------------------------------------------------ process

    def start(self) -> None:
        self.boots += 1
        now = self.world.clock.now
        seed = self.world.seed * 1000 + self.boots
        self.core = ServerCore(
            self.config, self.store, self.history, seed, wall_origin=WALL_ORIGIN, now=now
        )
        self.alive, self.frozen = True, False
        self._held.clear()
        self._conns.clear()
        self._reqs.clear()

    def kill(self) -> None:
        """kill -9: the process is gone with every socket; the database stays."""
        self.alive, self.frozen = False, False
        self.core = None
        self._held.clear()
        self._conns.clear()
        self._reqs.clear()
        self.world.net.cut_upstream(self.name)

    def stop(self) -> None:
        """SIGTERM: close every gateway socket with 1001, then exit."""
        if self.alive and not self.frozen and self.core is not None:
            self.perform(self.core.shutdown(self.world.clock.now))
        self.kill()

    def restart(self) -> None:
        if self.alive:
            self.stop()
        self.start()

    def freeze(self) -> None:
        if self.alive:
            self.frozen = True

    def thaw(self) -> None:
        if not self.frozen:
            return
        self.frozen = False
        held, self._held = self._held, []
        for action in held:
            if not self.alive or self.frozen:
                break
            action()

    def running(self) -> ServerCore | None:
        return self.core if self.alive and not self.frozen else None

    def run(self, action: Callable[[ServerCore], list[Out]]) -> None:
        """Input for the process: now, held while frozen, lost when it is dead."""
        if not self.alive:
            return
        if self.frozen:
            self._held.append(lambda: self.run(action))
            return
        assert self.core is not None
        self.perform(action(self.core))

    def next_deadline(self) -> float | None:
        core = self.running()
        return core.next_deadline() if core is not None else None

    def on_deadline(self, now: float) -> None:
        core = self.running()
        if core is not None:
            self.perform(core.on_deadline(now))

    # ------------------------------------------------------------------ links

    def accept(self, link: Link, target: str) -> None:
        """The client's upgrade request arrived: the socket is the server's now."""
        if link.closed:
            return
        link.server = self
        self._conns[link.ident] = link
        link.down.send(Chunk(WS_UPGRADE_BYTES, link.client_end().upgraded))
        self.run(lambda core: core.socket_opened(self.world.clock.now, link.ident, target))

    def request(self, link: Link, effect: HttpRequest) -> None:
        if link.closed:
            return
        link.server = self
        self._reqs[effect.req] = link
        target = _target(effect.url)
        self.run(
            lambda core: core.http(
                self.world.clock.now,
                effect.req,
                effect.method,
                target,
                effect.headers,
                effect.body if effect.body is not None else b"",
            )
        )

    def link_data(self, link: Link, data: Any) -> None:
        """Not used: links call the server's methods directly."""

    def link_closed(self, link: Link) -> None:
        """The network cut a link (the process may not even know it yet)."""
        ident = link.ident
        if self._conns.get(ident) is link:
            self._conns.pop(ident, None)
            self.run(lambda core: core.socket_closed(self.world.clock.now, ident, None))
        for req, held in list(self._reqs.items()):
            if held is link:
                self._reqs.pop(req, None)
                self._cancel(req)

    def _cancel(self, req: int) -> None:
        self.run(lambda core: core.http_cancelled(self.world.clock.now, req))

    def client_closed(self, link: Link, code: int | None, reason: str) -> None:
        """The client's close frame (code) or FIN (None) reached the server."""
        ident = link.ident
        if self._conns.pop(ident, None) is None:
            return
        self.run(lambda core: core.socket_closed(self.world.clock.now, ident, code, reason))
        link.forget()

    def perform(self, outs: list[Out]) -> None:
        for out in outs:
            if isinstance(out, HttpReply):
                link = self._reqs.pop(out.req, None)
                if link is not None and not link.closed:
                    size = HTTP_HEADER_BYTES + len(out.body)
                    link.down.send(Chunk(size, link.client_end().http_answer(out)))
                continue
            link = self._conns.get(out.conn)
            if link is None or link.closed:
                continue
            if isinstance(out, ServerSendText):
                text = out.text
                link.down.send(
                    Chunk(ws_frame_size(text, masked=False), link.client_end().text(text))
                )
            elif isinstance(out, Close):
                link.down.send(
                    Chunk(CLOSE_FRAME_BYTES, link.client_end().close_frame(out.code, out.reason))
                )
                self._expect_close_reply(link)
            elif isinstance(out, Drop):
                if out.flush:
                    link.down.send(Chunk(0, link.cut, is_close=True))
                else:
                    link.cut()

    def _expect_close_reply(self, link: Link) -> None:
        def give_up() -> None:
            if self._conns.get(link.ident) is link:
                link.cut()

        self.world.clock.call_later(SERVER_CLOSE_WAIT, give_up)

    def close(self) -> None:
        self.alive = False
        self.core = None
        self.store.close()


# ====================================================================== client


@dataclass
class _ClientConn:
    """The client's end of one link: turns arrivals into the core's inputs."""

    world: SimWorld
    link: Link | None
    conn: int | None = None  # gateway socket
    req: int | None = None  # HTTP request
    opened: bool = False
    done: bool = False  # the core has been told the end (or let it go)
    effect: HttpRequest | None = field(default=None, repr=False)

    def _feed(self, event: Any) -> None:
        if self.done:
            return
        if isinstance(event, SocketClosed | SocketOpenFailed | HttpResponse | HttpFailed):
            self.done = True
        self.world.client_input(event)

    def got_cert(self) -> None:
        """The server's TLS flight arrived: verify it, go on with the upgrade/request."""
        link = self.link
        assert link is not None
        server = self.world.servers.get(link.proxy.upstream)
        if server is not None and not server.trusted:
            detail = "certificate verify failed: self-signed certificate in certificate chain"
            if self.conn is not None:
                self._feed(SocketOpenFailed(self.conn, NetError.TLS, detail))
            elif self.req is not None:
                self._feed(HttpFailed(self.req, NetError.TLS, detail))
            self.done = True
            link.forget()
            return
        if self.conn is not None:
            target = _target(self.world.urls[self.conn])
            link.up.send(Chunk(WS_UPGRADE_BYTES, lambda: self._upgrade_arrived(target)))
        elif self.effect is not None:
            effect = self.effect
            size = HTTP_HEADER_BYTES + len(effect.body or b"")
            link.up.send(Chunk(size, lambda: self._request_arrived(effect)))

    def _server(self) -> SimServer | None:
        assert self.link is not None
        return self.world.servers.get(self.link.proxy.upstream)

    def _upgrade_arrived(self, target: str) -> None:
        server = self._server()
        if server is not None and self.link is not None:
            server.accept(self.link, target)

    def _request_arrived(self, effect: HttpRequest) -> None:
        server = self._server()
        if server is not None and self.link is not None:
            server.request(self.link, effect)

    def upgraded(self) -> None:
        if self.conn is not None and not self.done:
            self.opened = True
            self._feed(SocketOpened(self.conn))

    def text(self, text: str) -> Callable[[], None]:
        def deliver() -> None:
            if self.conn is not None and self.opened:
                self._feed(SocketText(self.conn, text))

        return deliver

    def close_frame(self, code: int, reason: str) -> Callable[[], None]:
        def deliver() -> None:
            if self.conn is None:
                return
            was_done = self.done
            self._feed(SocketClosed(self.conn, code, reason))
            link = self.link
            if link is None or link.closed:
                return
            # The client's WebSocket answers the close frame, then the TCP ends.
            server = link.server
            if server is not None and not was_done:
                link.up.send(Chunk(CLOSE_FRAME_BYTES, lambda: server.client_closed(link, None, "")))
            elif server is not None:
                server.client_closed(link, None, "")

        return deliver

    def http_answer(self, reply: HttpReply) -> Callable[[], None]:
        def deliver() -> None:
            if self.req is not None:
                self._feed(HttpResponse(self.req, reply.status, reply.headers, reply.body))
            if self.link is not None:
                self.link.forget()

        return deliver

    def link_cut(self) -> None:
        if self.conn is not None:
            if self.opened:
                self._feed(SocketClosed(self.conn, 1006, ""))
            else:
                self._feed(SocketOpenFailed(self.conn, NetError.REFUSED, "connection closed"))
        elif self.req is not None:
            got_tls = self.link is not None and self.link.server is not None
            error = NetError.NO_RESPONSE if got_tls else NetError.REFUSED
            self._feed(HttpFailed(self.req, error, "connection closed"))

    # ------------------------------------------------------------------ the client's own acts

    def send(self, text: str) -> None:
        link = self.link
        if link is None or link.closed or not self.opened:
            return
        server = link.server

        def arrive() -> None:
            if server is not None and link.ident in server._conns:
                ident = link.ident
                server.run(lambda core: core.socket_text(self.world.clock.now, ident, text))

        link.up.send(Chunk(ws_frame_size(text, masked=True), arrive))

    def end(self, code: int | None, reason: str) -> None:
        """The core let the connection go: a close frame (code) or just the FIN."""
        self.done = True
        link = self.link
        if link is None or link.closed:
            return
        server = link.server
        if server is None or self.conn is None or not self.opened:
            if self.req is not None and server is not None:
                req = self.req

                def cancelled() -> None:
                    link.forget()
                    if server._reqs.pop(req, None) is not None:
                        server.run(lambda core: core.http_cancelled(self.world.clock.now, req))

                # The FIN travels up first: forgetting the link now would drop it, and a
                # request held before its handler would store late, which the real fake
                # server (aiohttp, handler_cancellation) never does (explore --bug 4 found
                # a restored text stored twice with no bug on).
                link.up.send(Chunk(0, cancelled, is_close=True))
            else:
                link.forget()
            return
        size = CLOSE_FRAME_BYTES if code is not None else 0
        link.up.send(
            Chunk(size, lambda: server.client_closed(link, code, reason), is_close=code is None)
        )


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str
    port: int
    target: str  # path and query


@functools.lru_cache(maxsize=4096)  # a run asks for a handful of URLs thousands of times
def _parse(url: str) -> _Url:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return _Url(parts.scheme, parts.hostname or "", parts.port or 443, target)


def _target(url: str) -> str:
    return _parse(url).target


# ====================================================================== world


class Stepper(Protocol):
    """How the world drives the client core: `client.timeline.Recorder` (every input,
    effect and view change on the timeline) or `BareCore` (nothing recorded)."""

    def handle(self, now: float, event: Any) -> list[Effect]: ...
    def advance(self, now: float) -> list[Effect]: ...
    def next_deadline(self, now: float) -> float | None: ...


class BareCore:
    """The client core with no timeline and no view (benchmarks, long explorations)."""

    def __init__(self, core: CoreLike) -> None:
        self.core = core

    def handle(self, now: float, event: Any) -> list[Effect]:
        self.core.handle(now, event)
        return [e for e in self.core.take_effects() if isinstance(e, IO_EFFECTS)]

    def advance(self, now: float) -> list[Effect]:
        self.core.advance(now)
        return [e for e in self.core.take_effects() if isinstance(e, IO_EFFECTS)]

    def next_deadline(self, now: float) -> float | None:
        return self.core.next_deadline()


class SimWorld:
    """The clock, the network, the servers and the client, stepped together."""

    def __init__(self, seed: int, timeline: Timeline | None = None) -> None:
        self.seed = seed
        self.clock = SimClock()
        self.rng = random.Random(f"sim-network-{seed}")
        self.net = SimNetwork(self.clock, self.rng)
        self.timeline = timeline if timeline is not None else SimTimeline(self.clock)
        self.servers: dict[str, SimServer] = {}
        self.recorder: Stepper | None = None
        self.urls: dict[int, str] = {}
        self._conns: dict[int, _ClientConn] = {}
        self._reqs: dict[int, _ClientConn] = {}
        self._steps_now = 0
        self._last_t = -1.0
        self.error: BaseException | None = None  # the client core raised

    # ------------------------------------------------------------------ setup

    def add_server(self, name: str, config: ServerConfig, *, trusted: bool = True) -> SimServer:
        server = SimServer(self, name, config, trusted=trusted)
        self.servers[name] = server
        return server

    def attach(self, recorder: Stepper) -> None:
        self.recorder = recorder

    # ------------------------------------------------------------------ client side

    def client_input(self, event: Any) -> None:
        """A transport input or a user action for the client core, now."""
        assert self.recorder is not None
        if self.error is not None:
            return
        try:
            effects = self.recorder.handle(self.clock.now, event)
        except Exception as exc:  # the core never raises: a finding, kept for the verdict
            self.error = exc
            return
        self._perform(effects)

    def _perform(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, OpenSocket):
                self._open(effect)
            elif isinstance(effect, SendText):
                end = self._conns.get(effect.conn)
                if end is not None:
                    end.send(effect.text)
            elif isinstance(effect, CloseSocket):
                end = self._conns.pop(effect.conn, None)
                if end is not None:
                    end.end(effect.code if effect.frame else None, effect.reason)
                    if not effect.frame:
                        self.timeline.add(
                            self.clock.now,
                            "client",
                            "conn",
                            "dropped_without_close_frame",
                            {"conn": effect.conn, "code": effect.code, "reason": effect.reason},
                        )
            elif isinstance(effect, AbortSocket):
                end = self._conns.pop(effect.conn, None)
                if end is not None:
                    end.end(None, "")
            elif isinstance(effect, HttpRequest):
                self._request(effect)
            elif isinstance(effect, CancelHttp):
                end = self._reqs.pop(effect.req, None)
                if end is not None:
                    end.end(None, "")

    def _dial(self, url: str, end: _ClientConn, fail: Callable[[NetError, str], Any]) -> None:
        where = _parse(url)
        host, port = where.host, where.port
        proxy = self.net.proxy_at(host, port)
        if proxy is None:
            local = host in ("127.0.0.1", "localhost", "::1")
            error = NetError.REFUSED if local else NetError.DNS
            self.clock.call_later(0.0005, lambda: end._feed(fail(error, f"cannot reach {host}")))
            return
        if not proxy.enabled:
            self.clock.call_later(0.0005, lambda: end._feed(fail(NetError.REFUSED, "refused")))
            return
        link = Link(self.net, proxy, self.net.new_link_id(), end)
        end.link = link
        server = self.servers.get(proxy.upstream)
        if server is None or not server.alive:
            link.cut()  # Toxiproxy accepts, cannot dial the server, closes
            return
        link.up.send(
            Chunk(TLS_CLIENT_FLIGHT, lambda: server.run(lambda core: self._tls(link, end)))
        )

    def _tls(self, link: Link, end: _ClientConn) -> list[Out]:
        link.down.send(Chunk(TLS_SERVER_FLIGHT, end.got_cert))
        return []

    def _open(self, effect: OpenSocket) -> None:
        end = _ClientConn(self, None, conn=effect.conn)
        self._conns[effect.conn] = end
        self.urls[effect.conn] = effect.url
        if _parse(effect.url).scheme != "wss":
            self.clock.call_later(
                0.0,
                lambda: end._feed(
                    SocketOpenFailed(
                        effect.conn,
                        NetError.OTHER,
                        "refused: only https:// and wss:// URLs are used",
                    )
                ),
            )
            return
        self._dial(effect.url, end, lambda e, d: SocketOpenFailed(effect.conn, e, d))

    def _request(self, effect: HttpRequest) -> None:
        end = _ClientConn(self, None, req=effect.req, effect=effect)
        self._reqs[effect.req] = end
        if _parse(effect.url).scheme != "https":
            self.clock.call_later(
                0.0,
                lambda: end._feed(
                    HttpFailed(
                        effect.req,
                        NetError.OTHER,
                        "refused: only https:// and wss:// URLs are used",
                    )
                ),
            )
            return
        self._dial(effect.url, end, lambda e, d: HttpFailed(effect.req, e, d))

    # ------------------------------------------------------------------ time

    def _due(self) -> tuple[float, int, SimServer | None] | None:
        """The next event: (time, source, server); source 0 network, 1 server, 2 client.
        At one instant the network goes first, then the servers, then the client."""
        best: tuple[float, int, SimServer | None] | None = None
        t = self.clock.next_time()
        if t is not None:
            best = (t, 0, None)
        for server in self.servers.values():
            due = server.next_deadline()
            if due is not None and (best is None or due < best[0]):
                best = (due, 1, server)
        if self.recorder is not None and self.error is None:
            due = self.recorder.next_deadline(self.clock.now)
            if due is not None and (best is None or due < best[0]):
                best = (due, 2, None)
        return best

    def next_time(self) -> float | None:
        due = self._due()
        return None if due is None else due[0]

    def step(self) -> bool:
        """Run whatever is due next; False when nothing is left to happen."""
        due = self._due()
        if due is None:
            return False
        self._run(due)
        return True

    def _run(self, due: tuple[float, int, SimServer | None]) -> None:
        t, source, server = due
        t = max(t, self.clock.now)
        if t > self._last_t:
            self._last_t, self._steps_now = t, 0
        self._steps_now += 1
        if self._steps_now > MAX_STEPS_AT_ONE_INSTANT:
            raise NoProgress(f"no progress: over {MAX_STEPS_AT_ONE_INSTANT} steps at t={t:.6f}")
        if source == 0:
            self.clock.run_one()
            return
        self.clock.now = t
        if server is not None:
            server.on_deadline(t)
            return
        assert self.recorder is not None
        try:
            effects = self.recorder.advance(t)
        except Exception as exc:
            self.error = exc
            return
        self._perform(effects)

    def run_until(self, t: float, predicate: Callable[[], bool] | None = None) -> bool:
        """Step until `predicate()` holds (True) or time would pass `t` (False, now = t)."""
        while True:
            if predicate is not None and predicate():
                return True
            if self.error is not None:
                return False
            due = self._due()
            if due is None or due[0] > t:
                self.clock.now = max(self.clock.now, t)
                return predicate() if predicate is not None else False
            self._run(due)

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


def one_server(world: SimWorld, heartbeat_ms: int = 10_000) -> list[act.Action]:
    """A fake server `alpha` (in-memory database) behind its two proxies, and the
    client's actions that connect to it as alice and select #general (benchmarks,
    tests that need one connected client)."""
    config = ServerConfig(
        db=Path(":memory:"), control_port=None, heartbeat_interval_ms=heartbeat_ms
    )
    world.add_server("alpha", config)
    rest = world.net.create_proxy("alpha.rest", "alpha")
    gateway = world.net.create_proxy("alpha.gateway", "alpha")
    server = act.ServerConfig(
        name="alpha",
        base_url=f"https://{rest.host}:{rest.port}",
        username="alice",
        password="password",
        space="accord",
        gateway_url=f"wss://{gateway.host}:{gateway.port}/ws?v=1&encoding=json",
    )
    return [act.AddServer(server), act.SelectChannel("alpha", "general")]


def memory_db(work_dir: Path | None, name: str) -> Path:
    """The database path of a simulated server (a file when a work dir is given)."""
    return work_dir / f"{name}.db" if work_dir is not None else Path(":memory:")
