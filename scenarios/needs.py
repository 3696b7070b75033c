"""What a scenario needs of its servers beyond what any Accord server offers.

Every step kind (scenarios.schema.STEP_KINDS), setup field and timeline assertion
declares its needs there, as `Need` members; a target (the fake server, or an external
server: scenarios.external) says which it offers. A scenario whose needs are not all
offered is skipped with one line naming the first step or field that needs what is
missing (`server_fault withhold_acks needs the fake server's control API`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
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

    @property
    def reason(self) -> str:
        return f"{self.where} needs {self.need.what}"


def unmet(requirements: list[Requirement], offered: frozenset[Need]) -> list[Requirement]:
    """The requirements `offered` does not cover: in Need order (what only the fake
    can offer first, then what a server the rig starts could), each in scenario order."""
    return sorted((r for r in requirements if r.need not in offered), key=lambda r: _order(r.need))


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
                play.append(Requirement(need, f"setup.servers.{name}.{field_name}"))
    for index, step in enumerate(scenario.steps):
        kind = step_kind(step)
        detail = _step_detail(kind, step_value(step))
        where = f"step {index + 1} (line {loaded.step_line(index)}) {kind}{detail}"
        play += [Requirement(need, where) for need in sorted(STEP_KINDS[kind].needs, key=_order)]
    judged: list[Requirement] = []
    for name, expect in scenario.timeline.servers.items():
        for field_name, need in ASSERTION_NEEDS.items():
            if getattr(expect, field_name) is not None:
                judged.append(Requirement(need, f"timeline.{name}.{field_name}"))
    return play, judged


def _order(need: Need) -> int:
    return list(Need).index(need)


def _step_detail(kind: str, value: object) -> str:
    """The fault a server_fault names (`server_fault withhold_acks`)."""
    faults = getattr(value, "faults", None)
    if kind == "server_fault" and callable(faults):
        spec = faults()
        name = spec.get("kind") or next(iter(spec), "")
        return f" {name}" if name else ""
    return ""
