"""Every duration the client owns (client-behaviour.md s.1), and one timescale.

Fields hold real-client values in seconds; `scaled()` applies the timescale. The
HELLO heartbeat interval and a server's `Retry-After` are not here: the client
uses them exactly as received (the fake server scales its own durations).

`floor` (real seconds, default 0) is the least time the machine needs for a TLS
handshake, an upgrade or a REST round trip. The timeouts that wait on that work
(gateway open, HELLO, READY, REST request) are `max(scaled, floor)` via
`scaled_io()`, so a small timescale never times out work the machine cannot do
faster (issue 8, item 5). With the default 0 the contract is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timings:
    scale: float = 1.0

    heartbeat_default: float = 45.0  # when HELLO carries no interval
    open_timeout: float = 10.0  # TCP + TLS + WebSocket upgrade
    hello_timeout: float = 10.0  # socket open -> HELLO
    ready_timeout: float = 10.0  # IDENTIFY/RESUME -> READY/resumed
    close_handshake: float = 1.0  # client-initiated close, then abort

    backoff_base: float = 1.0
    backoff_max_exponent: int = 5
    max_attempts: int = 10
    invalid_session_wait_min: float = 1.0
    invalid_session_wait_max: float = 5.0

    rest_timeout: float = 30.0  # per HTTP request, each 429 retry has its own
    rate_limit_retries: int = 3
    rate_limit_fallback: tuple[float, ...] = (1.0, 2.0, 4.0)
    rate_limit_cap: float = 60.0

    loading_timer: float = 15.0  # UI: "Loading timed out"
    green_banner: float = 3.0  # UI: "Reconnected!" hides
    label_hide: float = 5.0  # UI: composer label, inline edit/delete errors
    queue_capacity: int = 20  # a count, never scaled

    floor: float = 0.0  # real seconds under the I/O timeouts (see the module doc)

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"Timings.scale must be > 0, got {self.scale!r}")
        if not self.floor >= 0:
            raise ValueError(f"Timings.floor must be >= 0 seconds, got {self.floor!r}")

    def scaled(self, real_seconds: float) -> float:
        """A client-owned duration at this timescale."""
        return real_seconds * self.scale

    def scaled_io(self, real_seconds: float) -> float:
        """An I/O timeout at this timescale, never below the real-time `floor`."""
        return max(self.scaled(real_seconds), self.floor)

    @property
    def open_wait(self) -> float:
        return self.scaled_io(self.open_timeout)

    @property
    def hello_wait(self) -> float:
        return self.scaled_io(self.hello_timeout)

    @property
    def ready_wait(self) -> float:
        return self.scaled_io(self.ready_timeout)

    @property
    def rest_wait(self) -> float:
        return self.scaled_io(self.rest_timeout)

    def backoff_delay(self, attempt: int, jitter: float) -> float:
        """Delay before gateway attempt `attempt` (1-based); `jitter` in [0, 1)."""
        exponent = min(attempt - 1, self.backoff_max_exponent)
        base = self.scaled(self.backoff_base)
        return float(base * 2**exponent + jitter * base)

    def rate_limit_fallback_wait(self, retry_index: int) -> float:
        """Wait before 429 retry `retry_index` (0-based) when the server named none."""
        waits = self.rate_limit_fallback
        return self.scaled(waits[min(retry_index, len(waits) - 1)])
