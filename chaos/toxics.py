"""Toxic specifications: validated models and the timescale arithmetic.

Attributes are written in Toxiproxy's own units and in real-client time:
milliseconds, except `slicer.delay` (microseconds, as Toxiproxy has it) and
`bandwidth.rate` (KB/s). `scaled_attributes(f)` turns them into what is sent to
Toxiproxy under timescale `f` (client-behaviour.md s.1): every duration times
`f`, bandwidth rates divided by `f`, byte counts unchanged.

The models are exported so the scenario engine can embed them in its schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.config import JsonDict

Stream: TypeAlias = Literal["upstream", "downstream"]
TIME_UNITS = ("ms", "us")
"""Units of the attributes that are durations (scaled by the timescale)."""


def _unit(unit: str) -> JsonDict:
    """An attribute's unit, in its JSON Schema (`toxic_attribute_units` reads it back)."""
    return {"unit": unit}


class _Strict(BaseModel):
    # Unknown keys are typos in a scenario: reject them by name.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def scale_duration(value: float, timescale: float) -> int:
    """A duration scaled by `f`, as the integer Toxiproxy takes.

    A positive duration never rounds down to 0: for `timeout` and `reset_peer`
    0 means "forever" / "at once", which would change the fault's meaning.
    """
    if value <= 0:
        return 0
    return max(1, round(value * timescale))


def scale_rate(rate: float, timescale: float) -> int:
    """A bandwidth rate (KB/s) under timescale `f`: faster clocks move data faster."""
    return max(1, round(rate / timescale))


# --------------------------------------------------------------------------- attributes


class LatencyAttributes(_Strict):
    latency: float = Field(
        ge=0, description="added delay per chunk, ms", json_schema_extra=_unit("ms")
    )
    jitter: float = Field(
        default=0, ge=0, description="+/- random delay, ms", json_schema_extra=_unit("ms")
    )

    def scaled(self, f: float) -> dict[str, int]:
        return {
            "latency": scale_duration(self.latency, f),
            "jitter": scale_duration(self.jitter, f),
        }


class BandwidthAttributes(_Strict):
    # Toxiproxy treats rate 0 as "no limit", which is never what a scenario means.
    rate: float = Field(gt=0, description="KB/s", json_schema_extra=_unit("KB/s"))

    def scaled(self, f: float) -> dict[str, int]:
        return {"rate": scale_rate(self.rate, f)}


class SlowCloseAttributes(_Strict):
    delay: float = Field(
        ge=0, description="delay before the close is passed on, ms", json_schema_extra=_unit("ms")
    )

    def scaled(self, f: float) -> dict[str, int]:
        return {"delay": scale_duration(self.delay, f)}


class TimeoutAttributes(_Strict):
    timeout: float = Field(
        ge=0, description="ms of silence before the close; 0 = hold forever",
        json_schema_extra=_unit("ms"),
    )

    def scaled(self, f: float) -> dict[str, int]:
        return {"timeout": scale_duration(self.timeout, f)}


class ResetPeerAttributes(_Strict):
    timeout: float = Field(
        default=0, ge=0, description="ms before the reset; 0 = at once",
        json_schema_extra=_unit("ms"),
    )

    def scaled(self, f: float) -> dict[str, int]:
        return {"timeout": scale_duration(self.timeout, f)}


class SlicerAttributes(_Strict):
    average_size: int = Field(
        ge=1, description="bytes per slice on average", json_schema_extra=_unit("bytes")
    )
    size_variation: int = Field(
        default=0, ge=0, description="+/- bytes per slice", json_schema_extra=_unit("bytes")
    )
    delay: float = Field(
        default=0, ge=0, description="delay between slices, MICROseconds",
        json_schema_extra=_unit("us"),
    )

    @model_validator(mode="after")
    def _variation_below_size(self) -> SlicerAttributes:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be smaller than average_size")
        return self

    def scaled(self, f: float) -> dict[str, int]:
        return {
            "average_size": self.average_size,
            "size_variation": self.size_variation,
            "delay": scale_duration(self.delay, f),
        }


class LimitDataAttributes(_Strict):
    bytes: int = Field(
        ge=0, description="bytes let through before the close (not scaled)",
        json_schema_extra=_unit("bytes"),
    )

    def scaled(self, f: float) -> dict[str, int]:
        return {"bytes": self.bytes}


# --------------------------------------------------------------------------- toxics


class _ToxicBase(_Strict):
    stream: Stream = "downstream"
    toxicity: float = Field(default=1.0, ge=0, le=1, description="share of connections hit")
    name: str | None = Field(default=None, description="toxic name; default <type>_<stream>")

    def toxic_name(self) -> str:
        return self.name or f"{self.type_name()}_{self.stream}"

    def type_name(self) -> str:
        return str(getattr(self, "type"))  # noqa: B009 - `type` is declared on each subclass

    def scaled_attributes(self, timescale: float) -> dict[str, int]:
        attributes = getattr(self, "attributes")  # noqa: B009 - declared on each subclass
        scaled: dict[str, int] = attributes.scaled(timescale)
        return scaled

    def to_api(self, timescale: float) -> dict[str, Any]:
        """The JSON body for `POST /proxies/{p}/toxics`, scaled for `timescale`."""
        return {
            "name": self.toxic_name(),
            "type": self.type_name(),
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.scaled_attributes(timescale),
        }


class LatencyToxic(_ToxicBase):
    type: Literal["latency"]
    attributes: LatencyAttributes


class BandwidthToxic(_ToxicBase):
    type: Literal["bandwidth"]
    attributes: BandwidthAttributes


class SlowCloseToxic(_ToxicBase):
    type: Literal["slow_close"]
    attributes: SlowCloseAttributes


class TimeoutToxic(_ToxicBase):
    type: Literal["timeout"]
    attributes: TimeoutAttributes


class ResetPeerToxic(_ToxicBase):
    type: Literal["reset_peer"]
    attributes: ResetPeerAttributes = ResetPeerAttributes()


class SlicerToxic(_ToxicBase):
    type: Literal["slicer"]
    attributes: SlicerAttributes


class LimitDataToxic(_ToxicBase):
    type: Literal["limit_data"]
    attributes: LimitDataAttributes


ToxicSpec: TypeAlias = Annotated[
    LatencyToxic
    | BandwidthToxic
    | SlowCloseToxic
    | TimeoutToxic
    | ResetPeerToxic
    | SlicerToxic
    | LimitDataToxic,
    Field(discriminator="type"),
]
_TOXIC_ADAPTER: TypeAdapter[ToxicSpec] = TypeAdapter(ToxicSpec)
TOXIC_MODELS: tuple[type[_ToxicBase], ...] = (
    LatencyToxic,
    BandwidthToxic,
    SlowCloseToxic,
    TimeoutToxic,
    ResetPeerToxic,
    SlicerToxic,
    LimitDataToxic,
)
TOXIC_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in TOXIC_MODELS
)


def toxic_attribute_units() -> dict[str, dict[str, str]]:
    """Toxic type -> its attributes -> their units (ms, us, KB/s, bytes), from the models."""
    out: dict[str, dict[str, str]] = {}
    for kind, model in zip(TOXIC_TYPES, TOXIC_MODELS, strict=True):
        attributes = model.model_fields["attributes"].annotation
        assert isinstance(attributes, type) and issubclass(attributes, BaseModel)
        out[kind] = {
            name: str((f.json_schema_extra or {}).get("unit", ""))  # type: ignore[union-attr]
            for name, f in attributes.model_fields.items()
        }
    return out


class ToxicSpecError(ValueError):
    """A toxic spec that does not validate; the message names every bad field."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__(f"{where}: invalid toxic: " + "; ".join(problems))


def parse_toxic(data: Any, where: str = "toxic") -> ToxicSpec:
    """Validate a toxic spec (a mapping as written in a scenario).

    `where` prefixes the error (e.g. "alpha.scenario.yaml:12"), and each problem
    names its field path, e.g. `attributes.latency: Input should be >= 0`.
    """
    try:
        return _TOXIC_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ToxicSpecError(where, _describe(exc)) from None


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        # The location starts with the discriminator value (the type); drop it, it is noise.
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in TOXIC_TYPES:
            loc = loc[1:]
        path = ".".join(loc) or "(toxic)"
        message = error["msg"]
        if error["type"] == "union_tag_invalid":
            path = "type"
            message = f"{error['input'].get('type')!r} is not one of {', '.join(TOXIC_TYPES)}"
        elif error["type"] == "union_tag_not_found":
            path, message = "type", f"missing; one of {', '.join(TOXIC_TYPES)}"
        problems.append(f"{path}: {message}")
    return problems
