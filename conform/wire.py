"""Speaking to one server only as any client can: its REST API and its gateway.

No control API, no database: what a probe learns is what the server answers. Every
wait has a real-time deadline (a conformant server answers in milliseconds; the
deadline only bounds a server that does not answer at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from client.core.frames import CLIENT_PROPERTIES, INTENTS
from client.core.redact import redact_text
from client.driver.tls import client_ssl_context
from client.driver.websocket import _abort_transport

DEADLINE = 10.0
"""Real seconds for any one answer."""
API = "/api/v1"
GATEWAY_PATH = "/ws?v=1&encoding=json"
Frame = dict[str, Any]


class ProbeError(Exception):
    """A probe could not observe what it needs (no answer in time, a call it relies on failed)."""


class SetupError(Exception):
    """The target cannot be probed at all (unreachable, accounts refused)."""


# ---------------------------------------------------------------------- target


@dataclass(frozen=True)
class Target:
    origin: str
    """scheme://host:port, no path."""
    ca: Path | None = None

    @classmethod
    def parse(cls, url: str, ca: Path | None = None) -> Target:
        """`https://host:port` or `http://host:port` (a trailing `/api/v1` is accepted).
        Raises ValueError naming what is wrong."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
        if not parts.hostname:
            raise ValueError(f"URL {url!r}: no host")
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError as exc:
            raise ValueError(f"URL {url!r}: {exc}") from None
        path = parts.path.rstrip("/")
        if path not in ("", API):
            raise ValueError(f"URL {url!r}: expected no path (or {API}), got {parts.path!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"URL {url!r}: expected no query or fragment")
        if ca is not None:
            if parts.scheme != "https":
                raise ValueError(f"--ca {ca}: only for an https:// URL")
            if not ca.is_file():
                raise ValueError(f"--ca {ca}: no such file")
        return cls(origin=f"{parts.scheme}://{parts.netloc}", ca=ca)

    @property
    def rest(self) -> str:
        return self.origin + API

    @property
    def gateway(self) -> str:
        scheme = "wss" if self.origin.startswith("https:") else "ws"
        return scheme + self.origin[self.origin.index(":") :] + GATEWAY_PATH

    def ssl_context(self) -> ssl.SSLContext | bool:
        """Verified TLS (the system trust store, or `ca` instead); for plain HTTP, aiohttp's
        default (True), which it does not use."""
        if not self.origin.startswith("https:"):
            return True
        return client_ssl_context(self.ca)


@dataclass(frozen=True)
class Account:
    name: str
    password: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Account:
        name, sep, password = text.partition(":")
        if not sep or not name or not password:
            raise ValueError(f"--user {name or text!r}: expected NAME:PASSWORD")
        return cls(name, password)

    @classmethod
    def fresh(cls, run_id: str, index: int) -> Account:
        """A name no earlier run used (letters and digits only: servers differ on the rest)."""
        return cls(f"conform{run_id}u{index}", secrets.token_hex(12))


@dataclass(frozen=True)
class User:
    account: Account
    user_id: str
    token: str = field(repr=False)

    @property
    def auth(self) -> str:
        return f"Bearer {self.token}"


# ---------------------------------------------------------------------- REST


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str | None
    """The Content-Type header exactly as sent (None when absent)."""
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None

    @property
    def data(self) -> Any:
        body = self.json()
        return body.get("data") if isinstance(body, dict) else None


# ---------------------------------------------------------------------- gateway


@dataclass(frozen=True)
class Ended:
    """How a socket ended: a close frame (code, reason) or a drop (code None)."""

    code: int | None
    reason: str = ""

    def describe(self) -> str:
        if self.code is None:
            return "dropped (no close frame)"
        return f"close {self.code} {self.reason!r}"


class Socket:
    """One gateway socket; every text frame received is kept in `seen`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[Frame] = []
        self.ended: Ended | None = None

    async def send(self, frame: Any) -> None:
        """Send a JSON frame; a socket the server has already closed swallows it."""
        if not self.ws.closed:
            # A server that went first: the next read says how.
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(frame))

    async def next(
        self, want: Callable[[Frame], bool] = lambda f: True, timeout: float = DEADLINE
    ) -> Frame | Ended:
        """The next frame `want` accepts, or how the socket ended; ProbeError at the deadline."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.ended is None:
            left = end - loop.time()
            if left <= 0:
                raise ProbeError(f"no answer on the gateway within {timeout:g}s")
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                continue
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    frame = {"text": msg.data[:80]}
                if not isinstance(frame, dict):
                    frame = {"json": frame}
                self.seen.append(frame)
                if want(frame):
                    return frame
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                self.ended = Ended(int(msg.data), msg.extra or "")
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR,
                              aiohttp.WSMsgType.CLOSING):
                self.ended = Ended(None)
        return self.ended

    async def reply(self, timeout: float = DEADLINE) -> Frame | Ended:
        """The next frame that is not an event (op 0), or the end: events from other
        activity on the server may arrive at any time."""
        return await self.next(lambda f: f.get("op") != 0, timeout)

    async def event(self, want: Callable[[Frame], bool]) -> Frame:
        """The next event (op 0) `want` accepts; ProbeError if the socket ends first."""
        got = await self.next(lambda f: f.get("op") == 0 and want(f))
        if isinstance(got, Ended):
            raise ProbeError(f"socket ended while waiting for an event: {got.describe()}")
        return got

    async def end(self, timeout: float = DEADLINE) -> Ended | None:
        """Read until the socket ends; None if it is still open at the deadline."""
        try:
            got = await self.next(lambda f: False, timeout)
        except ProbeError:
            return None
        assert isinstance(got, Ended)
        return got

    def cut(self) -> None:
        """End the socket without a close frame, as a reset or a proxy cut does."""
        _abort_transport(self.ws)
        self.ended = Ended(None)

    async def close(self, code: int = 1000) -> None:
        """A client close frame (any code ends the session on a reference server); a
        socket that has ended already (cut, or closed by the server) is left alone."""
        if self.ended is None and not self.ws.closed:
            await self.ws.close(code=code)
        if self.ended is None:
            self.ended = Ended(code)


def identify_frame(user: User, intents: tuple[str, ...] | list[str] = INTENTS) -> Frame:
    return {"op": 2, "data": {"token": user.auth, "intents": list(intents),
                              "properties": dict(CLIENT_PROPERTIES)}}


def resume_frame(user: User, session_id: str, seq: int) -> Frame:
    return {"op": 3, "data": {"token": user.auth, "session_id": session_id, "seq": seq}}


@dataclass
class Opened:
    """A socket after HELLO, IDENTIFY and READY."""

    socket: Socket
    hello: Frame
    ready: Frame

    @property
    def session_id(self) -> str:
        return str(self.ready["data"]["session_id"])

    @property
    def last_seq(self) -> int:
        seqs = [f["seq"] for f in self.socket.seen if type(f.get("seq")) is int]
        return max(seqs, default=0)


def compact(value: Any) -> str:
    """JSON without spaces, keys sorted: the normalised form of a frame or a body."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------- one server


class Server:
    """The probes' view of one server: two logged-in users, REST calls, gateway sockets,
    a text channel both users share, and the messages posted (deleted at the end)."""

    def __init__(self, target: Target, http: aiohttp.ClientSession, run_id: str) -> None:
        self.target = target
        self.http = http
        self.run_id = run_id
        self.ssl = target.ssl_context()
        self.users: list[User] = []
        self._channel: str | None = None
        self._posted: list[tuple[User, str, str]] = []
        self._sockets: list[Socket] = []

    @property
    def a(self) -> User:
        return self.users[0]

    @property
    def b(self) -> User:
        return self.users[1]

    def tag(self, text: str) -> str:
        """Message content that names this run (so a shared channel shows who wrote it)."""
        return f"accord-rig conform {self.run_id}: {text}"

    # -------------------------------------------------------------- setup

    async def sign_in(self, accounts: list[Account], register: int) -> None:
        """Log the accounts in, then register `register` fresh ones. SetupError if refused."""
        for account in accounts:
            self.users.append(await self.login(account, setup=True))
        for index in range(register):
            self.users.append(
                await self.register(Account.fresh(self.run_id, len(self.users) + index))
            )

    async def register(self, account: Account) -> User:
        """A new account on the server, signed in. SetupError if refused."""
        reply = await self.rest("POST", "/auth/register",
                                json_body={"username": account.name,
                                           "password": account.password})
        return self._user_from(account, reply, "register")

    async def login(self, account: Account, setup: bool = False) -> User:
        """A fresh token (so a fresh rate-limit bucket on a reference server)."""
        reply = await self.rest("POST", "/auth/login",
                                json_body={"username": account.name,
                                           "password": account.password})
        try:
            return self._user_from(account, reply, "login")
        except SetupError as exc:
            if setup:
                raise
            raise ProbeError(str(exc)) from None

    def _user_from(self, account: Account, reply: Reply, what: str) -> User:
        data = reply.data
        if reply.status != 200 or not isinstance(data, dict) or "token" not in data:
            raise SetupError(f"{what} {account.name!r} at {self.target.origin}: "
                             f"HTTP {reply.status} {redact_text(reply.text[:200])!r}")
        return User(account, str(data["user"]["id"]), str(data["token"]))

    async def channel(self) -> str:
        """The first text channel of a space both users are members of."""
        if self._channel is None:
            spaces = []
            for user in self.users[:2]:
                reply = await self.rest("GET", "/users/@me/spaces", user=user)
                if reply.status != 200 or not isinstance(reply.data, list):
                    raise ProbeError(f"GET /users/@me/spaces: HTTP {reply.status}")
                spaces.append([s["id"] for s in reply.data])
            shared = [s for s in spaces[0] if s in spaces[1]]
            for space in shared:
                reply = await self.rest("GET", f"/spaces/{space}/channels", user=self.a)
                texts = [c["id"] for c in reply.data or [] if c.get("type", "text") == "text"]
                if texts:
                    self._channel = str(texts[0])
                    break
            else:
                raise ProbeError("the two accounts share no space with a text channel")
        return self._channel

    # -------------------------------------------------------------- REST

    async def rest(
        self, method: str, path: str, *, user: User | None = None, auth: str | None = None,
        json_body: Any = None, body: str | None = None, content_type: str | None = None,
    ) -> Reply:
        """One call below /api/v1 (or a full path starting with /api); ProbeError when
        the server does not answer."""
        headers = {}
        if user is not None:
            headers["Authorization"] = user.auth
        elif auth is not None:
            headers["Authorization"] = auth
        if json_body is not None:
            body, content_type = json.dumps(json_body), content_type or "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = self.target.origin + (path if path.startswith(API) else API + path)
        try:
            async with self.http.request(
                method, url, data=body.encode() if body is not None else None,
                headers=headers, ssl=self.ssl, timeout=aiohttp.ClientTimeout(total=DEADLINE),
            ) as resp:
                text = await resp.text(errors="replace")
                return Reply(resp.status, resp.headers.get("Content-Type"), text,
                             dict(resp.headers))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ProbeError(f"{method} {path}: no answer ({type(exc).__name__}: {exc})") from None

    async def post(self, user: User, text: str, nonce: str | None = None) -> Frame:
        """POST a message to the shared channel; it is deleted when the run ends."""
        cid = await self.channel()
        payload: dict[str, Any] = {"content": self.tag(text)}
        if nonce is not None:
            payload["nonce"] = nonce
        reply = await self.rest("POST", f"/channels/{cid}/messages", user=user, json_body=payload)
        message = reply.data
        if reply.status != 200 or not isinstance(message, dict) or "id" not in message:
            raise ProbeError(f"POST /channels/{cid}/messages: HTTP {reply.status}")
        self._posted.append((user, cid, str(message["id"])))
        return message

    async def clean_up(self) -> None:
        """Close every socket still open; delete what the probes posted (best effort)."""
        for sock in self._sockets:
            await sock.close()
        for user, cid, mid in dict.fromkeys(self._posted):
            with contextlib.suppress(ProbeError):
                await self.rest("DELETE", f"/channels/{cid}/messages/{mid}", user=user)

    # -------------------------------------------------------------- gateway

    async def connect(self) -> tuple[Socket, Frame]:
        """A new gateway socket and its first frame (HELLO on a conformant server)."""
        try:
            ws = await self.http.ws_connect(
                self.target.gateway, ssl=self.ssl, timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                max_msg_size=0, heartbeat=None,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ProbeError(f"gateway: cannot connect ({type(exc).__name__}: {exc})") from None
        sock = Socket(ws)
        self._sockets.append(sock)
        first = await sock.next()
        if isinstance(first, Ended):
            raise ProbeError(f"gateway: {first.describe()} before HELLO")
        return sock, first

    async def identify(
        self, user: User, intents: tuple[str, ...] | list[str] = INTENTS
    ) -> Opened:
        """HELLO, IDENTIFY, READY; ProbeError when READY does not come."""
        sock, hello = await self.connect()
        await sock.send(identify_frame(user, intents))
        ready = await sock.next()
        if isinstance(ready, Ended) or ready.get("type") != "ready":
            what = ready.describe() if isinstance(ready, Ended) else compact(ready)[:120]
            raise ProbeError(f"IDENTIFY answered with {what}, not READY")
        return Opened(sock, hello, ready)

    async def resume(self, user: User, session_id: str, seq: int) -> Socket:
        """A new socket, HELLO read, RESUME sent."""
        sock, _ = await self.connect()
        await sock.send(resume_frame(user, session_id, seq))
        return sock
