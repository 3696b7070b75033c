"""Gateway intents with the reference server's names (accord-protocol.md s.7)."""

from __future__ import annotations

# Event type prefix (up to the first dot, or the whole type) -> the intent that carries it.
INTENT_OF_PREFIX: dict[str, str] = {
    "message": "messages",
    "typing": "message_typing",
    "reaction": "message_reactions",
    "presence": "presences",
    "member": "members",
    "space": "spaces",
    "channel": "spaces",
    "role": "spaces",
}
ALL_INTENTS: tuple[str, ...] = tuple(sorted(set(INTENT_OF_PREFIX.values())))


def intent_of(event_type: str) -> str | None:
    """The intent an event needs, or None when it is always delivered (`user.update`,
    unmapped types, `ready`/`resumed`)."""
    return INTENT_OF_PREFIX.get(event_type.split(".", 1)[0])


def wants(intents: frozenset[str], event_type: str) -> bool:
    needed = intent_of(event_type)
    return needed is None or needed in intents
