"""Keeps docs/architecture.md's tables true to the client core's code.

    python -m client.tables_doc          # rewrite the marked section in place
    python -m client.tables_doc --check  # exit 1 if it is out of date

The tables come from client.core.tables (pure); this module adds the import
graph of client/core (read from the source files) and does the file I/O.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from client.core import tables

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
CORE = ROOT / "client" / "core"
BEGIN = "<!-- client-core-tables: begin (python -m client.tables_doc; do not edit by hand) -->"
END = "<!-- client-core-tables: end -->"


def import_graph(core: Path = CORE) -> list[tuple[str, list[str]]]:
    """Each client/core module and the client.core modules it imports, at run
    time or under TYPE_CHECKING alike, sorted."""
    graph: list[tuple[str, list[str]]] = []
    for path in sorted(core.glob("*.py")):
        if path.name == "__init__.py":
            continue
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "client.core":
                    deps.update(a.name for a in node.names)
                elif node.module.startswith("client.core."):
                    deps.add(node.module.removeprefix("client.core."))
            elif isinstance(node, ast.Import):
                deps.update(
                    a.name.removeprefix("client.core.")
                    for a in node.names
                    if a.name.startswith("client.core.")
                )
        graph.append((path.stem, sorted(deps)))
    return graph


def cycle(graph: Sequence[tuple[str, Sequence[str]]]) -> list[str] | None:
    try:
        tuple(TopologicalSorter({m: set(d) for m, d in graph}).static_order())
    except CycleError as err:
        return list(err.args[1])
    return None


def render(text: str) -> str:
    """`text` with the marked section rewritten."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DOC}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{tables.render(import_graph())}\n{END}{tail}"


def main(argv: Sequence[str]) -> int:
    text = DOC.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run python -m client.tables_doc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
