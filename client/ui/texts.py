"""Every string the user reads in the view models (client-behaviour.md s.5,
accord-protocol.md s.3). The close-code -> banner text rule is a protocol fact:
`client.core.protocol.close_text`, re-exported here."""

from __future__ import annotations

from typing import Final

from client.core.protocol import CONNECTION_LOST, close_text

__all__ = ["CONNECTION_LOST", "close_text"]  # re-exported for the view models

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
