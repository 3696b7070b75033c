"""Token redaction for anything that leaves the core towards logs or reports.

The core's own `Log` effects never carry a token. Its IO effects must (that is
how auth works), so a recorder passes them through these helpers first.
"""

from __future__ import annotations

import dataclasses
import json
import re

from client.core.io import Effect, HttpRequest, SendText

REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
_BEARER = re.compile(r"\b(Bearer|Bot)\s+[^\s\"',;]+", re.IGNORECASE)
_JSON_SECRET = re.compile(
    r"(\"(?:token|password|control_token|access_token|refresh_token|authorization)\"\s*:\s*)"
    r"\"(?:[^\"\\]|\\.)*\"",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Bearer/Bot tokens and JSON secret fields (token, password, ...) inside any
    text: the one text redactor the timeline and the reports share."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)


def redact_frame(text: str) -> str:
    """A gateway frame with IDENTIFY/RESUME tokens masked; others unchanged."""
    try:
        frame = json.loads(text)
    except ValueError:
        return text
    data = frame.get("data") if isinstance(frame, dict) else None
    if isinstance(data, dict) and "token" in data:
        data["token"] = REDACTED
        return json.dumps(frame, separators=(",", ":"))
    return text


def redact_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in headers)


def redact_body(body: bytes | None) -> bytes | None:
    """Mask `password` and `token` fields of a JSON body (login requests)."""
    if not body:
        return body
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    if isinstance(payload, dict) and ({"password", "token"} & payload.keys()):
        for key in ("password", "token"):
            if key in payload:
                payload[key] = REDACTED
        return json.dumps(payload).encode()
    return body


def redact_effect(effect: Effect) -> Effect:
    if isinstance(effect, SendText):
        return dataclasses.replace(effect, text=redact_frame(effect.text))
    if isinstance(effect, HttpRequest):
        return dataclasses.replace(
            effect, headers=redact_headers(effect.headers), body=redact_body(effect.body)
        )
    return effect
