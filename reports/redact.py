"""Secrets out of anything a report shows or attaches.

The timeline and the fake server's history are redacted where they are written;
this is the last line before a file leaves the run (client logs included), so it
also masks any exact secret the caller names (tokens it handed out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from client.core.redact import REDACTED, redact_text

_KEY_VALUE = re.compile(
    r"\b((?:token|password|control_token|authorization)\s*[=:]\s*)"
    r"(?!<redacted>|Bearer\b|Bot\b)[^\s,;&\"']+",
    re.IGNORECASE,
)
_HEX_TOKEN = re.compile(r"\b[0-9a-fA-F]{64}\b")  # the fake server's token format


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with bearer tokens, token/password fields, 64-hex tokens and every
    given secret replaced by `<redacted>`."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = redact_text(text)  # the rules the timeline applies too
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _HEX_TOKEN.sub(REDACTED, text)
