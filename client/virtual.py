"""A virtual clock for the pure client core, plus a scriptable fake peer.

`VirtualRunner` owns `now`. Time moves only when a test says so, and then jumps
from one due event to the next (the core's own deadlines and the peer's
scheduled answers), trio-MockClock style, so a 45 s heartbeat costs nothing.

`FakePeer` plays one Accord server: it answers `HttpRequest`s by route and
plays the gateway handshake, replay and heartbeat ACKs. Each behaviour has a
switch, and anything it leaves unanswered stays open for the test to answer by
hand (`runner.answer(...)`, `runner.frame(...)`, `runner.close(...)`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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

Reply = tuple[float, TransportInput]  # (delay, input)
# The server's own closes after which the reference server forgets the session.
SERVER_CLOSES_ENDING_SESSION = frozenset({4005, 4008})


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


@dataclass
class _PeerConn:
    conn: int
    state: str = "handshake"  # handshake -> live
    session_id: str | None = None


@dataclass
class FakePeer:
    """One fake Accord server for the virtual runner."""

    base_url: str = "https://alpha.test:8443"
    gateway_url: str | None = None
    username: str = "alice"
    password: str = "password"
    heartbeat_ms: int | None = 45000
    latency: float = 0.0  # every answer comes this long after its request

    # switches
    rest_enabled: bool = True  # False: every request fails with REFUSED
    gateway_refuse: bool = False  # every OpenSocket fails with REFUSED
    gateway_accept: bool = True  # False: opens hang (no answer at all)
    close_on_open: tuple[int, str] | None = None  # accept the socket, then close it so
    send_hello: bool = True
    answer_handshake: bool = True  # IDENTIFY -> READY, RESUME -> replay + resumed
    ack_heartbeats: bool = True
    resume_ok: bool = True  # False: RESUME -> INVALID_SESSION false
    dedupe_nonce: bool = False  # True: a repeated nonce returns the stored message (opt-in;
    # the reference server ignores nonces, protocol s.4)
    rules: list[HttpRule] = field(default_factory=list)  # tried first, in order

    # data
    space_id: str = "100"
    user_id: str = "1"  # the logged-in user (the client's sends are by this id)
    other_user_id: str = "2"  # author of `store_message` unless told otherwise
    channels: dict[str, str] = field(default_factory=lambda: {"201": "general", "202": "random"})
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    nonces: dict[str, dict[str, Any]] = field(default_factory=dict)
    logins: int = 0
    tokens: list[str] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)
    sent_frames: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    conns: dict[int, _PeerConn] = field(default_factory=dict)
    seq: int = 0
    sessions: set[str] = field(default_factory=set)  # live or parked (resumable)
    ended_sessions: list[str] = field(default_factory=list)  # ended by a close frame
    events: list[dict[str, Any]] = field(default_factory=list)  # every dispatched frame
    pending_frames: list[tuple[int, str]] = field(default_factory=list)  # (conn, text) to send
    _next_msg: int = 1000

    @property
    def gateway(self) -> str:
        if self.gateway_url is not None:
            return self.gateway_url
        return f"wss://{urlsplit(self.base_url).netloc}/ws?v=1&encoding=json"

    def owns_url(self, url: str) -> bool:
        return url.startswith(self.base_url) or url == self.gateway

    # ------------------------------------------------------------------ REST

    def on_http(self, req: HttpRequest) -> HttpAnswer | NetError | Hang | None:
        self.requests.append(req)
        for rule in self.rules:
            answer = rule(req)
            if answer is not None:
                return answer
        if not self.rest_enabled:
            return NetError.REFUSED
        parts = urlsplit(req.url)
        path = parts.path.removeprefix(urlsplit(self.base_url).path).removeprefix("/api/v1")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = json.loads(req.body) if req.body else None
        if path == "/auth/login":
            if req.method == "GET":
                return HttpAnswer(405, {"error": {"code": "x", "message": "method not allowed"}})
            creds = body if isinstance(body, dict) else {}
            if (creds.get("username"), creds.get("password")) != (self.username, self.password):
                return HttpAnswer(401, {"error": {"code": "unauthorized", "message": "bad"}})
            self.logins += 1
            token = f"tok{self.logins}"
            self.tokens.append(token)
            return HttpAnswer(200, {"data": {"user": {"id": self.user_id}, "token": token}})
        if not self._authorised(req):
            return HttpAnswer(401, {"error": {"code": "unauthorized", "message": "no auth"}})
        return self._route(req.method, path, query, body)

    def _authorised(self, req: HttpRequest) -> bool:
        auth = dict(req.headers).get("Authorization", "")
        return bool(self.tokens) and auth == f"Bearer {self.tokens[-1]}"

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> HttpAnswer | NetError | None:
        sid = self.space_id
        if path == "/auth/logout":
            return HttpAnswer(200, {"data": {"ok": True}})
        if path == "/users/@me":
            return HttpAnswer(200, {"data": {"id": self.user_id, "username": self.username}})
        if path == "/users/@me/spaces":
            return HttpAnswer(200, {"data": [{"id": sid, "slug": "accord", "name": "Accord"}]})
        if path == f"/spaces/{sid}":
            return HttpAnswer(200, {"data": {"id": sid, "slug": "accord"}})
        if path == f"/spaces/{sid}/channels":
            chans = [{"id": c, "name": n, "space_id": sid} for c, n in self.channels.items()]
            return HttpAnswer(200, {"data": chans})
        if path == f"/spaces/{sid}/members":  # the reference's shape: no embedded user
            return HttpAnswer(200, {"data": [{"user_id": self.user_id, "roles": [sid]}]})
        if path == f"/spaces/{sid}/roles":  # no space_id on roles
            return HttpAnswer(200, {"data": [{"id": sid, "name": "@everyone", "position": 0}]})
        pieces = path.strip("/").split("/")
        if len(pieces) >= 3 and pieces[0] == "channels" and pieces[2] == "messages":
            return self._messages(method, pieces, query, body)
        return HttpAnswer(404, b"")

    def _messages(
        self, method: str, pieces: list[str], query: dict[str, str], body: Any
    ) -> HttpAnswer:
        cid = pieces[1]
        stored = self.messages.setdefault(cid, [])
        if len(pieces) == 3 and method == "GET":
            limit = int(query.get("limit", "50"))
            if "after" in query:
                after = int(query["after"])
                newer = [m for m in stored if int(m["id"]) > after]
                page = newer[:limit]
                more = len(newer) > limit
            else:
                page = list(reversed(stored[-limit:]))
                more = len(stored) > limit
            # as the reference: cursor.after is the page's last id (the oldest on a
            # newest-first page)
            cursor = {"after": page[-1]["id"] if page else None, "has_more": more}
            return HttpAnswer(200, {"data": page, "cursor": cursor})
        if len(pieces) == 3 and method == "POST":
            nonce = body.get("nonce") if isinstance(body, dict) else None
            if self.dedupe_nonce and nonce and nonce in self.nonces:
                return HttpAnswer(200, {"data": self.nonces[nonce]})
            content = str(body.get("content", ""))
            msg = self.store_message(cid, content, nonce=nonce, author_id=self.user_id)
            return HttpAnswer(200, {"data": msg})  # no nonce in the answer
        if len(pieces) == 6 and pieces[4] == "reactions" and method in ("PUT", "DELETE"):
            return self._react(cid, pieces[3], pieces[5], added=method == "PUT")
        if len(pieces) == 4 and method in ("PATCH", "DELETE"):
            found = [m for m in stored if m["id"] == pieces[3]]
            if not found:
                return HttpAnswer(404, {"error": {"code": "not_found", "message": "no message"}})
            if method == "DELETE":
                stored.remove(found[0])
                return HttpAnswer(200, {"data": None})
            found[0]["content"] = body.get("content", "")
            return HttpAnswer(200, {"data": found[0]})
        return HttpAnswer(200, {"data": None})

    def _react(self, channel_id: str, message_id: str, emoji: str, *, added: bool) -> HttpAnswer:
        name = unquote(emoji)
        found = [m for m in self.messages.get(channel_id, []) if m["id"] == message_id]
        if not found:
            return HttpAnswer(404, {"error": {"code": "not_found", "message": "no message"}})
        msg = found[0]
        counts = [r for r in msg["reactions"] or [] if r["emoji"]["name"] != name]
        if added:
            counts.append({"emoji": {"id": None, "name": name}, "count": 1, "me": True})
        msg["reactions"] = counts or None
        event = {"channel_id": channel_id, "message_id": message_id, "user_id": self.user_id}
        self.dispatch("reaction.add" if added else "reaction.remove", {**event, "emoji": name})
        return HttpAnswer(200, {"data": None})

    def store_message(
        self,
        channel_id: str,
        content: str,
        nonce: str | None = None,
        author_id: str | None = None,
        dispatch: bool = True,
    ) -> dict[str, Any]:
        """Store a message (by default as if someone else sent it); the peer
        dispatches it live. The shape is the reference server's (protocol s.7):
        no nonce, `reactions` null. `nonce` is kept only in `self.nonces`.
        `dispatch=False`: stored without a `message.create` (its echo was lost)."""
        self._next_msg += 1
        msg: dict[str, Any] = {
            "id": str(self._next_msg),
            "channel_id": channel_id,
            "space_id": self.space_id,
            "author_id": author_id or self.other_user_id,
            "content": content,
            "type": "default",
            "timestamp": "2026-12-01 12:00:00",
            "edited_at": None,
            "mentions": [],
            "attachments": [],
            "embeds": [],
            "reactions": None,
            "reply_to": None,
            "pinned": False,
            "tts": False,
        }
        self.messages.setdefault(channel_id, []).append(msg)
        if nonce:
            self.nonces[nonce] = msg
        if dispatch:
            self.dispatch("message.create", msg)
        return msg

    # ------------------------------------------------------------------ gateway

    def dispatch(self, event_type: str, data: Any) -> None:
        """An event for every live session (and the replay buffer)."""
        self.seq += 1
        frame = {"op": 0, "type": event_type, "data": data, "seq": self.seq}
        self.events.append(frame)
        for pc in self.conns.values():
            if pc.state == "live":
                self.pending_frames.append((pc.conn, json.dumps(frame)))

    def on_open(self, eff: OpenSocket) -> list[TransportInput]:
        if self.gateway_refuse:
            return [SocketOpenFailed(eff.conn, NetError.REFUSED)]
        if not self.gateway_accept:
            return []
        self.conns[eff.conn] = _PeerConn(eff.conn)
        out: list[TransportInput] = [SocketOpened(eff.conn)]
        if self.close_on_open is not None:
            self.conns.pop(eff.conn, None)
            return [*out, SocketClosed(eff.conn, *self.close_on_open)]
        if self.send_hello:
            hello: dict[str, Any] = {}
            if self.heartbeat_ms is not None:
                hello["heartbeat_interval"] = self.heartbeat_ms
            out.append(SocketText(eff.conn, json.dumps({"op": 5, "data": hello})))
        return out

    def on_frame(self, eff: SendText) -> list[TransportInput]:
        frame = json.loads(eff.text)
        self.sent_frames.append((eff.conn, frame))
        pc = self.conns.get(eff.conn)
        if pc is None:
            return []
        op = frame.get("op")
        if op == 1:
            return [SocketText(eff.conn, '{"op":4}')] if self.ack_heartbeats else []
        if not self.answer_handshake:
            return []
        if op == 2:
            sid = f"s{len(self.sessions) + 1}"
            self.sessions.add(sid)
            pc.session_id, pc.state = sid, "live"
            self.seq += 1
            data = {
                "session_id": sid,
                "user_id": self.user_id,
                "user": {"id": self.user_id, "username": self.username},
                # READY's extra keys on the reference server (protocol s.7)
                "is_guest": False,
                "motd": "",
                "mutes": [],
                "relationships": [],
                "voice_states": [],
            }
            ready = {"op": 0, "type": "ready", "seq": self.seq, "data": data}
            return [SocketText(eff.conn, json.dumps(ready))]
        if op == 3:
            data = frame.get("data", {})
            sid = data.get("session_id")
            still_open = any(
                other.session_id == sid and c != eff.conn for c, other in self.conns.items()
            )
            if not self.resume_ok or sid not in self.sessions or still_open:
                return [SocketText(eff.conn, json.dumps({"op": 7, "data": {"resumable": False}}))]
            pc.session_id, pc.state = data["session_id"], "live"
            after = int(data.get("seq", 0))
            out: list[TransportInput] = [
                SocketText(eff.conn, json.dumps(f)) for f in self.events if f["seq"] > after
            ]
            resumed = {"op": 0, "type": "resumed", "seq": self.seq, "data": {}}
            out.append(SocketText(eff.conn, json.dumps(resumed)))
            return out
        return []

    def on_close(self, conn: int, *, ends_session: bool = False) -> None:
        """The socket is gone. As the reference server (protocol s.2): a client
        close frame, or the server's own 4005/4008, ends the session; a socket
        that just goes away parks it for RESUME."""
        pc = self.conns.pop(conn, None)
        if pc is not None and ends_session and pc.session_id is not None:
            self.sessions.discard(pc.session_id)
            self.ended_sessions.append(pc.session_id)

    def live_conns(self) -> list[int]:
        return [c for c, pc in self.conns.items() if pc.state == "live"]


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
        """The server (or the network) ends the socket."""
        self.open_sockets.pop(conn, None)
        peer = self._conn_peer.get(conn)
        if peer is not None:
            peer.on_close(conn, ends_session=code in SERVER_CLOSES_ENDING_SESSION)
        self.do(SocketClosed(conn, code, reason))

    def push(self, peer: FakePeer) -> None:
        """Deliver frames the peer queued (after `peer.dispatch(...)`)."""
        self._deliver_peer_frames(peer)

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
        if self._queue and self._queue[0][0] <= self.now:
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
                answer = peer.on_http(eff)
                if isinstance(answer, Hang) or answer is None:
                    pass  # left open for the test
                elif isinstance(answer, NetError):
                    self.schedule(peer.latency, HttpFailed(eff.req, answer))
                else:
                    body = answer.encode()
                    self.schedule(
                        peer.latency, HttpResponse(eff.req, answer.status, answer.headers, body)
                    )
                self._deliver_peer_frames(peer)
        elif isinstance(eff, OpenSocket):
            self.open_sockets[eff.conn] = eff.url
            peer = self._peer_for(eff.url)
            if peer is not None:
                self._conn_peer[eff.conn] = peer
                for item in peer.on_open(eff):
                    self.schedule(peer.latency, item)
        elif isinstance(eff, SendText):
            peer = self._conn_peer.get(eff.conn)
            if peer is not None and eff.conn in self.open_sockets:
                for item in peer.on_frame(eff):
                    self.schedule(peer.latency, item)
                self._deliver_peer_frames(peer)
        elif isinstance(eff, CloseSocket | AbortSocket):
            self.closes.append((self.now, eff))
            self.open_sockets.pop(eff.conn, None)
            peer = self._conn_peer.get(eff.conn)
            if peer is not None:
                sent_frame = isinstance(eff, CloseSocket) and eff.frame
                peer.on_close(eff.conn, ends_session=sent_frame)
        elif isinstance(eff, CancelHttp):
            self.open_http.pop(eff.req, None)

    def _deliver_peer_frames(self, peer: FakePeer) -> None:
        frames, peer.pending_frames = peer.pending_frames, []
        for conn, text in frames:
            self.schedule(peer.latency, SocketText(conn, text))

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
