"""Seeded random abuse: whatever the network does, the core neither raises nor
breaks its own invariants (statuses, signal shape, queue cap, one socket)."""

from __future__ import annotations

import random

import pytest
from core_helpers import connect, make

from client.core import signals as sig
from client.core.actions import ReconnectServer, SendMessage
from client.core.io import HttpFailed, HttpResponse, NetError, Signal, SocketText
from client.core.payloads import decode
from client.core.protocol import STATUS_NAMES, Status

# What `ClientCore.status` can read: `syncing` is the view's, not the core's.
STATUSES = set(STATUS_NAMES) - {Status.SYNCING}


def _plain(value: object) -> bool:
    """Plain data only: no enum members, dataclasses or other objects in signal args."""
    if type(value) in (str, int, float, bool, type(None)):
        return True
    if isinstance(value, tuple | list) and type(value) in (tuple, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict) and type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


FRAMES = [
    "garbage",
    "{}",
    '{"op": 1}',
    '{"op": 4}',
    '{"op": 5, "data": {"heartbeat_interval": 1000}}',
    '{"op": 6}',
    '{"op": 7, "data": true}',
    '{"op": 7, "data": {"resumable": false}}',
    '{"op": 0, "type": "ready", "seq": 1, "data": {"session_id": "z"}}',
    '{"op": 0, "type": "resumed", "seq": 3, "data": null}',
    '{"op": 0, "type": "message.create", "seq": 4, "data": {"id": "77", "channel_id": "201"}}',
    '{"op": 0, "type": "message.delete", "seq": 5, "data": {"id": "77"}}',
    '{"op": 0, "type": "reaction.add", "seq": 6, "data": {"message_id": "77", "emoji": 1}}',
    '{"op": 0, "type": "channel.create", "seq": 7, "data": "not a dict"}',
    '{"op": 0, "seq": "x"}',
    # the reference server's shapes and their garbage (protocol s.7)
    '{"op": 0, "type": "ready", "seq": 1, "data": {"session_id": 123, "is_guest": false,'
    ' "motd": "", "mutes": [], "relationships": [], "voice_states": []}}',
    '{"op": 0, "type": "typing.start", "seq": 8,'
    ' "data": {"channel_id": "201", "user_id": "2", "timestamp": "2026-12-01T12:13:23"}}',
    '{"op": 0, "type": "message.create", "seq": 9, "data": {"id": "78", "channel_id": "201",'
    ' "author_id": "1", "content": "x", "reactions": [{"emoji": {"id": null, "name": "👍"},'
    ' "count": 1, "me": true}, "junk", {"emoji": 5}]}}',
    '{"op": 0, "type": "reaction.remove", "seq": 10,'
    ' "data": {"message_id": "78", "emoji": "👍", "user_id": "1"}}',
    '{"op": 0, "type": "reaction.add", "seq": 11, "data": {"message_id": "78", "emoji": {}}}',
    '{"op": 0, "type": "member.join", "seq": 12, "data": {"user_id": "3", "roles": ["100"]}}',
    # an echo of one of the client's own sends (content "m"): may settle an unknown one
    '{"op": 0, "type": "message.create", "seq": 13, "data": {"id": "99999999", "channel_id":'
    ' "201", "author_id": "1", "content": "m"}}',
]
BODIES = [b"", b"null", b"[]", b"<html>", b'{"data": null}', b'{"data": [1, "x", {}]}',
          b'{"error": {"message": 5}}', b'{"data": {"token": 7}}']  # fmt: skip


@pytest.mark.parametrize("seed", range(50))  # seed 7 found a junk reaction crash
def test_random_network_never_breaks_the_core(seed: int) -> None:
    rng = random.Random(seed)
    core, r, peers = make(latency=0.01)
    connect(core, r)
    peer = peers["alpha"]
    for _ in range(400):
        roll = rng.random()
        conns = list(r.open_sockets)
        if roll < 0.3 and conns:
            r.do(SocketText(rng.choice(conns), rng.choice(FRAMES)))
        elif roll < 0.4 and conns:
            code = rng.choice([1000, 1006, 4000, 4003, 4004, 4009, 4999])
            r.close(rng.choice(conns), code, "")
        elif roll < 0.55 and r.open_http:
            req = rng.choice(list(r.open_http))
            r.open_http.pop(req)
            if rng.random() < 0.3:
                r.do(HttpFailed(req, rng.choice(list(NetError))))
            else:
                status = rng.choice([200, 201, 400, 401, 404, 408, 429, 500, 503])
                headers = (("Retry-After", rng.choice(["0.1", "x", "-1", "1e9"])),)
                r.do(HttpResponse(req, status, headers, rng.choice(BODIES)))
        elif roll < 0.7:
            r.do(SendMessage("alpha", rng.choice(["general", "201", "nope"]), "m"))
        elif roll < 0.75:
            r.do(ReconnectServer("alpha"))
        elif roll < 0.8:
            peer.gateway_refuse = not peer.gateway_refuse
            peer.rest_enabled = rng.random() < 0.8
        else:
            r.advance(rng.choice([0.01, 0.5, 5.0, 50.0]))
        assert core.status("alpha") in STATUSES
        assert len(core.queue("alpha")) <= 20
        gateway_sockets = [c for c, url in r.open_sockets.items() if "/ws" in url]
        assert len(gateway_sockets) <= 1, gateway_sockets
    for e in r.effects(Signal):
        assert isinstance(e, Signal)
        if e.name not in (sig.MODE_CHANGED, sig.BUG_ENABLED):
            assert e.args[0] == "alpha", e
    for e in r.effects(Signal):
        assert isinstance(e, Signal) and _plain(e.args), e  # JSON and YAML can write them
        assert decode(e).to_signal() == e  # its payload type has exactly these arguments
    # nothing queued is ever dropped silently: sent, a failed entry, or still queued
    queued = {s.args[3] for s in r.signals("alpha", [sig.MESSAGE_QUEUED])}
    sent = {s.args[2] for s in r.signals("alpha", [sig.MESSAGE_SENT])}
    failed = {s.args[2] for s in r.signals("alpha", [sig.MESSAGE_FAILED_ENTRY])}
    still = {q.nonce for q in core.queue("alpha")}
    assert queued <= sent | failed | still
