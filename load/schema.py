"""The load file format (`*.load.yaml`), as pydantic models (and so as JSON Schema).

A load file describes a crowd of real clients, how long it runs, a fault schedule
played once for the whole crowd, and the thresholds that decide pass or fail.
The fault steps are the scenario step vocabulary (`scenarios.schema.STEP_MODELS`),
imported, not redeclared: a schedule item is one of those steps plus a trigger
(`at`, `after` or `when`) in the same mapping. Durations are real-client time,
scaled by the file's timescale like a scenario's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from scenarios.durations import Duration
from scenarios.schema import (
    NAME_RE,
    STEP_MODELS,
    DurationField,
    Strict,
    single_key_kind,
)

# The scenario steps a schedule may use: network, process and fake-server faults.
FAULT_KINDS = (
    "toxic",
    "proxy_down",
    "heal",
    "kill_server",
    "restart_server",
    "freeze_server",
    "thaw_server",
    "server_fault",
    "server_close",
    "invalid_session",
)
TRIGGER_KEYS = ("at", "after", "when")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _percent(value: Any) -> Any:
    """`95%` or 95 -> 95.0 (a share of the crowd, in percent)."""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(f"expected a percentage like '95%', got {value!r}")
        return float(match[1])
    return value


Percent = Annotated[float, BeforeValidator(_percent), Field(ge=0, le=100)]


def _fault_kind(value: Any) -> str | None:
    return single_key_kind(value, FAULT_KINDS)


_TaggedFaults = tuple(Annotated[STEP_MODELS[kind], Tag(kind)] for kind in FAULT_KINDS)
FaultStep = Annotated[
    Union[_TaggedFaults],  # type: ignore[valid-type]  # noqa: UP007  (built at run time)
    Discriminator(_fault_kind, custom_error_type="unknown_fault", custom_error_message="unknown"),
]


class Anchor(Strict):
    """A state of the crowd to wait for (from the fake servers' open sessions)."""

    connected: Percent = Field(
        description="share of the crowd with an open, identified gateway session, e.g. '95%'"
    )
    within: DurationField | None = Field(
        None, description="give up (the run fails) if not reached in this long (default: run_for)"
    )


def _split_trigger(value: Any) -> Any:
    """`{at: 10s, proxy_down: alpha}` -> `{at: 10s, fault: {proxy_down: alpha}}`."""
    if isinstance(value, dict) and "fault" not in value:
        out = {k: v for k, v in value.items() if k in TRIGGER_KEYS}
        rest = {k: v for k, v in value.items() if k not in TRIGGER_KEYS}
        out["fault"] = rest
        return out
    return value


class ScheduledFault(Strict):
    at: DurationField | None = Field(None, description="since the load started")
    after: DurationField | None = Field(None, description="since the previous item fired")
    when: Anchor | None = Field(None, description="as soon as the crowd reaches this state")
    fault: FaultStep

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduledFault:
        given = [k for k in TRIGGER_KEYS if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one trigger (at, after or when), found {', '.join(given)}")
        return self


Schedule = Annotated[ScheduledFault, BeforeValidator(_split_trigger)]


def _rate_limit(value: Any) -> Any:
    return "off" if value is False else value


RateLimit = Annotated[
    Literal["faithful", "off"] | Annotated[int, Field(ge=1)],
    BeforeValidator(_rate_limit),
]


class LoadServer(Strict):
    heartbeat: DurationField | None = Field(None, description="HELLO interval (default 45s)")
    rate_limit: RateLimit = Field(
        "faithful",
        description="the fake server's REST limiter: faithful (70 requests / 60 s per token, "
        "one shared bucket for unauthenticated requests), off, or N requests per 60 s",
    )
    history: Literal["full", "light"] = Field(
        "full",
        description="the fake server's history: full (every frame and request, for "
        "debugging a run) or light (frames and requests only counted: crowds of thousands)",
    )


def _servers(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(n, str) for n in value):
        return {name: {} for name in value}
    return value


class Crowd(Strict):
    clients: int = Field(ge=1, description="how many real clients (Locust users)")
    spawn_rate: float = Field(10.0, gt=0, description="clients started per second")
    servers: Annotated[
        dict[Annotated[str, Field(pattern=NAME_RE)], LoadServer], BeforeValidator(_servers)
    ] = Field(
        default_factory=lambda: {"alpha": LoadServer()},  # type: ignore[call-arg]
        description="fake servers (list of names or name -> settings); client i uses server "
        "i mod n",
        min_length=1,
    )
    send_every: DurationField | None = Field(
        Duration(seconds=5.0), description="each client sends one message this often; null: never"
    )
    senders: int | None = Field(
        None,
        ge=0,
        description="how many of the clients send (default: all); every message "
        "reaches every client of the space, so fan-out grows with clients x senders",
    )
    space_size: int | None = Field(
        None,
        ge=1,
        description="put the crowd in spaces of this many members (crowd-0, crowd-1, ...); "
        "default: everyone in the seed space. Every client holds its space's member list "
        "and gets its space's events, so one big space costs the crowd quadratically",
    )
    rest_keepalive: bool = Field(
        True,
        description="reuse REST connections (as a browser would); false: a fresh TLS "
        "connection per request, the scenario rig's deterministic default (about 20 "
        "handshakes per first connect)",
    )
    connect_tries: int = Field(
        3,
        ge=1,
        description="a client whose first connect failed (the client's own timeouts, "
        "'Reconnection failed') presses Reconnect after 1-5 s, up to this many tries in "
        "all; each failed try is a failed `connect` in Locust's report. 1: a failed first "
        "connect is final",
    )
    channels: list[Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]] = Field(
        default_factory=lambda: ["general"],
        min_length=1,
        description="channels each client sends to, in turn (the first is selected)",
    )


class Recovery(Strict):
    """Per reconnection: time from losing the gateway to reconnected (real seconds)."""

    p50: DurationField | None = None
    p95: DurationField | None = None
    p99: DurationField | None = None
    all_within: DurationField | None = Field(
        None, description="every loss recovered within this (an unrecovered one fails)"
    )


class Thresholds(Strict):
    recovery: Recovery | None = None
    lost: int | None = Field(0, ge=0, description="accepted sends the server did not store")
    duplicated: int | None = Field(0, ge=0, description="sends stored more than once")
    send_failure_ratio: float | None = Field(
        None, ge=0, le=1, description="failed sends / sends attempted"
    )
    herd: float | None = Field(
        None,
        gt=0,
        description="peak reconnect attempts in a 100 ms window / mean per window, over each "
        "storm (from the fault to its last attempt)",
    )
    connected_at_end: Percent | None = Field(
        None, description="share of the crowd connected when the run ends"
    )


class Regression(Strict):
    """Load-only regression switches, to prove the thresholds can fail."""

    same_seed: bool = Field(
        False,
        description="every client uses the same RNG seed, so all draw the same backoff jitter "
        "(a crowd without effective jitter: a thundering herd)",
    )
    bugs: list[Annotated[int, Field(ge=1, le=10)]] = Field(
        default_factory=list, description="client regression switches (client-behaviour.md s.9)"
    )


class LoadFile(Strict):
    name: str = Field(min_length=1, description="unique across the load files")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    crowd: Crowd
    run_for: DurationField = Field(description="how long the crowd runs, from the first spawn")
    timescale: float = Field(1.0, gt=0, le=1, description="client, server and toxics together")
    seed: int = Field(1, ge=0, description="base of every client's RNG seed")
    schedule: list[Schedule] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)  # type: ignore[arg-type]
    regression: Regression = Field(default_factory=Regression)  # type: ignore[arg-type]

    @field_validator("name")
    @classmethod
    def _name_is_one_line(cls, name: str) -> str:
        if "\n" in name.strip():
            raise ValueError("the name must fit on one line")
        return name.strip()
