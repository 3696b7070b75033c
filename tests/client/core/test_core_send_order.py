"""Direct sends go out one at a time per server (s.6: accepted messages are stored in
send order per channel). Two fresh REST connections could otherwise reach the server
in either order; the scenario catalogue saw `alice 2` stored before `alice 1`."""

from __future__ import annotations

import json

from core_helpers import connect, make

from client.core import signals as sig
from client.core.actions import SendMessage
from client.core.io import HttpRequest, NetError
from client.virtual import HANG, HttpRule


def _contents(requests: list[HttpRequest]) -> list[str]:
    return [json.loads(r.body or b"{}")["content"] for r in requests]


def _hang_posts(rules: list[HttpRule]) -> None:
    """Message POSTs stay unanswered until the test answers them."""
    rules.append(lambda req: HANG if req.method == "POST" and "/messages" in req.url else None)


def test_a_second_send_waits_for_the_first_answer() -> None:
    core, r, peers = make()
    connect(core, r)
    _hang_posts(peers["alpha"].rules)
    r.do(SendMessage("alpha", "general", "one"))
    r.do(SendMessage("alpha", "general", "two"))
    r.do(SendMessage("alpha", "general", "three"))
    r.settle()
    # All three left the composer at once ...
    sending = [s.args[2] for s in r.signals("alpha", [sig.MESSAGE_SENDING])]
    assert sending == ["one", "two", "three"]
    # ... but only the first is on the wire.
    assert _contents(r.pending_http("/messages")) == ["one"]
    (first,) = r.pending_http("/messages")
    r.answer(first, 200, {"id": "9001", "channel_id": "201", "content": "one"})
    r.settle()
    assert _contents(r.pending_http("/messages")) == ["two"]


def test_a_failed_send_does_not_hold_back_the_next() -> None:
    core, r, peers = make()
    connect(core, r)
    _hang_posts(peers["alpha"].rules)
    r.do(SendMessage("alpha", "general", "doomed"))
    r.do(SendMessage("alpha", "general", "next"))
    r.settle()
    (first,) = r.pending_http("/messages")
    r.fail(first, NetError.REFUSED)
    r.settle()
    failed = [s.args[2] for s in r.signals("alpha", [sig.MESSAGE_SEND_FAILED])]
    assert failed == ["doomed"]
    assert _contents(r.pending_http("/messages")) == ["next"]
    assert core.queue("alpha") == []
