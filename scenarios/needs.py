"""What a scenario needs of its servers beyond what any Accord server offers.

Every step kind (scenarios.schema.STEP_KINDS), setup field and timeline assertion
declares its needs there, as `Need` members; a target (the fake server, or an external
server: scenarios.external) says which it offers. A scenario whose needs are not all
offered is skipped with one line naming the first step or field that needs what is
missing (`server_fault withhold_acks needs the fake server's control API`).

    python -m scenarios.needs          # rewrite the tables in docs/external.md
    python -m scenarios.needs --check  # exit 1 if they are out of date
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios.loader import LoadedScenario


class Need(enum.Enum):
    """What a step or an assertion uses besides the server's public REST API and gateway."""

    FAKE_CONTROL = "the fake server's control API"
    """The fault board: server_fault, server_close, invalid_session."""
    FAKE_BEHAVIOURS = "the fake server's opt-in behaviours"
    """setup.servers.X.behaviours: switches only the fake has."""
    SERVER_HISTORY = "the fake server's history"
    """timeline.X.server: what the fake recorded it received and closed."""
    OWN_PROCESS = "a server process the rig starts (--server-command)"
    """kill_server, freeze_server, thaw_server, restart_server: signals to the process."""
    SET_HEARTBEAT = "a server the rig starts with its heartbeat interval ({heartbeat_ms})"
    """setup.servers.X.heartbeat: the interval the server announces in HELLO."""
    SERVER_PER_NAME = "one server per name the rig starts (--server-command with {port})"
    """A scenario of several servers: each name is a server of its own."""

    @property
    def what(self) -> str:
        return str(self.value)


ALL_NEEDS = frozenset(Need)
"""What the fake server (process or container) offers: everything."""


@dataclass(frozen=True)
class Requirement:
    """One need of one part of a scenario; `where` names the part as a reader finds it."""

    need: Need
    where: str
    server: str | None = None  # whose need (None: the run's, e.g. several servers)

    @property
    def reason(self) -> str:
        return f"{self.where} needs {self.need.what}"


Offered = frozenset[Need] | Callable[[str | None], frozenset[Need]]
"""What a target offers: one set for every server, or per server name."""


def unmet(requirements: list[Requirement], offered: Offered) -> list[Requirement]:
    """The requirements `offered` does not cover: in Need order (what only the fake
    can offer first, then what a server the rig starts could), each in scenario order."""
    def has(r: Requirement) -> bool:
        return r.need in (offered(r.server) if callable(offered) else offered)

    return sorted((r for r in requirements if not has(r)), key=lambda r: _order(r.need))


def scenario_requirements(loaded: LoadedScenario) -> tuple[list[Requirement], list[Requirement]]:
    """(what playing the scenario needs: its setup and steps, in file order; what some
    of its timeline assertions need). Read from the one registry of step kinds and the
    setup and assertion tables of scenarios.schema."""
    from scenarios.schema import ASSERTION_NEEDS, SETUP_NEEDS, STEP_KINDS, step_kind, step_value

    scenario = loaded.scenario
    play: list[Requirement] = []
    servers = scenario.setup.servers
    if len(servers) > 1:
        play.append(Requirement(Need.SERVER_PER_NAME, f"setup.servers ({', '.join(servers)})"))
    for name, setup in servers.items():
        for field_name, need in SETUP_NEEDS.items():
            if field_name in setup.model_fields_set and getattr(setup, field_name):
                play.append(Requirement(need, f"setup.servers.{name}.{field_name}", name))
    for index, step in enumerate(scenario.steps):
        kind = step_kind(step)
        detail = _step_detail(kind, step_value(step))
        where = f"step {index + 1} (line {loaded.step_line(index)}) {kind}{detail}"
        server = _step_server(step_value(step))
        play += [
            Requirement(need, where, server)
            for need in sorted(STEP_KINDS[kind].needs, key=_order)
        ]
    judged: list[Requirement] = []
    for name, expect in scenario.timeline.servers.items():
        for field_name, need in ASSERTION_NEEDS.items():
            if getattr(expect, field_name) is not None:
                judged.append(Requirement(need, f"timeline.{name}.{field_name}", name))
    return play, judged


def _order(need: Need) -> int:
    return list(Need).index(need)


def _step_server(value: object) -> str | None:
    """The server a step acts on: its value (kill_server: alpha) or its `server`."""
    if isinstance(value, str):
        return value.split("/", 1)[0].split(".", 1)[0]
    server = getattr(value, "server", None)
    return server if isinstance(server, str) else None


def _step_detail(kind: str, value: object) -> str:
    """The fault a server_fault names (`server_fault withhold_acks`)."""
    faults = getattr(value, "faults", None)
    if kind == "server_fault" and callable(faults):
        spec = faults()
        name = spec.get("kind") or next(iter(spec), "")
        return f" {name}" if name else ""
    return ""


# --------------------------------------------------------------------------- docs/external.md

DOC = Path(__file__).resolve().parent.parent / "docs" / "external.md"
BEGIN, END = "<!-- needs:begin (python -m scenarios.needs) -->", "<!-- needs:end -->"
TARGETS: tuple[tuple[str, frozenset[Need]], ...] = (
    ("--server-url only (a server someone else runs)", frozenset()),
    (
        "--server-command with {port}, without {heartbeat_ms}",
        frozenset({Need.OWN_PROCESS, Need.SERVER_PER_NAME}),
    ),
    (
        "--server-command with {port} and {heartbeat_ms}",
        frozenset({Need.OWN_PROCESS, Need.SERVER_PER_NAME, Need.SET_HEARTBEAT}),
    ),
    ("the fake server (process or docker)", ALL_NEEDS),
)


def needs_markdown() -> str:
    """The can/cannot tables of docs/external.md, from the registry and the catalogue."""
    from scenarios.loader import discover, load_all
    from scenarios.schema import ASSERTION_NEEDS, SETUP_NEEDS, STEP_KINDS

    lines = ["| step kind | what it does | needs beyond REST and the gateway |", "|---|---|---|"]
    for kind, entry in STEP_KINDS.items():
        needs = ", ".join(n.what for n in sorted(entry.needs, key=_order)) or "nothing"
        lines.append(f"| `{kind}` | {entry.doc} | {needs} |")
    lines += ["", "| setup field / assertion | needs | without it |", "|---|---|---|"]
    for field_name, need in SETUP_NEEDS.items():
        lines.append(f"| `setup.servers.X.{field_name}` | {need.what} | the scenario is skipped |")
    lines.append(
        f"| several servers in `setup.servers` | {Need.SERVER_PER_NAME.what} "
        "| the scenario is skipped |"
    )
    for field_name, need in ASSERTION_NEEDS.items():
        lines.append(
            f"| `timeline.X.{field_name}` | {need.what} | not judged (said in the result) |"
        )
    root = DOC.parent.parent
    loaded, _ = load_all(discover([str(root / "scenarios")]))
    lines += ["", f"| target | catalogue scenarios that can run (of {len(loaded)}) |", "|---|---|"]
    for label, offered in TARGETS:
        runnable = sum(1 for item in loaded if not unmet(scenario_requirements(item)[0], offered))
        lines.append(f"| {label} | {runnable} |")
    return "\n".join(lines)


def render(text: str) -> str:
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{DOC}: no {BEGIN} ... {END} block")
    return f"{head}{BEGIN}\n{needs_markdown()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in args:
        return 0 if new == text else 1
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":  # run as scenarios.needs, so its Need is the registry's
    from scenarios.needs import main as needs_main

    sys.exit(needs_main())
