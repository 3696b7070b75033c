"""The one error a bad scenario file produces: where it is and what is wrong.

Every problem found while reading a scenario (YAML syntax, schema, semantics)
becomes a `ScenarioError` naming the file, the line and the field, so the CLI can
print it and exit 4, and the pytest plugin can turn it into a clean collection
error, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    path: Path
    line: int | None  # 1-based; None when the file could not be read at all
    field: str  # dotted location, e.g. "steps[3].toxic.type"; "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {what}{self.message}"


class ScenarioError(Exception):
    """A scenario file is malformed. Carries every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.path), p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """Bad command-line use (no such path, bad option value): exit code 4."""
