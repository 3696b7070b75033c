"""What users do (post, edit, delete, react, type): stored, then dispatched.

The REST handlers and the `act_as` fault both call these, so a message another
user "posts" through the control API is indistinguishable from a REST one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fake_server.errors import ApiError
from fake_server.store import Store, iso_text

# dispatch(event_type, data, space_id, exclude_user_id)
Dispatch = Callable[[str, Any, str, "str | None"], int]


class Operations:
    def __init__(self, store: Store, dispatch: Dispatch, dedupe_nonce: bool = False) -> None:
        self.store = store
        self.dispatch = dispatch
        self.dedupe_nonce = dedupe_nonce
        """The opt-in behaviour: a known (author, nonce) returns the stored message."""

    def channel_for(self, user: dict[str, Any], channel_ref: str) -> dict[str, Any]:
        channel = self.store.channel(channel_ref) or self.store.channel_by_name(channel_ref)
        if channel is None:
            raise ApiError(404, f"unknown channel {channel_ref}")
        if not self.store.is_member(channel["space_id"], user["id"]):
            raise ApiError(403, "not a member of this space")
        return channel

    def _own_message(
        self, user: dict[str, Any], channel: dict[str, Any], message_id: str
    ) -> dict[str, Any]:
        message = self.store.message(message_id, user["id"])
        if message is None or message["channel_id"] != channel["id"]:
            raise ApiError(404, f"unknown message {message_id}")
        if message["author_id"] != user["id"]:
            raise ApiError(403, "only the author can change this message")
        return message

    def post(
        self,
        user: dict[str, Any],
        channel: dict[str, Any],
        content: str,
        reply_to: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """Store and dispatch. The nonce is kept in the store only (for the rig), never
        answered; the reference neither echoes nor deduplicates it."""
        if self.dedupe_nonce and nonce is not None:
            known = self.store.message_by_nonce(user["id"], nonce)
            if known is not None:
                return known
        message = self.store.create_message(channel, user["id"], content, reply_to, nonce)
        self.dispatch("message.create", message, channel["space_id"], None)
        return message

    def edit(
        self, user: dict[str, Any], channel: dict[str, Any], message_id: str, content: str
    ) -> dict[str, Any]:
        self._own_message(user, channel, message_id)
        message = self.store.edit_message(message_id, content, user["id"])
        assert message is not None
        self.dispatch("message.update", message, channel["space_id"], None)
        return message

    def delete(self, user: dict[str, Any], channel: dict[str, Any], message_id: str) -> None:
        self._own_message(user, channel, message_id)
        self.store.delete_message(message_id)
        data = {"id": message_id, "channel_id": channel["id"], "space_id": channel["space_id"]}
        self.dispatch("message.delete", data, channel["space_id"], None)

    def react(
        self, user: dict[str, Any], channel: dict[str, Any], message_id: str, emoji: str, on: bool
    ) -> None:
        message = self.store.message(message_id)
        if message is None or message["channel_id"] != channel["id"]:
            raise ApiError(404, f"unknown message {message_id}")
        if self.store.set_reaction(message_id, user["id"], emoji, on):
            data = {
                "channel_id": channel["id"],
                "message_id": message_id,
                "user_id": user["id"],
                "emoji": emoji,
            }
            self.dispatch(
                "reaction.add" if on else "reaction.remove", data, channel["space_id"], None
            )

    def typing(self, user: dict[str, Any], channel: dict[str, Any]) -> None:
        data = {"channel_id": channel["id"], "user_id": user["id"],
                "timestamp": iso_text(self.store.clock())}
        # The typer's own sessions do not need to hear about it.
        self.dispatch("typing.start", data, channel["space_id"], user["id"])
