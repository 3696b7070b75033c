"""A virtual clock for the pure client core, plus fake peers on the server core.

`VirtualRunner` owns `now`. Time moves only when a test says so, and then jumps
from one due event to the next (the client core's deadlines, the server cores'
deadlines and the peers' scheduled answers), trio-MockClock style, so a 45 s
heartbeat costs nothing.

`FakePeer` is one Accord server: the fake server's own sans-I/O `ServerCore`
(fake_server.core, an in-memory SQLite store) answers REST and plays the gateway
(handshake, seq, replay, parking, RESUME rules, faults), so these tests and the
fake server cannot drift apart. Around it the peer keeps the test switches (refuse
or ignore connects, withhold HELLO, handshake answers or ACKs, rules that answer a
request first), and anything left unanswered stays open for the test to answer by
hand (`runner.answer(...)`, `runner.frame(...)`, `runner.close(...)`).
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from client.core.actions import Action
from client.core.client import ClientCore
from client.core.io import (
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
    Signal,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
    TransportInput,
)
from fake_server import core as server_io
from fake_server.config import ServerConfig as FakeServerConfig
from fake_server.core import ServerCore
from fake_server.core.server import DEFAULT_WALL_ORIGIN
from fake_server.snowflake import SnowflakeGenerator
from fake_server.store import MEMORY, SEED_PASSWORD, Store

# ====================================================================== fake peer


@dataclass
class HttpAnswer:
    status: int
    body: Any = None  # JSON-encoded unless bytes
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return b"" if self.body is None else json.dumps(self.body).encode()


class Hang:
    """A rule's answer meaning: never answer this request."""


HANG = Hang()
HttpRule = Callable[[HttpRequest], "HttpAnswer | NetError | Hang | None"]

NEVER = 1e12
"""The server timers a peer turns off (handshake, silence, resume window): the old
hand-written peer had none, and the unit tests time the client alone."""
# The seed rows' ids (users alice, bob, carol; the space; general, random): short,
# as the tests write them.
SEED_IDS = ("1", "2", "3", "100", "201", "202")
FIRST_MESSAGE_ID = 1000
_ACK = '{"op":4}'


def _peer_config(dedupe_nonce: bool) -> FakeServerConfig:
    return FakeServerConfig(
        db=MEMORY, control_port=None, rate_limit=None, replay_buffer=1_000_000,
        resume_window_s=NEVER, handshake_timeout_s=NEVER, silence_drop_s=NEVER,
        behaviours=frozenset({"dedupe_nonce"} if dedupe_nonce else ()),
    )


@dataclass
class FakePeer:
    """One fake Accord server (a ServerCore) for the virtual runner."""

    base_url: str = "https://alpha.test:8443"
    gateway_url: str | None = None
    username: str = "alice"
    password: str = "password"
    heartbeat_ms: int | None = 45000  # what HELLO announces (None: no interval at all)
    latency: float = 0.0  # every answer comes this long after its request

    # switches
    rest_enabled: bool = True  # False: every request fails with REFUSED
    gateway_refuse: bool = False  # every OpenSocket fails with REFUSED
    gateway_accept: bool = True  # False: opens hang (no answer at all)
    close_on_open: tuple[int, str] | None = None  # accept the socket, then close it so
    send_hello: bool = True
    answer_handshake: bool = True  # False: IDENTIFY / RESUME never reach the server
    ack_heartbeats: bool = True
    resume_ok: bool = True  # False: RESUME -> INVALID_SESSION false (the server's fault)
    dedupe_nonce: bool = False  # the server's opt-in behaviour (reference: nonces ignored)
    rules: list[HttpRule] = field(default_factory=list)  # tried first, in order
    config: FakeServerConfig | None = None
    """The server core's settings (default: the reference's rules, timers off)."""

    # what the tests read
    space_id: str = "100"
    user_id: str = "1"  # the logged-in user (the client's sends are by this id)
    other_user_id: str = "2"  # author of `store_message` unless told otherwise
    logins: int = 0
    tokens: list[str] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)
    sent_frames: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    now: float = 0.0
    """The runner's time, set before each call into the peer."""

    def __post_init__(self) -> None:
        config = self.config or _peer_config(self.dedupe_nonce)
        store = Store(MEMORY, seed_ids=SEED_IDS, clock=lambda: DEFAULT_WALL_ORIGIN)
        self.core = ServerCore.simulated(config, 0, store=store, now=self.now)
        # Short ids as the tests write them: sequential message ids, "s1" sessions,
        # "tok1" tokens (the core's own are snowflakes and random hex).
        store.ids = SnowflakeGenerator(FIRST_MESSAGE_ID, clock=lambda: 0.0)
        sessions = itertools.count(1)
        self.core.session_id_source = lambda: f"s{next(sessions)}"
        store.token_hex = self._issue_token
        self._inputs: list[TransportInput] = []
        self._conns: set[int] = set()
        """Sockets the server core knows (opened, not closed)."""

    def _issue_token(self, nbytes: int) -> str:
        self.logins += 1
        token = f"tok{self.logins}"
        self.tokens.append(token)
        return token

    @property
    def gateway(self) -> str:
        if self.gateway_url is not None:
            return self.gateway_url
        return f"wss://{urlsplit(self.base_url).netloc}/ws?v=1&encoding=json"

    def owns_url(self, url: str) -> bool:
        return url.startswith(self.base_url) or url == self.gateway

    # ------------------------------------------------------------------ the server's data

    @property
    def messages(self) -> dict[str, list[dict[str, Any]]]:
        """Stored messages per channel, oldest first, as the API answers them."""
        out: dict[str, list[dict[str, Any]]] = {}
        for m in self.core.messages():
            out.setdefault(m["channel_id"], []).append(
                {k: v for k, v in m.items() if k != "nonce"})
        return out

    @property
    def ended_sessions(self) -> list[str]:
        """Sessions the server ended (a close frame, INVALID_SESSION, ...)."""
        return [r["data"]["session_id"] for r in self.core.history_records()
                if r["kind"] == "session" and r["name"] == "ended"]

    def store_message(
        self,
        channel_id: str,
        content: str,
        nonce: str | None = None,
        author_id: str | None = None,
        dispatch: bool = True,
    ) -> dict[str, Any]:
        """Store a message (by default as if someone else sent it) through the
        server's own code path, which dispatches it live (`runner.push(peer)` then
        delivers the frames). `dispatch=False`: stored without a `message.create`
        (its echo was lost)."""
        store = self.core.store
        author = store.user(author_id or self.other_user_id)
        channel = store.channel(channel_id)
        assert author is not None and channel is not None, (author_id, channel_id)
        if dispatch:
            message = self.core.ops.post(author, channel, content, None, nonce)
        else:
            message = store.create_message(channel, author["id"], content, None, nonce)
        self._take(self.core.take_outputs())
        return message

    def dispatch(self, event_type: str, data: Any) -> None:
        """An event for every live session of the space (and their replay buffers)."""
        self.core.dispatch(event_type, data, self.space_id, None)
        self._take(self.core.take_outputs())

    def apply(self, fault: dict[str, Any]) -> server_io.FaultResult:
        """A fault on the server core, as a scenario's `server_fault` step."""
        result = self.core.apply(self.now, fault)
        self._take(self.core.take_outputs())
        return result

    def live_conns(self) -> list[int]:
        """Sockets with a session (after READY / RESUMED), oldest first."""
        return [c for c, conn in self.core.connections.items()
                if conn.session is not None and not conn.finished and c in self._conns]

    # ------------------------------------------------------------------ the runner's side

    def take_inputs(self) -> list[TransportInput]:
        """What the server sent since last asked, as the client core's inputs."""
        out, self._inputs = self._inputs, []
        return out

    def _take(self, outs: list[server_io.Out], skip_conn: int | None = None) -> None:
        for out in outs:
            if isinstance(out, server_io.HttpReply):
                self._inputs.append(HttpResponse(out.req, out.status, out.headers, out.body))
                continue
            if out.conn == skip_conn or out.conn not in self._conns:
                continue
            if isinstance(out, server_io.SendText):
                self._inputs.append(SocketText(out.conn, out.text))
            elif isinstance(out, server_io.Close):
                self._conns.discard(out.conn)
                self._inputs.append(SocketClosed(out.conn, out.code, out.reason))
                self._take(self.core.socket_closed(self.now, out.conn, None))  # handshake done
            else:  # Drop
                self._conns.discard(out.conn)
                self._inputs.append(SocketClosed(out.conn, 1006, ""))

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()

    def on_deadline(self, now: float) -> None:
        self.now = now
        self._take(self.core.on_deadline(now))

    def on_http(self, req: HttpRequest) -> HttpAnswer | NetError | Hang | None:
        """A rule's or a switch's answer; None: the server core took it (its answer,
        if any, comes from `take_inputs`)."""
        self.requests.append(req)
        for rule in self.rules:
            answer = rule(req)
            if answer is not None:
                return answer
        if not self.rest_enabled:
            return NetError.REFUSED
        parts = urlsplit(req.url)
        path = parts.path.removeprefix(urlsplit(self.base_url).path)
        body = req.body
        if path == "/api/v1/auth/login" and req.method == "POST":
            try:
                creds = json.loads(body or b"")
            except ValueError:
                creds = None
            if isinstance(creds, dict):
                if (creds.get("username"), creds.get("password")) != (
                    self.username, self.password
                ):
                    return HttpAnswer(401, {"error": {"code": "unauthorized",
                                                      "message": "invalid credentials"}})
                # The test's password is the peer's; the server's seed users have theirs.
                body = json.dumps({**creds, "password": SEED_PASSWORD}).encode()
        self._only_latest_token()
        target = path + (f"?{parts.query}" if parts.query else "")
        self._take(self.core.http(self.now, req.req, req.method, target, req.headers,
                                  body if body is not None else b""))
        return None

    def _only_latest_token(self) -> None:
        """As the old hand-written peer: only the newest token in `tokens` is valid, so a
        test appending one ("rotated by the server") invalidates the client's."""
        for token in self.tokens[:-1]:
            self.core.store.revoke_token(token)

    def on_cancel(self, req: int) -> None:
        self._take(self.core.http_cancelled(self.now, req))

    def on_open(self, eff: OpenSocket) -> list[TransportInput]:
        if self.gateway_refuse:
            return [SocketOpenFailed(eff.conn, NetError.REFUSED)]
        if not self.gateway_accept:
            return []
        out: list[TransportInput] = [SocketOpened(eff.conn)]
        if self.close_on_open is not None:
            return [*out, SocketClosed(eff.conn, *self.close_on_open)]
        self._conns.add(eff.conn)
        target = urlsplit(eff.url)
        outs = self.core.socket_opened(
            self.now, eff.conn, target.path + (f"?{target.query}" if target.query else "")
        )
        for item in outs:
            if isinstance(item, server_io.SendText) and item.text.startswith('{"op":5,'):
                if not self.send_hello:
                    continue
                if self.heartbeat_ms != self.core.config.heartbeat_interval_ms:
                    hello: dict[str, Any] = {}
                    if self.heartbeat_ms is not None:
                        hello["heartbeat_interval"] = self.heartbeat_ms
                    item = server_io.SendText(item.conn, json.dumps({"op": 5, "data": hello}))
            self._take([item])
        return [*out, *self.take_inputs()]

    def on_frame(self, eff: SendText) -> None:
        try:
            frame = json.loads(eff.text)
        except ValueError:
            frame = {"text": eff.text}
        self.sent_frames.append((eff.conn, frame))
        if eff.conn not in self._conns:
            return
        op = frame.get("op") if isinstance(frame, dict) else None
        handshaking = eff.conn in self.core.connections and (
            self.core.connections[eff.conn].session is None)
        if op in (2, 3) and handshaking and not self.answer_handshake:
            return
        if op in (2, 3) and handshaking:
            self._only_latest_token()
        if op == 3 and handshaking and not self.resume_ok:
            self.core.apply(self.now, {"kind": "invalid_session", "trigger": "on_resume",
                                       "count": 1})
        outs = self.core.socket_text(self.now, eff.conn, eff.text)
        if op == 1 and not self.ack_heartbeats:
            outs = [o for o in outs if not (isinstance(o, server_io.SendText)
                                            and o.text == _ACK)]
        self._take(outs)

    def on_close(self, conn: int, code: int | None, reason: str = "", *,
                 by_server: bool = False) -> None:
        """The socket is gone: the client closed it (`code`: its close frame; None: it
        cut the transport), or the test ended it (`by_server`: a server close with
        `code`, or 1006: the network). Nothing more is delivered on `conn`."""
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        if by_server and code is not None and code != 1006:
            self._take(self.core.close_socket(self.now, conn, code, reason), skip_conn=conn)
            code = None
        elif by_server:
            code = None
        self._take(self.core.socket_closed(self.now, conn, code, reason), skip_conn=conn)


# ====================================================================== runner


class VirtualRunner:
    """Drives a `ClientCore` on virtual time, feeding IO effects to fake peers."""

    def __init__(
        self, core: ClientCore, peers: Iterable[FakePeer] = (), start: float = 0.0
    ) -> None:
        self.core = core
        self.now = start
        self.peers = list(peers)
        self.log: list[tuple[float, Effect]] = []  # every effect, with its time
        self.open_http: dict[int, HttpRequest] = {}  # unanswered, not cancelled
        self.open_sockets: dict[int, str] = {}  # conn -> url, not closed by the core
        self.closes: list[tuple[float, CloseSocket | AbortSocket]] = []
        self._queue: list[tuple[float, int, TransportInput]] = []
        self._order = 0
        self._conn_peer: dict[int, FakePeer] = {}
        self._req_peer: dict[int, FakePeer] = {}
        self._steps_now = 0
        self._collect()

    # ------------------------------------------------------------------ input

    def do(self, item: Action | TransportInput) -> None:
        """Hand the core an action or transport input now."""
        self.core.handle(self.now, item)
        self._collect()

    def schedule(self, delay: float, item: TransportInput) -> None:
        self._order += 1
        heapq.heappush(self._queue, (self.now + delay, self._order, item))

    def answer(
        self,
        req: int | HttpRequest,
        status: int = 200,
        body: Any = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        rid = req if isinstance(req, int) else req.req
        self.open_http.pop(rid, None)
        self.do(HttpResponse(rid, status, headers, HttpAnswer(status, body).encode()))

    def fail(self, req: int | HttpRequest, error: NetError = NetError.REFUSED) -> None:
        rid = req if isinstance(req, int) else req.req
        self.open_http.pop(rid, None)
        self.do(HttpFailed(rid, error))

    def frame(self, conn: int, frame: dict[str, Any] | str) -> None:
        self.do(SocketText(conn, frame if isinstance(frame, str) else json.dumps(frame)))

    def close(self, conn: int, code: int = 1006, reason: str = "") -> None:
        """The server (or the network: 1006) ends the socket."""
        self.open_sockets.pop(conn, None)
        peer = self._conn_peer.get(conn)
        if peer is not None:
            peer.now = self.now
            peer.on_close(conn, code, reason, by_server=True)
            self._deliver(peer)
        self.do(SocketClosed(conn, code, reason))

    def push(self, peer: FakePeer) -> None:
        """Deliver what the peer sent meanwhile (after `peer.dispatch(...)`)."""
        self._deliver(peer)

    # ------------------------------------------------------------------ time

    def advance(self, seconds: float) -> None:
        self.run_until_time(self.now + seconds)

    def run_until_time(self, t: float) -> None:
        while True:
            nxt = self._next_event_time()
            if nxt is None or nxt > t:
                break
            self._step(nxt)
        self.now = max(self.now, t)

    # A loop that never lets virtual time move (e.g. instant reconnects against a
    # zero-latency peer) is reported instead of hanging the test.
    MAX_STEPS_AT_ONE_INSTANT = 100_000

    def run_until(self, predicate: Callable[[], bool], within: float = 3600.0) -> float:
        """Jump from event to event until `predicate()`; returns the virtual time.
        Raises AssertionError when `within` virtual seconds pass first."""
        deadline = self.now + within
        while not predicate():
            nxt = self._next_event_time()
            if nxt is None or nxt > deadline:
                self.now = max(self.now, deadline) if nxt is not None else self.now
                raise AssertionError(f"condition not met within {within}s (now={self.now})")
            self._step(nxt)
        return self.now

    def settle(self) -> None:
        """Deliver everything due now, without moving time."""
        self.run_until_time(self.now)

    def _next_event_time(self) -> float | None:
        times = [t for t in (self.core.next_deadline(),) if t is not None]
        if self._queue:
            times.append(self._queue[0][0])
        for peer in self.peers:
            due = peer.next_deadline()
            if due is not None:
                times.append(due)
        return min(times) if times else None

    def _step(self, t: float) -> None:
        if t > self.now:
            self._steps_now = 0
        self._steps_now += 1
        if self._steps_now > self.MAX_STEPS_AT_ONE_INSTANT:
            raise AssertionError(
                f"no progress: over {self.MAX_STEPS_AT_ONE_INSTANT} steps at t={t}"
            )
        self.now = max(self.now, t)
        due_peer = next((p for p in self.peers if (d := p.next_deadline()) is not None
                         and d <= self.now), None)
        if due_peer is not None:
            due_peer.on_deadline(self.now)
            self._deliver(due_peer)
        elif self._queue and self._queue[0][0] <= self.now:
            _, _, item = heapq.heappop(self._queue)
            if isinstance(item, HttpResponse | HttpFailed) and item.req not in self.open_http:
                return  # the core cancelled it meanwhile
            if isinstance(item, HttpResponse | HttpFailed):
                self.open_http.pop(item.req, None)
            if isinstance(item, SocketOpened | SocketText | SocketClosed | SocketOpenFailed):
                if item.conn not in self.open_sockets:
                    return  # the core closed it meanwhile
                if isinstance(item, SocketClosed | SocketOpenFailed):
                    self.open_sockets.pop(item.conn, None)
            self.core.handle(self.now, item)
        else:
            self.core.advance(self.now)
        self._collect()

    # ------------------------------------------------------------------ effects

    def _collect(self) -> None:
        for eff in self.core.take_effects():
            self.log.append((self.now, eff))
            self._perform(eff)

    def _perform(self, eff: Effect) -> None:
        if isinstance(eff, HttpRequest):
            self.open_http[eff.req] = eff
            peer = self._peer_for(eff.url)
            if peer is not None:
                self._req_peer[eff.req] = peer
                peer.now = self.now
                answer = peer.on_http(eff)
                if isinstance(answer, NetError):
                    self.schedule(peer.latency, HttpFailed(eff.req, answer))
                elif isinstance(answer, HttpAnswer):
                    body = answer.encode()
                    self.schedule(
                        peer.latency, HttpResponse(eff.req, answer.status, answer.headers, body)
                    )
                # Hang: left open for the test; None: the server core has it.
                self._deliver(peer)
        elif isinstance(eff, OpenSocket):
            self.open_sockets[eff.conn] = eff.url
            peer = self._peer_for(eff.url)
            if peer is not None:
                self._conn_peer[eff.conn] = peer
                peer.now = self.now
                for item in peer.on_open(eff):
                    self.schedule(peer.latency, item)
        elif isinstance(eff, SendText):
            peer = self._conn_peer.get(eff.conn)
            if peer is not None and eff.conn in self.open_sockets:
                peer.now = self.now
                peer.on_frame(eff)
                self._deliver(peer)
        elif isinstance(eff, CloseSocket | AbortSocket):
            self.closes.append((self.now, eff))
            self.open_sockets.pop(eff.conn, None)
            peer = self._conn_peer.get(eff.conn)
            if peer is not None:
                peer.now = self.now
                frame = isinstance(eff, CloseSocket) and eff.frame
                peer.on_close(eff.conn, eff.code if isinstance(eff, CloseSocket) and frame
                              else None, eff.reason if isinstance(eff, CloseSocket) else "")
                self._deliver(peer)
        elif isinstance(eff, CancelHttp):
            self.open_http.pop(eff.req, None)
            peer = self._req_peer.pop(eff.req, None)
            if peer is not None:
                peer.now = self.now
                peer.on_cancel(eff.req)
                self._deliver(peer)

    def _deliver(self, peer: FakePeer) -> None:
        for item in peer.take_inputs():
            self.schedule(peer.latency, item)

    def _peer_for(self, url: str) -> FakePeer | None:
        for peer in self.peers:
            if peer.owns_url(url):
                return peer
        return None

    # ------------------------------------------------------------------ reading

    def effects(self, kind: type | None = None) -> list[Effect]:
        return [e for _, e in self.log if kind is None or isinstance(e, kind)]

    def signals(
        self, server: str | None = None, names: Iterable[str] | None = None
    ) -> list[Signal]:
        wanted = set(names) if names is not None else None
        out = []
        for _, e in self.log:
            if not isinstance(e, Signal):
                continue
            if wanted is not None and e.name not in wanted:
                continue
            if server is not None and (not e.args or e.args[0] != server):
                continue
            out.append(e)
        return out

    def signal_names(
        self, server: str | None = None, names: Iterable[str] | None = None
    ) -> list[str]:
        return [s.name for s in self.signals(server, names)]

    def requests(self, method: str | None = None, path: str | None = None) -> list[HttpRequest]:
        out = []
        for e in self.effects(HttpRequest):
            assert isinstance(e, HttpRequest)
            if method is not None and e.method != method:
                continue
            if path is not None and path not in e.url:
                continue
            out.append(e)
        return out

    def pending_http(self, path: str | None = None) -> list[HttpRequest]:
        return [r for r in self.open_http.values() if path is None or path in r.url]

    def opens(self) -> list[OpenSocket]:
        return [e for e in self.effects(OpenSocket) if isinstance(e, OpenSocket)]

    def sent_frames(self, conn: int | None = None) -> list[dict[str, Any]]:
        out = []
        for e in self.effects(SendText):
            assert isinstance(e, SendText)
            if conn is None or e.conn == conn:
                out.append(json.loads(e.text))
        return out
