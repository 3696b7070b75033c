"""The fake server's control API, as the rig uses it, plus reading what it stored.

Control calls go over plain HTTP on loopback with the server's control token
(docs/fake-server.md). What the server stored and recorded is read from its files
(SQLite database, history JSON lines), which survive a killed process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

CONTROL_TIMEOUT = 10.0


class ControlError(RuntimeError):
    """The fake server refused or failed a control request."""


class FakeServerControl:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CONTROL_TIMEOUT)
            )
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.request(
                method, self.base_url + path, json=body, headers=headers
            ) as response:
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ControlError(f"control {method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status >= 400:
            error = (payload or {}).get("error", {}) if isinstance(payload, dict) else {}
            raise ControlError(f"control {method} {path}: {error.get('message', response.status)}")
        return payload.get("data") if isinstance(payload, dict) else payload

    async def apply(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return dict(await self._request("POST", "/faults", dict(spec)) or {})

    async def reset(self) -> None:
        await self._request("POST", "/reset")

    async def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        query = f"?channel_id={channel_id}" if channel_id else ""
        return list(await self._request("GET", f"/messages{query}") or [])

    async def sessions(self) -> list[dict[str, Any]]:
        """The gateway sessions: `[{session_id, user, seq, state: open|parked, buffered}]`."""
        return list(await self._request("GET", "/sessions") or [])

    async def session_counts(self) -> dict[str, int]:
        """`{open, parked}`: the session counts without the list (cheap to poll)."""
        return dict(await self._request("GET", "/sessions?count=1") or {})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def stored_messages(db: Path) -> list[dict[str, Any]]:
    """Every message in the fake server's database, oldest first."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT m.id, m.channel_id, m.author_id, m.content, m.nonce, c.name AS channel "
            "FROM messages m LEFT JOIN channels c ON c.id = m.channel_id "
            "ORDER BY CAST(m.id AS INTEGER)"
        ).fetchall()
    return [dict(r) for r in rows]


def user_id(db: Path, username: str) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
    return str(row[0]) if row else None


def channel_ids(db: Path) -> dict[str, str]:
    """Channel name -> id."""
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0) as conn:
        return {str(name): str(cid) for cid, name in conn.execute("SELECT id, name FROM channels")}


def read_history(path: Path) -> list[dict[str, Any]]:
    """The server's history records (a torn last line, from a kill, is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
