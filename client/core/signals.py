"""Every signal the core emits on its AppState bus, with its arguments.

The first ten rows of each group are the contract of client-behaviour.md
section 3; the rest are the extra facts the view models (`client.ui`) and the
rig's delivery checker need. The view models are a pure function of this
stream, so anything the user can see must be derivable from it.
"""

from __future__ import annotations

from typing import Final

from client.core.protocol import Status

# Connection lifecycle (spec section 3). args[0] is the configured server name.
SERVER_CONNECTING: Final = "server_connecting"  # (server)
SERVER_CONNECTED: Final = "server_connected"  # (server) first READY
SERVER_DISCONNECTED: Final = "server_disconnected"  # (server, code, reason)
SERVER_RECONNECTING: Final = "server_reconnecting"  # (server, attempt, max_attempts)
SERVER_REAUTHENTICATING: Final = "server_reauthenticating"  # (server)
SERVER_RECONNECTED: Final = "server_reconnected"  # (server)
SERVER_SYNCED: Final = "server_synced"  # (server)
SERVER_CONNECTION_FAILED: Final = "server_connection_failed"  # (server, reason)
SERVER_REMOVED: Final = "server_removed"  # (server)

# Failures (spec section 3).
MESSAGE_SEND_FAILED: Final = "message_send_failed"  # (server, channel_id, content, error)
MESSAGE_SEND_REFUSED: Final = "message_send_refused"  # (server, channel_id, content, reason)
MESSAGE_EDIT_FAILED: Final = "message_edit_failed"  # (server, message_id, error)
MESSAGE_DELETE_FAILED: Final = "message_delete_failed"  # (server, message_id, error)
MESSAGE_FETCH_FAILED: Final = "message_fetch_failed"  # (server, channel_id, error)
REACTION_FAILED: Final = "reaction_failed"  # (server, channel_id, message_id, emoji, error)

# Reasons carried by message_send_refused.
REFUSED_DISABLED: Final = "composer disabled"
REFUSED_QUEUE_FULL: Final = "queue full"

# Extra facts for the view models and the delivery checker.
MODE_CHANGED: Final = "mode_changed"  # (mode,)  "CONNECTING" | "LIVE"  (no server arg)
SERVER_ADDED: Final = "server_added"  # (server)  config entry created
SERVER_PROBE_STARTED: Final = "server_probe_started"  # (server) add-server dialog: Checking...
SERVER_PROBE_OK: Final = "server_probe_ok"  # (server) dialog: Connecting...
SERVER_ADD_FAILED: Final = "server_add_failed"  # (server, error) entry rolled back
SERVER_SELECTED: Final = "server_selected"  # (server) picked in the space bar, no channel
CHANNEL_SELECTED: Final = "channel_selected"  # (server, channel_id, channel_name)
MESSAGES_LOADING: Final = "messages_loading"  # (server, channel_id)
MESSAGES_LOADED: Final = "messages_loaded"  # (server, channel_id, count)
MESSAGE_SENDING: Final = "message_sending"  # (server, channel_id, content, nonce) direct send began
MESSAGE_QUEUED: Final = "message_queued"  # (server, channel_id, content, nonce, depth)
MESSAGE_SENT: Final = "message_sent"  # (server, channel_id, nonce, message_id) accepted (2xx)
MESSAGE_FAILED_ENTRY: Final = "message_failed_entry"  # (server, channel_id, nonce, content, error)
FAILED_ENTRY_DISCARDED: Final = "failed_entry_discarded"  # (server, channel_id, nonce)
QUEUE_CHANGED: Final = "queue_changed"  # (server, depth)
QUEUE_FLUSH_PAUSED: Final = "queue_flush_paused"  # (server, error) transient failure
MESSAGE_RECEIVED: Final = "message_received"  # (server, channel_id, message_id) gateway/refetch
MESSAGE_EDITED: Final = "message_edited"  # (server, message_id)
MESSAGE_DELETED: Final = "message_deleted"  # (server, message_id)
EDIT_STARTED: Final = "edit_started"  # (server, message_id) user entered edit mode
BUG_ENABLED: Final = "bug_enabled"  # (server_or_"*", bug_number) a regression switch is on


# Added by the core engineer (additive only).
REACTION_CHANGED: Final = "reaction_changed"  # (server, channel_id, message_id)

# The status each connection signal leaves, as the user sees it (s.3): between
# connected/reconnected and synced that is `syncing` (`Status.core` folds it into
# connected). The verdict, the reports and the banner read this one map.
SIGNAL_STATUS: Final[dict[str, Status]] = {
    SERVER_CONNECTING: Status.CONNECTING,
    SERVER_CONNECTED: Status.SYNCING,
    SERVER_DISCONNECTED: Status.DISCONNECTED,
    SERVER_RECONNECTING: Status.RECONNECTING,
    SERVER_REAUTHENTICATING: Status.RECONNECTING,
    SERVER_RECONNECTED: Status.SYNCING,
    SERVER_SYNCED: Status.CONNECTED,
    SERVER_CONNECTION_FAILED: Status.ERROR,
    SERVER_REMOVED: Status.NONE,
}

CONNECTION_SIGNALS: Final = frozenset(SIGNAL_STATUS)
