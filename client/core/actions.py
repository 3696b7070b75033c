"""What the user (or the rig acting for one) does, as frozen dataclasses.

Every action names the configured server first. Channels are named by id or by
name (`general`); the core resolves names against the server's channel list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

HTTPS_ONLY = "Only https:// servers are supported"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One configured server = one space. The password never appears in a repr."""

    name: str
    base_url: str  # https://HOST:PORT
    username: str
    password: str = field(repr=False)
    space: str  # the space's slug
    gateway_url: str | None = None  # wss://...; derived from base_url when None

    def validate(self) -> str | None:
        """The user-facing refusal text, or None when the config is usable."""
        if not self.name:
            return "Server name is empty"
        base = urlsplit(self.base_url)
        if base.scheme != "https" or not base.netloc:
            return HTTPS_ONLY
        if self.gateway_url is not None:
            gw = urlsplit(self.gateway_url)
            if gw.scheme != "wss" or not gw.netloc:
                return HTTPS_ONLY
        return None

    @property
    def rest_base(self) -> str:
        return self.base_url.rstrip("/") + "/api/v1"

    @property
    def gateway(self) -> str:
        if self.gateway_url is not None:
            return self.gateway_url
        netloc = urlsplit(self.base_url).netloc
        return f"wss://{netloc}/ws?v=1&encoding=json"


@dataclass(frozen=True, slots=True)
class AddServer:
    """The add-server dialog: refuse non-https, probe, connect; roll back on failure."""

    config: ServerConfig


@dataclass(frozen=True, slots=True)
class ConfigureServer:
    """Create the config entry without connecting (the rig's setup step)."""

    config: ServerConfig


@dataclass(frozen=True, slots=True)
class ConnectServer:
    server: str


@dataclass(frozen=True, slots=True)
class DisconnectServer:
    """Manual removal (s.7): logout, close 1000, drop caches and queue, remove."""

    server: str


@dataclass(frozen=True, slots=True)
class ReconnectServer:
    """The user's Reconnect button (banner or space-icon menu)."""

    server: str


@dataclass(frozen=True, slots=True)
class SelectServer:
    """The user picks a server in the space bar (its banner shows, no channel)."""

    server: str


@dataclass(frozen=True, slots=True)
class SelectChannel:
    server: str
    channel: str  # id or name


@dataclass(frozen=True, slots=True)
class SendMessage:
    server: str
    channel: str  # id or name
    content: str


@dataclass(frozen=True, slots=True)
class StartEdit:
    server: str
    message_id: str


@dataclass(frozen=True, slots=True)
class EditMessage:
    server: str
    message_id: str
    content: str


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    server: str
    message_id: str


@dataclass(frozen=True, slots=True)
class FetchMessages:
    """Load a channel's newest messages (also the message view's click-to-retry)."""

    server: str
    channel: str  # id or name


@dataclass(frozen=True, slots=True)
class AddReaction:
    server: str
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True)
class RemoveReaction:
    server: str
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True)
class RetryFailedMessage:
    """Send a failed entry again (same nonce)."""

    server: str
    nonce: str


@dataclass(frozen=True, slots=True)
class DiscardFailedMessage:
    server: str
    nonce: str


@dataclass(frozen=True, slots=True)
class SetBug:
    """Turn a regression switch (client.core.bugs.Bug) on or off at run time."""

    number: int
    enabled: bool = True


Action = (
    AddServer
    | ConfigureServer
    | ConnectServer
    | DisconnectServer
    | ReconnectServer
    | SelectServer
    | SelectChannel
    | SendMessage
    | StartEdit
    | EditMessage
    | DeleteMessage
    | FetchMessages
    | AddReaction
    | RemoveReaction
    | RetryFailedMessage
    | DiscardFailedMessage
    | SetBug
)

# For isinstance checks: every action class.
ACTION_TYPES: tuple[type, ...] = (
    AddServer,
    ConfigureServer,
    ConnectServer,
    DisconnectServer,
    ReconnectServer,
    SelectServer,
    SelectChannel,
    SendMessage,
    StartEdit,
    EditMessage,
    DeleteMessage,
    FetchMessages,
    AddReaction,
    RemoveReaction,
    RetryFailedMessage,
    DiscardFailedMessage,
    SetBug,
)
