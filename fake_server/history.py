"""The server's history: JSON lines, flushed per record, redacted, spanning restarts."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"
# Tokens are 64 hex chars; also catch them inside free text (a garbled IDENTIFY).
_TOKEN_RE = re.compile(r"\b[0-9a-fA-F]{64}\b")
# The value of a secret key in compact JSON text: a string or a bare scalar.
_SECRET_VALUE_RE = re.compile(
    r'"(token|password|authorization|control_token)":("(?:[^"\\]|\\.)*"|[^,}\]]+)',
    re.IGNORECASE,
)
_MAX_TEXT = 4096


def redact_json_text(text: str) -> str:
    """Redact compact JSON text in one pass (what the history writes; cheap at fan-out)."""
    text = _SECRET_VALUE_RE.sub(lambda m: f'"{m.group(1)}":"{REDACTED}"', text)
    return _TOKEN_RE.sub(REDACTED, text)


def clip(text: str) -> str:
    """Keep huge bodies (a 1 MiB frame) from bloating the history."""
    if len(text) <= _MAX_TEXT:
        return text
    return f"{text[:_MAX_TEXT]}...[{len(text) - _MAX_TEXT} more chars]"


class History:
    """Append-only record of everything the server saw and did."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.boot = secrets.token_hex(4)
        self._start = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._next_index = _count_lines(path) + 1
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (held open for the run)

    def record(self, kind: str, name: str, data: dict[str, Any]) -> None:
        rec = {
            "i": self._next_index,
            "t": time.time(),
            "mono": round(time.monotonic() - self._start, 6),
            "boot": self.boot,
            "kind": kind,
            "name": name,
            "data": data,
        }
        self._next_index += 1
        if not self._file.closed:
            text = json.dumps(rec, separators=(",", ":"), default=str)
            self._file.write(redact_json_text(text) + "\n")
            self._file.flush()

    def read(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Records with `i > after` from the file (so earlier runs are included)."""
        out: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line torn by kill -9
                if rec.get("i", 0) > after:
                    out.append(rec)
                    if limit is not None and len(out) >= limit:
                        break
        return out

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    last = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                last = max(last, int(json.loads(line).get("i", 0)))
            except (ValueError, AttributeError):
                continue
    return last
