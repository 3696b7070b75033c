"""An Accord server for driving the real ClientCore through the driver over TLS:
the fake server's own ServerCore (fake_server.core, in-memory SQLite) behind its
aiohttp layer (fake_server.app.CoreApp), with short seed ids (space 10, channel
100) and a few switches the tests flip. Tests serve `app` themselves (their TLS)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fake_server.app import CoreApp
from fake_server.config import ServerConfig
from fake_server.core import ServerCore
from fake_server.history import History
from fake_server.store import MEMORY, Store

SEED_IDS = ("1", "2", "3", "10", "100", "101")  # alice bob carol; the space; general random
CHANNEL_ID = "100"
_HANG_POSTS = {"kind": "rest_hang", "method": "POST", "path": "/channels/*/messages"}
_HANG_LISTS = {"kind": "rest_hang", "method": "GET", "path": "/channels/*/messages"}


class MiniAccord:
    def __init__(self, heartbeat_ms: int = 100, password: str = "password") -> None:
        config = ServerConfig(db=MEMORY, control_port=None, heartbeat_interval_ms=heartbeat_ms,
                              rate_limit=None)
        store = Store(MEMORY, seed_ids=SEED_IDS)
        store.set_password("alice", password)
        self.core = ServerCore(config, store, History(None))
        self.tokens: list[str] = []
        issue = store.token_hex

        def token_hex(nbytes: int) -> str:
            self.tokens.append(issue(nbytes))
            return self.tokens[-1]

        store.token_hex = token_hex
        self.host = CoreApp(self.core)
        self.app: web.Application = self.host.app
        self._switches: dict[str, str] = {}  # switch -> standing fault id

    # ----------------------------------------------------------------- test controls

    def _switch(self, name: str, on: bool, fault: dict[str, Any]) -> None:
        fault_id = self._switches.pop(name, None)
        if fault_id is not None:
            self.core.board.clear(fault_id)
        if on:
            result = self.host.apply(fault)
            assert result.id is not None
            self._switches[name] = result.id

    @property
    def hang_posts(self) -> bool:
        """POST /messages never answers (until the client gives up)."""
        return "hang_posts" in self._switches

    @hang_posts.setter
    def hang_posts(self, on: bool) -> None:
        self._switch("hang_posts", on, _HANG_POSTS)

    @property
    def hang_lists(self) -> bool:
        """GET /messages never answers."""
        return "hang_lists" in self._switches

    @hang_lists.setter
    def hang_lists(self, on: bool) -> None:
        self._switch("hang_lists", on, _HANG_LISTS)

    @property
    def acks(self) -> bool:
        """Heartbeats are answered with op 4 (off: a standing withhold_acks)."""
        return "acks" not in self._switches

    @acks.setter
    def acks(self, on: bool) -> None:
        self._switch("acks", not on, {"kind": "withhold_acks"})

    def drop_all(self) -> None:
        """Cut every gateway connection without a close frame (sessions stay parked)."""
        self.host.apply({"kind": "drop"})

    def post(self, author: str, content: str) -> dict[str, Any]:
        """Store a message as `author` and dispatch `message.create` (parked sessions
        buffer it for replay)."""
        result = self.host.apply({"kind": "act_as", "user": author, "action": "post",
                                  "channel": CHANNEL_ID, "content": content})
        message: dict[str, Any] = result.result["message"]
        return message

    # ----------------------------------------------------------------- what happened

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.core.messages(CHANNEL_ID)

    def _client_ops(self) -> list[int]:
        return [r["data"]["frame"]["op"] for r in self.core.history_records()
                if r["kind"] == "frame" and r["name"] == "in" and "frame" in r["data"]]

    @property
    def heartbeats(self) -> int:
        return self._client_ops().count(1)

    @property
    def identifies(self) -> int:
        return self._client_ops().count(2)

    @property
    def resumes(self) -> int:
        return self._client_ops().count(3)

    @property
    def close_frames(self) -> list[tuple[int, str]]:
        """What clients closed with (close frames only)."""
        return [(r["data"]["code"], r["data"]["reason"]) for r in self.core.history_records()
                if r["kind"] == "conn" and r["name"] == "close" and r["data"]["by"] == "client"]
