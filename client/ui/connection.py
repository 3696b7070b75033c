"""One server's connection as the user sees it: status, banner, space-icon dot
and context menu (client-behaviour.md s.5), folded from the connection signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.core import signals as sig
from client.core.protocol import OUTAGE, Status
from client.ui import texts


@dataclass(frozen=True, slots=True)
class Banner:
    """A banner at rest. `hide_at` (run time) makes it disappear on its own."""

    color: str | None = None  # "yellow" | "green" | "red"; None = hidden
    text: str = ""
    button: bool = False
    hide_at: float | None = None

    def shown(self, now: float) -> bool:
        return self.color is not None and (self.hide_at is None or now < self.hide_at)

    def render(self, now: float) -> dict[str, Any]:
        if not self.shown(now):
            return {"visible": False, "color": None, "text": "", "button": None}
        return {
            "visible": True,
            "color": self.color,
            "text": self.text,
            "button": texts.RECONNECT_BUTTON if self.button else None,
        }


HIDDEN = Banner()


class ServerConnectionView:
    """Status and banner of one configured server."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = Status.NONE
        self.syncing = False
        self.banner = HIDDEN
        self.last_failure = ""  # the reason of the latest connection_failed
        # server_reconnected seen and its server_synced not yet: synced turns green.
        self._awaiting_sync_after_outage = False

    @property
    def display_status(self) -> Status:
        """The status with the `syncing` sub-state spelled out (what the composer uses)."""
        return Status.SYNCING if self.status is Status.CONNECTED and self.syncing else self.status

    def apply(self, t: float, name: str, args: tuple[Any, ...], green_for: float) -> None:
        """Fold one connection signal. `green_for` is the scaled green-banner time."""
        if name == sig.SERVER_CONNECTING:
            self._set(Status.CONNECTING, syncing=False, banner=Banner("yellow", texts.CONNECTING))
        elif name == sig.SERVER_CONNECTED:
            self._awaiting_sync_after_outage = False
            self._set(Status.CONNECTED, syncing=True, banner=HIDDEN)
        elif name == sig.SERVER_DISCONNECTED:
            code, reason = int(args[1]), str(args[2])
            self._set(
                Status.DISCONNECTED, False, Banner("yellow", texts.disconnected(code, reason))
            )
        elif name == sig.SERVER_RECONNECTING:
            text = texts.reconnecting_attempt(int(args[1]), int(args[2]))
            self._set(Status.RECONNECTING, False, Banner("yellow", text))
        elif name == sig.SERVER_REAUTHENTICATING:
            self._set(Status.RECONNECTING, False, Banner("yellow", texts.RECONNECTING))
        elif name == sig.SERVER_RECONNECTED:
            self._awaiting_sync_after_outage = True
            self._set(Status.CONNECTED, True, Banner("yellow", texts.SYNCING))
        elif name == sig.SERVER_SYNCED:
            banner = self.banner
            if self._awaiting_sync_after_outage:
                banner = Banner("green", texts.RECONNECTED, hide_at=t + green_for)
            self._awaiting_sync_after_outage = False
            self._set(Status.CONNECTED, False, banner)
        elif name == sig.SERVER_CONNECTION_FAILED:
            self.last_failure = str(args[1])
            self._awaiting_sync_after_outage = False
            banner = Banner("red", texts.connection_failed(self.last_failure), button=True)
            self._set(Status.ERROR, False, banner)
        elif name == sig.SERVER_REMOVED:
            self._awaiting_sync_after_outage = False
            self._set(Status.NONE, False, HIDDEN)

    def show_current_status(self) -> None:
        """On selecting this server or one of its channels (s.5): the banner is
        rebuilt from the status alone; attempt numbers and green banners go."""
        if self.status in OUTAGE:
            self.banner = Banner("yellow", texts.RECONNECTING)
        elif self.status == Status.CONNECTING:
            self.banner = Banner("yellow", texts.CONNECTING)
        elif self.status == Status.ERROR:
            self.banner = Banner("red", texts.connection_failed(self.last_failure), button=True)
        else:
            self.banner = HIDDEN

    @property
    def dot(self) -> str | None:
        if self.status in OUTAGE:
            return "yellow"
        return "red" if self.status == Status.ERROR else None

    @property
    def menu(self) -> list[str]:
        if self.status in OUTAGE or self.status == Status.ERROR:
            return [texts.RECONNECT_BUTTON, texts.REMOVE_SERVER]
        return [texts.REMOVE_SERVER]

    def next_deadline(self, now: float) -> float | None:
        hide_at = self.banner.hide_at
        return hide_at if hide_at is not None and hide_at > now else None

    def render(self, now: float) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "syncing": self.status == Status.CONNECTED and self.syncing,
            "banner": self.banner.render(now),
            "dot": self.dot,
            "menu": self.menu,
        }

    def _set(self, status: Status, syncing: bool, banner: Banner) -> None:
        self.status = status
        self.syncing = syncing
        self.banner = banner
