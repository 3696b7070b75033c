"""Every signal's payload as a frozen dataclass: its fields are the signal's
arguments, in order (client/core/signals.py names the signals). The core builds
a payload and emits `payload.to_signal()`, so an argument list is written once;
a reader turns a `Signal` back into its payload with `decode`.

The `Signal` effect keeps a plain `args` tuple: the timeline, the view models and
the verdict read it as JSON-safe data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Final

from client.core import signals as sig
from client.core.io import Signal

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """Once per payload type: `dataclasses.fields` is slow for one call per signal."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class Payload:
    NAME: ClassVar[str] = ""

    def to_signal(self) -> Signal:
        return Signal(self.NAME, tuple(getattr(self, name) for name in _field_names(type(self))))


@dataclass(frozen=True, slots=True)
class ServerConnecting(Payload):
    NAME: ClassVar[str] = sig.SERVER_CONNECTING
    server: str


@dataclass(frozen=True, slots=True)
class ServerConnected(Payload):
    NAME: ClassVar[str] = sig.SERVER_CONNECTED  # first READY
    server: str


@dataclass(frozen=True, slots=True)
class ServerDisconnected(Payload):
    NAME: ClassVar[str] = sig.SERVER_DISCONNECTED
    server: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ServerReconnecting(Payload):
    NAME: ClassVar[str] = sig.SERVER_RECONNECTING
    server: str
    attempt: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class ServerReauthenticating(Payload):
    NAME: ClassVar[str] = sig.SERVER_REAUTHENTICATING
    server: str


@dataclass(frozen=True, slots=True)
class ServerReconnected(Payload):
    NAME: ClassVar[str] = sig.SERVER_RECONNECTED
    server: str


@dataclass(frozen=True, slots=True)
class ServerSynced(Payload):
    NAME: ClassVar[str] = sig.SERVER_SYNCED
    server: str


@dataclass(frozen=True, slots=True)
class ServerConnectionFailed(Payload):
    NAME: ClassVar[str] = sig.SERVER_CONNECTION_FAILED
    server: str
    reason: str


@dataclass(frozen=True, slots=True)
class ServerRemoved(Payload):
    NAME: ClassVar[str] = sig.SERVER_REMOVED
    server: str


@dataclass(frozen=True, slots=True)
class MessageSendFailed(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_SEND_FAILED
    server: str
    channel_id: str
    content: str
    error: str


@dataclass(frozen=True, slots=True)
class MessageSendRefused(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_SEND_REFUSED
    server: str
    channel_id: str
    content: str
    reason: str


@dataclass(frozen=True, slots=True)
class MessageEditFailed(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_EDIT_FAILED
    server: str
    message_id: str
    error: str


@dataclass(frozen=True, slots=True)
class MessageDeleteFailed(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_DELETE_FAILED
    server: str
    message_id: str
    error: str


@dataclass(frozen=True, slots=True)
class MessageFetchFailed(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_FETCH_FAILED
    server: str
    channel_id: str
    error: str


@dataclass(frozen=True, slots=True)
class ReactionFailed(Payload):
    NAME: ClassVar[str] = sig.REACTION_FAILED
    server: str
    channel_id: str
    message_id: str
    emoji: str
    error: str


@dataclass(frozen=True, slots=True)
class ModeChanged(Payload):
    NAME: ClassVar[str] = sig.MODE_CHANGED  # "CONNECTING" | "LIVE"  (no server arg)
    mode: str


@dataclass(frozen=True, slots=True)
class ServerAdded(Payload):
    NAME: ClassVar[str] = sig.SERVER_ADDED  # config entry created
    server: str


@dataclass(frozen=True, slots=True)
class ServerProbeStarted(Payload):
    NAME: ClassVar[str] = sig.SERVER_PROBE_STARTED  # add-server dialog: Checking
    server: str


@dataclass(frozen=True, slots=True)
class ServerProbeOk(Payload):
    NAME: ClassVar[str] = sig.SERVER_PROBE_OK  # dialog: Connecting
    server: str


@dataclass(frozen=True, slots=True)
class ServerAddFailed(Payload):
    NAME: ClassVar[str] = sig.SERVER_ADD_FAILED  # entry rolled back
    server: str
    error: str


@dataclass(frozen=True, slots=True)
class ServerSelected(Payload):
    NAME: ClassVar[str] = sig.SERVER_SELECTED  # picked in the space bar, no channel
    server: str


@dataclass(frozen=True, slots=True)
class ChannelSelected(Payload):
    NAME: ClassVar[str] = sig.CHANNEL_SELECTED
    server: str
    channel_id: str
    channel_name: str


@dataclass(frozen=True, slots=True)
class MessagesLoading(Payload):
    NAME: ClassVar[str] = sig.MESSAGES_LOADING
    server: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class MessagesLoaded(Payload):
    NAME: ClassVar[str] = sig.MESSAGES_LOADED
    server: str
    channel_id: str
    count: int


@dataclass(frozen=True, slots=True)
class MessageSending(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_SENDING  # direct send began
    server: str
    channel_id: str
    content: str
    nonce: str


@dataclass(frozen=True, slots=True)
class MessageQueued(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_QUEUED
    server: str
    channel_id: str
    content: str
    nonce: str
    depth: int


@dataclass(frozen=True, slots=True)
class MessageSent(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_SENT  # accepted (2xx)
    server: str
    channel_id: str
    nonce: str
    message_id: str


@dataclass(frozen=True, slots=True)
class MessageFailedEntry(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_FAILED_ENTRY
    server: str
    channel_id: str
    nonce: str
    content: str
    error: str


@dataclass(frozen=True, slots=True)
class FailedEntryDiscarded(Payload):
    NAME: ClassVar[str] = sig.FAILED_ENTRY_DISCARDED
    server: str
    channel_id: str
    nonce: str


@dataclass(frozen=True, slots=True)
class QueueChanged(Payload):
    NAME: ClassVar[str] = sig.QUEUE_CHANGED
    server: str
    depth: int


@dataclass(frozen=True, slots=True)
class QueueFlushPaused(Payload):
    NAME: ClassVar[str] = sig.QUEUE_FLUSH_PAUSED  # transient failure
    server: str
    error: str


@dataclass(frozen=True, slots=True)
class MessageReceived(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_RECEIVED  # gateway/refetch
    server: str
    channel_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class MessageEdited(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_EDITED
    server: str
    message_id: str


@dataclass(frozen=True, slots=True)
class MessageDeleted(Payload):
    NAME: ClassVar[str] = sig.MESSAGE_DELETED
    server: str
    message_id: str


@dataclass(frozen=True, slots=True)
class EditStarted(Payload):
    NAME: ClassVar[str] = sig.EDIT_STARTED  # user entered edit mode
    server: str
    message_id: str


@dataclass(frozen=True, slots=True)
class BugEnabled(Payload):
    NAME: ClassVar[str] = (
        sig.BUG_ENABLED
    )  # a regression switch is on (`server` is "*": every server)
    server: str
    bug_number: int


@dataclass(frozen=True, slots=True)
class ReactionChanged(Payload):
    NAME: ClassVar[str] = sig.REACTION_CHANGED
    server: str
    channel_id: str
    message_id: str


PAYLOADS: Final[dict[str, type[Payload]]] = {
    ServerConnecting.NAME: ServerConnecting,
    ServerConnected.NAME: ServerConnected,
    ServerDisconnected.NAME: ServerDisconnected,
    ServerReconnecting.NAME: ServerReconnecting,
    ServerReauthenticating.NAME: ServerReauthenticating,
    ServerReconnected.NAME: ServerReconnected,
    ServerSynced.NAME: ServerSynced,
    ServerConnectionFailed.NAME: ServerConnectionFailed,
    ServerRemoved.NAME: ServerRemoved,
    MessageSendFailed.NAME: MessageSendFailed,
    MessageSendRefused.NAME: MessageSendRefused,
    MessageEditFailed.NAME: MessageEditFailed,
    MessageDeleteFailed.NAME: MessageDeleteFailed,
    MessageFetchFailed.NAME: MessageFetchFailed,
    ReactionFailed.NAME: ReactionFailed,
    ModeChanged.NAME: ModeChanged,
    ServerAdded.NAME: ServerAdded,
    ServerProbeStarted.NAME: ServerProbeStarted,
    ServerProbeOk.NAME: ServerProbeOk,
    ServerAddFailed.NAME: ServerAddFailed,
    ServerSelected.NAME: ServerSelected,
    ChannelSelected.NAME: ChannelSelected,
    MessagesLoading.NAME: MessagesLoading,
    MessagesLoaded.NAME: MessagesLoaded,
    MessageSending.NAME: MessageSending,
    MessageQueued.NAME: MessageQueued,
    MessageSent.NAME: MessageSent,
    MessageFailedEntry.NAME: MessageFailedEntry,
    FailedEntryDiscarded.NAME: FailedEntryDiscarded,
    QueueChanged.NAME: QueueChanged,
    QueueFlushPaused.NAME: QueueFlushPaused,
    MessageReceived.NAME: MessageReceived,
    MessageEdited.NAME: MessageEdited,
    MessageDeleted.NAME: MessageDeleted,
    EditStarted.NAME: EditStarted,
    BugEnabled.NAME: BugEnabled,
    ReactionChanged.NAME: ReactionChanged,
}


def decode(signal: Signal) -> Payload:
    """The payload of a signal the core emitted (KeyError for an unknown name)."""
    return PAYLOADS[signal.name](*signal.args)
