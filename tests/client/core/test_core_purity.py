"""The core is sans-I/O: no sockets, event loop, clock or global random."""

from __future__ import annotations

import ast
from pathlib import Path

import client.core

CORE = Path(client.core.__file__).parent
# `os`: the core reads no environment; the rig passes bug switches in.
FORBIDDEN_MODULES = {
    "time",
    "datetime",
    "asyncio",
    "socket",
    "ssl",
    "aiohttp",
    "threading",
    "os",
}
ALLOWED_RANDOM_ATTRS = {"Random"}  # seeded instances only, never the global stream


def _modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


def test_core_imports_no_io_or_clock() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            else:
                continue
            bad = FORBIDDEN_MODULES.intersection(names)
            assert not bad, f"{path.name}:{node.lineno} imports {bad}"


def test_core_uses_no_global_random() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
            ):
                assert node.attr in ALLOWED_RANDOM_ATTRS, (
                    f"{path.name}:{node.lineno} random.{node.attr}"
                )
