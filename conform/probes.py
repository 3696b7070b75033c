"""The one registry of conformance probes (accord-protocol.md s.2, s.4, s.5, s.7).

A probe is a name, one line saying what it checks, and a function that talks to one
server and returns what it observed as a few facts (`Answer`: fact -> short normalised
text). Two servers conform on a probe when their answers are equal. Answers never hold
ids, tokens or clock values, only their relations ("= user.id", "consecutive from 2"),
so two servers with different data can agree. Probes run one after another, in the
order they are registered: `rate_limit.burst` exhausts a bucket and comes last.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from client.core.frames import INTENTS
from conform.wire import (
    Ended,
    Frame,
    Opened,
    ProbeError,
    Reply,
    Server,
    Socket,
    compact,
    identify_frame,
)

Answer = dict[str, str]


@dataclass(frozen=True)
class Probe:
    name: str
    checks: str
    run: Callable[[Server], Awaitable[Answer]]


PROBES: list[Probe] = []


def probe(name: str, checks: str) -> Callable[[Callable[[Server], Awaitable[Answer]]],
                                               Callable[[Server], Awaitable[Answer]]]:
    def register(fn: Callable[[Server], Awaitable[Answer]]) -> Callable[[Server],
                                                                          Awaitable[Answer]]:
        if any(p.name == name for p in PROBES):
            raise ValueError(f"probe {name!r} registered twice")
        PROBES.append(Probe(name, checks, fn))
        return fn

    return register


# READY's data keys: accord-protocol.md s.2 plus s.7.
READY_KEYS = frozenset({
    "session_id", "user_id", "user", "spaces", "channels", "members", "roles", "users",
    "dm_channels", "presences", "unread", "api_version", "server_version",
    "is_guest", "motd", "mutes", "relationships", "voice_states",
})  # fmt: skip
READY_LISTS = ("spaces", "channels", "members", "roles", "users", "dm_channels", "presences",
               "unread", "mutes", "relationships", "voice_states")
UNKNOWN_OP = 99
"""Sent to fill the inbound frame window: an op the server ignores (s.5), so counting it
is the only thing it does (presence updates would reach every member)."""
RATE_WAVE = 10
"""Requests sent at once by the rate-limit probe."""
RATE_BURST_BOUND = 200
"""Requests let through at most before the rate-limit probe gives up waiting for a 429."""
FRAME_LIMIT_BOUND = 200
"""Frames sent at most by the frame-limit probe before it gives up waiting for 4008."""
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_TIMESTAMP_SHAPES = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"), "ISO 8601, no zone"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)"), "ISO 8601 with zone"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "YYYY-MM-DD HH:MM:SS"),
)


# ---------------------------------------------------------------------- normalisers


def keys(value: Any) -> str:
    return ", ".join(sorted(value)) if isinstance(value, dict) else type(value).__name__


def kind(value: Any) -> str:
    """A JSON value's shape without its content."""
    if isinstance(value, str) and _SNOWFLAKE.fullmatch(value):
        return "snowflake string"
    return {str: "string", bool: "bool", int: "int", float: "number", list: "list",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def timestamp_shape(value: Any) -> str:
    if isinstance(value, str):
        for pattern, name in _TIMESTAMP_SHAPES:
            if pattern.fullmatch(value):
                return name
    return kind(value)


def frame_head(frame: Frame | Ended) -> str:
    """op, type and seq of a frame (or how the socket ended)."""
    if isinstance(frame, Ended):
        return frame.describe()
    parts = [f"op {frame.get('op')}"]
    if "type" in frame:
        parts.append(f"type {frame['type']}")
    parts.append(f"seq {frame['seq']}" if "seq" in frame else "no seq")
    return ", ".join(parts)


def body_shape(reply: Reply) -> str:
    """Status, Content-Type and the body's top-level keys."""
    body = reply.json()
    shape = f"keys: {keys(body)}" if isinstance(body, dict) else (
        "empty" if not reply.text else "not JSON")
    return f"{reply.status}, {reply.content_type or 'no Content-Type'}, {shape}"


def plain_text(reply: Reply, *, whole: bool = False) -> str:
    """A plain-text error: status, Content-Type and the message up to its first ': '
    (the parser's details after it differ between implementations)."""
    text = reply.text if whole else reply.text.split(": ", 1)[0]
    return f"{reply.status}, {reply.content_type or 'no Content-Type'}, {text[:100]!r}"


def seq_run(seqs: list[int], first: int) -> str:
    """'consecutive from N' when seqs are first, first+1, ...; else the seqs themselves."""
    if seqs == list(range(first, first + len(seqs))):
        return f"consecutive from {first}"
    return "seqs " + ", ".join(map(str, seqs)) + f" (expected consecutive from {first})"


async def resume_outcome(sock: Socket) -> str:
    """What the server answered a RESUME with: `resumed` (and how much it replayed),
    INVALID_SESSION and what happened to the socket, or a close."""
    replayed = 0
    while True:
        frame = await sock.next()
        if isinstance(frame, Ended):
            return frame.describe()
        if frame.get("op") == 0 and frame.get("type") == "resumed":
            return f"resumed (replayed {replayed})"
        if frame.get("op") == 0:
            replayed += 1
            continue
        if frame.get("op") == 7:
            end = await sock.end()
            after = end.describe() if end else "socket left open"
            return f"INVALID_SESSION {compact(frame.get('data'))}, then {after}"
        return f"unexpected {compact(frame)[:80]}"


def event_for(message_id: str, event_type: str = "message.create") -> Callable[[Frame], bool]:
    """Accepts the event of that type about that message."""

    def want(frame: Frame) -> bool:
        data = frame.get("data")
        return (frame.get("type") == event_type and isinstance(data, dict)
                and str(data.get("id")) == message_id)

    return want


async def heartbeat_answer(sock: Socket, seq: int) -> str:
    await sock.send({"op": 1, "data": seq})
    reply = await sock.reply()
    return reply.describe() if isinstance(reply, Ended) else compact(reply)


async def parked_session(server: Server) -> Opened:
    """A session whose socket ended without a close frame (the server parks it)."""
    opened = await server.identify(server.a)
    opened.socket.cut()
    return opened


# ---------------------------------------------------------------------- gateway


@probe("gateway.hello", "the first frame is HELLO: op 5, data {heartbeat_interval: ms}, no seq")
async def hello(server: Server) -> Answer:
    sock, first = await server.connect()
    await sock.close()
    return {"first frame": frame_head(first), "keys": keys(first),
            "data": compact(first.get("data"))}


@probe("gateway.ready", "READY: op 0 type ready seq 1; the s.2 + s.7 data keys and their shapes")
async def ready(server: Server) -> Answer:
    opened = await server.identify(server.a)
    await opened.socket.close()
    data = opened.ready.get("data")
    if not isinstance(data, dict):
        return {"frame": frame_head(opened.ready), "data": kind(data)}
    missing, extra = sorted(READY_KEYS - set(data)), sorted(set(data) - READY_KEYS)
    key_fact = "; ".join(([f"missing: {', '.join(missing)}"] if missing else [])
                         + ([f"extra: {', '.join(extra)}"] if extra else [])) or "the s.2 + s.7 set"
    not_lists = [k for k in READY_LISTS if k in data and not isinstance(data[k], list)]
    user: dict[str, Any] = data["user"] if isinstance(data.get("user"), dict) else {}
    user_id = data.get("user_id")
    member = next(iter(data.get("members") or []), None)
    role = next(iter(data.get("roles") or []), None)
    space = next(iter(data.get("spaces") or []), None)
    return {
        "frame": frame_head(opened.ready),
        "data keys": key_fact,
        "session_id": kind(data.get("session_id")),
        "user_id": ("= user.id = the login's user" if user_id == user.get("id") == server.a.user_id
                    else kind(user_id)),
        "api_version": compact(data.get("api_version")),
        "server_version": kind(data.get("server_version")),
        "is_guest": compact(data.get("is_guest")),
        "motd": kind(data.get("motd")),
        "lists": "all lists" if not not_lists else "not lists: " + ", ".join(not_lists),
        "members[0]": _has_not(member, ["user_id", "roles"], ["user"]),
        "roles[0]": _has_not(role, [], ["space_id"]),
        "spaces[0]": _has_not(space, [], ["member_count"]),
    }


def _has_not(item: Any, present: list[str], absent: list[str]) -> str:
    if not isinstance(item, dict):
        return "none" if item is None else kind(item)
    parts = [f"{k}: {'yes' if k in item else 'MISSING'}" for k in present]
    parts += [f"no {k}" if k not in item else f"has {k}" for k in absent]
    return ", ".join(parts)


@probe("gateway.seq", "READY is seq 1, events count on from 2; HELLO carries no seq")
async def seq_numbers(server: Server) -> Answer:
    opened = await server.identify(server.a)
    posted = {str((await server.post(server.b, f"seq {i}"))["id"]) for i in (1, 2)}
    seen: set[str] = set()
    while seen != posted:
        event = await opened.socket.event(lambda f: f.get("type") == "message.create")
        seen.add(str(event["data"].get("id")))
    await opened.socket.close()
    seqs = [f["seq"] for f in opened.socket.seen if f.get("op") == 0 and f is not opened.ready]
    return {"HELLO": frame_head(opened.hello), "READY": frame_head(opened.ready),
            "events": seq_run(seqs, 2)}


@probe("gateway.heartbeat", "op 1 is answered {op: 4}: before IDENTIFY and after READY")
async def heartbeat(server: Server) -> Answer:
    sock, _ = await server.connect()
    early = await heartbeat_answer(sock, 0)
    await sock.close()
    opened = await server.identify(server.a)
    late = await heartbeat_answer(opened.socket, 1)
    await opened.socket.close()
    return {"during handshake": early, "after READY": late}


@probe("gateway.resume", "RESUME after a drop replays the missed events with their seq, "
       "then `resumed` {session_id, seq, replayed}; the counter goes on")
async def resume(server: Server) -> Answer:
    opened = await server.identify(server.a)
    first = str((await server.post(server.b, "before the drop"))["id"])
    await opened.socket.event(event_for(first))
    last = opened.last_seq
    opened.socket.cut()
    missed = str((await server.post(server.b, "missed"))["id"])
    sock = await server.resume(server.a, opened.session_id, last)
    replay: list[Frame] = []
    while True:
        got = await sock.next()
        if isinstance(got, Ended) or got.get("op") != 0:
            await sock.close()
            return {"answer": frame_head(got) if isinstance(got, Ended) else compact(got)[:100]}
        if got.get("type") == "resumed":
            break
        replay.append(got)
    resumed = got
    data: dict[str, Any] = resumed["data"] if isinstance(resumed.get("data"), dict) else {}
    seqs: list[int] = [f["seq"] for f in replay if type(f.get("seq")) is int]
    last_replayed = seqs[-1] if seqs else last
    after = str((await server.post(server.b, "after the resume"))["id"])
    next_event = await sock.event(event_for(after))
    await sock.close()
    return {
        "replay": seq_run(seqs, last + 1) if seqs else "nothing",
        "missed message": "replayed" if any(map(event_for(missed), replay)) else "absent",
        "resumed keys": keys(data),
        "resumed.session_id": "same" if data.get("session_id") == opened.session_id else
        kind(data.get("session_id")),
        "resumed.seq": "last replayed" if data.get("seq") == last_replayed else
        compact(data.get("seq")),
        "resumed.replayed": "replay count" if data.get("replayed") == len(replay) else
        compact(data.get("replayed")),
        "resumed frame seq": "= data.seq" if resumed.get("seq") == data.get("seq") else
        compact(resumed.get("seq")),
        "next event": ("seq resumed.seq + 1" if next_event.get("seq") == last_replayed + 1
                       else frame_head(next_event)),
    }


@probe("invalid_session.bad_token", "IDENTIFY with a token the server never issued: "
       "INVALID_SESSION {resumable: false}, then the socket is dropped")
async def invalid_bad_token(server: Server) -> Answer:
    sock, _ = await server.connect()
    await sock.send({"op": 2, "data": {"token": "Bearer " + "0" * 64, "intents": list(INTENTS)}})
    return {"answer": await resume_outcome(sock)}


@probe("invalid_session.seq_0", "RESUME of a parked session with seq 0: INVALID_SESSION")
async def invalid_seq_0(server: Server) -> Answer:
    opened = await parked_session(server)
    return {"answer": await resume_outcome(await server.resume(server.a, opened.session_id, 0))}


@probe("invalid_session.unknown", "RESUME of a session id the server never issued: "
       "INVALID_SESSION")
async def invalid_unknown(server: Server) -> Answer:
    return {"answer": await resume_outcome(await server.resume(server.a, "1", 1))}


@probe("invalid_session.other_user", "RESUME of another user's parked session: INVALID_SESSION")
async def invalid_other_user(server: Server) -> Answer:
    opened = await parked_session(server)
    sock = await server.resume(server.b, opened.session_id, opened.last_seq)
    return {"answer": await resume_outcome(sock)}


@probe("invalid_session.seq_ahead", "RESUME of a parked session with a seq the server never "
       "sent: INVALID_SESSION, and the session is over")
async def invalid_seq_ahead(server: Server) -> Answer:
    opened = await parked_session(server)
    ahead = await server.resume(server.a, opened.session_id, opened.last_seq + 5)
    answer = await resume_outcome(ahead)
    again = await server.resume(server.a, opened.session_id, opened.last_seq)
    return {"answer": answer, "then a valid RESUME": await resume_outcome(again)}


@probe("invalid_session.while_open", "RESUME of a session whose socket is still open: "
       "INVALID_SESSION; the open socket is left as it is")
async def invalid_while_open(server: Server) -> Answer:
    opened = await server.identify(server.a)
    sock = await server.resume(server.a, opened.session_id, opened.last_seq)
    answer = await resume_outcome(sock)
    old = await heartbeat_answer(opened.socket, opened.last_seq)
    await opened.socket.close()
    return {"answer": answer, "old socket, heartbeat": old}


@probe("invalid_session.after_close", "RESUME after the client's own close frame (code 4000): "
       "INVALID_SESSION, a close frame ends the session")
async def invalid_after_close(server: Server) -> Answer:
    opened = await server.identify(server.a)
    await opened.socket.close(4000)
    sock = await server.resume(server.a, opened.session_id, opened.last_seq)
    return {"answer": await resume_outcome(sock)}


@probe("gateway.identify_twice", "IDENTIFY after READY: close 4005, and the session is over")
async def identify_twice(server: Server) -> Answer:
    opened = await server.identify(server.a)
    await opened.socket.send(identify_frame(server.a))
    end = await opened.socket.end()
    again = await server.resume(server.a, opened.session_id, opened.last_seq)
    return {"answer": end.describe() if end else "socket left open",
            "then RESUME": await resume_outcome(again)}


@probe("gateway.frame_limit", f"after READY, 120 frames other than HEARTBEAT are taken and "
       f"the 121st closes 4008 (sent: op {UNKNOWN_OP}, quickly; at most {FRAME_LIMIT_BOUND})")
async def frame_limit(server: Server) -> Answer:
    opened = await server.identify(server.a)
    sock = opened.socket
    filler = {"op": UNKNOWN_OP, "data": None}
    sent = 0

    async def still_open() -> Ended | None:
        await sock.send({"op": 1, "data": opened.last_seq})
        reply = await sock.reply()
        return reply if isinstance(reply, Ended) else None

    for _ in range(119):  # a burst first; then one at a time, each followed by a heartbeat
        await sock.send(filler)
    sent = 119
    ended = await still_open()
    while ended is None and sent < FRAME_LIMIT_BOUND:
        await sock.send(filler)
        sent += 1
        ended = await still_open()
    if ended is None:
        await sock.close()
        return {"answer": f"still open after {sent} frames"}
    at = f"after frame {sent}" if sent > 119 else "within the first 119 frames"
    again = await server.resume(server.a, opened.session_id, opened.last_seq)
    return {"answer": f"{ended.describe()} {at}", "then RESUME": await resume_outcome(again)}


@probe("intents.filter", "a session without `message_typing` gets no typing.start; one with "
       "it does; unknown intent names are ignored")
async def intents(server: Server) -> Answer:
    without = [i for i in INTENTS if i != "message_typing"] + ["typing", "reactions",
                                                                "conform_unknown_intent"]
    quiet = await server.identify(server.a, without)
    typing = await server.identify(server.a, ["messages", "message_typing"])
    cid = await server.channel()
    typed = await server.rest("POST", f"/channels/{cid}/typing", user=server.b, json_body={})
    if typed.status != 200:
        raise ProbeError(f"POST /channels/{cid}/typing: HTTP {typed.status}")
    marker = str((await server.post(server.b, "after typing"))["id"])

    async def types_before_marker(opened: Opened) -> list[Frame]:
        await opened.socket.event(event_for(marker))
        await opened.socket.close()
        return [f for f in opened.socket.seen if f.get("type") == "typing.start"]

    quiet_typing = await types_before_marker(quiet)
    loud_typing = await types_before_marker(typing)
    sample = loud_typing[0].get("data") if loud_typing else None
    return {
        "unknown names": "accepted (READY)",
        "without message_typing": f"{len(quiet_typing)} typing.start",
        "with message_typing": f"{len(loud_typing)} typing.start",
        "typing.start data": keys(sample) if sample is not None else "none",
        "typing.start timestamp": timestamp_shape((sample or {}).get("timestamp")),
    }


# ---------------------------------------------------------------------- REST


@probe("rest.envelope", "successes are 200 {data: ...}, Content-Type application/json; "
       "message lists add cursor {after, has_more}")
async def envelope(server: Server) -> Answer:
    cid = await server.channel()
    me = await server.rest("GET", "/users/@me", user=server.a)
    spaces = await server.rest("GET", "/users/@me/spaces", user=server.a)
    listed = await server.rest("GET", f"/channels/{cid}/messages?limit=1", user=server.a)
    cursor = (listed.json() or {}).get("cursor") if isinstance(listed.json(), dict) else None
    return {
        "GET /users/@me": f"{body_shape(me)}; data: {kind(me.data)}",
        "GET /users/@me/spaces": f"{body_shape(spaces)}; data: {kind(spaces.data)}",
        "GET messages": f"{body_shape(listed)}; cursor keys: {keys(cursor)}",
    }


@probe("rest.not_json", "a body that does not parse: 400 text/plain 'Failed to parse the "
       "request body as JSON: ...'")
async def not_json(server: Server) -> Answer:
    cid = await server.channel()
    reply = await server.rest("POST", f"/channels/{cid}/messages", user=server.a,
                              body='{"content": ', content_type="application/json")
    return {"answer": plain_text(reply)}


@probe("rest.no_json_type", "a body without Content-Type application/json: 415 text/plain; "
       "nothing stored")
async def no_json_type(server: Server) -> Answer:
    cid = await server.channel()
    content = server.tag("sent as text/plain")
    reply = await server.rest("POST", f"/channels/{cid}/messages", user=server.a,
                              body=compact({"content": content}), content_type="text/plain")
    listed = await server.rest("GET", f"/channels/{cid}/messages?limit=20", user=server.a)
    stored = any(m.get("content") == content for m in listed.data or [])
    return {"answer": plain_text(reply, whole=True), "stored": "yes" if stored else "no"}


@probe("rest.missing_field", "a JSON object without `content`: 422 text/plain 'Failed to "
       "deserialize the JSON body into the target type: ...' naming the field")
async def missing_field(server: Server) -> Answer:
    cid = await server.channel()
    reply = await server.rest("POST", f"/channels/{cid}/messages", user=server.a, json_body={})
    return {"answer": plain_text(reply),
            "names the field": "yes" if "`content`" in reply.text else "no"}


@probe("rest.unknown_route", "an unknown path: 404 with an empty body and no Content-Type; "
       "GET /auth/login (the client's probe): 405, empty")
async def unknown_route(server: Server) -> Answer:
    missing = await server.rest("GET", "/conform-no-such-route", user=server.a)
    login_get = await server.rest("GET", "/auth/login")
    return {"GET /conform-no-such-route": body_shape(missing),
            "GET /auth/login": body_shape(login_get)}


@probe("rest.unauthorized", "no token, or one never issued: 401 {error: {code: unauthorized, "
       "message: 'invalid or missing authentication'}}")
async def unauthorized(server: Server) -> Answer:
    none = await server.rest("GET", "/users/@me")
    bogus = await server.rest("GET", "/users/@me", auth="Bearer " + "0" * 64)
    return {"no token": f"{body_shape(none)}; {compact(none.json())}",
            "unknown token": f"{body_shape(bogus)}; {compact(bogus.json())}"}


@probe("rest.login_wrong_password", "POST /auth/login with a wrong password: 401 "
       "{error: {code: unauthorized, message: 'invalid credentials'}}")
async def login_wrong_password(server: Server) -> Answer:
    reply = await server.rest("POST", "/auth/login",
                              json_body={"username": server.a.account.name,
                                         "password": server.a.account.password + "-wrong"})
    return {"answer": f"{body_shape(reply)}; {compact(reply.json())}"}


@probe("rest.nonce", "the same nonce POSTed twice: stored twice; no nonce in the answers "
       "or in message.create")
async def nonce(server: Server) -> Answer:
    watcher = await server.identify(server.a)
    value = f"conform-{server.run_id}"
    messages = [await server.post(server.b, f"nonce {i}", nonce=value) for i in (1, 2)]
    ids = {str(m["id"]) for m in messages}
    events = []
    for mid in sorted(ids):
        events.append(await watcher.socket.event(event_for(mid)))
    await watcher.socket.close()
    cid = await server.channel()
    listed = await server.rest("GET", f"/channels/{cid}/messages?limit=20", user=server.a)
    stored = sum(1 for m in listed.data or [] if str(m.get("id")) in ids)
    return {
        "stored": f"{len(ids)} message(s)" + (", different ids" if len(ids) > 1 else
                                              ", the same id twice"),
        "listed": str(stored),
        "nonce in REST answers": "yes" if any("nonce" in m for m in messages) else "no",
        "nonce in message.create": ("yes" if any("nonce" in (e.get("data") or {})
                                                 for e in events) else "no"),
    }


@probe("rest.list_cursors", "newest-first page: cursor.after = its oldest id; `after=` pages "
       "go oldest-first, ids greater than after")
async def list_cursors(server: Server) -> Answer:
    cid = await server.channel()
    ids = [str((await server.post(server.a, f"cursor {i}"))["id"]) for i in (1, 2, 3)]
    names = {mid: f"m{i}" for i, mid in enumerate(ids, 1)}

    def page(reply: Reply) -> str:
        body = reply.json() if isinstance(reply.json(), dict) else {}
        order = ", ".join(names.get(str(m.get("id")), "other") for m in body.get("data") or [])
        cursor = body.get("cursor") or {}
        after = names.get(str(cursor.get("after")), kind(cursor.get("after")))
        return f"[{order}]; cursor.after {after}; has_more {compact(cursor.get('has_more'))}"

    newest = await server.rest("GET", f"/channels/{cid}/messages?limit=2", user=server.a)
    after = await server.rest("GET", f"/channels/{cid}/messages?limit=2&after={ids[0]}",
                              user=server.a)
    after_one = await server.rest("GET", f"/channels/{cid}/messages?limit=1&after={ids[0]}",
                                  user=server.a)
    return {"limit=2": page(newest), "limit=2&after=m1": page(after),
            "limit=1&after=m1": page(after_one)}


@probe("rate_limit.burst", "70 requests per window per token, then 429 with Retry-After and "
       "the reference body, no X-RateLimit headers; one request back after ~window/limit "
       f"(sent {RATE_WAVE} at a time, at most {RATE_BURST_BOUND})")
async def rate_limit(server: Server) -> Answer:
    user = await server.login(server.a.account)  # a fresh token: a fresh bucket
    allowed: list[Reply] = []
    limited: list[Reply] = []
    # Waves of concurrent requests: far faster than any refill (a fake at timescale 0.05
    # gives one request back every 43 ms), however busy the machine.
    while not limited and len(allowed) < RATE_BURST_BOUND:
        wave = await asyncio.gather(*(server.rest("GET", "/users/@me", user=user)
                                      for _ in range(RATE_WAVE)))
        allowed += [r for r in wave if r.status != 429]
        limited += [r for r in wave if r.status == 429]
    if not limited or not allowed:
        return {"answer": f"no 429 within {len(allowed)} requests"}
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in allowed
                 if r.headers.get("X-RateLimit-Remaining", "").isdigit()]
    first = allowed[0].headers
    limit = first.get("X-RateLimit-Limit")
    retry = limited[0].headers.get("Retry-After")
    answer = {
        "X-RateLimit-Limit": compact(limit),
        "X-RateLimit-Remaining": (f"from {max(remaining)} down to {min(remaining)}"
                                  if remaining else "absent"),
        "X-RateLimit-Reset": _reset_shape(first.get("X-RateLimit-Reset"), retry),
        "429 after": (f">= {limit} allowed" if limit and limit.isdigit()
                      and len(allowed) >= int(limit) else f"{len(allowed)} allowed"),
        "429": f"{body_shape(limited[0])}; {compact(limited[0].json())}",
        "429 Retry-After": compact(retry),
        "429 X-RateLimit-*": ", ".join(sorted(h for h in limited[0].headers
                                              if h.lower().startswith("x-ratelimit"))) or "none",
    }
    # The window and the limit come from the server's own answers (a timescaled fake
    # sends a scaled Retry-After), so the wait fits any server.
    try:
        interval = float(retry or "") / int(limit or "")
    except (ValueError, ZeroDivisionError):
        return answer
    await asyncio.sleep(1.5 * interval)
    back = await server.rest("GET", "/users/@me", user=user)
    answer["after 1.5 x Retry-After / limit"] = str(back.status)
    return answer


def _reset_shape(reset: str | None, retry: str | None) -> str:
    """X-RateLimit-Reset as epoch seconds within the window from now, or what it is."""
    try:
        value, window = int(reset or ""), float(retry or "60")
    except ValueError:
        return compact(reset)
    now = time.time()
    return ("epoch seconds within the window" if now - 2 <= value <= now + window + 2
            else f"epoch {value} (now {now:.0f})")
