"""The scenario file format, as pydantic models (and so as JSON Schema).

A scenario is a story: `setup` names the fake servers, `steps` play the outage
top to bottom (each step is a one-key mapping whose key says what happens), and
`timeline` states what the whole recorded run must show. Durations are written in
real-client time; the runner scales them by the scenario's timescale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
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

from chaos.toxics import TIME_UNITS, TOXIC_TYPES, toxic_attribute_units
from client.core.bugs import Bug
from client.core.protocol import KNOWN_CLOSE_CODES, STATUS_NAMES
from client.core.protocol import Status as CoreStatus
from fake_server.behaviours import BEHAVIOURS, UnknownBehaviour
from scenarios.durations import Duration, parse_duration
from scenarios.needs import Need

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

# The regression switches the client has (client-behaviour.md s.9).
MAX_BUG = max(Bug)
BugNumber = Annotated[int, Field(ge=1, le=MAX_BUG)]
# Gateway ops by name (protocol page s.2).
OPS: dict[str, int] = {
    "event": 0,
    "heartbeat": 1,
    "identify": 2,
    "resume": 3,
    "heartbeat_ack": 4,
    "hello": 5,
    "reconnect": 6,
    "invalid_session": 7,
    "presence_update": 8,
    "voice_state_update": 9,
    "request_members": 10,
}
OpName = Literal[
    "event",
    "heartbeat",
    "identify",
    "resume",
    "heartbeat_ack",
    "hello",
    "reconnect",
    "invalid_session",
    "presence_update",
    "voice_state_update",
    "request_members",
]
# A name given with `as:` to something a step created, used later as `{ref: NAME}`.
RefName = Annotated[str, Field(pattern=NAME_RE, description="a name given earlier with `as:`")]

# The client's statuses, exported as a plain string enum (as a Literal would be).
Status = Annotated[CoreStatus, WithJsonSchema({"enum": list(STATUS_NAMES), "type": "string"})]
Colour = Literal["yellow", "green", "red"]
DotColour = Literal["yellow", "red", "none"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- setup


class ExternalServerSpec(Strict):
    """An external Accord server: what `--target external --server-url ...` gives a whole
    run, for one scenario server (docs/external.md)."""

    url: str = Field(
        description="http://HOST:PORT (the rig's TLS front goes before it) or https://HOST:PORT; "
        "{port}: a free port the rig picks for `command`"
    )
    command: str | None = Field(
        None,
        description="the rig starts the server with it (then kill/freeze/restart work); "
        "placeholders {port} {work} {timescale} {heartbeat_ms}",
    )
    ca: str | None = Field(
        None, description="the https server's CA file, relative to the scenario file"
    )
    accounts: dict[str, str] = Field(
        default_factory=dict, description="scenario user -> NAME:PASSWORD on the server"
    )
    # `register` in the file; the attribute name would shadow BaseModel's (ABC) register.
    register_accounts: bool = Field(
        False, alias="register", description="register a fresh account per user and run"
    )
    timescale: float | None = Field(
        None, gt=0, le=1, description="the server's timescale when `command` cannot set it"
    )

    @model_validator(mode="after")
    def _a_usable_target(self) -> ExternalServerSpec:
        from scenarios.external import external_target  # it imports no schema

        external_target(self, base=None)  # ValueError naming what is wrong
        return self


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
    external: ExternalServerSpec | None = Field(
        None,
        description="an external Accord server instead of a fake one (docs/external.md); "
        "`accord-rig run --target external` gives one to every server without its own",
    )


def _servers_list_to_map(value: Any) -> Any:
    if isinstance(value, list):
        return {name: {} for name in value} if all(isinstance(n, str) for n in value) else value
    return value


# What setup fields need of a server beyond its public API (scenarios.needs): a
# scenario setting them cannot be played on a target without it.
SETUP_NEEDS: dict[str, Need] = {
    "heartbeat": Need.SET_HEARTBEAT,
    "behaviours": Need.FAKE_BEHAVIOURS,
}


class Setup(Strict):
    servers: Annotated[
        dict[Annotated[str, Field(pattern=NAME_RE)], ServerSetup],
        BeforeValidator(
            _servers_list_to_map,
            json_schema_input_type=list[ServerName]
            | dict[Annotated[str, Field(pattern=NAME_RE)], ServerSetup],
        ),
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
    bugs: list[BugNumber] = Field(
        default_factory=list,
        description="regression switches (client-behaviour.md s.9) on from the start",
    )
    client_floor: DurationField | None = Field(
        None,
        description="real seconds the client's I/O timeouts (open, HELLO, READY, REST) never "
        "drop below, when more than the rig's own floor (1 s): for a story that counts "
        "handshakes the server must see, so a handshake a busy machine slowed is not a "
        "timeout that never reached the server",
    )

    @field_validator("client_floor")
    @classmethod
    def _floor_in_seconds(cls, value: Duration | None) -> Duration | None:
        if value is not None and value.heartbeats:
            raise ValueError("client_floor is real seconds (e.g. 3s), not heartbeats")
        return value


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


Banner = Annotated[
    BannerState,
    BeforeValidator(_hidden_banner, json_schema_input_type=Literal["hidden"] | BannerState),
]


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
    exactly_once: list[str] = Field(
        default_factory=list, description="texts shown exactly once (not as failed entries)"
    )
    counts: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="text -> how many times it is shown (0 = not shown)"
    )


class SignalSeen(Strict):
    name: str
    args: list[Any] | None = Field(None, description="leading arguments to match")


def _signal_name(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


SignalRef = Annotated[
    SignalSeen, BeforeValidator(_signal_name, json_schema_input_type=str | SignalSeen)
]


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
    message_view: (
        Annotated[
            MessageViewState,
            BeforeValidator(_message_view_text, json_schema_input_type=str | MessageViewState),
        ]
        | None
    ) = None
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
        if not self.model_fields_set - {"within", "eventually", "since"}:
            raise ValueError("name at least one thing to check (status, banner, composer, ...)")
        return self


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


# Conditions the recorded timeline cannot answer (`messages` reads the client's list
# live) or that mean nothing at an instant (`signal` is about a window).
NOT_ON_TIMELINE = ("messages",)


class RecordedCondition(Condition):
    """A condition judged on the recorded observations (no `messages`)."""

    @model_validator(mode="after")
    def _recorded(self) -> RecordedCondition:
        for key in NOT_ON_TIMELINE:
            if key in self.model_fields_set:
                raise ValueError(
                    f"{key!r} is read live from the client, not from the timeline: "
                    "check it in wait_for or expect"
                )
        return self


EventWhen = Literal["start", "end", "set", "fired"]
EVENT_KINDS = ("signal", "step", "timer", "sent", "close", "holds")


class EventRef(Strict):
    """One kind of recorded instant; `nth` picks the occurrence (1 = first, -1 = last)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": [kind]} for kind in EVENT_KINDS]},
    )

    signal: SignalRef | None = Field(None, description="a signal: its name, or {name, args}")
    step: int | None = Field(None, ge=1, description="a step of this scenario (1-based)")
    timer: str | None = Field(
        None,
        description="a client timer by name (glob), e.g. 'alpha:gateway:heartbeat', "
        "'alpha:http:*:timeout'",
    )
    at: EventWhen | None = Field(
        None,
        description="step: start (default) or end; timer: set (default) or fired "
        "(when a timer that was not cancelled or set again came due)",
    )
    sent: OpName | None = Field(None, description="the client sent a gateway frame of this op")
    close: CloseSeen | None = Field(
        None, description="a close as in the timeline's `closes` ({by, code, reason})"
    )
    holds: RecordedCondition | None = Field(
        None, description="the instant the condition became true (it was false just before)"
    )
    server: ServerName | None = Field(None, description="sent/close: only this server's sockets")
    nth: int = Field(1, description="which occurrence: 1 = first, 2 = second, -1 = last")

    @model_validator(mode="after")
    def _one_kind(self) -> EventRef:
        kinds = [k for k in EVENT_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"an event names exactly one of {', '.join(EVENT_KINDS)}"
                f" (found {', '.join(kinds) or 'none'})"
            )
        if self.nth == 0:
            raise ValueError("nth counts from 1 (or from -1 at the end)")
        allowed = {"step": ("start", "end"), "timer": ("set", "fired")}.get(kinds[0], ())
        if self.at is not None and self.at not in allowed:
            raise ValueError(
                f"`at` does not apply to a {kinds[0]} event"
                if not allowed
                else f"a {kinds[0]} event is at {' or '.join(allowed)}, not {self.at!r}"
            )
        if self.holds is not None and "signal" in self.holds.model_fields_set:
            raise ValueError("a signal is an event of its own: {signal: NAME}, not in holds")
        if self.server is not None and kinds[0] not in ("sent", "close"):
            raise ValueError("`server` narrows only sent and close events")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in EVENT_KINDS if getattr(self, k) is not None)


class WaitFor(Condition):
    within: DurationField | None = Field(
        None,
        description="the condition must hold within this much client time (default 10s), "
        "counted from the step's start or from `since`; the rig waits at least "
        "the real-time floor",
    )
    eventually: DurationField | None = Field(
        None,
        description="instead of within: wait this long (liveness only, no upper bound "
        "judged), for steps whose work does not scale (a process restart, TLS)",
    )
    since: EventRef | None = Field(
        None,
        description="measure `within` from the latest such event at or before the hold "
        "(default: the step's start)",
    )

    @model_validator(mode="after")
    def _one_deadline(self) -> WaitFor:
        if self.within is not None and self.eventually is not None:
            raise ValueError("give either within (a judged bound) or eventually (a deadline)")
        if self.since is not None and self.eventually is not None:
            raise ValueError("`since` measures `within`; it means nothing with `eventually`")
        if self.since is not None and "nth" in self.since.model_fields_set:
            raise ValueError("`since` is the latest event before the hold; it takes no nth")
        return self

    @property
    def bound(self) -> Duration:
        """How long the rig waits for the condition (real-client time)."""
        return self.eventually or self.within or DEFAULT_WITHIN

    @property
    def judged(self) -> bool:
        return self.eventually is None


DEFAULT_WITHIN = Duration(seconds=10)


# --------------------------------------------------------------------------- steps

# The toxic types and their attributes' units are chaos.toxics' (which applies them).
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = toxic_attribute_units()


def _known_toxic(value: Any) -> Any:
    if isinstance(value, str) and value not in TOXIC_TYPES:
        raise ValueError(f"{value!r} is not one of {', '.join(TOXIC_TYPES)}")
    return value


ToxicType = Annotated[
    str,
    BeforeValidator(_known_toxic),
    WithJsonSchema({"type": "string", "enum": list(TOXIC_TYPES)}),
]


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
            if allowed[key] in TIME_UNITS:
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
        if value is None or unit not in TIME_UNITS:
            return None
        if isinstance(value, str):
            return parse_duration(value).seconds
        return float(value) / (1000.0 if unit == "ms" else 1_000_000.0)


def _send_text(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class Named(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    as_: RefName | None = Field(
        None,
        alias="as",
        description="name the message this step creates, for `{ref: NAME}` in later steps",
    )


class MessageRef(Strict):
    ref: RefName


MessagePick = Annotated[
    str | MessageRef,
    Field(description="the message's text (its newest match), or {ref: NAME} given by `as:`"),
]


class SendSpec(Named):
    text: str = Field(description="with `repeat`, `{n}` in the text becomes 1, 2, ...")
    channel: ChannelRef | None = Field(None, description="default: the selected channel")
    repeat: int = Field(1, ge=1, le=500, description="send it this many times, back to back")

    def texts(self) -> list[str]:
        if self.repeat == 1:
            return [self.text]
        return [self.text.replace("{n}", str(n)) for n in range(1, self.repeat + 1)]


class EditSpec(Strict):
    message: MessagePick
    text: str
    channel: ChannelRef | None = None


class DeleteSpec(Strict):
    message: MessagePick
    channel: ChannelRef | None = None


def _bug_number(value: Any) -> Any:
    return {"bug": value} if isinstance(value, int) and not isinstance(value, bool) else value


class BugSpec(Strict):
    bug: BugNumber


class AddServerSpec(Strict):
    server: ServerName
    url: str | None = Field(None, description="override the base URL (e.g. to try http://)")


class UserPost(Named):
    channel: ChannelRef
    text: str
    user: str = "bob"


class UserEdit(Strict):
    channel: ChannelRef
    message: MessagePick
    text: str
    user: str = "bob"


class UserDelete(Strict):
    channel: ChannelRef
    message: MessagePick
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


StepHandler = Callable[[Any, Any, Any], Awaitable[None]]
"""`handler(run, value, outcome)`: plays one step of a scenarios.runner.ScenarioRun."""


@dataclass
class StepKind:
    """One step kind: its value's type (the schema), its doc line, what it needs of the
    server beyond the public API (scenarios.needs), and how the runner plays it (set by
    scenarios.runner's `@plays(kind)`, which the runner checks covers every kind)."""

    annotation: Any
    doc: str
    needs: set[Need] = field(default_factory=set)
    handler: StepHandler | None = None


def _step(key: str, annotation: Any, doc: str) -> type[Step]:
    model = type(
        f"{''.join(p.title() for p in key.split('_'))}Step",
        (Step,),
        {"__annotations__": {key: annotation}, "__doc__": doc, "__module__": __name__},
    )
    return model


STEP_KINDS: dict[str, StepKind] = {
    # client actions
    "connect": StepKind(
        ServerName, "add the server in the client and connect (the add-server flow)"
    ),
    "add_server": StepKind(
        AddServerSpec,
        "add a server with an explicit URL (e.g. to see http:// refused)",
    ),
    "connect_saved": StepKind(
        ServerName,
        "connect a server already in the saved config, as at app start "
        "(no add-server probe, no rollback: a failure shows the red banner)",
    ),
    "select_channel": StepKind(ChannelRef, "select SERVER/CHANNEL (loads its messages)"),
    "send": StepKind(
        Annotated[SendSpec, BeforeValidator(_send_text, json_schema_input_type=str | SendSpec)],
        "type and send a message",
    ),
    "edit": StepKind(EditSpec, "edit one of the user's messages"),
    "delete": StepKind(DeleteSpec, "delete one of the user's messages"),
    "fetch": StepKind(ChannelRef, "fetch a channel's messages"),
    "click_retry": StepKind(ChannelRef, "click the message view's 'Click to retry'"),
    "reconnect": StepKind(ServerName, "press Reconnect (banner button / space icon menu)"),
    "remove_server": StepKind(ServerName, "Remove Server from the space icon menu"),
    "enable_bug": StepKind(
        Annotated[
            BugSpec, BeforeValidator(_bug_number, json_schema_input_type=BugNumber | BugSpec)
        ],
        "switch a regression bug on",
    ),
    # another user (the fake's control API, else REST as another account)
    "user_post": StepKind(UserPost, "another user posts (default bob)"),
    "user_edit": StepKind(UserEdit, "another user edits their message"),
    "user_delete": StepKind(UserDelete, "another user deletes their message"),
    # fake-server faults
    "server_fault": StepKind(
        ServerFault,
        "a fake-server fault: {server: alpha, kind: <kind>, ...its fields}",
        {Need.FAKE_CONTROL},
    ),
    "server_close": StepKind(
        CloseSpec, "the server closes the gateway socket with a code", {Need.FAKE_CONTROL}
    ),
    "invalid_session": StepKind(
        InvalidSessionSpec, "the server sends INVALID_SESSION", {Need.FAKE_CONTROL}
    ),
    # network faults (Toxiproxy)
    "toxic": StepKind(ToxicSpec, "add a Toxiproxy toxic on one proxy"),
    "proxy_down": StepKind(
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*(\.(gateway|rest))?$")],
        "disable a proxy (SERVER.gateway / SERVER.rest) or both (SERVER)",
    ),
    "heal": StepKind(
        Heal,
        "remove toxics and re-enable proxies: all, SERVER or SERVER.PROXY; "
        "also clears the server faults of that server",
    ),
    # process faults
    "kill_server": StepKind(ServerName, "SIGKILL the server process", {Need.OWN_PROCESS}),
    "restart_server": StepKind(
        ServerName,
        "start the server again (same ports and database)",
        {Need.OWN_PROCESS},
    ),
    "freeze_server": StepKind(ServerName, "SIGSTOP the server process", {Need.OWN_PROCESS}),
    "thaw_server": StepKind(ServerName, "SIGCONT the server process", {Need.OWN_PROCESS}),
    # checks and time
    "wait_for": StepKind(
        WaitFor, "wait until the condition has held at some instant since the step began"
    ),
    "expect": StepKind(Condition, "check the state now"),
    "pause": StepKind(DurationField, "let time pass (real-client time)"),
}
STEP_MODELS: dict[str, type[Step]] = {
    kind: _step(kind, entry.annotation, entry.doc) for kind, entry in STEP_KINDS.items()
}


def single_key_kind(value: Any, kinds: Container[str]) -> str | None:
    """The step kind of a one-key mapping (`{kind: value}`) or a parsed step; the
    discriminator of every step union (scenario steps, a load file's faults)."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key in kinds:
            return str(key)
    if isinstance(value, Step):
        return next(iter(type(value).model_fields))
    return None


def _step_kind(value: Any) -> str | None:
    return single_key_kind(value, STEP_MODELS)


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


def _sequence_of(model: type[BaseModel], item: Any) -> Any:
    """A sequence field: a plain list (exactly this), or {exactly | in_order: [...]}."""
    return Annotated[model, BeforeValidator(_sequence, json_schema_input_type=list[item] | model)]


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


class CloseSequence(Strict):
    exactly: list[CloseSeen] | None = None
    in_order: list[CloseSeen] | None = None


class Count(Strict):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    def admits(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


def _count(value: Any) -> Any:
    return (
        {"min": value, "max": value}
        if isinstance(value, int) and not isinstance(value, bool)
        else value
    )


CountField = Annotated[
    Count,
    BeforeValidator(_count, json_schema_input_type=Annotated[int, Field(ge=0)] | Count),
]


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


Reconnection = Literal["resume", "identify"]


def _reconnections(value: Any) -> Any:
    if isinstance(value, str):
        return {"every": value}
    return {"exactly": value} if isinstance(value, list) else value


class Reconnections(Strict):
    every: Reconnection | None = Field(
        None, description="every reconnection (at least one) got its session back this way"
    )
    exactly: list[Reconnection] | None = Field(
        None, description="one entry per reconnection, in order"
    )


# --------------------------------------------------------------------------- the server's side

ServerCloser = Literal["client", "server", "drop", "lost"]


class ServerCloseSeen(Strict):
    """A close as the fake server recorded it (`conn`/`close` in its history)."""

    by: ServerCloser | None = Field(
        None,
        description="client: a close frame from the client; server: the server's close frame; "
        "drop: the server aborted the socket; lost: the peer vanished without a close frame",
    )
    code: int | None = None
    reason: str | None = None


class ServerCloseSequence(Strict):
    exactly: list[ServerCloseSeen] | None = None
    in_order: list[ServerCloseSeen] | None = None


REQUEST_KEY_RE = r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|\*) /\S*$"


class FrameExpectation(Strict):
    """What every received frame of one op must carry, and how many arrived."""

    count: CountField | None = None
    seq: Literal["latest"] | Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="heartbeat data / RESUME seq: a number, or 'latest': at most the highest "
        "seq the server had sent on the session when the frame arrived, at least the highest "
        "it had sent before its last HEARTBEAT_ACK there",
    )
    data: Any = Field(
        None,
        description="the frame's data must contain this (mappings: these keys, recursively; "
        "anything else: equal)",
    )


def _frame_count(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"count": value}
    return value


FrameField = Annotated[
    FrameExpectation,
    BeforeValidator(
        _frame_count, json_schema_input_type=Annotated[int, Field(ge=0)] | FrameExpectation
    ),
]


class HandshakeSequence(Strict):
    exactly: list[Reconnection] | None = None
    in_order: list[Reconnection] | None = None


class SessionCounts(Strict):
    created: CountField | None = None
    resumed: CountField | None = None
    parked: CountField | None = None
    ended: CountField | None = None


class ServerSide(Strict):
    """What the fake server recorded in its history (docs/fake-server.md "History")."""

    closes: _sequence_of(ServerCloseSequence, ServerCloseSeen) | None = Field(  # type: ignore[valid-type]
        None, description="gateway closes as the server saw them"
    )
    requests: dict[Annotated[str, Field(pattern=REQUEST_KEY_RE)], CountField] | None = Field(
        None,
        description="'METHOD /path' (below /api/v1, * matches anything) -> how many "
        "requests arrived, e.g. 'POST /auth/login': 2",
    )
    received: dict[OpName, FrameField] | None = Field(
        None, description="gateway frames the server received, by op"
    )
    handshakes: _sequence_of(HandshakeSequence, Reconnection) | None = Field(  # type: ignore[valid-type]
        None, description="the IDENTIFY / RESUME frames it received, in order"
    )
    sessions: SessionCounts | None = Field(
        None, description="`session` records: created, resumed, parked, ended"
    )


# What timeline assertions (ServerTimeline fields) need: on a target without it the
# assertion is not judged, and the result says so (the rest of the verdict still is).
ASSERTION_NEEDS: dict[str, Need] = {
    "server": Need.SERVER_HISTORY,
}


class ServerTimeline(Strict):
    status: _sequence_of(StatusSequence, Status) | None = None  # type: ignore[valid-type]
    banners: _sequence_of(BannerSequence, Banner) | None = None  # type: ignore[valid-type]
    placeholders: _sequence_of(StringSequence, str) | None = Field(  # type: ignore[valid-type]
        None, description="composer placeholders shown while this server's channel was selected"
    )
    labels: _sequence_of(StringSequence, str) | None = None  # type: ignore[valid-type]
    dots: _sequence_of(DotSequence, DotColour) | None = None  # type: ignore[valid-type]
    closes: _sequence_of(CloseSequence, CloseSeen) | None = None  # type: ignore[valid-type]
    attempts: CountField | None = Field(
        None, description="reconnect attempts announced (server_reconnecting signals)"
    )
    logins: CountField | None = Field(None, description="POST /auth/login requests the client made")
    reconnected_by: (
        Annotated[
            Reconnections,
            BeforeValidator(
                _reconnections,
                json_schema_input_type=Reconnection | list[Reconnection] | Reconnections,
            ),
        ]
        | None
    ) = Field(
        None,
        description="resume / identify: every reconnection got its session back so; "
        "a list: one entry per reconnection, in order",
    )
    backoff: (
        Annotated[Backoff, BeforeValidator(_backoff, json_schema_input_type=bool | Backoff)] | None
    ) = None
    server: ServerSide | None = Field(
        None, description="what the fake server recorded (its history)"
    )


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


class Between(Strict):
    """The client-time interval between two recorded events."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"anyOf": [{"required": ["at_most"]}, {"required": ["at_least"]}]},
    )

    from_: EventRef = Field(alias="from", description="where the interval starts")
    to: EventRef = Field(
        description="the nth such event at or after `from` (nth counts from there, default 1)"
    )
    at_most: DurationField | None = Field(None, description="client time")
    at_least: DurationField | None = Field(None, description="client time")
    each: bool = Field(
        False, description="every `from` occurrence (not only the nth), each with its next `to`"
    )

    @model_validator(mode="after")
    def _bounded(self) -> Between:
        if self.at_most is None and self.at_least is None:
            raise ValueError("give at_most, at_least or both")
        if self.to.nth < 1:
            raise ValueError("`to.nth` counts events after `from`: 1, 2, ...")
        if self.each and "nth" in self.from_.model_fields_set:
            raise ValueError("`each` takes every `from` event; it takes no from.nth")
        return self


def _window(value: Any) -> Any:
    return {"condition": value} if isinstance(value, dict) and "condition" not in value else value


class Window(Strict):
    """A condition judged at every recorded instant of a window of steps."""

    condition: RecordedCondition
    steps: (
        Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)] | None
    ) = Field(
        None,
        description="[first, last]: from the start of step first to the end of step last "
        "(1-based); default the whole run",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.steps is not None and self.steps[0] > self.steps[1]:
            raise ValueError(f"steps [{self.steps[0]}, {self.steps[1]}]: the first comes later")
        return self


WindowField = Annotated[
    Window, BeforeValidator(_window, json_schema_input_type=RecordedCondition | Window)
]
# Keys of the timeline block that are not server names.
TIMELINE_KEYS = ("delivery", "between", "never", "throughout")
SERVER_KEY_RE = rf"^(?!({'|'.join(TIMELINE_KEYS)})$)" + NAME_RE[1:]


def _split_servers(value: Any) -> Any:
    """`timeline:` holds its own keys and one entry per server name, side by side."""
    if isinstance(value, dict) and "servers" not in value:
        out: dict[str, Any] = {k: v for k, v in value.items() if k in TIMELINE_KEYS}
        out["servers"] = {k: v for k, v in value.items() if k not in TIMELINE_KEYS}
        return out
    return value


def _servers_side_by_side(schema: dict[str, Any]) -> None:
    """In the file the servers sit beside `delivery`, not under a `servers` key."""
    servers = schema["properties"].pop("servers")
    (item,) = servers["patternProperties"].values()
    schema["patternProperties"] = {SERVER_KEY_RE: item}
    schema["additionalProperties"] = False


class TimelineExpectation(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_servers_side_by_side)

    delivery: Delivery = Field(default_factory=Delivery)  # type: ignore[arg-type]
    between: list[Between] = Field(
        default_factory=list, description="bounds on the client time between recorded events"
    )
    never: list[WindowField] = Field(
        default_factory=list, description="conditions that hold at no recorded instant"
    )
    throughout: list[WindowField] = Field(
        default_factory=list, description="conditions that hold at every recorded instant"
    )
    servers: dict[Annotated[str, Field(pattern=NAME_RE)], ServerTimeline] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _throughout_is_per_instant(self) -> TimelineExpectation:
        if any("signal" in w.condition.model_fields_set for w in self.throughout):
            raise ValueError("throughout: a signal is an event, not a state; use never or between")
        return self


TimelineField = Annotated[
    TimelineExpectation,
    BeforeValidator(_split_servers, json_schema_input_type=TimelineExpectation),
]


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
