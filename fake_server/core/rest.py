"""The REST API under /api/v1 and /health, sans I/O: routing, the middlewares
(history, rate limit, faults, auth) and the handlers. Answers follow the reference
(accord-protocol.md s.4, s.5, s.7).

A request runs as a generator: it yields how long it must wait (a fault's latency or
hang; None = until the client gives up) and returns its `Reply`. The core resumes it
when the wait is over and closes it when the client cancels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, unquote

from fake_server.errors import CODES, ApiError, body_error, unauthorized
from fake_server.faults import (
    LoginFailSpec,
    RestFailSpec,
    RestHangSpec,
    RestLatencySpec,
    RestMalformedSpec,
    RestRateLimitSpec,
)
from fake_server.history import Deferred, clip
from fake_server.ratelimit import RATE_WINDOW_S

if TYPE_CHECKING:
    from fake_server.core.server import ServerCore

API = "/api/v1"
PUBLIC_ROUTES = frozenset({("POST", "/auth/login"), ("POST", "/auth/register"),
                           ("GET", "/auth/login"), ("GET", "/health")})
MAX_CONTENT = 4000
JSON_TYPE = "application/json"  # no charset, as the reference
TEXT_TYPE = "text/plain; charset=utf-8"
log = logging.getLogger("fake_server.rest")

Wait = float | None
"""Seconds to hold the request (None: until the client gives up)."""


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


class HttpError(Exception):
    """The router's answers: unknown route (404) or method (405 with Allow), and the
    few the HTTP layer itself gives (415 for an unknown charset)."""

    REASONS: ClassVar[dict[int, str]] = {
        400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
        415: "Unsupported Media Type"}

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or []

    def plain(self) -> Reply:
        """As aiohttp renders an HTTP exception nobody caught."""
        text = f"{self.status}: {self.REASONS.get(self.status, '')}"
        return Reply(self.status, [("Content-Type", TEXT_TYPE), *self.headers], text.encode())


@dataclass
class Request:
    id: int
    method: str
    path: str
    """Decoded path."""
    query: dict[str, str]
    """First value per name."""
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes | None
    """None: larger than the server accepts."""
    route: Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    route_error: HttpError | None = None
    user: dict[str, Any] | None = None
    token: str = ""

    @classmethod
    def parse(cls, req_id: int, method: str, target: str, headers: Any,
              body: bytes | None) -> Request:
        raw_path, _, raw_query = target.partition("?")
        query: dict[str, str] = {}
        for k, v in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(k, v)
        items = headers.items() if hasattr(headers, "items") else headers
        hdrs: dict[str, str] = {}
        for k, v in items:
            hdrs.setdefault(k.lower(), v)
        return cls(req_id, method.upper(), unquote(raw_path) or "/", query, hdrs, body)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        raw = self.header("content-type")
        return raw.split(";", 1)[0].strip().lower() or "application/octet-stream"

    @property
    def charset(self) -> str | None:
        for part in self.header("content-type").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None

    def text(self) -> str:
        try:
            return (self.body or b"").decode(self.charset or "utf-8")
        except LookupError:
            raise HttpError(415) from None

    @property
    def user_(self) -> dict[str, Any]:
        assert self.user is not None
        return self.user


def api_path(path: str) -> str:
    return path[len(API) :] if path.startswith(API + "/") else path


def json_answer(payload: Any, status: int = 200) -> Reply:
    return Reply(status, [("Content-Type", JSON_TYPE)], json.dumps(payload).encode())


def ok(data: Any, **extra: Any) -> Reply:
    return json_answer({"data": data, **extra})


def error_response(err: ApiError, **extra: Any) -> Reply:
    if err.plain:
        return Reply(err.status, [("Content-Type", TEXT_TYPE)], err.message.encode())
    return json_answer({**err.envelope(), **extra}, status=err.status)


def empty_response(exc: HttpError) -> Reply:
    """Unknown route or method: empty body, no Content-Type (405 keeps its Allow header)."""
    return Reply(exc.status, [(k, v) for k, v in exc.headers if k.lower() != "content-type"])


# ---------------------------------------------------------------------- routing

Handler = Callable[["ServerCore", Request], Reply]


@dataclass(frozen=True)
class Route:
    pattern: tuple[str, ...]
    """Path segments; `{name}` matches one non-empty segment."""
    handlers: dict[str, Handler]

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.pattern, segments, strict=True):
            if want.startswith("{"):
                if not got:
                    return None
                params[want[1:-1]] = unquote(got)
            elif want != unquote(got):
                return None
        return params


_Resolved = tuple[Route | None, dict[str, str], "HttpError | None"]
_ROUTE_CACHE = 4096  # distinct (method, path) pairs remembered


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._by_pattern: dict[tuple[str, ...], Route] = {}
        self._cache: dict[tuple[str, str], _Resolved] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        pattern = tuple(path.split("/"))
        route = self._by_pattern.get(pattern)
        if route is None:
            route = Route(pattern, {})
            self._by_pattern[pattern] = route
            self.routes.append(route)
        route.handlers[method] = handler
        if method == "GET":  # as aiohttp's add_get: HEAD too
            route.handlers["HEAD"] = handler

    def resolve(self, req: Request, raw_path: str) -> None:
        key = (req.method, raw_path)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._resolve(req.method, raw_path)
            if len(self._cache) >= _ROUTE_CACHE:
                self._cache.clear()
            self._cache[key] = hit
        req.route, params, req.route_error = hit
        req.params = dict(params)

    def _resolve(self, method: str, raw_path: str) -> _Resolved:
        segments = raw_path.split("/")
        allowed: set[str] = set()
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if method in route.handlers:
                return route, params, None
            allowed |= set(route.handlers)
        if allowed:
            return None, {}, HttpError(405, [("Allow", ",".join(sorted(allowed)))])
        return None, {}, HttpError(404)


# ---------------------------------------------------------------------- middlewares

RequestGen = Generator[Wait, None, Reply]


def _body_for_history(body: bytes | str | None) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return clip(text)


def _deferred_body(body: bytes | None) -> Any:
    return Deferred(lambda: _body_for_history(body)) if body else None


def _is_gateway_path(path: str) -> bool:
    return path == "/ws" or path.startswith("/ws/")


def run_request(core: ServerCore, req: Request) -> RequestGen:
    """The history middleware: record the request and the response; turn errors into
    the protocol's answers."""
    base = {"req": req.id, "method": req.method, "path": req.path}
    core.record("http", "request",
                {**base, "query": dict(req.query), "body": _deferred_body(req.body)})
    if _is_gateway_path(req.path):
        # Not a WebSocket upgrade: what aiohttp answers itself (the gateway records
        # its own frames).
        return (req.route_error or HttpError(400)).plain()
    try:
        if req.body is None:
            raise ApiError(413, "request body too large")
        resp = yield from _rate_limit(core, req)
    except ApiError as err:
        resp = error_response(err)
    except HttpError as exc:
        resp = empty_response(exc)
    except GeneratorExit:
        core.record("http", "response", {**base, "status": None, "cancelled": True})
        raise
    except Exception:  # a bug: answer 500 with the envelope, keep serving, say what broke
        log.exception("handler failed: %s %s", req.method, req.path)
        resp = error_response(ApiError(500, "internal error"))
    user = req.user
    core.record(
        "http", "response",
        {**base, "status": resp.status, "body": _deferred_body(resp.body),
         "user": user["username"] if user else None},
    )
    return resp


def _answer(core: ServerCore, req: Request, inner: RequestGen) -> RequestGen:
    """Run the inner stage; its ApiError or unknown-route error becomes the answer."""
    try:
        return (yield from inner)
    except ApiError as err:
        return error_response(err)
    except HttpError as exc:
        return empty_response(exc)


def _unlimited(path: str) -> bool:
    return path == "/health" or path.startswith("/ws")


def _rate_limit(core: ServerCore, req: Request) -> RequestGen:
    """The reference's limiter: per Authorization value, requests without one share a
    bucket. A 429 carries Retry-After and no X-RateLimit headers; other answers do."""
    limiter = core.rate_limiter
    if limiter is None or _unlimited(req.path):
        return (yield from _faults(core, req))
    verdict = limiter.check(req.header("authorization").strip())
    if not verdict.allowed:
        seconds = core.config.scaled(RATE_WINDOW_S)
        limited = error_response(ApiError(429, f"rate limited, retry after {seconds:g}s"))
        limited.set_header("Retry-After", f"{seconds:g}")
        return limited
    resp = yield from _answer(core, req, _faults(core, req))
    resp.set_header("X-RateLimit-Limit", str(limiter.limit))
    resp.set_header("X-RateLimit-Remaining", str(verdict.remaining))
    resp.set_header("X-RateLimit-Reset", str(verdict.reset_epoch))
    return resp


def _faults(core: ServerCore, req: Request) -> RequestGen:
    """REST faults: latency, 429, failures, hangs (before or after the handler), bad bodies."""
    board = core.board
    if req.path.startswith("/ws") or not board.active:
        return (yield from _auth(core, req))
    method, path = req.method, api_path(req.path)
    scaled = core.config.scaled

    def take(kind: str, stage: str | None = None) -> Any:
        fault = board.take(
            lambda s: s.kind == kind and s.matches(method, path)
            and (stage is None or s.stage == stage)
        )
        if fault is not None:
            core.fault_fired(fault, req=req.id, method=method, path=path)
        return fault

    latency = take("rest_latency")
    if latency is not None:
        spec_l: RestLatencySpec = latency.spec
        yield scaled(spec_l.seconds)
    limited = take("rest_rate_limit")
    if limited is not None:
        return _rate_limited(limited.spec, scaled)
    if method == "POST" and path == "/auth/login":
        login_fault = board.take(lambda s: s.kind == "login_fail")
        if login_fault is not None:
            core.fault_fired(login_fault, req=req.id)
            spec_lf = login_fault.spec
            assert isinstance(spec_lf, LoginFailSpec)
            message = "invalid credentials" if spec_lf.status == 401 else "internal error"
            raise ApiError(spec_lf.status, message)
    early = yield from _fail_or_hang(take, "before", scaled)
    if early is not None:
        return early
    resp = yield from _answer(core, req, _auth(core, req))
    late = yield from _fail_or_hang(take, "after", scaled)
    if late is not None:
        return late
    malformed = take("rest_malformed")
    if malformed is not None:
        spec_m: RestMalformedSpec = malformed.spec
        return Reply(resp.status, [("Content-Type", spec_m.content_type)], spec_m.body.encode())
    return resp


def _fail_or_hang(
    take: Callable[[str, str | None], Any], stage: str, scaled: Callable[[float], float]
) -> Generator[Wait, None, Reply | None]:
    hang = take("rest_hang", stage)
    if hang is not None:
        spec_h: RestHangSpec = hang.spec
        if spec_h.seconds is None:
            yield None  # until the client gives up (the request is cancelled)
        yield scaled(spec_h.seconds or 0)
    fail = take("rest_fail", stage)
    if fail is not None:
        spec_f: RestFailSpec = fail.spec
        if spec_f.body is None:
            return error_response(ApiError(spec_f.status, "injected failure"))
        if isinstance(spec_f.body, str):
            return Reply(spec_f.status, [("Content-Type", TEXT_TYPE)], spec_f.body.encode())
        return json_answer(spec_f.body, status=spec_f.status)
    return None


def _rate_limited(spec: RestRateLimitSpec, scaled: Callable[[float], float]) -> Reply:
    extra: dict[str, Any] = {}
    headers: list[tuple[str, str]] = []
    if spec.retry_after is not None:
        seconds = scaled(spec.retry_after)
        if spec.body_field:
            extra["retry_after"] = seconds
        if spec.header:
            headers.append(("Retry-After", f"{seconds:g}"))
    resp = error_response(ApiError(429, "rate limited"), **extra)
    resp.headers.extend(headers)
    return resp


def _auth(core: ServerCore, req: Request) -> RequestGen:
    path = api_path(req.path)
    if not (
        req.route_error is not None
        or path.startswith("/ws")
        or (req.method, path) in PUBLIC_ROUTES
        or path == "/health"
    ):
        header = req.header("authorization")
        scheme, _, token = header.partition(" ")
        user = None
        if scheme in ("Bearer", "Bot") and token:
            user = core.store.user_for_token(token.strip())
        if user is None:
            raise unauthorized()
        req.user, req.token = user, token.strip()
    if req.route_error is not None:
        raise req.route_error
    assert req.route is not None
    return req.route.handlers[req.method](core, req)
    yield  # a generator like the other stages (never reached)


# ---------------------------------------------------------------------- body helpers


# The reference's plain-text body errors (its JSON extractor's wording).
_NOT_JSON = "Failed to parse the request body as JSON"
_WRONG_SHAPE = "Failed to deserialize the JSON body into the target type"


def _is_json_type(req: Request) -> bool:
    main, _, sub = req.content_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def json_object(req: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 without a JSON Content-Type, 400 when it does not
    parse, 422 when it is not an object (all text/plain, as the reference)."""
    if not _is_json_type(req):
        raise body_error(415, "Expected request with `Content-Type: application/json`")
    text = req.text()
    try:
        body = json.loads(text)
        json.dumps(body, ensure_ascii=False).encode("utf-8")  # lone surrogates ("\ud800")
    except json.JSONDecodeError as exc:
        raise body_error(
            400, f"{_NOT_JSON}: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, "[[[[...", "\ud800"
        raise body_error(400, f"{_NOT_JSON}: {exc}") from None
    if not isinstance(body, dict):
        raise body_error(422, f"{_WRONG_SHAPE}: expected a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field; missing (when required) or wrongly typed: 422 naming the field."""
    value = body.get(name)
    if value is None:
        if required:
            raise body_error(422, f"{_WRONG_SHAPE}: missing field `{name}`")
        return None
    if not isinstance(value, str):
        raise body_error(422, f"{_WRONG_SHAPE}: field `{name}`: invalid type, expected a string")
    return value


def int_query(req: Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    if not _is_decimal(raw, 9) or not low <= int(raw) <= high:
        raise ApiError(400, f"query {name} must be an integer {low}..{high}")
    return int(raw)


def id_query(req: Request, name: str) -> str | None:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return None
    if not _is_decimal(raw, 19):
        raise ApiError(400, f"query {name} must be a snowflake id")
    return raw


def _is_decimal(text: str, max_digits: int) -> bool:
    """ASCII digits only (str.isdigit accepts '²'), short enough for SQLite's INTEGER."""
    return text.isascii() and text.isdigit() and len(text) <= max_digits and int(text) < 2**63


# ---------------------------------------------------------------------- handlers


def health(core: ServerCore, req: Request) -> Reply:
    return json_answer({"ok": True})


def login(core: ServerCore, req: Request) -> Reply:
    body = json_object(req)
    username = text_field(body, "username")
    password = text_field(body, "password")
    assert username is not None and password is not None
    user = core.store.check_password(username, password)
    if user is None:
        raise ApiError(401, "invalid credentials")
    return ok({"user": user, "token": core.store.issue_token(user["id"])})


def register(core: ServerCore, req: Request) -> Reply:
    store = core.store
    body = json_object(req)
    username = text_field(body, "username")
    password = text_field(body, "password")
    display_name = text_field(body, "display_name", required=False)
    assert username is not None and password is not None
    if not username.strip() or not password:
        raise ApiError(400, "username and password must not be empty")
    if store.user_by_name(username) is not None:
        raise ApiError(409, f"username {username} is taken")
    user = store.register(username, password, display_name)
    for space in store.spaces_of(user["id"]):
        core.dispatch("member.join", {"space_id": space["id"], "user": user}, space["id"], None)
    return ok({"user": user, "token": store.issue_token(user["id"])})


def logout(core: ServerCore, req: Request) -> Reply:
    core.store.revoke_token(req.token)
    return ok({"ok": True})


def me(core: ServerCore, req: Request) -> Reply:
    return ok(req.user)


def my_spaces(core: ServerCore, req: Request) -> Reply:
    return ok(core.store.spaces_of(req.user_["id"]))


def _member_space(core: ServerCore, req: Request) -> dict[str, Any]:
    store = core.store
    space = store.space(req.params["space_id"])
    if space is None:
        raise ApiError(404, "unknown space")
    if not store.is_member(space["id"], req.user_["id"]):
        raise ApiError(403, "not a member of this space")
    return space


def get_space(core: ServerCore, req: Request) -> Reply:
    return ok(_member_space(core, req))


def space_channels(core: ServerCore, req: Request) -> Reply:
    space = _member_space(core, req)
    return ok(core.store.channels(space["id"]))


def space_members(core: ServerCore, req: Request) -> Reply:
    space = _member_space(core, req)
    limit = int_query(req, "limit", 100, 1, 1000)
    return ok(core.store.members(space["id"], limit, id_query(req, "after")))


def space_roles(core: ServerCore, req: Request) -> Reply:
    space = _member_space(core, req)
    return ok(core.store.roles(space["id"]))


def _channel(core: ServerCore, req: Request) -> dict[str, Any]:
    cid = req.params["channel_id"]
    if not _is_decimal(cid, 19):
        raise ApiError(404, f"unknown channel {cid}")
    return core.ops.channel_for(req.user_, cid)


def list_messages(core: ServerCore, req: Request) -> Reply:
    channel = _channel(core, req)
    limit = int_query(req, "limit", 50, 1, 100)
    after = id_query(req, "after")
    messages, has_more = core.store.messages(channel["id"], limit, after, req.user_["id"])
    # Newest-first page (no `after`): its oldest id; oldest-first page: its newest id.
    edge = min if after is None else max
    cursor = edge((m["id"] for m in messages), key=int, default=after)
    return ok(messages, cursor={"after": cursor, "has_more": has_more})


def _content(body: dict[str, Any]) -> str:
    """A message's `content`, as creating and editing both require it."""
    content = text_field(body, "content")
    assert content is not None
    if not content.strip():
        raise ApiError(400, "content must not be empty")
    if len(content) > MAX_CONTENT:
        raise ApiError(413, f"content longer than {MAX_CONTENT} characters")
    return content


def create_message(core: ServerCore, req: Request) -> Reply:
    channel = _channel(core, req)
    body = json_object(req)
    content = _content(body)
    reply_to = text_field(body, "reply_to", required=False)
    # The reference ignores `nonce` (an unknown field); the fake keeps a string or integer
    # one in its own records for the rig's delivery checker, and never answers with it.
    nonce = body.get("nonce")
    is_text = isinstance(nonce, str | int) and not isinstance(nonce, bool)
    nonce_text = str(nonce) if is_text else None
    return ok(core.ops.post(req.user_, channel, content, reply_to, nonce_text))


def edit_message(core: ServerCore, req: Request) -> Reply:
    channel = _channel(core, req)
    content = _content(json_object(req))
    return ok(core.ops.edit(req.user_, channel, req.params["message_id"], content))


def delete_message(core: ServerCore, req: Request) -> Reply:
    channel = _channel(core, req)
    core.ops.delete(req.user_, channel, req.params["message_id"])
    return ok(None)


def _reaction(core: ServerCore, req: Request, on: bool) -> Reply:
    channel = _channel(core, req)
    core.ops.react(req.user_, channel, req.params["message_id"], req.params["emoji"], on)
    return ok(None)


def put_reaction(core: ServerCore, req: Request) -> Reply:
    return _reaction(core, req, on=True)


def delete_reaction(core: ServerCore, req: Request) -> Reply:
    return _reaction(core, req, on=False)


def typing(core: ServerCore, req: Request) -> Reply:
    channel = _channel(core, req)
    core.ops.typing(req.user_, channel)
    return ok(None)


def build_router() -> Router:
    r = Router()
    r.add("GET", "/health", health)
    r.add("POST", API + "/auth/login", login)
    r.add("POST", API + "/auth/register", register)
    r.add("POST", API + "/auth/logout", logout)
    r.add("GET", API + "/users/@me", me)
    r.add("GET", API + "/users/@me/spaces", my_spaces)
    r.add("GET", API + "/spaces/{space_id}", get_space)
    r.add("GET", API + "/spaces/{space_id}/channels", space_channels)
    r.add("GET", API + "/spaces/{space_id}/members", space_members)
    r.add("GET", API + "/spaces/{space_id}/roles", space_roles)
    r.add("GET", API + "/channels/{channel_id}/messages", list_messages)
    r.add("POST", API + "/channels/{channel_id}/messages", create_message)
    r.add("PATCH", API + "/channels/{channel_id}/messages/{message_id}", edit_message)
    r.add("DELETE", API + "/channels/{channel_id}/messages/{message_id}", delete_message)
    reaction = API + "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
    r.add("PUT", reaction, put_reaction)
    r.add("DELETE", reaction, delete_reaction)
    r.add("POST", API + "/channels/{channel_id}/typing", typing)
    r.add("GET", "/ws", health)  # the gateway: the driver upgrades it (socket_opened)
    return r


ROUTER = build_router()

__all__ = ["CODES", "ROUTER", "Reply", "Request", "run_request"]
