"""The REST chains as step tables (client-behaviour.md s.3-s.4): the connect
chain before the one gateway attempt, and the refetch after READY/RESUMED.

A step is one request and what its answer does to the session. The runners
(`Connection._connect_step`, `Sync._refetch_step`) send each step's request,
drop an answer from an older epoch, and either apply it and go on or stop:
the connect chain stops at its first failure, the refetch logs it and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.core.cache import str_id
from client.core.context import UNEXPECTED_RESPONSE, CoreContext
from client.core.session import Session

# What an answer does: None, or the failure text that stops the chain.
Apply = Callable[[CoreContext, float, Session, Any], str | None]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    method: str
    path: str  # `{space}` is the session's space id
    apply: Apply
    on_ok: str  # for the tables in docs/architecture.md
    on_failure: str
    body: Callable[[Session], Any] | None = None

    def url_path(self, srv: Session) -> str:
        return self.path.format(space=srv.space_id)


def _token(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return UNEXPECTED_RESPONSE
    srv.rest.token = token
    return None


def _me(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    srv.user_id = str_id(data.get("id")) if isinstance(data, dict) else None
    return None


def _space(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    spaces = data if isinstance(data, list) else []
    slug = srv.config.space
    match = [s for s in spaces if isinstance(s, dict) and s.get("slug") == slug]
    space_id = str_id(match[0].get("id")) if match else None
    if space_id is None:
        return f"Space not found: {slug}"
    srv.space_id = space_id
    return None


def _nothing(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    return None


def _channels(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    core._store_channels(now, srv, data)
    return None


def _members(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    srv.cache.set_members(data)
    return None


def _roles(core: CoreContext, now: float, srv: Session, data: Any) -> str | None:
    srv.cache.set_roles(data)
    return None


def _credentials(srv: Session) -> dict[str, str]:
    return {"username": srv.config.username, "password": srv.config.password}


_STOP = "first connect: error (its text); re-auth: 'Reconnection failed'"
CONNECT_CHAIN: tuple[Step, ...] = (
    Step(
        "login",
        "POST",
        "/auth/login",
        _token,
        "keep the token (skipped with bug 3: the stored token is reused)",
        _STOP + "; no token in the answer: 'Unexpected response from server'",
        body=_credentials,
    ),
    Step("me", "GET", "/users/@me", _me, "keep the user id", _STOP),
    Step(
        "spaces",
        "GET",
        "/users/@me/spaces",
        _space,
        "pick the configured space by slug",
        _STOP + "; no such slug: 'Space not found: <slug>'",
    ),
    Step("space", "GET", "/spaces/{space}", _nothing, "go on", _STOP),
    Step(
        "channels",
        "GET",
        "/spaces/{space}/channels",
        _channels,
        "cache the channels, open the gateway",
        _STOP,
    ),
)
LOGIN = CONNECT_CHAIN[0]

_GO_ON = "log a warning, go on"
REFETCH: tuple[Step, ...] = (
    Step("channels", "GET", "/spaces/{space}/channels", _channels, "cache the channels", _GO_ON),
    Step(
        "members",
        "GET",
        "/spaces/{space}/members?limit=1000",
        _members,
        "cache the members",
        _GO_ON,
    ),
    Step(
        "roles",
        "GET",
        "/spaces/{space}/roles",
        _roles,
        "cache the roles; then the selected channel's missed messages (paged)",
        _GO_ON,
    ),
)
