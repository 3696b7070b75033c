"""Named deadlines inside the core (aioquic's `get_timer()` style: `now` is passed in).

A timer is a `TimerKey` (which server, which machine, which kind, which request or
attempt) and a due time; no callback is stored. When one is due, `pop_due` hands
the key back and the core dispatches it by `machine` and `kind` to the machine
that set it (`ClientCore._on_timer`). Setting a key that exists replaces it.
Every set/cancel is reported as a `SetTimer`/`CancelTimer` effect carrying the
key's fields, so the timeline shows what the core waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from client.core.io import CancelTimer, Effect, SetTimer


class Machine(StrEnum):
    GATEWAY = "gateway"
    HTTP = "http"  # one request's timeout, by request id
    HTTP_RETRY = "http-retry"  # a 429 retry wait, by its own id


class TimerKind(StrEnum):
    """Every kind of deadline the core sets."""

    OPEN_TIMEOUT = "open-timeout"
    HELLO_TIMEOUT = "hello-timeout"
    READY_TIMEOUT = "ready-timeout"
    HEARTBEAT = "heartbeat"
    BACKOFF = "backoff"
    INVALID_SESSION_WAIT = "invalid-session-wait"
    REQUEST_TIMEOUT = "timeout"
    RATE_LIMIT_RETRY = "retry"


class TimerKey(NamedTuple):
    """A tuple, so building, hashing and comparing one (every set and cancel) runs in C."""

    server: str
    machine: Machine
    kind: TimerKind
    ident: int = 0  # the request (HTTP) or retry id; 0 for a gateway timer

    @property
    def name(self) -> str:
        """The display name scenario files match by glob, e.g. 'alpha:gateway:heartbeat'."""
        if self.machine is Machine.GATEWAY:
            return f"{self.server}:gateway:{self.kind}"
        if self.machine is Machine.HTTP:
            return f"{self.server}:http:{self.ident}:{self.kind}"
        return f"{self.server}:http-retry:{self.ident}"


@dataclass(slots=True)
class _Timer:
    at: float
    order: int  # ties fire in the order they were set


class Timers:
    def __init__(self, out: list[Effect], *, trace: bool = True) -> None:
        self._out = out
        self._trace = trace  # SetTimer/CancelTimer effects
        self._timers: dict[TimerKey, _Timer] = {}
        self._order = 0
        self._earliest: float | None = None  # cached min of the due times; None: stale

    def set(self, key: TimerKey, now: float, delay: float, *, attempt: int = 0) -> None:
        """`attempt`: the reconnect attempt a gateway timer belongs to (0: none),
        carried on the effect for the verdict."""
        self._order += 1
        at = now + max(delay, 0.0)
        self._timers[key] = _Timer(at, self._order)
        self._earliest = None
        if not self._trace:
            return
        self._out.append(
            SetTimer(
                name=key.name,
                at=at,
                delay=delay,
                server=key.server,
                machine=key.machine.value,
                kind=key.kind.value,
                attempt=attempt,
            )
        )

    def cancel(self, key: TimerKey) -> None:
        if self._timers.pop(key, None) is not None:
            self._earliest = None
            if not self._trace:
                return
            self._out.append(
                CancelTimer(
                    name=key.name,
                    server=key.server,
                    machine=key.machine.value,
                    kind=key.kind.value,
                )
            )

    def is_set(self, key: TimerKey) -> bool:
        return key in self._timers

    def next_deadline(self) -> float | None:
        if not self._timers:
            return None
        if self._earliest is None:  # asked at every step of a simulation; changed rarely
            self._earliest = min(t.at for t in self._timers.values())
        return self._earliest

    def pop_due(self, now: float) -> TimerKey | None:
        """The earliest timer due at `now` (ties: first set first), removed; None
        when none is due. Call again after dispatching: a handler may set a timer
        that is due at once."""
        due = [(t.at, t.order, key) for key, t in self._timers.items() if t.at <= now]
        if not due:
            return None
        key = min(due, key=lambda d: (d[0], d[1]))[2]
        del self._timers[key]
        self._earliest = None
        return key
