"""At most once without server deduplication (client-behaviour.md s.6).

The peer, like the reference server, neither echoes nor deduplicates nonces, so a
message whose earlier attempt may have landed is looked for before any second
POST, and a gateway echo or a fetched page that shows it settles it.
"""

from __future__ import annotations

import json

from core_helpers import connect, live_conn, lose_first_answer, make

from client.core import signals as sig
from client.core.actions import SendMessage
from client.core.client import ClientCore
from client.core.io import HttpRequest, NetError
from client.virtual import FakePeer, VirtualRunner


def posts(r: VirtualRunner) -> list[HttpRequest]:
    return [q for q in r.requests("POST") if q.url.endswith("/channels/201/messages")]


def checks(r: VirtualRunner) -> list[HttpRequest]:
    return [q for q in r.requests("GET", "/channels/201/messages?limit=100")]


def stored(peer: FakePeer) -> list[str]:
    return [m["content"] for m in peer.messages.get("201", [])]


def send_and_lose(
    *, store: bool, echo: bool, bugs: tuple[int, ...] = ()
) -> tuple[ClientCore, VirtualRunner, FakePeer]:
    core, r, peers = make(bugs=bugs)
    connect(core, r)
    peer = peers["alpha"]
    peer.store_message("201", "hello")  # someone else's identical text: never ours
    r.push(peer)
    r.settle()
    peer.rules.append(lose_first_answer(peer, store=store, echo=echo))
    r.do(SendMessage("alpha", "general", "hello"))
    return core, r, peer


def test_echo_during_the_lost_answer_settles_it_without_a_failure() -> None:
    _, r, peer = send_and_lose(store=True, echo=True)
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SENT])), within=60)
    assert not r.signals("alpha", [sig.MESSAGE_SEND_FAILED])
    (sent,) = r.signals("alpha", [sig.MESSAGE_SENT])
    assert sent.args[3] == peer.messages["201"][1]["id"]
    assert len(posts(r)) == 1 and stored(peer) == ["hello", "hello"]


def test_resend_of_the_restored_text_looks_first_and_finds_it() -> None:
    core, r, peer = send_and_lose(store=True, echo=False)
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=60)
    r.do(SendMessage("alpha", "general", "hello"))  # the restored text, unchanged
    r.settle()
    assert len(posts(r)) == 1  # not posted again
    (check,) = checks(r)
    newest_known = peer.messages["201"][0]["id"]  # when the first attempt began
    assert check.url.endswith(f"&after={newest_known}")
    (sent,) = r.signals("alpha", [sig.MESSAGE_SENT])
    assert sent.args[3] == peer.messages["201"][1]["id"]
    assert stored(peer) == ["hello", "hello"]  # the other user's and ours, once
    assert [m["content"] for m in core.messages("alpha", "201")] == ["hello", "hello"]


def test_resend_posts_with_the_same_nonce_when_the_first_never_landed() -> None:
    _, r, peer = send_and_lose(store=False, echo=False)
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=60)
    r.do(SendMessage("alpha", "general", "hello"))
    r.settle()
    assert len(checks(r)) == 1
    first, second = posts(r)
    assert json.loads(first.body or b"")["nonce"] == json.loads(second.body or b"")["nonce"]
    assert stored(peer) == ["hello", "hello"]
    assert len(r.signals("alpha", [sig.MESSAGE_SENT])) == 1


def test_a_failed_check_never_posts_blindly() -> None:
    _, r, peer = send_and_lose(store=True, echo=False)
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=60)
    peer.rules.insert(0, lambda req: NetError.NO_RESPONSE if req.method == "GET" else None)
    r.do(SendMessage("alpha", "general", "hello"))
    r.settle()
    assert len(posts(r)) == 1
    failures = r.signals("alpha", [sig.MESSAGE_SEND_FAILED])
    assert [f.args[3] for f in failures] == ["Request timed out", "No response from server"]
    peer.rules.pop(0)
    r.do(SendMessage("alpha", "general", "hello"))  # still the restored text, still unknown
    r.settle()
    assert len(posts(r)) == 1 and len(r.signals("alpha", [sig.MESSAGE_SENT])) == 1
    assert stored(peer) == ["hello", "hello"]


def test_flush_retry_after_an_unknown_outcome_looks_first() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.do(SendMessage("alpha", "general", "queued"))
    peer.rules.append(lose_first_answer(peer, store=True, echo=False))
    peer.gateway_refuse = False
    r.run_until(lambda: bool(r.signals("alpha", [sig.QUEUE_FLUSH_PAUSED])), within=600)
    assert [q.content for q in core.queue("alpha")] == ["queued"]
    r.close(live_conn(peer), 1006, "")  # the next sync resumes the flush
    r.run_until(lambda: not core.queue("alpha"), within=600)
    r.settle()
    assert len(posts(r)) == 1 and stored(peer) == ["queued"]
    (sent,) = r.signals("alpha", [sig.MESSAGE_SENT])
    assert sent.args[3] == peer.messages["201"][0]["id"]


def test_refetch_showing_the_copy_settles_a_queued_message() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.rules.append(lose_first_answer(peer, store=True, echo=False))
    r.do(SendMessage("alpha", "general", "lost answer"))
    r.run_until(lambda: bool(r.signals("alpha", [sig.MESSAGE_SEND_FAILED])), within=60)
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    r.do(SendMessage("alpha", "general", "lost answer"))  # queued while down, still unknown
    assert [q.content for q in core.queue("alpha")] == ["lost answer"]
    peer.gateway_refuse = False
    r.run_until(lambda: not core.queue("alpha"), within=600)
    r.settle()
    assert len(posts(r)) == 1 and stored(peer) == ["lost answer"]


def test_gateway_echo_before_the_post_answer_is_one_message() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.rules.append(lose_first_answer(peer, store=True, echo=True))  # answer held back
    r.do(SendMessage("alpha", "general", "mine"))
    r.settle()  # the echo has come, the answer not yet
    assert [m["content"] for m in core.messages("alpha", "201")] == ["mine"]
    (post,) = r.pending_http("/channels/201/messages")
    stored_msg = peer.messages["201"][0]
    r.answer(post, 200, {"data": stored_msg})
    assert [m["content"] for m in core.messages("alpha", "201")] == ["mine"]
    assert len(r.signals("alpha", [sig.MESSAGE_RECEIVED])) == 1
    (sent,) = r.signals("alpha", [sig.MESSAGE_SENT])
    assert sent.args[3] == stored_msg["id"]
    assert "nonce" not in stored_msg
