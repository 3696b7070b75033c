"""Gateway frames the client reads and writes (accord-protocol.md s.2), as pure
functions: the gateway machine decides, this module only encodes and decodes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from client.core.protocol import Op

# Every intent, by the reference server's names (client-behaviour.md s.2): the
# server filters events by them and ignores names it does not know.
INTENTS = (
    "spaces",
    "moderation",
    "emojis",
    "voice_states",
    "messages",
    "message_reactions",
    "message_typing",
    "direct_messages",
    "dm_reactions",
    "dm_typing",
    "scheduled_events",
    "plugins",
    "relationships",
    "soundboard",
    "members",
    "presences",
    "message_content",
)
CLIENT_PROPERTIES = {"os": "python", "client": "accord-rig", "version": "0.1.0"}


@dataclass(frozen=True, slots=True)
class Frame:
    op: int
    data: Any = None
    seq: int | None = None  # an integer seq, else None
    type: Any = None  # an event's type as received (checked by the reader)


def decode(text: str) -> Frame | str:
    """A frame, or why it is ignored (for the log)."""
    try:
        raw = json.loads(text)
    except ValueError:
        return f"ignored a frame that is not JSON ({len(text)} chars)"
    if not isinstance(raw, dict) or not isinstance(raw.get("op"), int):
        return "ignored a frame without an integer op"
    seq = raw.get("seq")
    valid_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    return Frame(raw["op"], raw.get("data"), valid_seq, raw.get("type"))


def hello_interval(data: Any) -> float | None:
    """HELLO's heartbeat interval in seconds, as received (never rescaled); None
    when missing or unusable."""
    interval_ms = data.get("heartbeat_interval") if isinstance(data, dict) else None
    if (
        isinstance(interval_ms, int | float)
        and not isinstance(interval_ms, bool)
        and math.isfinite(interval_ms)
        and interval_ms > 0
    ):
        return interval_ms / 1000.0
    return None


def resumable(data: Any) -> bool:
    """INVALID_SESSION's `d`: a bare bool, or `{"resumable": bool}`; else False."""
    if isinstance(data, bool):
        return data
    if isinstance(data, dict) and isinstance(data.get("resumable"), bool):
        return bool(data["resumable"])
    return False


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def identify(token: str) -> str:
    data = {"token": token, "intents": list(INTENTS), "properties": CLIENT_PROPERTIES}
    return encode({"op": Op.IDENTIFY, "data": data})


def resume(token: str, session_id: str, seq: int | None) -> str:
    return encode(
        {"op": Op.RESUME, "data": {"token": token, "session_id": session_id, "seq": seq or 0}}
    )


def heartbeat(seq: int | None) -> str:
    return encode({"op": Op.HEARTBEAT, "data": seq or 0})
