"""The message composer of one channel: enabled state, placeholder, the text
left in it, and its one outcome label (client-behaviour.md s.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.core.protocol import Status
from client.ui import texts

# display status (ServerConnectionView.display_status) -> (enabled, placeholder);
# `connected` is filled in with the channel name.
_BY_STATUS: dict[Status, tuple[bool, str]] = {
    Status.SYNCING: (False, texts.COMPOSER_SYNCING),
    Status.DISCONNECTED: (True, texts.COMPOSER_QUEUEING),
    Status.RECONNECTING: (True, texts.COMPOSER_QUEUEING),
    Status.ERROR: (False, texts.COMPOSER_OFFLINE),
    Status.CONNECTING: (False, texts.COMPOSER_OFFLINE),
    Status.NONE: (False, texts.COMPOSER_OFFLINE),
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
        self._out: list[tuple[str, str]] = []  # (nonce, content) of direct sends under way
        self._failed: str | None = None  # the nonce whose failure the label shows

    def sent(self) -> None:
        """A send went out or into the queue: the input empties, the label clears."""
        self.text = ""
        self.label = None
        self._failed = None

    def sending(self, nonce: str, content: str) -> None:
        self.sent()
        self._out.append((nonce, content))

    def queued(self, t: float, hide_after: float) -> None:
        self.text = ""
        self.label = Label(texts.LABEL_QUEUED, t + hide_after)
        self._failed = None

    def queue_full(self, t: float, hide_after: float, content: str) -> None:
        self.text = content  # the text stays in the composer
        self.label = Label(texts.LABEL_QUEUE_FULL, t + hide_after)
        self._failed = None

    def send_failed(self, t: float, hide_after: float, content: str, error: str) -> None:
        self.text = content  # restored so the user can send it again
        self.label = Label(texts.failed_to_send(error), t + hide_after)
        # direct sends finish in order: the first one under way with this text
        match = next((i for i, (_, text) in enumerate(self._out) if text == content), None)
        self._failed = self._out.pop(match)[0] if match is not None else None

    def settled(self, nonce: str) -> None:
        """`message_sent` for `nonce`: when it is the send whose failure the label
        shows (an unknown outcome found delivered, s.6), the restored text and
        the label go; any other outcome's label stays."""
        self._out = [(n, text) for n, text in self._out if n != nonce]
        if self._failed == nonce:
            self.sent()

    def status_changed(self) -> None:
        self.label = None

    def next_deadline(self, now: float) -> float | None:
        if self.label is not None and self.label.hide_at > now:
            return self.label.hide_at
        return None

    def render(self, now: float, display_status: Status, channel_name: str) -> dict[str, Any]:
        if display_status == Status.CONNECTED:
            enabled, placeholder = True, texts.composer_placeholder_connected(channel_name)
        else:
            enabled, placeholder = _BY_STATUS[display_status]
        label = self.label.text if self.label is not None and self.label.visible(now) else ""
        return {"enabled": enabled, "placeholder": placeholder, "text": self.text, "label": label}
