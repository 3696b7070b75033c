"""Reading scenario files: YAML with lines -> validated `Scenario`, or a `ScenarioError`.

Pydantic reports where a value is wrong as a location path; we map that path back
to the line it was written on, and add the checks a schema cannot express (every
server a step names is declared in `setup`, scenario names are unique).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from scenarios.errors import Problem, ScenarioError, UsageError
from scenarios.schema import (
    CHANNEL_RE,
    NAME_RE,
    PROXY_RE,
    REQUEST_KEY_RE,
    STEP_MODELS,
    TAG_RE,
    AnyStep,
    EventRef,
    MessageRef,
    Scenario,
    Setup,
    Step,
    TimelineExpectation,
    TimelineField,
    Window,
    step_kind,
    step_value,
)
from scenarios.yaml_lines import LineMap, Path_, dotted, load_yaml

SUFFIX = ".scenario.yaml"
_PATTERN_WORDS = {
    TAG_RE: "a tag is family:name in lowercase letters, digits, - and _ (e.g. flow:heartbeat)",
    NAME_RE: "a server name is lowercase letters, digits, - and _, starting with a letter",
    CHANNEL_RE: "a channel is SERVER/CHANNEL, e.g. alpha/general",
    PROXY_RE: "a proxy is SERVER.gateway or SERVER.rest",
    REQUEST_KEY_RE: "a request is 'METHOD /path' below /api/v1, e.g. 'POST /auth/login'",
}
# Location parts pydantic adds that are not in the file (wrappers our validators add
# for the short forms), skipped when the file has no such key there.
_SYNTHETIC = {
    "servers",
    "exactly",
    "every",
    "condition",
    "count",
    "per_spec",
    "text",
    "name",
    "color",
    "bug",
    "min",
}
_STEP: TypeAdapter[Step] = TypeAdapter(AnyStep)
_TIMELINE: TypeAdapter[TimelineExpectation] = TypeAdapter(TimelineField)


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    scenario: Scenario
    lines: LineMap

    def step_line(self, index: int) -> int:
        return self.lines.line_of(("steps", index))


def _in_file(loc: tuple[str | int, ...], lines: LineMap, missing: bool = False) -> Path_:
    """Turn a pydantic location into the path as written in the file (a missing field's
    own name is kept: it is not in the file by definition)."""
    path: list[str | int] = []
    for index, part in enumerate(loc):
        if path and part == path[-1]:
            continue  # a tagged union repeats the step key
        candidate = (*path, part)
        last = missing and index == len(loc) - 1
        if candidate not in lines.lines and part in _SYNTHETIC and not last:
            continue
        path.append(part)
    return tuple(path)


def _message(error: Any) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "unknown_step":
        expected = ", ".join(STEP_MODELS)
        if isinstance(given, dict) and len(given) == 1:
            return f"unknown step {next(iter(given))!r} (expected one of: {expected})"
        if isinstance(given, dict):
            keys = ", ".join(map(str, given)) or "none"
            return f"a step has exactly one key naming what happens; found keys: {keys}"
        return f"a step is a one-key mapping like 'connect: alpha', got {given!r}"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        return f"{_PATTERN_WORDS.get(pattern, message)} (got {given!r})"
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field"
    if (
        kind not in ("value_error", "assertion_error")
        and given is not None
        and not isinstance(given, dict | list)
    ):
        message += f" (got {given!r})"
    return message


def _referenced_servers(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Every server a step or expectation names, with where it names it."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            if name in ("status", "dot", "queue") and isinstance(field_value, dict):
                for server in field_value:
                    yield (*path, name, server), server
            elif name in ("server", "channel", "proxy") and isinstance(field_value, str):
                yield (*path, name), field_value.split("/")[0].split(".")[0]
            else:
                yield from _referenced_servers(field_value, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _referenced_servers(item, (*path, index))


class _Checker:
    """The checks a schema cannot express, over whatever parts of a file validated."""

    def __init__(self, path: Path, lines: LineMap, declared: set[str] | None, steps: int) -> None:
        self.path, self.lines, self.declared, self.steps = path, lines, declared, steps
        self.problems: list[Problem] = []
        self.named: dict[str, Path_] = {}  # `as:` names given so far -> where

    def problem(self, where: Path_, message: str) -> None:
        self.problems.append(Problem(self.path, self.lines.line_of(where), dotted(where), message))

    def server(self, where: Path_, server: str) -> None:
        if self.declared is not None and server != "all" and server not in self.declared:
            self.problem(
                where,
                f"server {server!r} is not declared in setup.servers "
                f"({', '.join(sorted(self.declared))})",
            )

    def servers_in(self, value: Any, where: Path_) -> None:
        for sub, server in _referenced_servers(value, where):
            self.server(sub, server)

    def step_number(self, where: Path_, number: int, last: int | None = None) -> None:
        last = self.steps if last is None else last
        if number > last:
            self.problem(where, f"step {number} does not exist here (steps 1..{last})")

    def refs_in(self, value: Any, where: Path_) -> None:
        """Every `{ref: NAME}` must name an `as:` given by an earlier step."""
        if isinstance(value, MessageRef):
            if value.ref not in self.named:
                known = ", ".join(sorted(self.named)) or "none yet"
                self.problem(
                    (*where, "ref"),
                    f"{value.ref!r} is not named by an earlier step's `as:` (named: {known})",
                )
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                self.refs_in(getattr(value, name), (*where, name))

    def events_in(self, value: Any, where: Path_, last: int | None = None) -> None:
        if isinstance(value, EventRef) and value.step is not None:
            self.step_number((*where, "step"), value.step, last)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                self.events_in(getattr(value, name), (*where, _written(value, name)), last)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.events_in(item, (*where, index), last)

    def step(self, index: int, step: Step) -> None:
        kind = step_kind(step)
        value = step_value(step)
        where: Path_ = ("steps", index, kind)
        if isinstance(value, str):
            if kind != "pause":
                self.server(where, value.split("/")[0].split(".")[0])
        else:
            self.servers_in(value, where)
        self.refs_in(value, where)
        self.events_in(value, where, last=index + 1)
        name = getattr(value, "as_", None)
        if name is not None:
            if name in self.named:
                first = self.lines.line_of(self.named[name])
                self.problem((*where, "as"), f"{name!r} is already named (line {first})")
            self.named[name] = (*where, "as")
        self.problems.extend(_spec_problems(kind, value, where, self.lines, self.path))

    def timeline(self, timeline: TimelineExpectation) -> None:
        for server in timeline.servers:
            self.server(("timeline", server), server)
        for key in ("between", "never", "throughout"):
            for index, item in enumerate(getattr(timeline, key)):
                where: Path_ = ("timeline", key, index)
                self.servers_in(item, where)
                self.events_in(item, where)
                if isinstance(item, Window) and item.steps is not None:
                    for position, number in enumerate(item.steps):
                        self.step_number((*where, "steps", position), number)


def _written(model: BaseModel, field: str) -> str:
    """A field's name as the file spells it (its alias, e.g. `from`)."""
    return type(model).model_fields[field].alias or field


def _semantic_problems(scenario: Scenario, lines: LineMap, path: Path) -> list[Problem]:
    checker = _Checker(path, lines, set(scenario.setup.servers), len(scenario.steps))
    for index, step in enumerate(scenario.steps):
        checker.step(index, step)
    checker.timeline(scenario.timeline)
    return checker.problems


def _partial_problems(data: dict[str, Any], lines: LineMap, path: Path) -> list[Problem]:
    """When the whole file does not validate, still check every part that does, so one
    pass reports everything wrong (not one stage at a time)."""
    declared: set[str] | None = None
    with contextlib.suppress(ValidationError):
        declared = set(Setup.model_validate(data.get("setup")).servers)
    steps = data.get("steps")
    raw_steps: list[Any] = steps if isinstance(steps, list) else []
    checker = _Checker(path, lines, declared, len(raw_steps))
    for index, raw in enumerate(raw_steps):
        with contextlib.suppress(ValidationError):
            checker.step(index, _STEP.validate_python(raw))
    if "timeline" in data:
        with contextlib.suppress(ValidationError):
            checker.timeline(_TIMELINE.validate_python(data["timeline"]))
    return checker.problems


def _spec_problems(
    kind: str, value: Any, where: Path_, lines: LineMap, path: Path
) -> list[Problem]:
    """Fault and toxic specs are checked by the code that will apply them."""
    if kind == "server_fault":
        from fake_server.faults import FaultSpecError, parse_fault

        try:
            parse_fault(value.faults())
        except FaultSpecError as exc:
            at = (*where, *[p for p in exc.field.split(".") if p])
            return [Problem(path, lines.line_of(at), dotted(at), exc.message)]
    elif kind == "toxic":
        from chaos.toxics import ToxicSpecError, parse_toxic
        from scenarios.runner import toxic_spec

        try:
            parse_toxic(toxic_spec(value))
        except ToxicSpecError as exc:
            out = []
            for problem in exc.problems:
                field, _, message = problem.partition(": ")
                at = (*where, *[p for p in field.split(".") if p and p != "(toxic)"])
                out.append(Problem(path, lines.line_of(at), dotted(at), message))
            return out
    return []


def load_scenario(path: Path, text: str | None = None) -> LoadedScenario:
    """Load and validate one scenario file; raises ScenarioError naming file, line and
    field of every problem found (YAML, schema and semantics, in one pass)."""
    document = load_yaml(path, text)
    if not isinstance(document.data, dict):
        raise ScenarioError(
            [Problem(path, 1, "", "a scenario file is a mapping with name, setup and steps")]
        )
    problems = list(document.problems)
    try:
        scenario = Scenario.model_validate(document.data)
    except ValidationError as exc:
        for error in exc.errors():
            where = _in_file(tuple(error["loc"]), document.lines, error["type"] == "missing")
            problems.append(
                Problem(path, document.lines.line_of(where), dotted(where), _message(error))
            )
        problems += _partial_problems(document.data, document.lines, path)
        raise ScenarioError(problems) from None
    problems += _semantic_problems(scenario, document.lines, path)
    if problems:
        raise ScenarioError(problems)
    return LoadedScenario(path, scenario, document.lines)


def discover(paths: Iterable[str | Path], suffix: str = SUFFIX) -> list[Path]:
    """Files under the given files and folders, sorted; in folders only `*<suffix>`
    (`*.scenario.yaml`; load files use `*.load.yaml`)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{suffix}") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return sorted(dict.fromkeys(found))


class _Loaded(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def lines(self) -> LineMap: ...


L = TypeVar("L", bound=_Loaded)


def load_many(
    paths: Iterable[Path], load_one: Callable[[Path], L], name_of: Callable[[L], str], what: str
) -> tuple[list[L], list[Problem]]:
    """Load many files; collect every problem, including names used twice."""
    loaded: list[L] = []
    problems: list[Problem] = []
    first_by_name: dict[str, L] = {}
    for path in paths:
        try:
            item = load_one(path)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        name = name_of(item)
        previous = first_by_name.get(name)
        if previous is not None:
            problems.append(
                Problem(
                    path,
                    item.lines.line_of(("name",)),
                    "name",
                    f"duplicate {what} name {name!r} "
                    f"(also {previous.path}:{previous.lines.line_of(('name',))})",
                )
            )
            continue
        first_by_name[name] = item
        loaded.append(item)
    return loaded, problems


def load_all(paths: Iterable[Path]) -> tuple[list[LoadedScenario], list[Problem]]:
    """Load many scenario files; collect every problem, including names used twice."""
    return load_many(paths, load_scenario, lambda item: item.scenario.name, "scenario")
