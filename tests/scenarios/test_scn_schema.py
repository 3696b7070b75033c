"""Schema details: durations, tags as markers, the exported JSON Schema is current,
and the starter catalogue is valid."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from scenarios.durations import Duration, parse_duration
from scenarios.errors import ScenarioError
from scenarios.loader import discover, load_all, load_scenario
from scenarios.pytest_plugin import marker_name
from scenarios.runner import longest_wait
from scenarios.schema_export import SCHEMA_PATH, schema_text
from scenarios.timescale import scaled_deadline

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds", "beats"),
    [
        ("5s", 5.0, 0.0),
        ("300ms", 0.3, 0.0),
        ("1.5 s", 1.5, 0.0),
        ("2m", 120.0, 0.0),
        ("3 heartbeats", 0.0, 3.0),
        ("1 heartbeat", 0.0, 1.0),
        (7, 7.0, 0.0),
    ],
)
def test_durations(text: object, seconds: float, beats: float) -> None:
    assert parse_duration(text) == Duration(seconds, beats)


@pytest.mark.parametrize("text", ["-1s", "5 parsecs", "", True, "s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_deadlines_scale_with_a_real_time_floor() -> None:
    assert scaled_deadline(Duration(heartbeats=3), 1.0, 45.0) == 135.0
    assert scaled_deadline(Duration(seconds=100), 0.05, 45.0, floor=2.0) == 5.0
    assert scaled_deadline(Duration(seconds=1), 0.05, 45.0, floor=2.0) == 2.0


def test_tags_become_markers() -> None:
    assert marker_name("flow:gateway-disconnect") == "flow_gateway_disconnect"


def test_exported_json_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "run: python -m scenarios.schema_export"
    )


def test_starter_catalogue_is_valid_and_covers_every_fault_family() -> None:
    loaded, problems = load_all(discover([REPO / "scenarios" / "starter"]))
    assert problems == []
    kinds = {type(step).__name__ for item in loaded for step in item.scenario.steps}
    assert {
        "ToxicStep",
        "ServerFaultStep",
        "ServerCloseStep",
        "InvalidSessionStep",
        "KillServerStep",
        "RestartServerStep",
    } <= kinds


# ---------------------------------------------------------------- schema.json vs the loader

CATALOGUE = sorted((REPO / "scenarios").rglob("*.scenario.yaml"))
DOCS = REPO / "docs" / "scenarios.md"


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(data: object) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator().iter_errors(data)
    ]


def doc_examples() -> list[str]:
    """Every ```yaml block of docs/scenarios.md (each is a whole scenario file)."""
    return re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("path", CATALOGUE, ids=[str(p.relative_to(REPO)) for p in CATALOGUE])
def test_every_catalogue_file_validates_against_schema_json(path: Path) -> None:
    assert schema_errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_the_catalogue_is_all_there() -> None:
    assert len(CATALOGUE) >= 60


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_every_yaml_example_in_the_docs_validates_with_schema_and_loader(
    index: int, tmp_path: Path
) -> None:
    text = doc_examples()[index]
    assert schema_errors(yaml.safe_load(text)) == []
    load_scenario(tmp_path / f"doc{index}.scenario.yaml", text)  # raises on any problem


def test_the_docs_show_every_new_form() -> None:
    text = "".join(doc_examples())
    for form in ("between:", "never:", "throughout:", "exactly_once:", "counts:", "since:",
                 "eventually:", "server:", "received:", "handshakes:", "requests:", "as:",
                 "ref:", "behaviours:"):  # fmt: skip
        assert form in text, f"no example in docs/scenarios.md uses {form}"


MINIMAL = {"name": "x", "setup": {"servers": ["alpha"]}, "steps": [{"connect": "alpha"}]}

# Files both the schema and the loader must refuse: (what, data).
BAD_DOCUMENTS = [
    ("unknown step", {**MINIMAL, "steps": [{"teleport": "alpha"}]}),
    ("unknown fault kind", {**MINIMAL, "steps": [{"server_fault": {"server": "alpha", "kind": "x"}}]}),  # noqa: E501
    ("fault field of another kind", {
        **MINIMAL, "steps": [{"server_fault": {"server": "alpha", "kind": "drop", "code": 4000}}]
    }),
    ("bad duration", {**MINIMAL, "steps": [{"pause": "5 parsecs"}]}),
    ("banner short form misspelt", {**MINIMAL, "steps": [{"expect": {"banner": "hiden"}}]}),
    ("unknown timeline key", {**MINIMAL, "timeline": {"alpha": {"statuses": ["connected"]}}}),
    ("between without a bound", {
        **MINIMAL, "timeline": {"between": [{"from": {"step": 1}, "to": {"step": 1}}]}
    }),
    ("bad request key", {**MINIMAL, "timeline": {"alpha": {"server": {"requests": {"login": 1}}}}}),
    ("unknown behaviour", {**MINIMAL, "setup": {"servers": {"alpha": {"behaviours": ["nice"]}}}}),
]  # fmt: skip


@pytest.mark.parametrize(("what", "data"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS])
def test_bad_files_are_rejected_by_schema_and_loader(
    what: str, data: dict[str, object], tmp_path: Path
) -> None:
    assert schema_errors(MINIMAL) == []
    assert schema_errors(data), f"schema.json accepts a file with {what}"
    with pytest.raises(ScenarioError):
        load_scenario(tmp_path / "bad.scenario.yaml", yaml.safe_dump(data))


def test_all_problems_of_a_file_in_one_pass(tmp_path: Path) -> None:
    text = """\
description: once
setup: {servers: [alpha]}
steps:
  - connect: alpha
  - kill_server: beta
  - pause: 5 parsecs
  - edit: {message: {ref: first}, text: x}
  - send: {text: hi, as: first}
  - send: {text: again, as: first}
  - wait_for: {status: {alpha: connected}, since: {step: 9}}
timeline:
  alpha: {status: [connected]}
  gamma: {status: [connected]}
  never: [{condition: {mode: LIVE}, steps: [1, 12]}]
description: twice
"""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "many.scenario.yaml", text)
    found = [f"{p.line}: {p.field}: {p.message}" for p in caught.value.problems]
    expected = [
        "5: steps[1].kill_server: server 'beta' is not declared",
        "6: steps[2].pause: expected a duration",
        "7: steps[3].edit.message.ref: 'first' is not named by an earlier step",
        "9: steps[5].send.as: 'first' is already named (line 8)",
        "10: steps[6].wait_for.since.step: step 9 does not exist here (steps 1..7)",
        "13: timeline.gamma: server 'gamma' is not declared",
        "14: timeline.never[0].steps[1]: step 12 does not exist here (steps 1..7)",
        "15: description: duplicate key (first at line 1)",
    ]
    for needle in expected:
        assert any(line.startswith(needle) for line in found), (needle, found)


def test_longest_wait_counts_every_deadline_and_pause_at_the_scenarios_timescale(
    tmp_path: Path,
) -> None:
    text = """
name: waits
setup: {servers: {alpha: {heartbeat: 10s}}, timescale: 0.1}
steps:
  - connect: alpha
  - wait_for: {status: {alpha: connected}, within: 5s}
  - wait_for: {status: {alpha: connected}, eventually: 120s}
  - wait_for: {status: {alpha: connected}}
  - pause: 3 heartbeats
"""
    scenario = load_scenario(tmp_path / "w.scenario.yaml", text).scenario
    # within 5 s -> the 2 s floor; 120 s -> 12 s; the default 10 s -> 1 s -> 2 s;
    # a pause has no floor: 3 x 10 s x 0.1 = 3 s.
    assert longest_wait(scenario) == pytest.approx(2 + 12 + 2 + 3)
    assert longest_wait(scenario, timescale=1.0) == pytest.approx(5 + 120 + 10 + 30)
