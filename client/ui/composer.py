"""The message composer of one channel: enabled state, placeholder, the text
left in it, and its one outcome label (client-behaviour.md s.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.ui import texts

# display status (ServerConnectionView.display_status) -> (enabled, placeholder);
# `connected` is filled in with the channel name.
_BY_STATUS: dict[str, tuple[bool, str]] = {
    "syncing": (False, texts.COMPOSER_SYNCING),
    "disconnected": (True, texts.COMPOSER_QUEUEING),
    "reconnecting": (True, texts.COMPOSER_QUEUEING),
    "error": (False, texts.COMPOSER_OFFLINE),
    "connecting": (False, texts.COMPOSER_OFFLINE),
    "none": (False, texts.COMPOSER_OFFLINE),
}


@dataclass(slots=True)
class Label:
    text: str
    hide_at: float

    def visible(self, now: float) -> bool:
        return now < self.hide_at


class ComposerView:
    """One channel's composer. The status comes from the server's view at render."""

    def __init__(self) -> None:
        self.text = ""  # what stays in the input after the last outcome
        self.label: Label | None = None

    def sent(self) -> None:
        """A send went out or into the queue: the input empties, the label clears."""
        self.text = ""
        self.label = None

    def queued(self, t: float, hide_after: float) -> None:
        self.text = ""
        self.label = Label(texts.LABEL_QUEUED, t + hide_after)

    def queue_full(self, t: float, hide_after: float, content: str) -> None:
        self.text = content  # the text stays in the composer
        self.label = Label(texts.LABEL_QUEUE_FULL, t + hide_after)

    def send_failed(self, t: float, hide_after: float, content: str, error: str) -> None:
        self.text = content  # restored so the user can send it again
        self.label = Label(texts.failed_to_send(error), t + hide_after)

    def status_changed(self) -> None:
        self.label = None

    def next_deadline(self, now: float) -> float | None:
        if self.label is not None and self.label.hide_at > now:
            return self.label.hide_at
        return None

    def render(self, now: float, display_status: str, channel_name: str) -> dict[str, Any]:
        if display_status == "connected":
            enabled, placeholder = True, texts.composer_placeholder_connected(channel_name)
        else:
            enabled, placeholder = _BY_STATUS[display_status]
        label = self.label.text if self.label is not None and self.label.visible(now) else ""
        return {"enabled": enabled, "placeholder": placeholder, "text": self.text, "label": label}
