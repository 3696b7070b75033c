"""What the client knows about one server: channels, members, roles, messages.

Everything is keyed by the server's own ids inside one `ServerCache`, and the
core holds one cache per configured server, so equal ids on two servers never
mix. Pure bookkeeping: the core decides which signals a change is worth.
"""

from __future__ import annotations

from typing import Any


def str_id(value: Any) -> str | None:
    """Ids are decimal strings on the wire; accept ints, refuse anything else."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def id_order(message_id: str) -> tuple[int, int, str]:
    """Snowflakes sort numerically; anything else after them, by text."""
    return (0, int(message_id), "") if message_id.isdigit() else (1, 0, message_id)


def dict_items(data: Any) -> list[dict[str, Any]]:
    """The objects of a list payload; anything else is no items."""
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


class ServerCache:
    def __init__(self) -> None:
        self.channels: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.roles: list[dict[str, Any]] = []
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> id -> message
        # Ids the server deleted. Ids are never reused, so a copy that arrives later
        # (a POST answer held past the delete, a page fetched before it) is stale.
        self.deleted: set[str] = set()

    # ------------------------------------------------------------------ channels

    def set_channels(self, data: Any) -> None:
        """Replace the channel list (a payload that is not a list changes nothing)."""
        if not isinstance(data, list):
            return
        self.channels = {}
        for channel in dict_items(data):
            self.put_channel(channel)

    def put_channel(self, channel: dict[str, Any]) -> None:
        cid = str_id(channel.get("id"))
        if cid is not None:
            self.channels[cid] = channel

    def drop_channel(self, data: dict[str, Any]) -> None:
        cid = str_id(data.get("id"))
        if cid is not None:
            self.channels.pop(cid, None)

    def resolve_channel(self, ref: str) -> str | None:
        """A channel id from an id or a name."""
        if ref in self.channels:
            return ref
        for cid, channel in self.channels.items():
            if channel.get("name") == ref:
                return cid
        return None

    def channel_name(self, channel_id: str) -> str:
        return str(self.channels.get(channel_id, {}).get("name", ""))

    # ------------------------------------------------------------------ members, roles

    def set_members(self, data: Any) -> None:
        if isinstance(data, list):
            self.members = {}
            for member in dict_items(data):
                self.put_member(member)

    def put_member(self, member: dict[str, Any]) -> None:
        uid = str_id(member.get("user_id") or member.get("id"))
        if uid is not None:
            self.members[uid] = member

    def drop_member(self, data: dict[str, Any]) -> None:
        uid = str_id(data.get("user_id") or data.get("id"))
        if uid is not None:
            self.members.pop(uid, None)

    def set_roles(self, data: Any) -> None:
        if isinstance(data, list):
            self.roles = dict_items(data)

    # ------------------------------------------------------------------ messages

    def store_message(
        self, msg: dict[str, Any], channel_hint: str | None = None
    ) -> tuple[str, str, bool] | None:
        """Insert or replace; (channel_id, message_id, is_new), or None when the
        message has no usable id or channel. A deleted id is not stored again."""
        mid = str_id(msg.get("id"))
        cid = str_id(msg.get("channel_id")) or channel_hint
        if mid is None or cid is None:
            return None
        if mid in self.deleted:
            return cid, mid, False
        channel = self.messages.setdefault(cid, {})
        is_new = mid not in channel
        channel[mid] = msg
        return cid, mid, is_new

    def find_message(self, message_id: str) -> tuple[str, dict[str, Any]] | None:
        for cid, channel in self.messages.items():
            if message_id in channel:
                return cid, channel[message_id]
        return None

    def remove_message(self, message_id: str) -> str | None:
        """The server deleted it: remove it by id and never take it back; the channel
        it was in, or None if unknown."""
        self.deleted.add(message_id)
        found = self.find_message(message_id)
        if found is None:
            return None
        del self.messages[found[0]][message_id]
        return found[0]

    def ordered(self, channel_id: str) -> list[dict[str, Any]]:
        channel = self.messages.get(channel_id, {})
        return [dict(channel[k]) for k in sorted(channel, key=id_order)]

    def newest_id(self, channel_id: str) -> str | None:
        channel = self.messages.get(channel_id, {})
        return max(channel, key=id_order) if channel else None

    def apply_reaction(
        self, data: dict[str, Any], added: bool, own_user_id: str | None = None
    ) -> tuple[str, str] | None:
        """Count a reaction event into the message's `reactions`, in the reference
        server's shape: `null` when there are none, else `[{"emoji": {"id": null,
        "name": "👍"}, "count": N, "me": bool}]`. The event's emoji is a plain
        string (an `{id, name}` object is tolerated). (channel_id, message_id)
        when the message was known and the event usable."""
        mid = str_id(data.get("message_id"))
        found = self.find_message(mid) if mid else None
        name = emoji_name(data.get("emoji"))
        if mid is None or found is None or name is None:
            return None
        cid, msg = found
        counts = [dict(r) for r in dict_items(msg.get("reactions"))]
        entry = next((r for r in counts if emoji_name(r.get("emoji")) == name), None)
        if entry is None:
            entry = {"emoji": {"id": None, "name": name}, "count": 0, "me": False}
            counts.append(entry)
        count = entry.get("count")
        entry["count"] = (count if isinstance(count, int) else 0) + (1 if added else -1)
        if own_user_id is not None and str_id(data.get("user_id")) == own_user_id:
            entry["me"] = added
        kept = [r for r in counts if isinstance(r.get("count"), int) and r["count"] > 0]
        msg["reactions"] = kept or None
        return cid, mid


def emoji_name(emoji: Any) -> str | None:
    """A reaction's emoji: a plain string (events) or `{id, name}` (messages)."""
    if isinstance(emoji, str) and emoji:
        return emoji
    if isinstance(emoji, dict):
        name = emoji.get("name")
        return name if isinstance(name, str) and name else None
    return None
