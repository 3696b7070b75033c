"""Small pieces: timings, timers, redaction, input validation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from client.core.actions import ServerConfig
from client.core.client import ClientCore
from client.core.io import (
    CancelTimer,
    Effect,
    HttpRequest,
    SendText,
    SetTimer,
    SocketOpened,
)
from client.core.redact import REDACTED, redact_effect, redact_frame
from client.core.timers import Machine, TimerKey, TimerKind, Timers
from client.core.timings import Timings


def test_timings_defaults_match_the_spec_table() -> None:
    t = Timings()
    assert (t.heartbeat_default, t.open_timeout, t.hello_timeout, t.ready_timeout) == (
        45.0,
        10.0,
        10.0,
        10.0,
    )
    assert (t.close_handshake, t.backoff_base, t.max_attempts) == (1.0, 1.0, 10)
    assert (t.invalid_session_wait_min, t.invalid_session_wait_max) == (1.0, 5.0)
    assert (t.rest_timeout, t.rate_limit_retries, t.rate_limit_fallback) == (30.0, 3, (1, 2, 4))
    assert t.rate_limit_cap == 60.0
    assert (t.loading_timer, t.green_banner, t.label_hide, t.queue_capacity) == (15, 3, 5, 20)


def test_timescale_multiplies_every_duration() -> None:
    t = Timings(scale=0.05)
    assert t.scaled(t.rest_timeout) == pytest.approx(1.5)
    assert t.backoff_delay(1, 0.5) == pytest.approx(0.05 + 0.025)
    assert t.backoff_delay(9, 0.0) == pytest.approx(32 * 0.05)
    assert t.rate_limit_fallback_wait(2) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="scale"):
        Timings(scale=0)


def test_timers_fire_in_time_order_and_report() -> None:
    out: list[Effect] = []
    timers = Timers(out)
    a, b, c = (TimerKey("alpha", Machine.HTTP, TimerKind.REQUEST_TIMEOUT, i) for i in (1, 2, 3))
    timers.set(b, 0.0, 2.0)
    timers.set(a, 0.0, 1.0)
    timers.set(c, 0.0, 5.0)
    timers.cancel(c)
    assert timers.next_deadline() == 1.0
    assert timers.pop_due(0.5) is None
    assert [timers.pop_due(3.0), timers.pop_due(3.0), timers.pop_due(3.0)] == [a, b, None]
    assert timers.next_deadline() is None
    assert out[0] == SetTimer("alpha:http:2:timeout", 2.0, 2.0, "alpha", "http", "timeout")
    assert [type(e).__name__ for e in out] == ["SetTimer"] * 3 + ["CancelTimer"]
    assert out[3] == CancelTimer("alpha:http:3:timeout", "alpha", "http", "timeout")


def test_redaction_of_io_effects() -> None:
    frame = json.dumps({"op": 2, "data": {"token": "Bearer abc", "intents": []}})
    assert "abc" not in redact_frame(frame) and REDACTED in redact_frame(frame)
    assert redact_frame('{"op":1,"data":5}') == '{"op":1,"data":5}'
    assert redact_frame("garbage") == "garbage"
    req = HttpRequest(
        1,
        "POST",
        "https://x/api/v1/auth/login",
        (("Authorization", "Bearer abc"), ("User-Agent", "u")),
        b'{"username": "alice", "password": "pw"}',
    )
    red = redact_effect(req)
    assert isinstance(red, HttpRequest)
    assert dict(red.headers) == {"Authorization": REDACTED, "User-Agent": "u"}
    assert b"pw" not in (red.body or b"") and b"alice" in (red.body or b"")
    send = redact_effect(SendText(3, frame))
    assert isinstance(send, SendText) and "abc" not in send.text


def test_handle_rejects_what_is_not_an_input() -> None:
    core = ClientCore(bugs=(), environ={})
    with pytest.raises(TypeError, match="not an input or action"):
        core.handle(0.0, "hello")  # type: ignore[arg-type]
    core.handle(0.0, SocketOpened(99))  # an unknown conn is ignored, not an error
    assert core.status("x") == "none"


def test_server_config_derives_urls_and_hides_password() -> None:
    cfg = ServerConfig("alpha", "https://127.0.0.1:8443/", "alice", "s3cret", "accord")
    assert cfg.rest_base == "https://127.0.0.1:8443/api/v1"
    assert cfg.gateway == "wss://127.0.0.1:8443/ws?v=1&encoding=json"
    assert "s3cret" not in repr(cfg)
    other = dataclasses.replace(cfg, gateway_url="wss://127.0.0.1:9000/ws")
    assert other.gateway == "wss://127.0.0.1:9000/ws" and other.validate() is None


def test_cache_keys_ids_and_counts_reactions() -> None:
    from client.core.cache import ServerCache

    cache = ServerCache()
    cache.set_channels([{"id": 201, "name": "general"}, "junk", {"name": "no id"}])
    assert cache.resolve_channel("general") == "201" and cache.resolve_channel("201") == "201"
    assert cache.store_message({"id": "10", "channel_id": "201"}) == ("201", "10", True)
    assert cache.store_message({"id": "9", "channel_id": "201"}) == ("201", "9", True)
    assert cache.store_message({"id": "10", "channel_id": "201", "x": 1}) == ("201", "10", False)
    assert cache.store_message({"channel_id": "201"}) is None
    assert [m["id"] for m in cache.ordered("201")] == ["9", "10"]
    assert cache.newest_id("201") == "10"
    event = {"message_id": "10", "emoji": "👍", "user_id": "2"}
    assert cache.apply_reaction(event, True, own_user_id="3") == ("201", "10")
    assert cache.apply_reaction({**event, "user_id": "3"}, True, own_user_id="3") == ("201", "10")
    thumbs = {"emoji": {"id": None, "name": "👍"}, "count": 2, "me": True}
    assert cache.find_message("10") == (
        "201",
        {"id": "10", "channel_id": "201", "x": 1, "reactions": [thumbs]},
    )
    cache.apply_reaction(event, False)
    cache.apply_reaction({**event, "emoji": {"id": None, "name": "👍"}}, False)  # tolerated
    assert cache.ordered("201")[1]["reactions"] is None  # none left: null, as the server
    # a message as the server lists it, then garbage that changes nothing
    cache.store_message({"id": "11", "channel_id": "201", "reactions": [thumbs]})
    assert cache.apply_reaction({"message_id": "11", "emoji": "👍", "user_id": "3"}, False, "3")
    assert cache.find_message("11") == (
        "201",
        {"id": "11", "channel_id": "201", "reactions": [{**thumbs, "count": 1, "me": False}]},
    )
    for junk in (None, 7, "", {"id": 1}, ["👍"]):
        assert cache.apply_reaction({"message_id": "11", "emoji": junk}, True) is None
    assert cache.apply_reaction({"message_id": "404", "emoji": "x"}, True) is None
    assert cache.remove_message("9") == "201" and cache.remove_message("9") is None


def test_timings_floor_holds_the_io_timeouts_up_and_nothing_else() -> None:
    t = Timings(scale=0.02, floor=0.5)
    # scaled below the floor: the floor (real seconds) wins
    assert (t.open_wait, t.hello_wait, t.ready_wait) == (0.5, 0.5, 0.5)
    assert t.rest_wait == pytest.approx(0.6)  # 30 s * 0.02 is above the floor
    # every other duration is scaled as before
    assert t.scaled(t.close_handshake) == pytest.approx(0.02)
    assert t.backoff_delay(1, 0.0) == pytest.approx(0.02)
    assert t.rate_limit_fallback_wait(0) == pytest.approx(0.02)
    # default 0: the pure contract is unchanged
    plain = Timings(scale=0.02)
    assert plain.floor == 0.0
    assert plain.open_wait == pytest.approx(0.2) and plain.rest_wait == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"Timings\.floor"):
        Timings(floor=-1.0)


def test_a_deleted_message_is_not_stored_again_by_a_late_copy() -> None:
    from client.core.cache import ServerCache

    cache = ServerCache()
    message = {"id": "42", "channel_id": "7", "content": "m2"}
    assert cache.store_message(message) == ("7", "42", True)
    assert cache.remove_message("42") == "7"
    # The POST answer held past the delete, or a page fetched before it.
    assert cache.store_message(message) == ("7", "42", False)
    assert cache.ordered("7") == []
    # A delete event for an id never seen still keeps its late copy out.
    assert cache.remove_message("43") is None
    assert cache.store_message({"id": "43", "channel_id": "7"}) == ("7", "43", False)
    assert cache.ordered("7") == []
