"""Fault specifications (validated with pydantic) and the board that matches them.

A fault is one JSON object with a `kind`. Actions (`close`, `drop`, `invalid_session`,
`reconnect`, `request_heartbeat`, `garbage`, `send_frame`) either happen `now` to the
open sessions they target, or replace the server's answer to the next matching
IDENTIFY / RESUME / HEARTBEAT (`trigger`). Standing faults (ACK withholding, REST
faults, ...) apply to the next `count` matching frames or requests, or until cleared
when `count` is null. Every duration is in real-client seconds; the server scales it.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

Trigger = Literal["now", "on_identify", "on_resume", "on_heartbeat"]
GATEWAY_TRIGGERS: tuple[Trigger, ...] = ("on_identify", "on_resume", "on_heartbeat")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: Annotated[int, Field(ge=1)] | None = None
    """How many matching frames / requests / sessions it applies to; null = until cleared."""


class _SessionTarget(_Spec):
    user: str | None = None
    """Only sessions of this username (default: every session)."""
    session_id: str | None = None


class _GatewayAction(_SessionTarget):
    trigger: Trigger = "now"
    """`now`: to the open, identified sessions targeted (at most `count`); otherwise
    instead of the normal answer to the next `count` IDENTIFY / RESUME / HEARTBEAT."""


# ------------------------------------------------------------------ gateway actions


# A close frame's payload is at most 125 bytes: a 2-byte code, then the reason.
CloseCode = Annotated[int, Field(ge=1000, le=4999)]
CloseReason = Annotated[str, Field(max_length=123)]


class CloseSpec(_GatewayAction):
    kind: Literal["close"]
    code: CloseCode = 1000
    reason: CloseReason = ""


class DropSpec(_GatewayAction):
    """Abort the TCP connection: no close frame (the client sees 1006)."""

    kind: Literal["drop"]


class InvalidSessionSpec(_GatewayAction):
    kind: Literal["invalid_session"]
    resumable: bool = False
    form: Literal["object", "bool"] = "object"
    """`object` sends {"resumable": x} (reference server), `bool` a bare bool (reference client)."""


class ReconnectSpec(_GatewayAction):
    kind: Literal["reconnect"]


class RequestHeartbeatSpec(_GatewayAction):
    """Send op 1: the client must beat at once."""

    kind: Literal["request_heartbeat"]


class GarbageSpec(_GatewayAction):
    kind: Literal["garbage"]
    text: str = "\x00not json{{"


class SendFrameSpec(_GatewayAction):
    """Send `frame` verbatim (a JSON value, or `text` as is); no seq is added."""

    kind: Literal["send_frame"]
    frame: Any = None
    text: str | None = None


class EmitEventSpec(_SessionTarget):
    """Dispatch an op 0 event with the next seq of every targeted session (replayable)."""

    kind: Literal["emit_event"]
    type: Annotated[str, Field(min_length=1)]
    data: Any = None


# ------------------------------------------------------------------ gateway standing


class WithholdAcksSpec(_SessionTarget):
    """Do not answer the next `count` heartbeats (null: all, until cleared)."""

    kind: Literal["withhold_acks"]


class StaleReplaySpec(_SessionTarget):
    """On the next `count` successful RESUMEs, replay from `back` events older than the
    seq the client asked for (events it already has, with their original seq), then
    `resumed`. Never older than the replay buffer reaches."""

    kind: Literal["stale_replay"]
    count: Annotated[int, Field(ge=1)] | None = 1
    back: Annotated[int, Field(ge=1)] = 1


class ForgetSessionsSpec(_Spec):
    """Forget every session now: RESUME gets INVALID_SESSION; open sockets stay up."""

    kind: Literal["forget_sessions"]
    user: str | None = None


class BadTokenCloseSpec(_Spec):
    """Answer a bad token on IDENTIFY/RESUME with a close frame instead of INVALID_SESSION."""

    kind: Literal["bad_token_close"]
    code: CloseCode = 4004
    reason: CloseReason = "authentication failed"


class DelayHelloSpec(_Spec):
    """Wait `seconds` before sending HELLO on the next `count` connections."""

    kind: Literal["delay_hello"]
    seconds: Annotated[float, Field(ge=0)]


class HeartbeatIntervalSpec(_Spec):
    """HELLO announces `ms` (real-client ms, scaled) on the next `count` connections."""

    kind: Literal["heartbeat_interval"]
    ms: Annotated[int, Field(ge=1)]


class ActAsSpec(_Spec):
    """Another user acts through the REST code path: stored and dispatched alike."""

    kind: Literal["act_as"]
    user: Annotated[str, Field(min_length=1)]
    action: Literal["post", "edit", "delete", "typing", "react", "unreact"]
    channel: Annotated[str, Field(min_length=1)] = "general"
    """Channel name (in the seed space) or id."""
    content: str | None = None
    message_id: str | None = None
    nonce: str | None = None
    emoji: str | None = None

    @model_validator(mode="after")
    def _fields_for_action(self) -> ActAsSpec:
        if self.action in ("post", "edit") and self.content is None:
            raise ValueError(f"content is required for action {self.action!r}")
        if self.action in ("edit", "delete", "react", "unreact") and self.message_id is None:
            raise ValueError(f"message_id is required for action {self.action!r}")
        if self.action in ("react", "unreact") and not self.emoji:
            raise ValueError(f"emoji is required for action {self.action!r}")
        return self


# ------------------------------------------------------------------ REST


class _RestSpec(_Spec):
    method: str = "*"
    """HTTP method, or * for any."""
    path: str = "*"
    """Pattern on the path below /api/v1 (fnmatch: `/channels/*/messages`), or `/health`."""

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method.upper() == method.upper()) and (
            fnmatch.fnmatchcase(path, self.path)
        )


class RestHangSpec(_RestSpec):
    """Hold the request `seconds` (null: until the client gives up). `after` = after the
    handler ran (a message is then stored and dispatched, the response is what is late)."""

    kind: Literal["rest_hang"]
    seconds: Annotated[float, Field(ge=0)] | None = None
    stage: Literal["before", "after"] = "before"


class RestFailSpec(_RestSpec):
    kind: Literal["rest_fail"]
    status: Annotated[int, Field(ge=400, le=599)] = 500
    body: Any = None
    """A JSON value, or a string sent as text/plain. Null: the standard error envelope."""
    stage: Literal["before", "after"] = "before"


class RestRateLimitSpec(_RestSpec):
    kind: Literal["rest_rate_limit"]
    retry_after: Annotated[float, Field(ge=0)] | None = 1.0
    """Seconds (scaled) in the Retry-After header and the body's retry_after; null: neither."""
    header: bool = True
    body_field: bool = True


class RestLatencySpec(_RestSpec):
    kind: Literal["rest_latency"]
    seconds: Annotated[float, Field(ge=0)]


class RestMalformedSpec(_RestSpec):
    """Run the handler, then answer with `body` (broken JSON) and the handler's status."""

    kind: Literal["rest_malformed"]
    body: str = '{"data": {"id": '
    content_type: str = "application/json"


class RevokeTokensSpec(_Spec):
    """Revoke every REST/gateway token now (open gateway sessions stay up)."""

    kind: Literal["revoke_tokens"]
    user: str | None = None


EXHAUST_HOLD_S = 30.0
"""Default `hold` of exhaust_rate_limit: half the limiter's 60 s window (and its
Retry-After). A request sent right after the fault meets the 429 with 30 s to spare,
and a client that waits out that Retry-After gets through on its first retry, also
with 30 s to spare. Without a hold the scaled refill (one request per 43 ms at
timescale 0.05) let a request sent a moment late pass."""


class ExhaustRateLimitSpec(_Spec):
    """Empty the REST limiter's bucket now and keep it empty for `hold` seconds, as a
    burst of a whole allowance that goes on at the limiter's pace would: `user`'s
    current tokens, or (no user) the bucket every unauthenticated request shares
    (logins included). Every request in that time gets the limiter's own 429 with
    Retry-After 60 (accord-protocol.md s.4); then it refills at its usual pace."""

    kind: Literal["exhaust_rate_limit"]
    user: str | None = None
    hold: Annotated[float, Field(ge=0)] = EXHAUST_HOLD_S
    """Seconds (real-client, scaled) the bucket stays empty; 0: only empty now."""


class LoginFailSpec(_Spec):
    kind: Literal["login_fail"]
    status: Literal[401, 500] = 401


FaultSpec = Annotated[
    CloseSpec
    | DropSpec
    | InvalidSessionSpec
    | ReconnectSpec
    | RequestHeartbeatSpec
    | GarbageSpec
    | SendFrameSpec
    | EmitEventSpec
    | WithholdAcksSpec
    | StaleReplaySpec
    | ForgetSessionsSpec
    | BadTokenCloseSpec
    | DelayHelloSpec
    | HeartbeatIntervalSpec
    | ActAsSpec
    | RestHangSpec
    | RestFailSpec
    | RestRateLimitSpec
    | RestLatencySpec
    | RestMalformedSpec
    | RevokeTokensSpec
    | ExhaustRateLimitSpec
    | LoginFailSpec,
    Field(discriminator="kind"),
]
GatewayAction = (
    CloseSpec
    | DropSpec
    | InvalidSessionSpec
    | ReconnectSpec
    | RequestHeartbeatSpec
    | GarbageSpec
    | SendFrameSpec
)
GATEWAY_ACTION_TYPES = (
    CloseSpec,
    DropSpec,
    InvalidSessionSpec,
    ReconnectSpec,
    RequestHeartbeatSpec,
    GarbageSpec,
    SendFrameSpec,
)
# Kinds that act once, when applied, and never stand on the board.
IMMEDIATE_TYPES = (
    EmitEventSpec,
    ForgetSessionsSpec,
    ActAsSpec,
    RevokeTokensSpec,
    ExhaustRateLimitSpec,
)

_ADAPTER: TypeAdapter[FaultSpec] = TypeAdapter(FaultSpec)


class FaultSpecError(ValueError):
    """An invalid fault spec; `field` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def parse_fault(raw: Any) -> FaultSpec:
    """Validate one fault spec (a dict, or an already built spec)."""
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The union's discriminator shows up as the first loc element: drop it.
        loc = [str(p) for p in first["loc"]]
        if isinstance(raw, dict) and loc and loc[0] == str(raw.get("kind")):
            loc = loc[1:]
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["kind"]
        return _raise(".".join(loc), first["msg"])


def _raise(field: str, message: str) -> FaultSpec:
    raise FaultSpecError(field, message)


@dataclass
class ActiveFault:
    id: str
    spec: FaultSpec
    remaining: int | None
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "spec": self.spec.model_dump(mode="json"),
            "remaining": self.remaining,
            "fired": self.fired,
        }


@dataclass
class FaultBoard:
    """Standing faults in the order they were added; the first match wins."""

    active: list[ActiveFault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, spec: FaultSpec) -> ActiveFault:
        fault = ActiveFault(id=f"f{next(self._ids)}", spec=spec, remaining=spec.count)
        self.active.append(fault)
        return fault

    def clear(self, fault_id: str) -> bool:
        before = len(self.active)
        self.active = [f for f in self.active if f.id != fault_id]
        return len(self.active) != before

    def reset(self) -> int:
        n = len(self.active)
        self.active.clear()
        return n

    def take(self, predicate: Any) -> ActiveFault | None:
        """Consume one use of the first fault satisfying `predicate(spec)`."""
        for fault in self.active:
            if predicate(fault.spec):
                fault.fired += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.active.remove(fault)
                return fault
        return None

    def peek(self, predicate: Any) -> ActiveFault | None:
        return next((f for f in self.active if predicate(f.spec)), None)
