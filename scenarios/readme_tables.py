"""Keeps README's two catalogue tables true to the scenario files' tags.

    python -m scenarios.readme_tables          # rewrite README.md in place
    python -m scenarios.readme_tables --check  # exit 1 if it is out of date

The seed table's first two columns (the seed flow and its tags) are written by
hand; the scenario files column is filled from the tags. The bug table has one
row per regression switch (client.core.bugs), with the files tagged `bug:N`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from client.core.bugs import DESCRIPTIONS, Bug
from scenarios.loader import discover, load_all

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CATALOGUE = ROOT / "scenarios"


def _files_by_tag() -> dict[str, list[str]]:
    loaded, problems = load_all(discover([str(CATALOGUE)]))
    if problems:
        raise SystemExit(f"the catalogue does not load: {problems[0]}")
    by_tag: dict[str, list[str]] = {}
    for item in loaded:
        name = item.path.resolve().relative_to(CATALOGUE).as_posix()
        for tag in item.scenario.tags:
            by_tag.setdefault(tag, []).append(name)
    return by_tag


def _cell(files: Sequence[str]) -> str:
    return ", ".join(f"`{f}`" for f in sorted(set(files)))


def _seed_rows(block: str, by_tag: dict[str, list[str]]) -> str:
    rows = []
    for line in block.splitlines():
        cells = line.split(" | ")
        if len(cells) == 3 and not line.startswith(("| seed flow", "|---")):
            tags = re.findall(r"`([a-z]+:[a-z0-9-]+)`", cells[1])
            files = [f for t in tags for f in by_tag.get(t, [])]
            line = f"{cells[0]} | {cells[1]} | {_cell(files)} |"
        rows.append(line)
    return "\n".join(rows)


def _bug_rows(by_tag: dict[str, list[str]]) -> str:
    rows = [
        "| # | the original client's bug (spec s.9) | scenarios that catch it (`bug:N`) |",
        "|---|---|---|",
    ]
    rows += [
        f"| {int(b)} | {DESCRIPTIONS[b]} | {_cell(by_tag.get(f'bug:{int(b)}', []))} |"
        for b in Bug
    ]
    return "\n".join(rows)


def render(text: str) -> str:
    by_tag = _files_by_tag()

    def seed(m: re.Match[str]) -> str:
        return m.group(1) + _seed_rows(m.group(2), by_tag) + "\n" + m.group(3)

    def bugs(m: re.Match[str]) -> str:
        return m.group(1) + _bug_rows(by_tag) + "\n" + m.group(3)

    text = re.sub(_block("seed-table"), seed, text, flags=re.S)
    return re.sub(_block("bug-table"), bugs, text, flags=re.S)


def _block(name: str) -> str:
    return rf"(<!-- {name}:[^\n]*\n)(.*?)\n(<!-- /{name} -->)"


def main(argv: Sequence[str] = ()) -> int:
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print("README.md's catalogue tables are out of date: "
                  "run python -m scenarios.readme_tables", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
