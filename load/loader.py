"""Reading load files: the scenario loader family (same YAML-with-lines reader, same
`Problem`/`ScenarioError`, so the same `file:line: field: message` errors), with the
load file's own model and checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from load.schema import FAULT_KINDS, LoadFile
from scenarios.errors import Problem, ScenarioError
from scenarios.loader import _message as scenario_message
from scenarios.loader import _referenced_servers, _spec_problems, load_many
from scenarios.loader import discover as discover_files
from scenarios.schema import step_kind, step_value
from scenarios.yaml_lines import LineMap, Path_, dotted, load_yaml

SUFFIX = ".load.yaml"
# Location parts our validators add that are not written in the file.
_SYNTHETIC = {"fault"}


@dataclass(frozen=True)
class LoadedLoad:
    path: Path
    load: LoadFile
    lines: LineMap

    def item_line(self, index: int) -> int:
        return self.lines.line_of(("schedule", index))


def _in_file(loc: tuple[str | int, ...], lines: LineMap) -> Path_:
    path: list[str | int] = []
    for part in loc:
        if path and part == path[-1]:
            continue  # a tagged union repeats the step key
        if part in _SYNTHETIC and (*path, part) not in lines.lines:
            continue
        path.append(part)
    return tuple(path)


def _message(error: Any) -> str:
    if error["type"] == "unknown_fault":
        given = error.get("input")
        expected = ", ".join(FAULT_KINDS)
        if isinstance(given, dict) and len(given) == 1:
            return f"unknown fault {next(iter(given))!r} (expected one of: {expected})"
        if isinstance(given, dict) and not given:
            return f"name the fault to apply (one of: {expected})"
        if isinstance(given, dict):
            keys = ", ".join(map(str, given))
            return (
                "a schedule item is one trigger (at, after, when) and one fault; "
                f"found fault keys: {keys}"
            )
        return f"a schedule item is a mapping like '{{at: 10s, kill_server: alpha}}', got {given!r}"
    return scenario_message(error)


def _semantic_problems(load: LoadFile, lines: LineMap, path: Path) -> list[Problem]:
    problems: list[Problem] = []
    declared = set(load.crowd.servers)

    def add(where: Path_, message: str) -> None:
        problems.append(Problem(path, lines.line_of(where), dotted(where), message))

    def check(where: Path_, server: str) -> None:
        if server != "all" and server not in declared:
            add(where, f"server {server!r} is not in crowd.servers ({', '.join(sorted(declared))})")

    run_for = load.run_for.resolve(_heartbeat(load))
    for index, item in enumerate(load.schedule):
        step = item.fault
        kind = step_kind(step)
        value = step_value(step)
        where: Path_ = ("schedule", index, kind)
        if isinstance(value, str):
            check(where, value.split(".")[0])
        else:
            for sub, server in _referenced_servers(value, where):
                check(sub, server)
        problems.extend(_spec_problems(kind, value, where, lines, path))
        if item.at is not None and item.at.resolve(_heartbeat(load)) >= run_for:
            add(("schedule", index, "at"), f"at {item.at} is not before run_for {load.run_for}")
    return problems


def _heartbeat(load: LoadFile) -> float:
    first = next(iter(load.crowd.servers.values()))
    return first.heartbeat.resolve(45.0) if first.heartbeat else 45.0


def load_load_file(path: Path, text: str | None = None) -> LoadedLoad:
    """Load and validate one load file; raises ScenarioError naming file, line, field."""
    document = load_yaml(path, text)
    if not isinstance(document.data, dict):
        raise ScenarioError(
            [Problem(path, 1, "", "a load file is a mapping with name, crowd, run_for, ...")]
        )
    try:
        load = LoadFile.model_validate(document.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _in_file(tuple(error["loc"]), document.lines)
            problems.append(
                Problem(path, document.lines.line_of(where), dotted(where), _message(error))
            )
        raise ScenarioError(problems) from None
    problems = _semantic_problems(load, document.lines, path)
    if problems:
        raise ScenarioError(problems)
    return LoadedLoad(path, load, document.lines)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Load files under the given files and folders; only `*.load.yaml` in folders."""
    return discover_files(paths, SUFFIX)


def load_all(paths: Iterable[Path]) -> tuple[list[LoadedLoad], list[Problem]]:
    return load_many(paths, load_load_file, lambda item: item.load.name, "load")
