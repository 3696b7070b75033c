"""accord-protocol.md s.7 over real TLS sockets: the REST rate limiter, intents, READY and
event shapes, the opt-in behaviours (on and off), stale_replay and the session history."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fs_helpers import Client, Gateway, eventually, session_records

from fake_server import ApiError, FakeServer, ServerConfig
from fake_server.behaviours import BEHAVIOURS
from fake_server.faults import EXHAUST_HOLD_S, ExhaustRateLimitSpec, parse_fault
from fake_server.intents import ALL_INTENTS
from fake_server.ratelimit import RATE_LIMIT, RATE_WINDOW_S, RateLimiter
from fake_server.tls import TlsFiles, client_context, ensure_test_pki

INVALID = {"op": 7, "data": {"resumable": False}}
ConfigFactory = Callable[..., ServerConfig]


@asynccontextmanager
async def serving(make_config: ConfigFactory, pki: TlsFiles, **overrides: Any
                  ) -> AsyncIterator[tuple[FakeServer, Client]]:
    assert pki.ca is not None
    async with FakeServer(make_config(**overrides)) as srv, Client(
        srv, client_context(pki.ca)
    ) as c:
        yield srv, c


# ---------------------------------------------------------------------- REST rate limiter


async def test_rate_limit_burst_headers_and_429_shape(make_config: ConfigFactory,
                                                      pki: TlsFiles) -> None:
    # Timescale 1: the reference's own numbers (one request back every 0.86 s).
    async with serving(make_config, pki, timescale=1.0) as (_, c):
        token = await c.login()  # the unauthenticated bucket, not this token's
        remaining = []
        for _ in range(70):
            status, _, resp = await c.request("GET", "/users/@me", token=token)
            assert status == 200 and resp.headers["X-RateLimit-Limit"] == "70"
            remaining.append(int(resp.headers["X-RateLimit-Remaining"]))
            reset = int(resp.headers["X-RateLimit-Reset"])
            assert time.time() - 1 <= reset <= math.ceil(time.time() + 60) + 1
        # Counting down; a refill every 0.86 s may lift a value by one on a slow machine.
        assert remaining[0] == 69 and remaining[-1] <= 3
        assert all(b <= a for a, b in itertools.pairwise(remaining))
        statuses = []
        for _ in range(5):
            status, body, resp = await c.request("GET", "/users/@me", token=token)
            statuses.append(status)
            if status == 429:
                assert body == {"error": {"code": "rate_limited",
                                          "message": "rate limited, retry after 60s"}}
                assert resp.headers["Retry-After"] == "60"
                assert resp.headers["Content-Type"] == "application/json"
                assert not any(h.lower().startswith("x-ratelimit") for h in resp.headers)
        assert statuses.count(429) >= 3


async def test_rate_limit_refills_one_request_at_a_time(make_config: ConfigFactory,
                                                        pki: TlsFiles) -> None:
    # Timescale 0.05, limit 3: the window is 3 s, one request comes back every 1 s.
    async with serving(make_config, pki, timescale=0.05, rate_limit=3) as (_, c):
        token = await c.login()

        async def status() -> int:
            return (await c.request("GET", "/users/@me", token=token))[0]

        got = [await status() for _ in range(3)]
        _, _, refused = await c.request("GET", "/users/@me", token=token)
        assert got == [200, 200, 200] and refused.status == 429
        assert refused.headers["Retry-After"] == "3"  # 60 s scaled, the counts are not
        since = time.monotonic()
        while await status() != 200:  # back before the 3 s window is over
            assert time.monotonic() - since < 3, "not let through again within the window"
            await asyncio.sleep(0.05)
        assert await status() == 429  # only one came back, not a whole new window


async def test_rate_limit_buckets_per_token_and_shared_without(make_config: ConfigFactory,
                                                               pki: TlsFiles) -> None:
    async with serving(make_config, pki, timescale=1.0, rate_limit=4) as (_, c):
        alice = await c.login("alice")  # 1 unauthenticated
        bob = await c.login("bob")  # 2
        for _ in range(4):
            assert (await c.request("GET", "/users/@me", token=alice))[0] == 200
        assert (await c.request("GET", "/users/@me", token=alice))[0] == 429
        assert (await c.request("GET", "/users/@me", token=bob))[0] == 200  # its own bucket
        assert (await c.request("GET", "/auth/login"))[0] == 405  # 3: the probe shares it
        status, _, resp = await c.request("POST", "/auth/register",
                                          json_body={"username": "dave", "password": "pw"})
        assert status == 200 and resp.headers["X-RateLimit-Remaining"] == "0"  # 4
        status, _, resp = await c.request(
            "POST", "/auth/login", json_body={"username": "carol", "password": "password"})
        assert status == 429 and resp.headers["Retry-After"] == "60"
        async with c.http.get(c.server.info.health, ssl=c.ssl) as health:
            assert health.status == 200  # never limited


async def test_exhaust_rate_limit_empties_the_real_bucket(make_config: ConfigFactory,
                                                         pki: TlsFiles) -> None:
    async with serving(make_config, pki, timescale=1.0) as (srv, c):
        alice, bob = await c.login("alice"), await c.login("bob")
        r = await srv.apply({"kind": "exhaust_rate_limit", "user": "alice"})
        assert r.id is None and r.result == {"buckets": 1}
        status, _, resp = await c.request("GET", "/users/@me", token=alice)
        assert status == 429 and resp.headers["Retry-After"] == "60"  # the limiter answers
        assert (await c.request("GET", "/users/@me", token=bob))[0] == 200
        await srv.apply({"kind": "exhaust_rate_limit"})  # the unauthenticated bucket
        status, _, _ = await c.request(
            "POST", "/auth/login", json_body={"username": "carol", "password": "password"})
        assert status == 429
        assert (await c.request("GET", "/users/@me", token=bob))[0] == 200
    async with serving(make_config, pki, rate_limit=None) as (srv, _):
        with pytest.raises(ApiError) as off:
            await srv.apply({"kind": "exhaust_rate_limit"})
        assert off.value.status == 409


@pytest.mark.parametrize("hold", [0.0, EXHAUST_HOLD_S])
def test_exhaust_holds_the_bucket_empty_then_refills_at_the_limiters_pace(hold: float) -> None:
    """The hold is what makes "the next request after the fault meets the 429" a fact
    and not a race with the refill (one request per window/limit, 43 ms at 0.05)."""
    now = [100.0]
    limiter = RateLimiter(RATE_LIMIT, RATE_WINDOW_S * 0.05, clock=lambda: now[0],
                          wall=lambda: 0.0)
    scaled_hold = hold * 0.05
    limiter.exhaust("k", scaled_hold)
    assert not limiter.check("k").allowed
    now[0] += scaled_hold + limiter.interval * 0.99  # the bucket is still in debt
    assert not limiter.check("k").allowed
    now[0] += limiter.interval * 0.02
    assert limiter.check("k").allowed and not limiter.check("k").allowed  # one came back
    now[0] += RATE_WINDOW_S * 0.05  # a Retry-After later: full again
    assert limiter.check("k").remaining == RATE_LIMIT - 1  # less the one this takes


def test_the_default_hold_outlasts_a_late_request_and_not_the_retry_after() -> None:
    spec = parse_fault({"kind": "exhaust_rate_limit"})
    assert isinstance(spec, ExhaustRateLimitSpec)
    assert 0 < spec.hold < RATE_WINDOW_S  # a retry after Retry-After (60 s) passes


@pytest.mark.parametrize("limit", [None, 500])
async def test_rate_limit_off_or_raised(make_config: ConfigFactory, pki: TlsFiles,
                                        limit: int | None) -> None:
    async with serving(make_config, pki, timescale=1.0, rate_limit=limit) as (_, c):
        token = await c.login()
        for _ in range(100):
            status, _, resp = await c.request("GET", "/users/@me", token=token)
            assert status == 200
        assert resp.headers.get("X-RateLimit-Limit") == (None if limit is None else "500")


# ---------------------------------------------------------------------- intents and shapes


async def test_events_are_filtered_by_the_servers_intent_names(client: Client,
                                                              server: FakeServer) -> None:
    await client.login("alice")
    old_names, _ = await _ready_with(client, "alice", ["messages", "reactions", "typing"])
    everything, _ = await _ready_with(client, "alice", list(ALL_INTENTS))
    nothing, _ = await _ready_with(client, "alice", ["no_such_intent"])
    message = await client.post("bob", "hello")
    await server.apply({"kind": "act_as", "user": "bob", "action": "react",
                        "message_id": message["id"], "emoji": "👍"})
    await server.apply({"kind": "act_as", "user": "bob", "action": "typing"})
    await server.apply({"kind": "emit_event", "type": "channel.update", "data": {}})
    await server.apply({"kind": "emit_event", "type": "user.update", "data": {}})
    await server.apply({"kind": "emit_event", "type": "custom.thing", "data": {}})
    types = ["message.create", "reaction.add", "typing.start", "channel.update",
             "user.update", "custom.thing"]
    assert [(await everything.recv())["type"] for _ in types] == types
    # `reactions` and `typing` are not the server's names: those events never come.
    assert [(await old_names.recv())["type"] for _ in range(3)] == [
        "message.create", "user.update", "custom.thing"]
    assert [(await nothing.recv())["type"] for _ in range(2)] == ["user.update", "custom.thing"]
    assert all(s["buffered"] in (3, 6, 2) for s in server.session_list())


async def _ready_with(client: Client, user: str, intents: list[str]
                      ) -> tuple[Gateway, dict[str, Any]]:
    gw = await client.connect()
    await gw.recv()
    ready = await gw.identify(client.tokens[user], intents)
    assert ready["type"] == "ready"
    return gw, ready


async def test_ready_carries_the_reference_keys(client: Client) -> None:
    _, ready = await client.ready("alice")
    data = ready["data"]
    assert {k: data[k] for k in ("is_guest", "mutes", "relationships", "voice_states")} == {
        "is_guest": False, "mutes": [], "relationships": [], "voice_states": []}
    assert "motd" in data and data["server_version"].startswith("0.1.32")
    assert re.fullmatch(r"[0-9]{15,20}", data["session_id"])  # a snowflake
    assert all("user" not in m and m["roles"] for m in data["members"])
    assert all("space_id" not in r for r in data["roles"])
    assert all("member_count" not in s for s in data["spaces"])


async def test_typing_timestamp_and_reaction_event_shapes(client: Client,
                                                         server: FakeServer) -> None:
    alice, _ = await client.ready("alice")
    message = await client.post("alice", "react to me")
    created = await alice.recv()
    assert created["data"]["reactions"] is None and "nonce" not in created["data"]
    await server.apply({"kind": "act_as", "user": "bob", "action": "typing"})
    typing = await alice.recv()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", typing["data"]["timestamp"])
    await server.apply({"kind": "act_as", "user": "bob", "action": "react",
                        "message_id": message["id"], "emoji": "👍"})
    assert (await alice.recv())["data"]["emoji"] == "👍"  # a plain string in events
    stored = server.store.message(message["id"], server.store.user_by_name("alice")["id"])  # type: ignore[index]
    assert stored is not None and stored["reactions"] == [
        {"emoji": {"id": None, "name": "👍"}, "count": 1, "me": False}]


# ---------------------------------------------------------------------- opt-in behaviours


def test_the_behaviour_registry_is_what_the_config_accepts(make_config: ConfigFactory) -> None:
    assert set(BEHAVIOURS) == {"dedupe_nonce", "park_on_client_close", "takeover_resume"}
    with pytest.raises(ValueError, match="valid: dedupe_nonce, park_on_client_close"):
        make_config(behaviours=frozenset({"dedupe"}))


@pytest.mark.parametrize("on", [False, True])
async def test_dedupe_nonce(make_config: ConfigFactory, pki: TlsFiles, on: bool) -> None:
    behaviours = frozenset({"dedupe_nonce"} if on else set())
    async with serving(make_config, pki, behaviours=behaviours) as (srv, c):
        bob, _ = await c.ready("bob")
        first = await c.post("alice", "once?", nonce="n-1")
        again = await c.post("alice", "once?", nonce="n-1")
        other = await c.post("carol", "once?", nonce="n-1")  # per author
        await srv.apply({"kind": "send_frame", "frame": {"marker": 1}})
        frames = []
        while (frame := await bob.recv()) != {"marker": 1}:
            frames.append(frame["data"]["id"])
        if on:
            assert again == first and "nonce" not in again
            assert frames == [first["id"], other["id"]]
        else:
            assert again["id"] != first["id"]
            assert frames == [first["id"], again["id"], other["id"]]
        assert len(srv.messages()) == (2 if on else 3)


@pytest.mark.parametrize("on", [False, True])
async def test_park_on_client_close(make_config: ConfigFactory, pki: TlsFiles, on: bool) -> None:
    behaviours = frozenset({"park_on_client_close"} if on else set())
    async with serving(make_config, pki, behaviours=behaviours) as (srv, c):
        for code, parks in ((4000, on), (1000, False)):
            gw, ready = await c.ready("alice")
            sid = ready["data"]["session_id"]
            await gw.ws.close(code=code)
            def released(sid: str = sid) -> bool:
                return any(r["session_id"] == sid and r["name"] in ("parked", "ended")
                           for r in session_records(srv))

            await eventually(released)
            again = await c.connect()
            await again.recv()
            await again.resume(c.tokens["alice"], sid, 1)
            answer = await again.recv()
            assert (answer.get("type") == "resumed") is parks, (code, answer)
            last = next(r for r in session_records(srv) if r["session_id"] == sid
                    and r["name"] in ("parked", "ended"))
            assert (last["name"], last["reason"]) == (
                ("parked" if parks else "ended"), "client close frame")
            if parks:
                await again.ws.close(code=1000)


@pytest.mark.parametrize("on", [False, True])
async def test_takeover_resume(make_config: ConfigFactory, pki: TlsFiles, on: bool) -> None:
    behaviours = frozenset({"takeover_resume"} if on else set())
    async with serving(make_config, pki, behaviours=behaviours) as (srv, c):
        old, ready = await c.ready("alice")
        sid = ready["data"]["session_id"]
        new = await c.connect()
        await new.recv()
        await new.resume(c.tokens["alice"], sid, 1)
        if on:
            resumed = await new.recv()
            assert resumed["type"] == "resumed" and resumed["data"]["replayed"] == 0
            assert await old.closed() == (4000, "session taken over")
            assert [(r["name"], r["reason"]) for r in session_records(srv)] == [
                ("created", "identify"), ("resumed", "takeover")]
        else:
            assert await new.recv() == INVALID
        await c.post("bob", "where?")
        assert (await (new if on else old).recv())["data"]["content"] == "where?"


# ---------------------------------------------------------------------- stale_replay


async def test_stale_replay_resends_events_the_client_has(client: Client,
                                                          server: FakeServer) -> None:
    gw, ready = await client.ready("alice")
    sid = ready["data"]["session_id"]
    for i in range(4):
        await client.post("bob", f"m{i}")  # seq 2..5
    assert [(await gw.recv())["seq"] for _ in range(4)] == [2, 3, 4, 5]
    gw.cut()
    await eventually(lambda: server.session_list()[0]["state"] == "parked")
    await client.post("bob", "missed")  # seq 6
    result = await server.apply({"kind": "stale_replay", "back": 2})
    assert result.id is not None
    again = await client.connect()
    await again.recv()
    await again.resume(client.tokens["alice"], sid, 5)
    frames = [await again.recv() for _ in range(4)]
    assert [(f["seq"], f["data"].get("content")) for f in frames[:3]] == [
        (4, "m2"), (5, "m3"), (6, "missed")]  # 4 and 5 again, with their original seq
    assert frames[3]["type"] == "resumed" and frames[3]["data"] == {
        "session_id": sid, "seq": 6, "replayed": 3}
    assert server.faults() == []  # count 1: used up
    fired = [r for r in server.history_records() if r["kind"] == "fault"
             and r["name"] == "fire"]
    assert fired[-1]["data"]["kind"] == "stale_replay"


def test_stale_replay_spec_is_validated() -> None:
    from fake_server import FaultSpecError, parse_fault

    assert parse_fault({"kind": "stale_replay"}).model_dump()["count"] == 1
    with pytest.raises(FaultSpecError) as bad:
        parse_fault({"kind": "stale_replay", "back": 0})
    assert bad.value.field == "back"


# ---------------------------------------------------------------------- session history


async def test_session_history_records(make_config: ConfigFactory, pki: TlsFiles) -> None:
    async with serving(make_config, pki, resume_window_s=1.0) as (srv, c):
        gw, ready = await c.ready("alice")
        sid = ready["data"]["session_id"]
        await c.post("bob", "one")
        await gw.recv()
        gw.cut()
        await eventually(lambda: session_records(srv, "parked"))
        again = await c.connect()
        await again.recv()
        await again.resume(c.tokens["alice"], sid, 2)
        assert (await again.recv())["type"] == "resumed"
        await srv.apply({"kind": "invalid_session", "resumable": False})
        assert await again.recv() == {"op": 7, "data": {"resumable": False}}
        expiring, ready2 = await c.ready("bob")
        expiring.cut()  # parked, then expires after 1 s x 0.1
        await eventually(lambda: srv.sessions.get_resumable(ready2["data"]["session_id"])
                         is None)
        records = session_records(srv)
        assert all(set(r) == {"session_id", "user", "conn", "seq", "reason", "name"}
                   for r in records)
        assert [(r["name"], r["reason"], r["seq"], r["user"]) for r in records] == [
            ("created", "identify", 1, "alice"),
            ("parked", "connection lost", 2, "alice"),
            ("resumed", "resume", 2, "alice"),
            ("ended", "invalid_session", 2, "alice"),
            ("created", "identify", 1, "bob"),
            ("parked", "connection lost", 1, "bob"),
            ("ended", "expired", 1, "bob"),
        ]
        conns = [r["conn"] for r in records[:4]]
        assert conns[0] == conns[1] != conns[2] == conns[3]


# ---------------------------------------------------------------------- TLS names


def test_tls_name_is_in_the_certificate(tmp_path: Any) -> None:
    files = ensure_test_pki(tmp_path / "tls", ("toxiproxy",))
    assert files.ca is not None
    ca = files.ca.read_bytes()
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "toxiproxy"} <= set(san.get_values_for_type(x509.DNSName))
    same = ensure_test_pki(tmp_path / "tls", ("toxiproxy",))
    assert same.ca is not None and same.ca.read_bytes() == ca  # reused
    default = ensure_test_pki(tmp_path / "tls")  # other names: a new CA and certificate
    assert default.ca is not None and default.ca.read_bytes() != ca
