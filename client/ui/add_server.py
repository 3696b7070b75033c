"""The add-server dialog: button text while probing and connecting, the error
label, and which server it is adding (client-behaviour.md s.5)."""

from __future__ import annotations

from typing import Any

from client.ui import texts


class AddServerDialog:
    def __init__(self) -> None:
        self.server: str | None = None  # the server being added, while busy
        self.button = texts.ADD
        self.error = ""

    @property
    def busy(self) -> bool:
        return self.button != texts.ADD

    def probe_started(self, server: str) -> None:
        self.server, self.button, self.error = server, texts.CHECKING, ""

    def probe_ok(self, server: str) -> None:
        self.server, self.button = server, texts.CONNECTING_BUTTON

    def connected(self, server: str) -> None:
        if self.server == server:
            self.server, self.button, self.error = None, texts.ADD, ""

    def failed(self, server: str, error: str) -> None:
        # Also covers a refusal before any probe (`Only https:// servers are supported`).
        self.server, self.button, self.error = None, texts.ADD, error

    def render(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "button": self.button,
            "busy": self.busy,
            "error": self.error,
        }
