"""The catalogue's shape: stable tag families, one flow per scenario at least, a
scenario for every bug of client-behaviour.md s.9, the real-time CI set. Reads
the files only (no run), so it fails fast before the slow proofs do."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.core.bugs import BUG_NUMBERS
from scenarios.loader import LoadedScenario, discover, load_all

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios"
FAMILIES = {"flow", "fault", "toxic", "process", "bug", "ci", "behaviour"}


@pytest.fixture(scope="module")
def catalogue() -> list[LoadedScenario]:
    loaded, problems = load_all(discover([str(CATALOGUE)]))
    assert not problems, "\n".join(str(p) for p in problems)
    return loaded


def tags_of(item: LoadedScenario) -> set[str]:
    return set(item.scenario.tags)


def test_every_scenario_sits_in_a_family_folder_and_names_its_flow(
    catalogue: list[LoadedScenario],
) -> None:
    for item in catalogue:
        where = Path(item.path).resolve().relative_to(CATALOGUE)
        assert len(where.parts) == 2, f"{where}: expected scenarios/<family>/<name>.scenario.yaml"
        assert any(t.startswith("flow:") for t in item.scenario.tags), f"{where}: no flow: tag"


def test_tags_come_from_the_known_families(catalogue: list[LoadedScenario]) -> None:
    odd = {
        (item.path, tag)
        for item in catalogue
        for tag in item.scenario.tags
        if tag.split(":")[0] not in FAMILIES
    }
    assert not odd, f"tags outside {sorted(FAMILIES)}: {sorted(odd)}"


def test_every_bug_has_a_scenario_and_no_other_number_is_used(
    catalogue: list[LoadedScenario],
) -> None:
    used = {t for item in catalogue for t in item.scenario.tags if t.startswith("bug:")}
    assert used == {f"bug:{n}" for n in BUG_NUMBERS}


def test_the_realtime_set_covers_resume_heartbeat_and_queue_flush(
    catalogue: list[LoadedScenario],
) -> None:
    realtime = [tags_of(item) for item in catalogue if "ci:realtime" in tags_of(item)]
    assert any("flow:heartbeat-timeout" in t for t in realtime)
    assert any("flow:offline-queue" in t for t in realtime)
    assert any("flow:gateway-disconnect" in t for t in realtime)  # an outage, then resume


def test_the_readme_tables_follow_the_tags() -> None:
    from scenarios.readme_tables import README, render

    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "run: python -m scenarios.readme_tables"
