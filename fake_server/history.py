"""The server's history: JSON lines, flushed per record, redacted, spanning restarts.

`History(None)` keeps the records in memory instead (simulation): no encoding per
record, redacted when read. Whoever records may pass the time (`t`, `mono`); the
server core does, so it never reads a clock itself."""

from __future__ import annotations

import bisect
import json
import os
import re
import secrets
import time
from collections.abc import Callable
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
_CHECKPOINT = 512


class Deferred:
    """A record value worked out only when the record is encoded (an HTTP body parsed
    back for the history costs as much as the handler; in memory, reads are rare)."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    def value(self) -> Any:
        return self._make()


def _encode_default(obj: Any) -> Any:
    return obj.value() if isinstance(obj, Deferred) else str(obj)


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

    def __init__(self, path: Path | None, boot: str | None = None) -> None:
        self.path = path
        self.boot = boot or secrets.token_hex(4)
        self._start = time.monotonic()
        self._memory: list[dict[str, Any]] | None = None
        self._closed = False
        if path is None:
            self._memory = []
            self._next_index = 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._next_index = _last_index(path) + 1
        self._file = open(path, "ab")  # noqa: SIM115 (held open for the run)
        self._offset = self._file.tell()
        if self._offset and _last_byte(path) != b"\n":
            self._write(b"\n")  # end a line torn by kill -9 so ours starts clean
        # (first i, byte offset) every _CHECKPOINT records: reads seek, not rescan.
        self._checkpoints: list[tuple[int, int]] = [(self._next_index, self._offset)]

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        self._offset += len(data)

    def new_boot(self, boot: str) -> None:
        """A restarted server (same history, new boot id); reopens a closed one."""
        self.boot = boot
        self._closed = False

    def record(
        self, kind: str, name: str, data: dict[str, Any], *, t: float | None = None,
        mono: float | None = None,
    ) -> None:
        """`t`: epoch seconds, `mono`: seconds since this server started (both read
        from the clocks when not given)."""
        rec: dict[str, Any] = {
            "i": self._next_index,
            "t": time.time() if t is None else t,
            "mono": time.monotonic() - self._start if mono is None else mono,
            "boot": self.boot,
            "kind": kind,
            "name": name,
            "data": data,
        }
        if self._memory is not None:  # rounded when read
            if not self._closed:
                self._memory.append(rec)
                self._next_index += 1
            return
        if self._file.closed:
            return
        if (self._next_index - self._checkpoints[0][0]) % _CHECKPOINT == 0:
            self._checkpoints.append((self._next_index, self._offset))
        self._next_index += 1
        rec["mono"] = round(rec["mono"], 6)
        text = json.dumps(rec, separators=(",", ":"), default=_encode_default)  # ASCII only
        self._write((redact_json_text(text) + "\n").encode("ascii"))

    def read(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Records with `i > after` from the file (so earlier runs are included)."""
        if self._memory is not None:
            found = self._memory[after:] if after >= 0 else self._memory  # i == index + 1
            if limit is not None:
                found = found[:limit]
            return [json.loads(redact_json_text(json.dumps(
                {**r, "mono": round(r["mono"], 6)}, separators=(",", ":"),
                default=_encode_default))) for r in found]
        assert self.path is not None
        start = 0
        pos = bisect.bisect_right(self._checkpoints, (after + 1, 2**63)) - 1
        if pos >= 0:
            start = self._checkpoints[pos][1]
        out: list[dict[str, Any]] = []
        with open(self.path, "rb") as fh:
            fh.seek(start)
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line torn by kill -9
                if isinstance(rec, dict) and rec.get("i", 0) > after:
                    out.append(rec)
                    if limit is not None and len(out) >= limit:
                        break
        return out

    def close(self) -> None:
        if self._memory is not None:
            self._closed = True
            return
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _last_index(path: Path) -> int:
    if not path.exists():
        return 0
    last = 0
    with open(path, "rb") as fh:
        for line in fh:
            try:
                last = max(last, int(json.loads(line).get("i", 0)))
            except (ValueError, AttributeError, TypeError):
                continue
    return last


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)
