"""The REST API under /api/v1, its middlewares (history, rate limit, faults, auth) and
/health. Answers follow the reference (accord-protocol.md s.4, s.5, s.7)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fake_server.errors import CODES, ApiError, body_error, unauthorized
from fake_server.faults import (
    LoginFailSpec,
    RestFailSpec,
    RestHangSpec,
    RestLatencySpec,
    RestMalformedSpec,
    RestRateLimitSpec,
)
from fake_server.history import clip
from fake_server.ratelimit import RATE_WINDOW_S

if TYPE_CHECKING:
    from fake_server.app import FakeServer

API = "/api/v1"
SERVER_KEY: web.AppKey[FakeServer] = web.AppKey("fake_server")
REQ_ID: web.RequestKey[int] = web.RequestKey("req_id", int)
USER: web.RequestKey[dict[str, Any]] = web.RequestKey("user", dict)
TOKEN: web.RequestKey[str] = web.RequestKey("token", str)
PUBLIC_ROUTES = frozenset({("POST", "/auth/login"), ("POST", "/auth/register"),
                           ("GET", "/auth/login"), ("GET", "/health")})
MAX_CONTENT = 4000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_req_ids = itertools.count(1)
log = logging.getLogger(__name__)


def api_path(request: web.Request) -> str:
    path = request.path
    return path[len(API) :] if path.startswith(API + "/") else path


JSON_TYPE = "application/json"  # no charset, as the reference


def json_answer(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), headers={"Content-Type": JSON_TYPE}
    )


def ok(data: Any, **extra: Any) -> web.Response:
    return json_answer({"data": data, **extra})


def error_response(err: ApiError, **extra: Any) -> web.Response:
    if err.plain:
        return web.Response(status=err.status, text=err.message, content_type="text/plain")
    return json_answer({**err.envelope(), **extra}, status=err.status)


def empty_response(exc: web.HTTPException) -> web.Response:
    """Unknown route or method: empty body, no Content-Type (405 keeps its Allow header)."""
    headers = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
    return web.Response(status=exc.status, headers=headers)


# ---------------------------------------------------------------------- middlewares


def _body_for_history(body: bytes | str | None) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return clip(text)


@web.middleware
async def history_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record the request and the response; turn errors into the protocol's answers."""
    server = request.app[SERVER_KEY]
    req_id = next(_req_ids)
    request[REQ_ID] = req_id
    base = {"req": req_id, "method": request.method, "path": request.path}
    try:
        raw = await request.read() if request.can_read_body else b""
    except web.HTTPRequestEntityTooLarge:
        raw = None
    server.history.record(
        "http", "request",
        {**base, "query": dict(request.query), "body": _body_for_history(raw)},
    )
    if request.path == "/ws" or request.path.startswith("/ws/"):
        return await handler(request)  # the gateway records its own frames
    try:
        if raw is None:
            raise ApiError(413, "request body too large")
        resp = await handler(request)
    except ApiError as err:
        resp = error_response(err)
    except web.HTTPException as exc:
        resp = empty_response(exc)
    except asyncio.CancelledError:
        server.history.record("http", "response", {**base, "status": None, "cancelled": True})
        raise
    except Exception:  # a bug: answer 500 with the envelope, keep serving, say what broke
        log.exception("handler failed: %s %s", request.method, request.path)
        resp = error_response(ApiError(500, "internal error"))
    body = resp.body if isinstance(resp, web.Response) else None
    user = request.get(USER)
    server.history.record(
        "http", "response",
        {**base, "status": resp.status, "body": _body_for_history(body),  # type: ignore[arg-type]
         "user": user["username"] if user else None},
    )
    return resp


async def answer(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run the inner handler; its ApiError or unknown-route exception becomes the answer."""
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except web.HTTPException as exc:
        return empty_response(exc)


def _unlimited(request: web.Request) -> bool:
    return request.path == "/health" or request.path.startswith("/ws")


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The reference's limiter: per Authorization value, requests without one share a
    bucket. A 429 carries Retry-After and no X-RateLimit headers; other answers do."""
    limiter = request.app[SERVER_KEY].rate_limiter
    if limiter is None or _unlimited(request):
        return await handler(request)
    verdict = limiter.check(request.headers.get("Authorization", "").strip())
    if not verdict.allowed:
        seconds = request.app[SERVER_KEY].config.scaled(RATE_WINDOW_S)
        limited = error_response(ApiError(429, f"rate limited, retry after {seconds:g}s"))
        limited.headers["Retry-After"] = f"{seconds:g}"
        return limited
    resp = await answer(handler, request)
    resp.headers["X-RateLimit-Limit"] = str(limiter.limit)
    resp.headers["X-RateLimit-Remaining"] = str(verdict.remaining)
    resp.headers["X-RateLimit-Reset"] = str(verdict.reset_epoch)
    return resp


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """REST faults: latency, 429, failures, hangs (before or after the handler), bad bodies."""
    server = request.app[SERVER_KEY]
    if request.path.startswith("/ws"):
        return await handler(request)
    method, path = request.method, api_path(request)
    board, scaled = server.board, server.config.scaled

    def take(kind: str, stage: str | None = None) -> Any:
        fault = board.take(
            lambda s: s.kind == kind and s.matches(method, path)
            and (stage is None or s.stage == stage)
        )
        if fault is not None:
            server.fault_fired(fault, req=request[REQ_ID], method=method, path=path)
        return fault

    latency = take("rest_latency")
    if latency is not None:
        spec_l: RestLatencySpec = latency.spec
        await asyncio.sleep(scaled(spec_l.seconds))
    limited = take("rest_rate_limit")
    if limited is not None:
        return _rate_limited(limited.spec, scaled)
    if method == "POST" and path == "/auth/login":
        login = board.take(lambda s: s.kind == "login_fail")
        if login is not None:
            server.fault_fired(login, req=request[REQ_ID])
            spec_lf = login.spec
            assert isinstance(spec_lf, LoginFailSpec)
            message = "invalid credentials" if spec_lf.status == 401 else "internal error"
            raise ApiError(spec_lf.status, message)
    if (early := await _fail_or_hang(take, "before", scaled)) is not None:
        return early
    resp = await answer(handler, request)
    if (late := await _fail_or_hang(take, "after", scaled)) is not None:
        return late
    malformed = take("rest_malformed")
    if malformed is not None:
        spec_m: RestMalformedSpec = malformed.spec
        return web.Response(
            status=resp.status, body=spec_m.body.encode(),
            headers={"Content-Type": spec_m.content_type},
        )
    return resp


async def _fail_or_hang(
    take: Callable[[str, str | None], Any], stage: str, scaled: Callable[[float], float]
) -> web.Response | None:
    hang = take("rest_hang", stage)
    if hang is not None:
        spec_h: RestHangSpec = hang.spec
        if spec_h.seconds is None:
            await asyncio.Event().wait()  # until the client gives up (handler cancelled)
        await asyncio.sleep(scaled(spec_h.seconds or 0))
    fail = take("rest_fail", stage)
    if fail is not None:
        spec_f: RestFailSpec = fail.spec
        if spec_f.body is None:
            return error_response(ApiError(spec_f.status, "injected failure"))
        if isinstance(spec_f.body, str):
            return web.Response(status=spec_f.status, text=spec_f.body)
        return json_answer(spec_f.body, status=spec_f.status)
    return None


def _rate_limited(spec: RestRateLimitSpec, scaled: Callable[[float], float]) -> web.Response:
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if spec.retry_after is not None:
        seconds = scaled(spec.retry_after)
        if spec.body_field:
            extra["retry_after"] = seconds
        if spec.header:
            headers["Retry-After"] = f"{seconds:g}"
    resp = error_response(ApiError(429, "rate limited"), **extra)
    resp.headers.update(headers)
    return resp


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = api_path(request)
    unmatched = request.match_info.http_exception is not None
    if (
        unmatched
        or path.startswith("/ws")
        or (request.method, path) in PUBLIC_ROUTES
        or path == "/health"
    ):
        return await handler(request)
    server = request.app[SERVER_KEY]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = None
    if scheme in ("Bearer", "Bot") and token:
        user = server.store.user_for_token(token.strip())
    if user is None:
        raise unauthorized()
    request[USER], request[TOKEN] = user, token.strip()
    return await handler(request)


# ---------------------------------------------------------------------- body helpers


# The reference's plain-text body errors (its JSON extractor's wording).
_NOT_JSON = "Failed to parse the request body as JSON"
_WRONG_SHAPE = "Failed to deserialize the JSON body into the target type"


def _is_json_type(request: web.Request) -> bool:
    main, _, sub = request.content_type.lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: 415 without a JSON Content-Type, 400 when it does not
    parse, 422 when it is not an object (all text/plain, as the reference)."""
    if not _is_json_type(request):
        raise body_error(415, "Expected request with `Content-Type: application/json`")
    text = await request.text()
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


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _is_decimal(raw, 9) or not low <= int(raw) <= high:
        raise ApiError(400, f"query {name} must be an integer {low}..{high}")
    return int(raw)


def id_query(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not _is_decimal(raw, 19):
        raise ApiError(400, f"query {name} must be a snowflake id")
    return raw


def _is_decimal(text: str, max_digits: int) -> bool:
    """ASCII digits only (str.isdigit accepts '²'), short enough for SQLite's INTEGER."""
    return text.isascii() and text.isdigit() and len(text) <= max_digits and int(text) < 2**63


# ---------------------------------------------------------------------- handlers


def _server(request: web.Request) -> FakeServer:
    return request.app[SERVER_KEY]


async def health(request: web.Request) -> web.Response:
    return json_answer({"ok": True})


async def login(request: web.Request) -> web.Response:
    server = _server(request)
    body = await json_object(request)
    username = text_field(body, "username")
    password = text_field(body, "password")
    assert username is not None and password is not None
    user = server.store.check_password(username, password)
    if user is None:
        raise ApiError(401, "invalid credentials")
    return ok({"user": user, "token": server.store.issue_token(user["id"])})


async def register(request: web.Request) -> web.Response:
    server = _server(request)
    body = await json_object(request)
    username = text_field(body, "username")
    password = text_field(body, "password")
    display_name = text_field(body, "display_name", required=False)
    assert username is not None and password is not None
    if not username.strip() or not password:
        raise ApiError(400, "username and password must not be empty")
    if server.store.user_by_name(username) is not None:
        raise ApiError(409, f"username {username} is taken")
    user = server.store.register(username, password, display_name)
    for space in server.store.spaces_of(user["id"]):
        server.dispatch("member.join", {"space_id": space["id"], "user": user}, space["id"], None)
    return ok({"user": user, "token": server.store.issue_token(user["id"])})


async def logout(request: web.Request) -> web.Response:
    _server(request).store.revoke_token(request[TOKEN])
    return ok({"ok": True})


async def me(request: web.Request) -> web.Response:
    return ok(request[USER])


async def my_spaces(request: web.Request) -> web.Response:
    return ok(_server(request).store.spaces_of(request[USER]["id"]))


def _member_space(request: web.Request) -> dict[str, Any]:
    store = _server(request).store
    space = store.space(request.match_info["space_id"])
    if space is None:
        raise ApiError(404, "unknown space")
    if not store.is_member(space["id"], request[USER]["id"]):
        raise ApiError(403, "not a member of this space")
    return space


async def get_space(request: web.Request) -> web.Response:
    return ok(_member_space(request))


async def space_channels(request: web.Request) -> web.Response:
    space = _member_space(request)
    return ok(_server(request).store.channels(space["id"]))


async def space_members(request: web.Request) -> web.Response:
    space = _member_space(request)
    limit = int_query(request, "limit", 100, 1, 1000)
    members = _server(request).store.members(space["id"], limit, id_query(request, "after"))
    return ok(members)


async def space_roles(request: web.Request) -> web.Response:
    space = _member_space(request)
    return ok(_server(request).store.roles(space["id"]))


def _channel(request: web.Request) -> dict[str, Any]:
    cid = request.match_info["channel_id"]
    if not _is_decimal(cid, 19):
        raise ApiError(404, f"unknown channel {cid}")
    return _server(request).ops.channel_for(request[USER], cid)


async def list_messages(request: web.Request) -> web.Response:
    channel = _channel(request)
    limit = int_query(request, "limit", 50, 1, 100)
    after = id_query(request, "after")
    messages, has_more = _server(request).store.messages(
        channel["id"], limit, after, request[USER]["id"]
    )
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


async def create_message(request: web.Request) -> web.Response:
    channel = _channel(request)
    body = await json_object(request)
    content = _content(body)
    reply_to = text_field(body, "reply_to", required=False)
    # The reference ignores `nonce` (an unknown field); the fake keeps a string or integer
    # one in its own records for the rig's delivery checker, and never answers with it.
    nonce = body.get("nonce")
    is_text = isinstance(nonce, str | int) and not isinstance(nonce, bool)
    nonce_text = str(nonce) if is_text else None
    message = _server(request).ops.post(request[USER], channel, content, reply_to, nonce_text)
    return ok(message)


async def edit_message(request: web.Request) -> web.Response:
    channel = _channel(request)
    content = _content(await json_object(request))
    message = _server(request).ops.edit(
        request[USER], channel, request.match_info["message_id"], content
    )
    return ok(message)


async def delete_message(request: web.Request) -> web.Response:
    channel = _channel(request)
    _server(request).ops.delete(request[USER], channel, request.match_info["message_id"])
    return ok(None)


async def put_reaction(request: web.Request) -> web.Response:
    return await _reaction(request, on=True)


async def delete_reaction(request: web.Request) -> web.Response:
    return await _reaction(request, on=False)


async def _reaction(request: web.Request, on: bool) -> web.Response:
    channel = _channel(request)
    emoji = request.match_info["emoji"]
    _server(request).ops.react(
        request[USER], channel, request.match_info["message_id"], emoji, on
    )
    return ok(None)


async def typing(request: web.Request) -> web.Response:
    channel = _channel(request)
    _server(request).ops.typing(request[USER], channel)
    return ok(None)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/health", health)
    r.add_post(API + "/auth/login", login)
    r.add_post(API + "/auth/register", register)
    r.add_post(API + "/auth/logout", logout)
    r.add_get(API + "/users/@me", me)
    r.add_get(API + "/users/@me/spaces", my_spaces)
    r.add_get(API + "/spaces/{space_id}", get_space)
    r.add_get(API + "/spaces/{space_id}/channels", space_channels)
    r.add_get(API + "/spaces/{space_id}/members", space_members)
    r.add_get(API + "/spaces/{space_id}/roles", space_roles)
    r.add_get(API + "/channels/{channel_id}/messages", list_messages)
    r.add_post(API + "/channels/{channel_id}/messages", create_message)
    r.add_patch(API + "/channels/{channel_id}/messages/{message_id}", edit_message)
    r.add_delete(API + "/channels/{channel_id}/messages/{message_id}", delete_message)
    reaction = API + "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
    r.add_put(reaction, put_reaction)
    r.add_delete(reaction, delete_reaction)
    r.add_post(API + "/channels/{channel_id}/typing", typing)


__all__ = ["CODES", "SERVER_KEY", "add_routes"]
