"""The scenario file format, as pydantic models (and so as JSON Schema).

A scenario is a story: `setup` names the fake servers, `steps` play the outage
top to bottom (each step is a one-key mapping whose key says what happens), and
`timeline` states what the whole recorded run must show. Durations are written in
real-client time; the runner scales them by the scenario's timescale.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from client.core.bugs import BUG_NUMBERS
from fake_server.behaviours import BEHAVIOURS, UnknownBehaviour
from scenarios.durations import Duration, parse_duration

# --------------------------------------------------------------------------- names


def _known_behaviour(value: Any) -> Any:
    if isinstance(value, str) and value not in BEHAVIOURS:
        raise UnknownBehaviour(value)
    return value


NAME_RE = r"^[a-z][a-z0-9_-]*$"
TAG_RE = r"^[a-z0-9_-]+:[a-z0-9_-]+$"
CHANNEL_RE = r"^[a-z][a-z0-9_-]*/[a-z0-9_-]+$"
PROXY_RE = r"^[a-z][a-z0-9_-]*\.(gateway|rest)$"

ServerName = Annotated[str, Field(pattern=NAME_RE, description="a fake server named in setup")]
ChannelRef = Annotated[
    str, Field(pattern=CHANNEL_RE, description="SERVER/CHANNEL, e.g. alpha/general")
]
ProxyRef = Annotated[
    str,
    Field(pattern=PROXY_RE, description="SERVER.gateway or SERVER.rest: one of the two proxies"),
]
ServerBehaviour = Annotated[
    str,
    BeforeValidator(lambda v: _known_behaviour(v)),
    WithJsonSchema({"type": "string", "enum": sorted(BEHAVIOURS)}),
]
ScenarioTag = Annotated[
    str, Field(pattern=TAG_RE, description="family:name, lowercase letters, digits, - and _")
]

DurationField = Annotated[
    Duration,
    BeforeValidator(lambda v: v if isinstance(v, Duration) else parse_duration(v)),
    PlainSerializer(str),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*(\d+(\.\d+)?|\.\d+)\s*(ms|s|sec|m|min|heartbeats?|hb)?\s*$",
                },
                {"type": "number", "minimum": 0},
            ],
            "description": "real-client time: '5s', '300ms', '3 heartbeats', or seconds",
        }
    ),
]

Status = Literal[
    "connecting", "connected", "syncing", "disconnected", "reconnecting", "error", "none"
]
Colour = Literal["yellow", "green", "red"]
DotColour = Literal["yellow", "red", "none"]
FATAL_CODES = (4003, 4004, 4012, 4013, 4014)
# Close codes a server may send (protocol page s.3), plus 1006 for a drop.
KNOWN_CLOSE_CODES = (
    1000,
    1001,
    1006,
    1009,
    4000,
    4001,
    4002,
    4003,
    4004,
    4005,
    4007,
    4008,
    4009,
    4012,
    4013,
    4014,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- setup


class ServerSetup(Strict):
    user: str = Field(
        "alice", description="who the client logs in as (seed users: alice, bob, carol)"
    )
    password: str = "password"
    space: str = Field("accord", description="the space slug the client opens")
    heartbeat: DurationField | None = Field(
        None, description="the HELLO heartbeat interval the fake server announces (default 45s)"
    )
    trusted: bool = Field(
        True, description="false: the client does not trust this server's test CA (TLS errors)"
    )
    behaviours: list[ServerBehaviour] = Field(
        default_factory=list,
        description="opt-in fake-server behaviours that differ from the real server "
        "(docs/fake-server.md), e.g. [dedupe_nonce]",
    )


def _servers_list_to_map(value: Any) -> Any:
    if isinstance(value, list):
        return {name: {} for name in value} if all(isinstance(n, str) for n in value) else value
    return value


class Setup(Strict):
    servers: Annotated[
        dict[Annotated[str, Field(pattern=NAME_RE)], ServerSetup],
        BeforeValidator(_servers_list_to_map),
    ] = Field(
        description="fake servers by name: a list of names, or a mapping name -> settings",
        min_length=1,
    )
    timescale: float | None = Field(
        None,
        gt=0,
        le=1,
        description="one factor for client, server, toxics and deadlines (default: the run's)",
    )
    seed: int | None = Field(None, ge=0, description="the client's RNG seed (default: the run's)")
    bugs: list[Annotated[int, Field(ge=min(BUG_NUMBERS), le=max(BUG_NUMBERS))]] = Field(
        default_factory=list,
        description="regression switches (client-behaviour.md s.9) on from the start",
    )


# --------------------------------------------------------------------------- conditions


def _hidden_banner(value: Any) -> Any:
    return {"color": "hidden"} if value == "hidden" else value


class BannerState(Strict):
    color: Literal["yellow", "green", "red", "hidden"]
    text: str | None = None
    button: str | None = Field(None, description="e.g. Reconnect on the red banner")
    server: ServerName | None = Field(None, description="whose banner (default: the one on screen)")

    @model_validator(mode="after")
    def _hidden_has_no_text(self) -> BannerState:
        if self.color == "hidden" and (self.text or self.button):
            raise ValueError("a hidden banner has no text or button")
        return self


Banner = Annotated[BannerState, BeforeValidator(_hidden_banner)]


class ComposerState(Strict):
    enabled: bool | None = None
    placeholder: str | None = None
    label: str | None = Field(None, description="the outcome label under the composer; '' for none")
    text: str | None = Field(None, description="the text left in the input ('' = empty)")


class MessagesState(Strict):
    channel: ChannelRef
    includes: list[str] = Field(default_factory=list, description="texts the client shows")
    excludes: list[str] = Field(default_factory=list, description="texts the client must not show")
    failed: list[str] = Field(default_factory=list, description="texts shown as failed entries")


class SignalSeen(Strict):
    name: str
    args: list[Any] | None = Field(None, description="leading arguments to match")


def _message_view_text(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class MessageViewState(Strict):
    text: str
    server: ServerName | None = None


class Condition(Strict):
    """What the user sees (and a few client facts), checked at one instant."""

    status: dict[ServerName, Status] | None = None
    banner: Banner | None = None
    composer: ComposerState | None = None
    dot: dict[ServerName, DotColour] | None = None
    message_view: Annotated[MessageViewState, BeforeValidator(_message_view_text)] | None = None
    messages: MessagesState | None = None
    queue: dict[ServerName, Annotated[int, Field(ge=0)]] | None = None
    mode: Literal["CONNECTING", "LIVE"] | None = None
    inline_errors: list[str] | None = Field(
        None,
        description="the inline errors now shown on the selected server's messages "
        "('Edit failed: ...', 'Delete failed: ...'), in any order; [] for none",
    )
    editing: bool | None = Field(None, description="a message is in edit mode")
    signal: SignalSeen | None = Field(
        None, description="a signal was emitted (since the step began)"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set - {"within"}:
            raise ValueError("name at least one thing to check (status, banner, composer, ...)")
        return self


class WaitFor(Condition):
    within: DurationField = Field(Duration(seconds=10), description="deadline, real-client time")


# --------------------------------------------------------------------------- steps

ToxicType = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]
# Which attributes each toxic takes, and which of them are times.
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    "latency": {"latency": "ms", "jitter": "ms"},
    "bandwidth": {"rate": "KB/s"},
    "slow_close": {"delay": "ms"},
    "timeout": {"timeout": "ms"},
    "reset_peer": {"timeout": "ms"},
    "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "us"},
    "limit_data": {"bytes": "bytes"},
}


class ToxicSpec(Strict):
    proxy: ProxyRef
    type: ToxicType
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    name: str | None = None
    attributes: dict[str, int | float | str] = Field(
        default_factory=dict,
        description="time attributes as durations ('500ms') or in Toxiproxy's unit "
        "(ms; µs for slicer.delay); rates in KB/s; sizes in bytes",
    )

    @model_validator(mode="after")
    def _attributes_fit_type(self) -> ToxicSpec:
        allowed = TOXIC_ATTRIBUTES[self.type]
        for key, value in self.attributes.items():
            if key not in allowed:
                raise ValueError(
                    f"toxic {self.type!r} has no attribute {key!r} (it takes {', '.join(allowed)})"
                )
            if allowed[key] in ("ms", "us"):
                if isinstance(value, str):
                    parse_duration(value)
                elif value < 0:
                    raise ValueError(f"attribute {key!r} cannot be negative")
            elif not isinstance(value, int | float) or value < 0:
                raise ValueError(
                    f"attribute {key!r} must be a non-negative number ({allowed[key]})"
                )
        return self

    def attribute_seconds(self, key: str) -> float | None:
        """A time attribute in real-client seconds (None if it is not a time)."""
        unit = TOXIC_ATTRIBUTES[self.type].get(key)
        value = self.attributes.get(key)
        if value is None or unit not in ("ms", "us"):
            return None
        if isinstance(value, str):
            return parse_duration(value).seconds
        return float(value) / (1000.0 if unit == "ms" else 1_000_000.0)


def _send_text(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class SendSpec(Strict):
    text: str = Field(description="with `repeat`, `{n}` in the text becomes 1, 2, ...")
    channel: ChannelRef | None = Field(None, description="default: the selected channel")
    repeat: int = Field(1, ge=1, le=500, description="send it this many times, back to back")

    def texts(self) -> list[str]:
        if self.repeat == 1:
            return [self.text]
        return [self.text.replace("{n}", str(n)) for n in range(1, self.repeat + 1)]


class EditSpec(Strict):
    message: str = Field(description="the text of the message to edit (its newest match)")
    text: str
    channel: ChannelRef | None = None


class DeleteSpec(Strict):
    message: str = Field(description="the text of the message to delete (its newest match)")
    channel: ChannelRef | None = None


def _bug_number(value: Any) -> Any:
    return {"bug": value} if isinstance(value, int) and not isinstance(value, bool) else value


class BugSpec(Strict):
    bug: int = Field(ge=min(BUG_NUMBERS), le=max(BUG_NUMBERS))


class AddServerSpec(Strict):
    server: ServerName
    url: str | None = Field(None, description="override the base URL (e.g. to try http://)")


class UserPost(Strict):
    channel: ChannelRef
    text: str
    user: str = "bob"


class UserEdit(Strict):
    channel: ChannelRef
    message: str = Field(description="the text of the message to edit")
    text: str
    user: str = "bob"


class UserDelete(Strict):
    channel: ChannelRef
    message: str
    user: str = "bob"


class ServerFault(Strict):
    """A fault of the fake server's control API, by name, with its arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)
    server: ServerName

    @model_validator(mode="after")
    def _names_a_fault(self) -> ServerFault:
        if not self.model_extra:
            raise ValueError("name the fault, e.g. {server: alpha, withhold_acks: true}")
        return self

    def faults(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CloseSpec(Strict):
    """The fake server closes the client's gateway socket with this code."""

    server: ServerName
    code: int
    reason: str = ""

    @field_validator("code")
    @classmethod
    def _known_code(cls, code: int) -> int:
        if code not in KNOWN_CLOSE_CODES or code == 1006:
            raise ValueError(
                f"close code {code} is not one a server can send (one of "
                f"{', '.join(str(c) for c in KNOWN_CLOSE_CODES if c != 1006)})"
            )
        return code


class InvalidSessionSpec(Strict):
    server: ServerName
    resumable: bool = False


Heal = Annotated[str, Field(pattern=r"^(all|[a-z][a-z0-9_-]*(\.(gateway|rest))?)$")]


class Step(Strict):
    """Base of every step: exactly one key."""


def _step(key: str, annotation: Any, doc: str) -> type[Step]:
    model = type(
        f"{''.join(p.title() for p in key.split('_'))}Step",
        (Step,),
        {"__annotations__": {key: annotation}, "__doc__": doc, "__module__": __name__},
    )
    return model


STEP_KINDS: dict[str, tuple[Any, str]] = {
    # client actions
    "connect": (ServerName, "add the server in the client and connect (the add-server flow)"),
    "add_server": (
        AddServerSpec,
        "add a server with an explicit URL (e.g. to see http:// refused)",
    ),
    "connect_saved": (
        ServerName,
        "connect a server already in the saved config, as at app start "
        "(no add-server probe, no rollback: a failure shows the red banner)",
    ),
    "select_channel": (ChannelRef, "select SERVER/CHANNEL (loads its messages)"),
    "send": (Annotated[SendSpec, BeforeValidator(_send_text)], "type and send a message"),
    "edit": (EditSpec, "edit one of the user's messages"),
    "delete": (DeleteSpec, "delete one of the user's messages"),
    "fetch": (ChannelRef, "fetch a channel's messages"),
    "click_retry": (ChannelRef, "click the message view's 'Click to retry'"),
    "reconnect": (ServerName, "press Reconnect (banner button / space icon menu)"),
    "remove_server": (ServerName, "Remove Server from the space icon menu"),
    "enable_bug": (Annotated[BugSpec, BeforeValidator(_bug_number)], "switch a regression bug on"),
    # another user, on the fake server
    "user_post": (UserPost, "another user posts (default bob)"),
    "user_edit": (UserEdit, "another user edits their message"),
    "user_delete": (UserDelete, "another user deletes their message"),
    # fake-server faults
    "server_fault": (
        ServerFault,
        "a fake-server fault: {server: alpha, kind: <kind>, ...its fields}",
    ),
    "server_close": (CloseSpec, "the server closes the gateway socket with a code"),
    "invalid_session": (InvalidSessionSpec, "the server sends INVALID_SESSION"),
    # network faults (Toxiproxy)
    "toxic": (ToxicSpec, "add a Toxiproxy toxic on one proxy"),
    "proxy_down": (
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*(\.(gateway|rest))?$")],
        "disable a proxy (SERVER.gateway / SERVER.rest) or both (SERVER)",
    ),
    "heal": (
        Heal,
        "remove toxics and re-enable proxies: all, SERVER or SERVER.PROXY; "
        "also clears the server faults of that server",
    ),
    # process faults
    "kill_server": (ServerName, "SIGKILL the fake server process"),
    "restart_server": (ServerName, "start the fake server again (same ports and database)"),
    "freeze_server": (ServerName, "SIGSTOP the fake server process"),
    "thaw_server": (ServerName, "SIGCONT the fake server process"),
    # checks and time
    "wait_for": (WaitFor, "wait until the condition has held at some instant since the step began"),
    "expect": (Condition, "check the state now"),
    "pause": (DurationField, "let time pass (real-client time)"),
}
STEP_MODELS: dict[str, type[Step]] = {k: _step(k, a, d) for k, (a, d) in STEP_KINDS.items()}


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key in STEP_MODELS:
            return str(key)
    if isinstance(value, Step):
        return next(iter(type(value).model_fields))
    return None


# One union of every step model, told apart by the step's only key.
_TaggedSteps = tuple(Annotated[model, Tag(kind)] for kind, model in STEP_MODELS.items())
AnyStep = Annotated[
    Union[_TaggedSteps],  # type: ignore[valid-type]  # noqa: UP007  (built at run time)
    Discriminator(
        _step_kind,
        custom_error_type="unknown_step",
        custom_error_message="unknown step",
    ),
]


def step_kind(step: Step) -> str:
    return next(iter(type(step).model_fields))


def step_value(step: Step) -> Any:
    return getattr(step, step_kind(step))


# --------------------------------------------------------------------------- the timeline verdict


def _sequence(value: Any) -> Any:
    return {"exactly": value} if isinstance(value, list) else value


class StatusSequence(Strict):
    exactly: list[Status] | None = Field(
        None, description="the whole sequence of distinct statuses"
    )
    in_order: list[Status] | None = Field(None, description="these statuses appear in this order")


class BannerSequence(Strict):
    exactly: list[Banner] | None = None
    in_order: list[Banner] | None = None


class StringSequence(Strict):
    exactly: list[str] | None = None
    in_order: list[str] | None = None


class DotSequence(Strict):
    exactly: list[DotColour] | None = None
    in_order: list[DotColour] | None = None


class CloseSeen(Strict):
    by: Literal["client", "server", "network"] | None = None
    code: int
    reason: str | None = None

    @field_validator("code")
    @classmethod
    def _known_code(cls, code: int) -> int:
        if code not in KNOWN_CLOSE_CODES:
            raise ValueError(
                f"unknown close code {code} (protocol page s.3 lists "
                f"{', '.join(map(str, KNOWN_CLOSE_CODES))})"
            )
        return code


class CloseSequence(Strict):
    exactly: list[CloseSeen] | None = None
    in_order: list[CloseSeen] | None = None


class Count(Strict):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


def _count(value: Any) -> Any:
    return (
        {"min": value, "max": value}
        if isinstance(value, int) and not isinstance(value, bool)
        else value
    )


class Backoff(Strict):
    per_spec: bool = Field(
        True,
        description="every scheduled reconnect delay equals base*2^min(n-1,5) + draw*base, "
        "from the recorded RNG draws (exact), and the wall-clock gaps fit generous bounds",
    )
    delays: list[Annotated[list[float], Field(min_length=2, max_length=2)]] | None = Field(
        None,
        description="[low, high] seconds (real-client time) for each attempt's delay, in order",
    )


def _backoff(value: Any) -> Any:
    return {"per_spec": value} if isinstance(value, bool) else value


class ServerTimeline(Strict):
    status: Annotated[StatusSequence, BeforeValidator(_sequence)] | None = None
    banners: Annotated[BannerSequence, BeforeValidator(_sequence)] | None = None
    placeholders: Annotated[StringSequence, BeforeValidator(_sequence)] | None = Field(
        None, description="composer placeholders shown while this server's channel was selected"
    )
    labels: Annotated[StringSequence, BeforeValidator(_sequence)] | None = None
    dots: Annotated[DotSequence, BeforeValidator(_sequence)] | None = None
    closes: Annotated[CloseSequence, BeforeValidator(_sequence)] | None = None
    attempts: Annotated[Count, BeforeValidator(_count)] | None = Field(
        None, description="reconnect attempts announced (server_reconnecting signals)"
    )
    logins: Annotated[Count, BeforeValidator(_count)] | None = Field(
        None, description="POST /auth/login requests the client made"
    )
    reconnected_by: Literal["resume", "identify"] | None = Field(
        None, description="how the last reconnection got its session back"
    )
    backoff: Annotated[Backoff, BeforeValidator(_backoff)] | None = None


class Delivery(Strict):
    """Expected counts from the delivery checker; lost, duplicated, reordered and
    unexpected are always required to be 0."""

    delivered: int | None = Field(None, ge=0, description="accepted and stored exactly once")
    pending: int | None = Field(None, ge=0, description="still queued at the end")
    refused: int | None = Field(None, ge=0, description="refused by the server, not stored")
    unknown: int | None = Field(None, ge=0, description="outcome unknown to the client")
    messages_match_server: bool = Field(
        True,
        description="after the last successful sync, the selected channel's messages "
        "equal the server's",
    )


def _split_servers(value: Any) -> Any:
    """`timeline:` holds `delivery` and one entry per server name, side by side."""
    if isinstance(value, dict) and "servers" not in value:
        servers = {k: v for k, v in value.items() if k != "delivery"}
        out: dict[str, Any] = {"servers": servers}
        if "delivery" in value:
            out["delivery"] = value["delivery"]
        return out
    return value


class TimelineExpectation(Strict):
    delivery: Delivery = Field(default_factory=Delivery)  # type: ignore[arg-type]
    servers: dict[Annotated[str, Field(pattern=NAME_RE)], ServerTimeline] = Field(
        default_factory=dict
    )


TimelineField = Annotated[TimelineExpectation, BeforeValidator(_split_servers)]


# --------------------------------------------------------------------------- the scenario


class Scenario(Strict):
    name: str = Field(min_length=1, description="unique across the catalogue")
    tags: list[ScenarioTag] = Field(default_factory=list)
    description: str = ""
    setup: Setup
    steps: list[AnyStep] = Field(min_length=1)
    timeline: TimelineField = Field(default_factory=TimelineExpectation)

    @field_validator("name")
    @classmethod
    def _name_is_one_line(cls, name: str) -> str:
        if "\n" in name.strip():
            raise ValueError("the name must fit on one line")
        return name.strip()
