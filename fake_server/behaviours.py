"""Opt-in server behaviours (accord-protocol.md s.7): the fake's older, more lenient
rules, off by default, named per server so a scenario can show what a server change
would buy. This is the one registry of their names."""

from __future__ import annotations

from collections.abc import Iterable

BEHAVIOURS: dict[str, str] = {
    "dedupe_nonce": "a repeated (author, nonce) POST returns the stored message and stores nothing",
    "park_on_client_close": "a client close frame other than 1000/1001 parks the session",
    "takeover_resume": "a RESUME takes a live session over, closing the old socket with 4000",
}


class UnknownBehaviour(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown server behaviour {name!r}; valid: {', '.join(sorted(BEHAVIOURS))}"
        )
        self.name = name


def parse_behaviours(names: Iterable[str]) -> frozenset[str]:
    """Validate behaviour names; raises UnknownBehaviour naming the bad one and the valid ones."""
    chosen = frozenset(names)
    for name in sorted(chosen):
        if name not in BEHAVIOURS:
            raise UnknownBehaviour(name)
    return chosen
