"""Write the scenario JSON Schema (for editor completion) to scenarios/schema.json.

    python -m scenarios.schema_export            # rewrite the file
    python -m scenarios.schema_export --check    # exit 1 if the file is stale

Editors pick it up with a modeline at the top of a scenario file:
`# yaml-language-server: $schema=../schema.json`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from fake_server.faults import FaultSpec
from scenarios.schema import NAME_RE, Scenario

SCHEMA_PATH = Path(__file__).with_name("schema.json")


FAULT_PREFIX = "fault_"


def _fault_step_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """`server_fault`'s value: `server` plus one of the fake server's own fault specs
    (its pydantic models, so every kind's fields complete in an editor)."""
    faults = TypeAdapter(FaultSpec).json_schema(ref_template="#/$defs/" + FAULT_PREFIX + "{model}")
    for name, definition in faults.pop("$defs", {}).items():
        defs[FAULT_PREFIX + name] = definition
    variants = []
    for ref in faults["oneOf"]:
        kind = defs[ref["$ref"].rsplit("/", 1)[1]]
        variants.append(
            {
                **kind,
                "properties": {"server": {"$ref": "#/$defs/ServerName"}, **kind["properties"]},
                "required": ["server", *kind.get("required", [])],
            }
        )
    for ref in faults["oneOf"]:
        defs.pop(ref["$ref"].rsplit("/", 1)[1])
    return {
        "description": "a fake-server fault: server, kind and that kind's fields",
        "oneOf": variants,
    }


def _closed_pattern_maps(node: Any) -> None:
    """A mapping keyed by a pattern (server names, request keys) takes no other keys,
    as the loader's models refuse them."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _closed_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _closed_pattern_maps(value)


def schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, from the models the loader validates with."""
    schema = Scenario.model_json_schema()
    defs = schema["$defs"]
    defs["ServerName"] = {"type": "string", "pattern": NAME_RE}
    defs["ServerFault"] = _fault_step_schema(defs)
    _closed_pattern_maps(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "accord-rig scenario (*.scenario.yaml)"
    return schema


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = schema_text()
    if "--check" in argv:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is stale: run python -m scenarios.schema_export", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(SCHEMA_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
