"""Durations as scenario files write them, in real-client time.

`5s`, `300ms`, `1.5 s`, `2m`, `3 heartbeats` (a multiple of the fake server's
heartbeat interval) or a bare number of seconds. Parsing keeps the unit so that a
heartbeat count can be resolved once the scenario's heartbeat interval is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0}
_PATTERN = re.compile(
    r"^\s*(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|sec|m|min|heartbeats?|hb)?\s*$"
)


@dataclass(frozen=True)
class Duration:
    """A length of time: fixed seconds, or a count of heartbeat intervals."""

    seconds: float = 0.0
    heartbeats: float = 0.0

    def resolve(self, heartbeat_interval: float) -> float:
        """Seconds in real-client time, given the heartbeat interval in seconds."""
        return self.seconds + self.heartbeats * heartbeat_interval

    def __str__(self) -> str:
        if self.heartbeats:
            return f"{self.heartbeats:g} heartbeats"
        if self.seconds < 1:
            return f"{self.seconds * 1000:g}ms"
        return f"{self.seconds:g}s"


def parse_duration(value: object) -> Duration:
    """Parse a duration; raises ValueError with a message fit for a scenario author."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5s', '300ms' or '3 heartbeats', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return Duration(seconds=seconds)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        match = _PATTERN.match(text)
        if match:
            number = float(match["num"])
            unit = match["unit"] or "s"
            if unit.startswith("heartbeat") or unit == "hb":
                return Duration(heartbeats=number)
            return Duration(seconds=number * _UNITS[unit])
    raise ValueError(f"expected a duration like '5s', '300ms' or '3 heartbeats', got {value!r}")
