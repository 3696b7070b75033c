"""The one staleness rule (client.core.purposes): an answer of SESSION scope
settles its message after a connection loss; one of CONNECTION scope from before
the loss is dropped."""

from __future__ import annotations

from core_helpers import connect, is_synced, live_conn, make

from client.core import signals as sig
from client.core.actions import ConnectServer, EditMessage, SelectChannel
from client.core.io import HttpRequest
from client.virtual import HANG, VirtualRunner


def _held(r: VirtualRunner, method: str) -> HttpRequest:
    (req,) = [q for q in r.open_http.values() if q.method == method]
    return req


def test_an_edit_answered_after_a_connection_loss_still_settles() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    mid = peer.store_message("201", "before", author_id=peer.user_id)["id"]
    r.push(peer)
    r.settle()
    peer.rules.append(lambda req: HANG if req.method == "PATCH" else None)
    r.do(EditMessage("alpha", str(mid), "after"))
    patch = _held(r, "PATCH")
    r.close(live_conn(peer))  # the outage begins: the epoch moves on
    assert core.status("alpha") in ("disconnected", "reconnecting")
    r.answer(patch, 200, {"id": str(mid), "channel_id": "201", "content": "after"})
    assert [s.args for s in r.signals("alpha", [sig.MESSAGE_EDITED])] == [("alpha", str(mid))]


def test_a_refetch_answer_from_before_a_loss_is_dropped() -> None:
    core, r, peers = make()
    peer = peers["alpha"]
    held = {"on": True}
    peer.rules.append(
        lambda req: HANG if held["on"] and req.url.endswith("/members?limit=1000") else None
    )
    r.do(SelectChannel("alpha", "general"))
    r.do(ConnectServer("alpha"))
    r.run_until(lambda: core.syncing("alpha") and bool(r.open_http), within=60)
    members = _held(r, "GET")
    held["on"] = False
    r.close(live_conn(peer))
    r.run_until(lambda: is_synced(core), within=60)
    synced = len(r.signals("alpha", [sig.SERVER_SYNCED]))
    r.answer(members, 200, {"data": []})  # the old connection's: no second sync
    r.settle()
    assert len(r.signals("alpha", [sig.SERVER_SYNCED])) == synced == 1
