"""Just enough of an Accord server (REST + gateway, one space, one channel) to
drive the real ClientCore through the driver over TLS. Not the fake server: no
faults API, no database; tests poke its attributes directly."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

SPACE = {"id": "10", "name": "Accord", "slug": "accord"}
CHANNEL = {"id": "100", "name": "general", "space_id": "10", "type": "text"}
USERS = {"alice": {"id": "1", "username": "alice"}, "bob": {"id": "2", "username": "bob"}}


@dataclass
class Session:
    id: str
    seq: int = 1  # READY is 1
    events: list[dict[str, Any]] = field(default_factory=list)  # dispatched frames
    ws: web.WebSocketResponse | None = None
    transport: asyncio.Transport | None = None  # of `ws`, for cutting it


class MiniAccord:
    def __init__(self, heartbeat_ms: int = 100, password: str = "password") -> None:
        self.heartbeat_ms = heartbeat_ms
        self.password = password
        self.tokens: set[str] = set()
        self.messages: list[dict[str, Any]] = []
        self.sessions: dict[str, Session] = {}
        self.heartbeats = 0
        self.identifies = 0
        self.resumes = 0
        self.hang_posts = False  # POST /messages never answers
        self.hang_lists = False  # GET /messages never answers
        self.acks = True  # answer heartbeats with op 4
        self.close_frames: list[tuple[int, str]] = []  # what clients closed with
        self._release = asyncio.Event()
        self._next_id = 1000
        self.app = web.Application()
        api = "/api/v1"
        self.app.router.add_route("*", f"{api}/auth/login", self.login)
        self.app.router.add_get(f"{api}/users/@me", self.me)
        self.app.router.add_get(f"{api}/users/@me/spaces", self.spaces)
        self.app.router.add_get(f"{api}/spaces/10", self.space)
        self.app.router.add_get(f"{api}/spaces/10/channels", self.channels)
        self.app.router.add_get(f"{api}/spaces/10/members", self.empty_list)
        self.app.router.add_get(f"{api}/spaces/10/roles", self.empty_list)
        self.app.router.add_get(f"{api}/channels/100/messages", self.list_messages)
        self.app.router.add_post(f"{api}/channels/100/messages", self.create_message)
        self.app.router.add_get("/ws", self.gateway)
        self.app.on_shutdown.append(self._shutdown)

    # ----------------------------------------------------------------- test controls

    def drop_all(self) -> None:
        """Cut every gateway connection without a close frame (sessions stay parked)."""
        for session in self.sessions.values():
            if session.transport is not None:
                session.transport.abort()
            session.ws = session.transport = None

    def post(self, author: str, content: str) -> dict[str, Any]:
        """Store a message and dispatch `message.create` to every session (parked
        sessions buffer it for replay)."""
        self._next_id += 1
        message = {
            "id": str(self._next_id),
            "channel_id": CHANNEL["id"],
            "space_id": SPACE["id"],
            "author_id": USERS[author]["id"],
            "content": content,
            "type": "default",
            "timestamp": "2026-01-01 00:00:00",
        }
        self.messages.append(message)
        for session in self.sessions.values():
            session.seq += 1
            frame = {"op": 0, "type": "message.create", "data": message, "seq": session.seq}
            session.events.append(frame)
            if session.ws is not None and not session.ws.closed:
                asyncio.get_running_loop().create_task(session.ws.send_str(json.dumps(frame)))
        return message

    # ----------------------------------------------------------------- REST

    async def login(self, request: web.Request) -> web.Response:
        if request.method == "GET":  # the add-server probe
            return web.Response(status=405)
        body = await request.json()
        if body.get("password") != self.password or body.get("username") not in USERS:
            error = {"code": "unauthorized", "message": "invalid credentials"}
            return web.json_response({"error": error}, status=401)
        token = secrets.token_hex(32)
        self.tokens.add(token)
        return web.json_response({"data": {"user": USERS[body["username"]], "token": token}})

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response({"data": USERS["alice"]})

    async def spaces(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [SPACE]})

    async def space(self, request: web.Request) -> web.Response:
        return web.json_response({"data": SPACE})

    async def channels(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [CHANNEL]})

    async def empty_list(self, request: web.Request) -> web.Response:
        return web.json_response({"data": []})

    async def list_messages(self, request: web.Request) -> web.Response:
        if self.hang_lists:
            await self._release.wait()
        limit = int(request.query.get("limit", "50"))
        after = request.query.get("after")
        if after:
            page = [m for m in self.messages if int(m["id"]) > int(after)][:limit]
        else:
            page = list(reversed(self.messages))[:limit]
        return web.json_response({"data": page})

    async def create_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.hang_posts:
            await self._release.wait()
        return web.json_response({"data": self.post("alice", str(body["content"]))})

    # ----------------------------------------------------------------- gateway

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 5, "data": {"heartbeat_interval": self.heartbeat_ms}}))
        session: Session | None = None
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.CLOSE:
                self.close_frames.append((int(msg.data), str(msg.extra or "")))
                if session is not None:  # as the reference: a client close frame ends it
                    self.sessions.pop(session.id, None)
                break
            if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                break
            if msg.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op, data = frame.get("op"), frame.get("data")
            if op == 1:
                self.heartbeats += 1
                if self.acks:
                    await ws.send_str('{"op":4}')
            elif op == 2:
                self.identifies += 1
                session = Session(secrets.token_hex(8), ws=ws, transport=request.transport)
                self.sessions[session.id] = session
                ready: dict[str, Any] = {
                    "session_id": session.id,
                    "user_id": "1",
                    "user": USERS["alice"],
                }
                ready |= {"spaces": [SPACE], "channels": [CHANNEL], "members": [], "roles": []}
                await ws.send_str(json.dumps({"op": 0, "type": "ready", "data": ready, "seq": 1}))
            elif op == 3:
                self.resumes += 1
                session = self.sessions.get(data.get("session_id"))
                # as the reference: unknown or ended, or its old socket still open
                if session is None or (session.ws is not None and not session.ws.closed):
                    session = None
                    await ws.send_str('{"op":7,"data":{"resumable":false}}')
                    continue
                session.ws, session.transport = ws, request.transport
                missed = [f for f in session.events if f["seq"] > int(data.get("seq", 0))]
                for event in missed:
                    await ws.send_str(json.dumps(event))
                resumed = {"session_id": session.id, "seq": session.seq, "replayed": len(missed)}
                frame = {"op": 0, "type": "resumed", "data": resumed, "seq": session.seq}
                await ws.send_str(json.dumps(frame))
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def _shutdown(self, app: web.Application) -> None:
        self._release.set()
