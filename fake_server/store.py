"""Durable state in SQLite: users, tokens, spaces, channels, members, messages, reactions.

Every write commits at once (WAL), so a `kill -9` loses nothing that was answered.
`Store(Path(":memory:"))` is an in-memory database (simulation). The clock (epoch
seconds, for timestamps and ids) and the token source are attributes the server
core replaces with its own (virtual time, a seeded RNG).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fake_server.snowflake import SnowflakeGenerator

SEED_USERS = ("alice", "bob", "carol")
SEED_PASSWORD = "password"
SEED_SPACE = ("Accord", "accord")
SEED_CHANNELS = ("general", "random")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, display_name TEXT,
    password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, slug TEXT UNIQUE NOT NULL,
    owner_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY, space_id TEXT NOT NULL, name TEXT NOT NULL,
    position INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    space_id TEXT NOT NULL, user_id TEXT NOT NULL, joined_at TEXT NOT NULL,
    PRIMARY KEY (space_id, user_id));
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, space_id TEXT NOT NULL,
    author_id TEXT NOT NULL, content TEXT NOT NULL, timestamp TEXT NOT NULL,
    edited_at TEXT, reply_to TEXT, nonce TEXT);
DROP INDEX IF EXISTS messages_nonce;
CREATE INDEX IF NOT EXISTS messages_author_nonce ON messages (author_id, nonce)
    WHERE nonce IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_channel ON messages (channel_id, id);
CREATE TABLE IF NOT EXISTS reactions (
    message_id TEXT NOT NULL, user_id TEXT NOT NULL, emoji TEXT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji));
"""


def utc_text(epoch: float | None = None) -> str:
    """The protocol's timestamp text: UTC `YYYY-MM-DD HH:MM:SS`."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() if epoch is None else epoch))


def iso_text(epoch: float | None = None) -> str:
    """ISO 8601 without a zone, as the reference's `typing.start.timestamp`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() if epoch is None else epoch))


def _hash_password(password: str) -> str:
    # A fake server: a salted sha256 is plenty, and keeps seeding fast.
    return hashlib.sha256(b"accord-fake:" + password.encode()).hexdigest()


MEMORY = Path(":memory:")


class Store:
    def __init__(
        self, path: Path, clock: Callable[[], float] = time.time,
        token_hex: Callable[[int], str] = secrets.token_hex,
        seed_ids: Iterable[str] | None = None,
    ) -> None:
        """`seed_ids`: ids for a new database's seed rows, in order (users, the space,
        its channels) instead of snowflakes (a test fixture with short ids)."""
        self._clock = clock
        self._member_ids: dict[str, frozenset[str]] = {}
        self._token_users: dict[str, dict[str, Any]] = {}
        self._spaces: dict[str, dict[str, Any] | None] = {}
        self._space_channels: dict[str, list[dict[str, Any]]] = {}
        self._channels: dict[str, dict[str, Any] | None] = {}
        # Member pages as answered (a crowd's resyncs ask for the same page thousands
        # of times); only `register` changes membership and clears both caches.
        self._member_pages: dict[tuple[str, int, str | None], list[dict[str, Any]]] = {}
        self.token_hex = token_hex
        """token_hex(nbytes) -> hex text; the core passes one drawn from its seeded RNG."""
        if path != MEMORY:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        floor = self._db.execute("SELECT MAX(CAST(id AS INTEGER)) FROM messages").fetchone()[0]
        self.ids = SnowflakeGenerator(int(floor or 0), clock)
        if self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0:
            self._seed(iter(seed_ids) if seed_ids is not None else None)

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.ids.clock = clock

    def now_text(self) -> str:
        return utc_text(self._clock())

    def close(self) -> None:
        self._db.close()

    def _seed(self, seed_ids: Iterator[str] | None) -> None:
        def new_id() -> str:
            return next(seed_ids) if seed_ids is not None else self.ids.next()

        now = self.now_text()
        with self._db:
            self._db.execute("BEGIN")
            user_ids = []
            for name in SEED_USERS:
                uid = new_id()
                user_ids.append(uid)
                self._db.execute(
                    "INSERT INTO users VALUES (?,?,?,?,?)",
                    (uid, name, name.capitalize(), _hash_password(SEED_PASSWORD), now),
                )
            space_id = new_id()
            self._db.execute(
                "INSERT INTO spaces VALUES (?,?,?,?,?)",
                (space_id, SEED_SPACE[0], SEED_SPACE[1], user_ids[0], now),
            )
            for pos, channel in enumerate(SEED_CHANNELS):
                self._db.execute(
                    "INSERT INTO channels VALUES (?,?,?,?,?)",
                    (new_id(), space_id, channel, pos, now),
                )
            for uid in user_ids:
                self._db.execute("INSERT INTO members VALUES (?,?,?)", (space_id, uid, now))

    # ------------------------------------------------------------------ users, tokens

    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone()
        return _user_json(row) if row else None

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone()
        return _user_json(row) if row else None

    def users(self) -> list[dict[str, Any]]:
        return [_user_json(r) for r in self._db.execute("SELECT * FROM users ORDER BY id")]

    def users_sharing_spaces(self, user_id: str) -> list[dict[str, Any]]:
        """`user_id` and every user who is a member of one of its spaces."""
        rows = self._db.execute(
            "SELECT * FROM users WHERE id=? OR id IN (SELECT m.user_id FROM members m WHERE"
            " m.space_id IN (SELECT space_id FROM members WHERE user_id=?)) ORDER BY id",
            (user_id, user_id),
        )
        return [_user_json(r) for r in rows]

    def check_password(self, username: str, password: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone()
        if row is None or row["password_hash"] != _hash_password(password):
            return None
        return _user_json(row)

    def register(self, username: str, password: str, display_name: str | None) -> dict[str, Any]:
        self._member_ids.clear()
        self._member_pages.clear()
        uid = self.ids.next()
        now = self.now_text()
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO users VALUES (?,?,?,?,?)",
                (uid, username, display_name or username, _hash_password(password), now),
            )
            for space in self._db.execute("SELECT id FROM spaces").fetchall():
                self._db.execute("INSERT INTO members VALUES (?,?,?)", (space["id"], uid, now))
        user = self.user(uid)
        assert user is not None
        return user

    def set_password(self, username: str, password: str) -> None:
        self._db.execute("UPDATE users SET password_hash=? WHERE username=?",
                         (_hash_password(password), username))

    def issue_token(self, user_id: str) -> str:
        token = self.token_hex(32)
        self._db.execute("INSERT INTO tokens VALUES (?,?,?)", (token, user_id, self._clock()))
        return token

    def user_for_token(self, token: str) -> dict[str, Any] | None:
        """Cached: every authenticated request asks. Revoking clears the cache; no
        store method changes what a user's JSON holds."""
        if token not in self._token_users:
            row = self._db.execute(
                "SELECT u.* FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token=?",
                (token,),
            ).fetchone()
            if row is None:
                return None  # not cached: the token may be issued later
            self._token_users[token] = _user_json(row)
        return dict(self._token_users[token])

    def revoke_token(self, token: str) -> None:
        self._token_users.clear()
        self._db.execute("DELETE FROM tokens WHERE token=?", (token,))

    def revoke_all_tokens(self, user_id: str | None = None) -> int:
        self._token_users.clear()
        if user_id is None:
            return self._db.execute("DELETE FROM tokens").rowcount
        return self._db.execute("DELETE FROM tokens WHERE user_id=?", (user_id,)).rowcount

    def tokens_of(self, user_id: str) -> list[str]:
        rows = self._db.execute("SELECT token FROM tokens WHERE user_id=?", (user_id,))
        return [str(r[0]) for r in rows.fetchall()]

    # ------------------------------------------------------------------ spaces, channels

    def spaces_of(self, user_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT s.* FROM spaces s JOIN members m ON m.space_id = s.id WHERE m.user_id=?"
            " ORDER BY s.id",
            (user_id,),
        ).fetchall()
        return [self._space_json(r) for r in rows]

    def space(self, space_id: str) -> dict[str, Any] | None:
        """Cached, as are channels: nothing creates, changes or deletes either while a
        store is open (the seed and the load conductor write them before)."""
        if space_id not in self._spaces:
            row = self._db.execute("SELECT * FROM spaces WHERE id=?", (space_id,)).fetchone()
            self._spaces[space_id] = self._space_json(row) if row else None
        found = self._spaces[space_id]
        return None if found is None else dict(found)

    def _space_json(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "slug": row["slug"],
            "description": None,
            "icon": None,
            "owner_id": row["owner_id"],
            "created_at": row["created_at"],
        }

    def is_member(self, space_id: str, user_id: str) -> bool:
        return user_id in self.member_ids(space_id)

    def member_ids(self, space_id: str) -> frozenset[str]:
        """Cached (every dispatch asks); only `register` changes membership."""
        known = self._member_ids.get(space_id)
        if known is None:
            rows = self._db.execute("SELECT user_id FROM members WHERE space_id=?", (space_id,))
            known = self._member_ids[space_id] = frozenset(r["user_id"] for r in rows)
        return known

    def members(self, space_id: str, limit: int, after: str | None) -> list[dict[str, Any]]:
        """One page of a space's members (cached: callers must not change it)."""
        key = (space_id, limit, after)
        page = self._member_pages.get(key)
        if page is None:
            rows = self._db.execute(
                "SELECT m.*, u.id AS uid FROM members m JOIN users u ON u.id = m.user_id"
                " WHERE m.space_id=? AND CAST(m.user_id AS INTEGER) > ? ORDER BY"
                " CAST(m.user_id AS INTEGER) LIMIT ?",
                (space_id, int(after or 0), limit),
            ).fetchall()
            # As the reference: the user's id and role ids (@everyone included), no
            # embedded user.
            page = self._member_pages[key] = [
                {
                    "user_id": r["user_id"],
                    "space_id": space_id,
                    "nickname": None,
                    "roles": [everyone_role_id(space_id)],
                    "joined_at": r["joined_at"],
                }
                for r in rows
            ]
        return page

    def roles(self, space_id: str) -> list[dict[str, Any]]:
        return [
            {
                "id": everyone_role_id(space_id),
                "name": "@everyone",
                "color": 0,
                "position": 0,
                "permissions": ["send_messages", "read_history", "add_reactions"],
            }
        ]

    def channels(self, space_id: str) -> list[dict[str, Any]]:
        if space_id not in self._space_channels:
            rows = self._db.execute(
                "SELECT * FROM channels WHERE space_id=? ORDER BY position", (space_id,)
            ).fetchall()
            self._space_channels[space_id] = [_channel_json(r) for r in rows]
        return [dict(c) for c in self._space_channels[space_id]]

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        if channel_id not in self._channels:
            row = self._db.execute("SELECT * FROM channels WHERE id=?", (channel_id,)).fetchone()
            self._channels[channel_id] = _channel_json(row) if row else None
        found = self._channels[channel_id]
        return None if found is None else dict(found)

    def channel_by_name(self, name: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT * FROM channels WHERE name=? ORDER BY id LIMIT 1", (name,)
        ).fetchone()
        return _channel_json(row) if row else None

    # ------------------------------------------------------------------ messages

    def message(self, message_id: str, viewer_id: str | None = None) -> dict[str, Any] | None:
        """A message as the API answers it; reactions' `me` is relative to `viewer_id`."""
        row = self._db.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
        return self._message_json(row, viewer_id) if row else None

    def message_by_nonce(self, author_id: str, nonce: str) -> dict[str, Any] | None:
        """The first message stored with this (author, nonce) (`dedupe_nonce`)."""
        row = self._db.execute(
            "SELECT * FROM messages WHERE author_id=? AND nonce=? ORDER BY CAST(id AS INTEGER)"
            " LIMIT 1",
            (author_id, nonce),
        ).fetchone()
        return self._message_json(row, author_id) if row else None

    def create_message(
        self,
        channel: dict[str, Any],
        author_id: str,
        content: str,
        reply_to: str | None,
        nonce: str | None,
    ) -> dict[str, Any]:
        """Store a message (twice if posted twice: nonces are kept, never unique)."""
        mid = self.ids.next()
        row = {"id": mid, "channel_id": channel["id"], "space_id": channel["space_id"],
               "author_id": author_id, "content": content, "timestamp": self.now_text(),
               "edited_at": None, "reply_to": reply_to, "nonce": nonce}
        self._db.execute("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)", tuple(row.values()))
        return self._message_json(row, author_id, None)  # new: no reactions yet

    def edit_message(self, message_id: str, content: str, viewer_id: str) -> dict[str, Any] | None:
        self._db.execute(
            "UPDATE messages SET content=?, edited_at=? WHERE id=?",
            (content, self.now_text(), message_id),
        )
        return self.message(message_id, viewer_id)

    def delete_message(self, message_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM reactions WHERE message_id=?", (message_id,))
            self._db.execute("DELETE FROM messages WHERE id=?", (message_id,))

    def messages(
        self, channel_id: str, limit: int, after: str | None, viewer_id: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """Without `after`: the newest `limit`, newest first; with it: ids above, oldest
        first. Returns (messages, has_more)."""
        if after is None:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE channel_id=? ORDER BY CAST(id AS INTEGER) DESC"
                " LIMIT ?",
                (channel_id, limit + 1),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE channel_id=? AND CAST(id AS INTEGER) > ?"
                " ORDER BY CAST(id AS INTEGER) LIMIT ?",
                (channel_id, int(after), limit + 1),
            ).fetchall()
        has_more = len(rows) > limit
        return self._messages_json(rows[:limit], viewer_id), has_more

    def all_messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """The rig's view (control API, Python API): every message with its stored `nonce`."""
        if channel_id is None:
            rows = self._db.execute("SELECT * FROM messages ORDER BY CAST(id AS INTEGER)")
        else:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE channel_id=? ORDER BY CAST(id AS INTEGER)",
                (channel_id,),
            )
        found = rows.fetchall()
        return [{**m, "nonce": r["nonce"]}
                for m, r in zip(self._messages_json(found, None), found, strict=True)]

    def set_reaction(self, message_id: str, user_id: str, emoji: str, on: bool) -> bool:
        """Add or remove one reaction; True if anything changed."""
        if on:
            sql = "INSERT OR IGNORE INTO reactions VALUES (?,?,?)"
        else:
            sql = "DELETE FROM reactions WHERE message_id=? AND user_id=? AND emoji=?"
        return self._db.execute(sql, (message_id, user_id, emoji)).rowcount > 0

    def _reactions(
        self, message_ids: list[str], viewer_id: str | None
    ) -> dict[str, list[dict[str, Any]]]:
        """The reactions of many messages in one query, per message id."""
        out: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(message_ids), 500):  # SQLite's bound-parameter limit
            chunk = message_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT message_id, emoji, COUNT(*) AS n, MAX(user_id = ?) AS me FROM reactions"
                f" WHERE message_id IN ({marks}) GROUP BY message_id, emoji ORDER BY emoji",
                (viewer_id, *chunk),
            ).fetchall()
            for r in rows:
                out.setdefault(r["message_id"], []).append(
                    {"emoji": {"id": None, "name": r["emoji"]}, "count": r["n"],
                     "me": bool(r["me"])})
        return out

    def _messages_json(
        self, rows: list[sqlite3.Row], viewer_id: str | None
    ) -> list[dict[str, Any]]:
        reactions = self._reactions([r["id"] for r in rows], viewer_id) if rows else {}
        return [self._message_json(r, viewer_id, reactions.get(r["id"])) for r in rows]

    def _message_json(
        self, row: sqlite3.Row | dict[str, Any], viewer_id: str | None,
        reactions: list[dict[str, Any]] | bool | None = False,
    ) -> dict[str, Any]:
        """The reference's message shape (accord-protocol.md s.4, s.7); never the nonce.
        `reactions`: already fetched (None: none); False: fetch them."""
        if reactions is False:
            reactions = self._reactions([row["id"]], viewer_id).get(row["id"])
        return {
            "id": row["id"],
            "channel_id": row["channel_id"],
            "space_id": row["space_id"],
            "author_id": row["author_id"],
            "content": row["content"],
            "type": "default",
            "timestamp": row["timestamp"],
            "edited_at": row["edited_at"],
            "mentions": [],
            "attachments": [],
            "embeds": [],
            "reactions": reactions or None,
            "reply_to": row["reply_to"],
            "tts": False,
            "pinned": False,
            "mention_everyone": False,
            "mention_roles": [],
            "flags": 0,
            "webhook_id": None,
            "thread_id": None,
            "reply_count": 0,
            "title": None,
        }


def everyone_role_id(space_id: str) -> str:
    return space_id  # @everyone shares the space id, Discord-style


def _user_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "avatar": None,
        "bot": False,
        "created_at": row["created_at"],
    }


def _channel_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "space_id": row["space_id"],
        "name": row["name"],
        "type": "text",
        "position": row["position"],
        "topic": None,
        "parent_id": None,
        "created_at": row["created_at"],
    }
