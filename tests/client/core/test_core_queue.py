"""The offline queue, delivery guarantees and the composer refusal (s.5-s.6)."""

from __future__ import annotations

import json

import pytest
from core_helpers import connect, is_synced, live_conn, make

from client.core import signals as sig
from client.core.actions import (
    ConnectServer,
    DiscardFailedMessage,
    RetryFailedMessage,
    SendMessage,
)
from client.core.client import ClientCore
from client.core.io import HttpRequest, NetError
from client.virtual import HANG, FakePeer, HttpAnswer, VirtualRunner


def _go_offline(r: VirtualRunner, peer: FakePeer) -> None:
    """Lose the gateway and keep it refused: status reconnecting."""
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")


def _come_back(core: ClientCore, r: VirtualRunner, peer: FakePeer) -> None:
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core) and not core.queue("alpha"), within=600)


def _stored(peer: FakePeer, channel: str = "201") -> list[str]:
    return [m["content"] for m in peer.messages.get(channel, [])]


def _post_nonces(r: VirtualRunner) -> list[str]:
    return [
        json.loads(e.body or b"{}")["nonce"]
        for e in r.effects(HttpRequest)
        if isinstance(e, HttpRequest) and e.method == "POST" and e.url.endswith("/messages")
    ]


def test_sends_while_reconnecting_are_queued_and_flushed_in_order() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    for i in range(5):
        r.do(SendMessage("alpha", "general", f"m{i}"))
    assert [q.content for q in core.queue("alpha")] == [f"m{i}" for i in range(5)]
    queued = r.signals("alpha", [sig.MESSAGE_QUEUED])
    assert [s.args[4] for s in queued] == [1, 2, 3, 4, 5]
    assert not r.requests("POST", "/messages")
    _come_back(core, r, peer)
    assert _stored(peer) == [f"m{i}" for i in range(5)]
    sent_nonces = [s.args[2] for s in r.signals("alpha", [sig.MESSAGE_SENT])]
    assert sent_nonces == [s.args[3] for s in queued]
    # flushed only after server_synced, one at a time
    names = r.signal_names("alpha", [sig.SERVER_SYNCED, sig.MESSAGE_SENT])
    assert names[-6:] == [sig.SERVER_SYNCED] + [sig.MESSAGE_SENT] * 5


def test_queue_capacity_20_refuses_the_21st() -> None:
    core, r, peers = make()
    connect(core, r)
    _go_offline(r, peers["alpha"])
    for i in range(21):
        r.do(SendMessage("alpha", "general", f"m{i}"))
    assert len(core.queue("alpha")) == 20
    refused = r.signals("alpha", [sig.MESSAGE_SEND_REFUSED])
    assert [(s.args[2], s.args[3]) for s in refused] == [("m20", sig.REFUSED_QUEUE_FULL)]
    assert len(r.signals("alpha", [sig.MESSAGE_QUEUED])) == 20


def test_sends_queue_behind_a_non_empty_queue_even_when_connected() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    r.do(SendMessage("alpha", "general", "first"))
    peer.rules.append(lambda req: HttpAnswer(503, None) if req.method == "POST" else None)
    peer.gateway_refuse = False
    r.run_until(lambda: bool(r.signals("alpha", [sig.QUEUE_FLUSH_PAUSED])), within=600)
    assert is_synced(core) and [q.content for q in core.queue("alpha")] == ["first"]
    peer.rules.clear()
    r.do(SendMessage("alpha", "general", "second"))  # queues behind, and resumes the flush
    r.settle()
    assert _stored(peer) == ["first", "second"]
    assert core.queue("alpha") == []


def test_transient_flush_failure_keeps_the_head_and_resumes_on_next_sync() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    for text in ("a", "b", "c"):
        r.do(SendMessage("alpha", "general", text))
    state = {"fail": True}
    peer.rules.append(
        lambda req: HANG if req.method == "POST" and state["fail"] else None
    )  # the first flush attempt times out
    peer.gateway_refuse = False
    r.run_until(lambda: bool(r.signals("alpha", [sig.QUEUE_FLUSH_PAUSED])), within=600)
    paused = r.signals("alpha", [sig.QUEUE_FLUSH_PAUSED])
    assert paused[0].args[1] == "Request timed out"
    assert [q.content for q in core.queue("alpha")] == ["a", "b", "c"]
    state["fail"] = False
    r.close(live_conn(peer), 1006, "")  # next outage; the next sync resumes the flush
    r.run_until(lambda: is_synced(core) and not core.queue("alpha"), within=600)
    assert _stored(peer) == ["a", "b", "c"]
    nonces = _post_nonces(r)
    assert nonces[0] == nonces[1]  # the retried head kept its nonce


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_5xx_408_and_exhausted_429_are_transient(status: int) -> None:
    core, r, peers = make(scale=0.01)
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    r.do(SendMessage("alpha", "general", "a"))
    peer.rules.append(lambda req: HttpAnswer(status, None) if req.method == "POST" else None)
    peer.gateway_refuse = False
    r.run_until(lambda: bool(r.signals("alpha", [sig.QUEUE_FLUSH_PAUSED])), within=600)
    assert [q.content for q in core.queue("alpha")] == ["a"]
    assert not core.failed_entries("alpha")


def test_permanent_flush_failure_becomes_failed_entry_and_flush_goes_on() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    for text in ("ok1", "bad", "ok2"):
        r.do(SendMessage("alpha", "general", text))
    peer.rules.append(
        lambda req: (
            HttpAnswer(413, {"error": {"code": "payload_too_large", "message": "too big"}})
            if req.method == "POST" and b'"bad"' in (req.body or b"")
            else None
        )
    )
    _come_back(core, r, peer)
    assert _stored(peer) == ["ok1", "ok2"]
    (entry,) = core.failed_entries("alpha")
    assert (entry.content, entry.error, entry.channel_id) == ("bad", "too big", "201")
    failed = r.signals("alpha", [sig.MESSAGE_FAILED_ENTRY])
    assert [s.args[1:] for s in failed] == [("201", entry.nonce, "bad", "too big")]


def test_401_in_flush_relogs_in_and_goes_on() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    r.do(SendMessage("alpha", "general", "a"))
    peer.tokens.append("rotated")  # the REST token expires meanwhile
    _come_back(core, r, peer)
    assert _stored(peer) == ["a"]


def test_401_in_flush_with_failed_relogin_keeps_the_queue() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    r.do(SendMessage("alpha", "general", "a"))
    peer.rules.append(
        lambda req: (
            HttpAnswer(401, {"error": {"code": "unauthorized", "message": "x"}})
            if req.method == "POST" and req.url.endswith("/messages")
            else None
        )
    )
    peer.rules.append(
        lambda req: HttpAnswer(401, None) if req.url.endswith("/auth/login") else None
    )
    peer.gateway_refuse = False
    r.run_until(lambda: core.status("alpha") == "error", within=600)
    assert [q.content for q in core.queue("alpha")] == ["a"]
    assert r.signals("alpha", [sig.SERVER_CONNECTION_FAILED])[-1].args[1] == (
        "Authentication failed"
    )


def test_restored_text_keeps_its_nonce_and_a_changed_text_gets_a_new_one() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    state = {"fail": True}

    def refuse_once(req: HttpRequest) -> object:
        if req.method == "POST" and state["fail"]:
            state["fail"] = False
            return NetError.REFUSED  # known not stored: no look-up needed
        return None

    peer.rules.append(refuse_once)  # type: ignore[arg-type]
    r.do(SendMessage("alpha", "general", "hello"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=60)
    r.do(SendMessage("alpha", "general", "hello"))  # the restored text, unchanged
    r.settle()
    nonces = _post_nonces(r)
    assert len(nonces) == 2 and nonces[0] == nonces[1]
    assert not r.requests("GET", "/channels/201/messages?limit=100")  # nothing to look for
    assert _stored(peer) == ["hello"]
    r.do(SendMessage("alpha", "general", "hello!"))
    r.settle()
    assert _post_nonces(r)[2] != nonces[0]


def test_each_message_gets_a_unique_nonce() -> None:
    core, r, peers = make()
    connect(core, r)
    for _ in range(3):
        r.do(SendMessage("alpha", "general", "same text"))
    r.settle()
    assert len(set(_post_nonces(r))) == 3
    assert _stored(peers["alpha"]) == ["same text"] * 3


def test_composer_disabled_refusal_changes_nothing_else() -> None:
    core, r, peers = make()
    peer = peers["alpha"]
    peer.latency = 1.0
    r.do(SendMessage("alpha", "general", "too early"))  # configured, never connected
    r.do(ConnectServer("alpha"))
    r.do(SendMessage("alpha", "general", "connecting"))
    r.run_until(lambda: core.syncing("alpha"), within=60)
    r.do(SendMessage("alpha", "general", "syncing"))
    r.run_until(lambda: is_synced(core), within=60)
    peer.password = "x"
    peer.gateway_refuse = True
    r.close(live_conn(peer), 4004, "")
    r.run_until(lambda: core.status("alpha") == "error", within=60)
    mark = len(r.log)
    r.do(SendMessage("alpha", "general", "error"))
    refused = r.signals("alpha", [sig.MESSAGE_SEND_REFUSED])
    assert [(s.args[2], s.args[3]) for s in refused] == [
        (t, sig.REFUSED_DISABLED) for t in ("too early", "connecting", "syncing", "error")
    ]
    assert not r.requests("POST", "/messages")
    assert core.queue("alpha") == []
    assert [type(e).__name__ for _, e in r.log[mark:]] == ["Signal"]


def test_direct_send_while_connected() -> None:
    core, r, _peers = make()
    connect(core, r)
    r.do(SendMessage("alpha", "general", "hi"))
    r.settle()
    sending = r.signals("alpha", [sig.MESSAGE_SENDING])
    sent = r.signals("alpha", [sig.MESSAGE_SENT])
    assert sending[0].args[1:3] == ("201", "hi")
    assert sent[0].args[2] == sending[0].args[3]
    msgs = core.messages("alpha", "201")
    assert [m["content"] for m in msgs] == ["hi"]
    # the gateway echo of the same message does not duplicate it
    assert len(r.signals("alpha", [sig.MESSAGE_RECEIVED])) == 1


def test_failed_entry_retry_and_discard() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    _go_offline(r, peer)
    r.do(SendMessage("alpha", "general", "refused once"))
    r.do(SendMessage("alpha", "general", "refused twice"))
    state = {"refuse": True}
    peer.rules.append(
        lambda req: (
            HttpAnswer(403, {"error": {"code": "forbidden", "message": "no"}})
            if req.method == "POST" and state["refuse"]
            else None
        )
    )
    _come_back(core, r, peer)
    first, second = core.failed_entries("alpha")
    state["refuse"] = False
    r.do(RetryFailedMessage("alpha", first.nonce))
    r.do(DiscardFailedMessage("alpha", second.nonce))
    r.settle()
    assert _stored(peer) == ["refused once"]
    assert core.failed_entries("alpha") == []
    assert r.signals("alpha", [sig.MESSAGE_SENT])[-1].args[2] == first.nonce  # same nonce
    discarded = r.signals("alpha", [sig.FAILED_ENTRY_DISCARDED])
    assert [s.args[2] for s in discarded] == [second.nonce]  # the view drops it too
