"""Inline errors on single messages and the edit mode they re-enter
(client-behaviour.md s.5). Signals name messages by (server, message_id) only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.ui import texts


@dataclass(frozen=True, slots=True)
class InlineError:
    text: str
    hide_at: float


class MessageErrorsView:
    """One server's inline message errors and which of its messages is in edit mode."""

    def __init__(self) -> None:
        self.errors: dict[str, InlineError] = {}  # message_id -> error
        self.editing: str | None = None

    def edit_started(self, message_id: str) -> None:
        self.editing = message_id

    def edit_failed(self, t: float, hide_after: float, message_id: str, error: str) -> None:
        self.editing = message_id  # the failed edit re-enters edit mode
        self.errors[message_id] = InlineError(texts.edit_failed(error), t + hide_after)

    def delete_failed(self, t: float, hide_after: float, message_id: str, error: str) -> None:
        self.errors[message_id] = InlineError(texts.delete_failed(error), t + hide_after)

    def edited(self, message_id: str) -> None:
        if self.editing == message_id:
            self.editing = None
        self.errors.pop(message_id, None)

    def deleted(self, message_id: str) -> None:
        self.edited(message_id)

    def next_deadline(self, now: float) -> float | None:
        pending = [e.hide_at for e in self.errors.values() if e.hide_at > now]
        return min(pending, default=None)

    def render(self, now: float) -> dict[str, Any]:
        shown = {mid: e.text for mid, e in self.errors.items() if now < e.hide_at}
        return {"inline_errors": shown, "editing": self.editing}
