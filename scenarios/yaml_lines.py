"""YAML loading that remembers the line of every node.

PyYAML's composer keeps a start mark on each node; we walk the node tree once and
record `path -> line` (path = tuple of mapping keys and list indexes), so a schema
error at `steps[3].toxic.type` can be reported at the line where it was written.
Duplicate mapping keys, which PyYAML silently overwrites, are reported too (with the
schema's and the loader's problems, in one pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scenarios.errors import Problem, ScenarioError

Path_ = tuple[str | int, ...]


@dataclass
class LineMap:
    """Lines (1-based) of every node, by path. `line_of` falls back to the nearest parent."""

    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return 1


@dataclass
class LoadedDocument:
    path: Path
    data: Any
    lines: LineMap
    # Found while reading (duplicate keys: the later value wins), reported with the rest.
    problems: list[Problem] = field(default_factory=list)


def _walk(
    node: yaml.Node, path: Path_, lines: LineMap, problems: list[Problem], file: Path
) -> None:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        file,
                        line,
                        _dotted((*path, key)),
                        f"duplicate key (first at line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            # A key's own line is where the field is named, which reads better than
            # the line of a multi-line value below it.
            lines.lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, problems, file)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def dotted(path: Path_) -> str:
    """`('steps', 3, 'toxic', 'type')` -> `steps[3].toxic.type`."""
    return _dotted(path)


def load_yaml(path: Path, text: str | None = None) -> LoadedDocument:
    """Parse one YAML document, keeping lines; raises ScenarioError on any YAML problem."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError([Problem(path, None, "", f"cannot read file: {exc}")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError([Problem(path, 1, "", "the file is empty")])
        lines = LineMap()
        problems: list[Problem] = []
        _walk(node, (), lines, problems, path)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = "YAML syntax error: " + " ".join(
            part for part in (exc.context, exc.problem) if part
        )
        raise ScenarioError([Problem(path, line, "", message)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(path, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return LoadedDocument(path, data, lines, problems)
