"""The message list of one channel: loading state, click-to-retry texts and
failed entries (client-behaviour.md s.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.ui import texts

IDLE = "idle"
LOADING = "loading"
TIMED_OUT = "timed_out"
FAILED = "failed"
LOADED = "loaded"


@dataclass(frozen=True, slots=True)
class FailedEntry:
    """A queued message the server refused in a flush; the user may retry or discard."""

    nonce: str
    content: str
    error: str


class MessageListView:
    def __init__(self) -> None:
        self._state = IDLE
        self._error = ""
        self._timeout_at: float | None = None  # loading turns into "timed out"
        self.count: int | None = None  # messages the last successful load returned
        self.failed: dict[str, FailedEntry] = {}  # by nonce, in arrival order

    def loading(self, t: float, timeout: float) -> None:
        self._state, self._error, self._timeout_at = LOADING, "", t + timeout

    def loaded(self, count: int) -> None:
        # A late success after "timed out" still shows the messages.
        self._state, self._timeout_at, self.count = LOADED, None, count

    def fetch_failed(self, error: str) -> None:
        # A late failure replaces "timed out" with its own text.
        self._state, self._error, self._timeout_at = FAILED, error, None

    def add_failed(self, nonce: str, content: str, error: str) -> None:
        self.failed[nonce] = FailedEntry(nonce, content, error)

    def state(self, now: float) -> str:
        if self._state == LOADING and self._timeout_at is not None and now >= self._timeout_at:
            return TIMED_OUT
        return self._state

    def next_deadline(self, now: float) -> float | None:
        if self._state == LOADING and self._timeout_at is not None and self._timeout_at > now:
            return self._timeout_at
        return None

    def render(self, now: float) -> dict[str, Any]:
        state = self.state(now)
        text, red = "", False
        if state == LOADING:
            text = texts.LOADING
        elif state == TIMED_OUT:
            text, red = texts.LOADING_TIMED_OUT, True
        elif state == FAILED:
            text, red = texts.failed_to_load(self._error), True
        return {
            "state": state,
            "text": text,
            "color": "red" if red else None,
            "clickable": red,  # both red texts retry on click
            "count": self.count,
            "failed_entries": [
                {"nonce": e.nonce, "content": e.content, "text": texts.failed_to_send(e.error)}
                for e in self.failed.values()
            ],
        }
