"""The fault-control API: JSON over HTTP on its own (loopback) port, bearer token."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fake_server.errors import ApiError
from fake_server.faults import FaultSpecError
from fake_server.ratelimit import RATE_WINDOW_S

if TYPE_CHECKING:
    from fake_server.app import FakeServer

CONTROL_KEY: web.AppKey[FakeServer] = web.AppKey("fake_server_control")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    server = request.app[CONTROL_KEY]
    header = request.headers.get("Authorization", "")
    expected = f"Bearer {server.control_token}"
    if not hmac.compare_digest(header.encode(), expected.encode()):
        return _error(401, "unauthorized", "missing or wrong control token")
    return await handler(request)


def _server(request: web.Request) -> FakeServer:
    return request.app[CONTROL_KEY]


async def info(request: web.Request) -> web.Response:
    server = _server(request)
    cfg = server.config
    data = {
        **server.info.to_json(),
        "timescale": cfg.timescale,
        "heartbeat_interval_ms": cfg.heartbeat_interval_ms,
        "db": str(cfg.db.resolve()),
        "history": str(cfg.history_path.resolve()),
        "rate_limit": None if cfg.rate_limit is None else {
            "limit": cfg.rate_limit, "window_s": RATE_WINDOW_S},
    }
    data.pop("control_token")
    return web.json_response({"data": data})


async def add_fault(request: web.Request) -> web.Response:
    try:
        raw = json.loads(await request.text())
    except (ValueError, RecursionError) as exc:
        return _error(400, "invalid_request", f"body is not valid JSON: {exc}", field="")
    if not isinstance(raw, dict):
        return _error(400, "invalid_request", "body must be a JSON object (a fault spec)",
                      field="")
    try:
        result = await _server(request).apply(raw)
    except FaultSpecError as exc:
        return _error(400, "invalid_request", str(exc), field=exc.field)
    except ApiError as err:  # an act_as the REST API would refuse too
        return _error(err.status, err.code, err.message)
    return web.json_response({"data": result.to_json()})


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"data": _server(request).faults()})


async def clear_fault(request: web.Request) -> web.Response:
    fault_id = request.match_info["fault_id"]
    if not _server(request).clear(fault_id):
        return _error(404, "not_found", f"no active fault {fault_id}")
    return web.json_response({"data": {"cleared": True}})


async def reset(request: web.Request) -> web.Response:
    return web.json_response({"data": {"cleared": _server(request).reset()}})


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "invalid_request", "field": name,
                                       "message": f"{name} must be a non-negative integer"}}),
            content_type="application/json",
        )
    return int(raw)


async def history(request: web.Request) -> web.Response:
    after = _int_param(request, "after") or 0
    records = _server(request).history_records(after, _int_param(request, "limit"))
    last = records[-1]["i"] if records else after
    return web.json_response({"data": records, "next": last})


async def sessions(request: web.Request) -> web.Response:
    server = _server(request)
    if request.query.get("count"):  # `?count=1`: {open, parked} only, for frequent polls
        return web.json_response({"data": server.session_counts()})
    return web.json_response({"data": server.session_list()})


async def messages(request: web.Request) -> web.Response:
    return web.json_response(
        {"data": _server(request).messages(request.query.get("channel_id"))}
    )


def build_control_app(server: FakeServer) -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[CONTROL_KEY] = server
    app.router.add_get("/info", info)
    app.router.add_post("/faults", add_fault)
    app.router.add_get("/faults", list_faults)
    app.router.add_delete("/faults/{fault_id}", clear_fault)
    app.router.add_post("/reset", reset)
    app.router.add_get("/history", history)
    app.router.add_get("/sessions", sessions)
    app.router.add_get("/messages", messages)
    return app
