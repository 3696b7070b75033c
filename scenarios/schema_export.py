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

from scenarios.schema import Scenario

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def schema_text() -> str:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "accord-rig scenario (*.scenario.yaml)"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


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
