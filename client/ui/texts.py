"""Every string the user reads in the view models (client-behaviour.md s.5,
accord-protocol.md s.3), and the close-code -> banner text rule."""

from __future__ import annotations

from typing import Final

# Connection banner.
CONNECTING: Final = "Connecting..."
RECONNECTING: Final = "Reconnecting..."
SYNCING: Final = "Reconnected — syncing data..."
RECONNECTED: Final = "Reconnected!"
RECONNECT_BUTTON: Final = "Reconnect"
REMOVE_SERVER: Final = "Remove Server"

# Composer.
COMPOSER_SYNCING: Final = "Syncing..."
COMPOSER_QUEUEING: Final = "Messages will be queued and sent when reconnected"
COMPOSER_OFFLINE: Final = "Cannot send messages — disconnected"
LABEL_QUEUED: Final = "Message queued — will send when reconnected"
LABEL_QUEUE_FULL: Final = "Queue full — message not sent"

# Message view.
LOADING: Final = "Loading messages..."
LOADING_TIMED_OUT: Final = "Loading timed out. Click to retry"

# Add-server dialog buttons.
ADD: Final = "Add"
CHECKING: Final = "Checking..."
CONNECTING_BUTTON: Final = "Connecting..."

CONNECTION_LOST: Final = "Connection lost"

# accord-protocol.md s.3, the "client text (banner)" column. 4000 is decided by
# the reason (below); codes absent here use the reason, else "Connection lost".
_CLOSE_TEXT: Final[dict[int, str]] = {
    1000: "Server closed connection",
    1001: "Server going away",
    1006: CONNECTION_LOST,
    1009: CONNECTION_LOST,
    4001: CONNECTION_LOST,
    4002: CONNECTION_LOST,
    4003: "Authentication failed",
    4004: "Session expired",
    4005: CONNECTION_LOST,
    4007: CONNECTION_LOST,
    4008: CONNECTION_LOST,
    4009: CONNECTION_LOST,
    4012: "Invalid gateway intent",
    4013: "Disallowed gateway intent",
    4014: "Unauthorized",
}

# The client's own 4000 reasons (client-behaviour.md s.5).
_REASON_4000: Final[dict[str, str]] = {
    "heartbeat timeout": "Heartbeat timeout",
    "server requested reconnect": "Server requested reconnect",
    "invalid session": "Session invalidated",
}


def close_text(code: int, reason: str) -> str:
    """What the banner says about a closed gateway socket."""
    if code == 4000:
        return _REASON_4000.get(reason, reason or CONNECTION_LOST)
    if code in _CLOSE_TEXT:
        return _CLOSE_TEXT[code]
    return reason or CONNECTION_LOST


def disconnected(code: int, reason: str) -> str:
    return f"{close_text(code, reason)}. {RECONNECTING}"


def reconnecting_attempt(attempt: int, max_attempts: int) -> str:
    return f"Reconnecting... (attempt {attempt}/{max_attempts})"


def connection_failed(reason: str) -> str:
    return f"Connection failed: {reason}"


def composer_placeholder_connected(channel_name: str) -> str:
    return f"Message #{channel_name}"


def failed_to_send(error: str) -> str:
    return f"Failed to send: {error}"


def failed_to_load(error: str) -> str:
    return f"Failed to load messages: {error}\nClick to retry"


def edit_failed(error: str) -> str:
    return f"Edit failed: {error}"


def delete_failed(error: str) -> str:
    return f"Delete failed: {error}"
