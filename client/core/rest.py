"""REST policy for one server: correlation, envelopes, error texts, 429, timeout.

The core allocates request ids; each `HttpRequest` effect is answered by one
`HttpResponse` or `HttpFailed` for the same id. A 429 retry or a timed-out
request never reuses an id, so a late answer for an abandoned id is ignored.
Each request's outcome is one `RestAnswered` event carrying the request's
purpose and token (client.core.purposes), drained with `take_events()`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.core.bugs import Bug
from client.core.io import CancelHttp, Effect, HttpFailed, HttpRequest, HttpResponse, Log, NetError
from client.core.purposes import Purpose, Token
from client.core.timers import Machine, TimerKey, TimerKind, Timers
from client.core.timings import Timings

USER_AGENT = "accord-rig-client/0.1 (Python)"

NET_ERROR_TEXT: dict[NetError, str] = {
    NetError.REFUSED: "Could not connect to server",
    NetError.DNS: "Could not resolve hostname",
    NetError.TLS: "TLS/SSL handshake failed",
    NetError.NO_RESPONSE: "No response from server",
    NetError.OTHER: "Connection error",
}
# Network failures after which the request may still have been carried out.
OUTCOME_UNKNOWN_ERRORS = frozenset({NetError.NO_RESPONSE, NetError.OTHER})
TIMED_OUT = "Request timed out"
RATE_LIMITED = "Rate limited after 3 retries"
AUTH_FAILED = "Authentication failed"


@dataclass(frozen=True, slots=True)
class RestResult:
    ok: bool
    status: int  # 0 when no HTTP answer came (network error, timeout)
    data: Any = None
    error: str = ""  # what the user reads; "" when ok
    transient: bool = False  # network, timeout, 5xx, 408, 429 exhausted
    cursor: dict[str, Any] | None = None
    # The request may have reached the server and been carried out: a timeout, or
    # the connection lost after it went out (s.6). A refused connect, a DNS or TLS
    # failure, and any HTTP answer are known outcomes.
    outcome_unknown: bool = False

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


@dataclass(frozen=True, slots=True)
class RestCall:
    """A request as the core asked for it (what a retry after a re-login sends again)."""

    method: str
    path: str
    body: Any = None


@dataclass(frozen=True, slots=True)
class RestAnswered:
    """A request's outcome: what it was for, its token, and the result."""

    purpose: Purpose
    token: Token
    call: RestCall
    result: RestResult
    retry_on_401: bool  # under the s.3 policy: a 401 logs in again, then this once more


@dataclass(slots=True)
class _Call:
    call: RestCall
    purpose: Purpose
    token: Token
    login: bool  # POST /auth/login: 401 reads "Authentication failed"
    probe: bool  # any HTTP status means success
    retry_on_401: bool
    retries_done: int = 0

    @property
    def method(self) -> str:
        return self.call.method

    @property
    def path(self) -> str:
        return self.call.path


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def _as_seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def error_text(status: int, payload: Any) -> str:
    """An error envelope's message, else `Server error (HTTP <status>)`."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]:
            return str(err["message"])
    return f"Server error (HTTP {status})"


class Rest:
    def __init__(
        self,
        server: str,
        base_url: str,
        *,
        out: list[Effect],
        timers: Timers,
        next_id: Callable[[], int],
        timings: Timings,
        bug_on: Callable[[Bug], bool],
        trace: bool = True,
    ) -> None:
        self.server = server
        self.base_url = base_url  # origin + /api/v1
        self._trace = trace  # Log effects (client.core.client.ClientCore)
        self.token: str | None = None
        self._out = out
        self._timers = timers
        self._next_id = next_id
        self._timings = timings
        self._bug_on = bug_on
        self._pending: dict[int, _Call] = {}
        self._retries: dict[int, _Call] = {}  # 429 waits, by retry id
        self._events: list[RestAnswered] = []

    # ------------------------------------------------------------------ public

    def request(
        self,
        now: float,
        call: RestCall,
        purpose: Purpose,
        token: Token,
        *,
        login: bool = False,
        probe: bool = False,
        retry_on_401: bool = False,
    ) -> None:
        self._send(now, _Call(call, purpose, token, login, probe, retry_on_401))

    def take_events(self) -> list[RestAnswered]:
        """The answers since the last call, in order, for the core to dispatch."""
        events, self._events = self._events, []
        return events

    def owns(self, req: int) -> bool:
        return req in self._pending

    @property
    def busy(self) -> bool:
        return bool(self._pending) or bool(self._retries)

    def handle(self, now: float, event: HttpResponse | HttpFailed) -> None:
        call = self._pending.pop(event.req, None)
        if call is None:
            return
        self._timers.cancel(self._timeout_key(event.req))
        if isinstance(event, HttpFailed):
            text = NET_ERROR_TEXT[event.error]
            self._log("warning", f"{call.method} {call.path} failed: {text}")
            unknown = event.error in OUTCOME_UNKNOWN_ERRORS
            self._answer(
                call, RestResult(False, 0, error=text, transient=True, outcome_unknown=unknown)
            )
            return
        self._on_response(now, call, event)

    def cancel_all(self) -> None:
        """Abandon every request (server removed): none will be answered."""
        for req in list(self._pending):
            self._timers.cancel(self._timeout_key(req))
            self._out.append(CancelHttp(req=req))
        self._pending.clear()
        for retry_id in list(self._retries):
            self._timers.cancel(self._retry_key(retry_id))
        self._retries.clear()

    def owns_timer(self, key: TimerKey) -> bool:
        if key.machine is Machine.HTTP:
            return key.ident in self._pending
        return key.machine is Machine.HTTP_RETRY and key.ident in self._retries

    def on_timer(self, now: float, key: TimerKey) -> None:
        """A deadline this REST client set is due: a request timed out, or a 429
        wait is over."""
        if key.kind is TimerKind.REQUEST_TIMEOUT:
            self._on_timeout(now, key.ident)
            return
        call = self._retries.pop(key.ident, None)
        if call is not None:
            self._send(now, call)

    # ------------------------------------------------------------------ internals

    def _send(self, now: float, call: _Call) -> None:
        req = self._next_id()
        headers: list[tuple[str, str]] = []
        if self.token is not None and not call.login:
            headers.append(("Authorization", f"Bearer {self.token}"))
        headers.append(("Content-Type", "application/json"))
        headers.append(("User-Agent", USER_AGENT))
        body = None if call.call.body is None else json.dumps(call.call.body).encode()
        self._pending[req] = call
        self._out.append(
            HttpRequest(
                req=req,
                method=call.method,
                url=self.base_url + call.path,
                headers=tuple(headers),
                body=body,
            )
        )
        if not self._bug_on(Bug.REST_HAS_NO_TIMEOUT):
            delay = self._timings.rest_wait
            self._timers.set(self._timeout_key(req), now, delay)

    def _timeout_key(self, req: int) -> TimerKey:
        return TimerKey(self.server, Machine.HTTP, TimerKind.REQUEST_TIMEOUT, req)

    def _retry_key(self, retry_id: int) -> TimerKey:
        return TimerKey(self.server, Machine.HTTP_RETRY, TimerKind.RATE_LIMIT_RETRY, retry_id)

    def _on_timeout(self, now: float, req: int) -> None:
        call = self._pending.pop(req, None)
        if call is None:
            return
        self._out.append(CancelHttp(req=req))
        self._log("warning", f"{call.method} {call.path} timed out")
        self._answer(
            call, RestResult(False, 0, error=TIMED_OUT, transient=True, outcome_unknown=True)
        )

    def _on_response(self, now: float, call: _Call, resp: HttpResponse) -> None:
        status = resp.status
        payload = _parse_json(resp.body)
        if call.probe:
            self._answer(call, RestResult(True, status, data=payload))
            return
        if 200 <= status < 300:
            self._log("debug", f"{call.method} {call.path} -> {status}")
            if isinstance(payload, dict) and "data" in payload:
                cursor = payload.get("cursor")
                self._answer(
                    call,
                    RestResult(
                        True,
                        status,
                        data=payload["data"],
                        cursor=cursor if isinstance(cursor, dict) else None,
                    ),
                )
            else:
                self._answer(call, RestResult(True, status, data=payload))
            return
        if status == 429:
            self._on_rate_limited(now, call, resp, payload)
            return
        self._log("warning", f"{call.method} {call.path} -> HTTP {status}")
        text = AUTH_FAILED if (call.login and status == 401) else error_text(status, payload)
        transient = status >= 500 or status == 408
        self._answer(call, RestResult(False, status, data=payload, error=text, transient=transient))

    def _on_rate_limited(self, now: float, call: _Call, resp: HttpResponse, payload: Any) -> None:
        max_retries = self._timings.rate_limit_retries
        if self._bug_on(Bug.RATE_LIMIT_TWO_RETRIES):
            max_retries -= 1
        if call.retries_done >= max_retries:
            self._log("warning", f"{call.method} {call.path} rate limited, giving up")
            self._answer(
                call, RestResult(False, 429, data=payload, error=RATE_LIMITED, transient=True)
            )
            return
        wait = _as_seconds(_header(resp.headers, "Retry-After"))
        if wait is None and isinstance(payload, dict):
            wait = _as_seconds(payload.get("retry_after"))
        if wait is None:
            wait = self._timings.rate_limit_fallback_wait(call.retries_done)
        wait = min(wait, self._timings.scaled(self._timings.rate_limit_cap))
        call.retries_done += 1
        retry_id = self._next_id()
        self._retries[retry_id] = call
        self._log("info", f"{call.method} {call.path} rate limited, retry in {wait:.3f}s")
        self._timers.set(self._retry_key(retry_id), now, wait)

    def _answer(self, call: _Call, result: RestResult) -> None:
        answered = RestAnswered(call.purpose, call.token, call.call, result, call.retry_on_401)
        self._events.append(answered)

    def _log(self, level: str, message: str) -> None:
        if self._trace:
            self._out.append(Log(level=level, message=message, server=self.server))
