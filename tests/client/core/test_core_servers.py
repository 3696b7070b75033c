"""Servers, refetch, caches, removal, multi-server isolation, add-server (s.3, s.5, s.7, s.8)."""

from __future__ import annotations

import pytest
from core_helpers import config_for, connect, is_synced, live_conn, make, signals_since

from client.core import signals as sig
from client.core.actions import (
    AddReaction,
    AddServer,
    ConfigureServer,
    DeleteMessage,
    DisconnectServer,
    EditMessage,
    FetchMessages,
    SelectChannel,
    SendMessage,
    ServerConfig,
    StartEdit,
)
from client.core.io import CloseSocket, HttpRequest, OpenSocket, Signal
from client.virtual import FakePeer, HttpAnswer


def _ids(core_messages: list[dict[str, object]]) -> list[object]:
    return [m["id"] for m in core_messages]


# ----------------------------------------------------------------------------- refetch


def test_refetch_after_ready_pages_forward_and_matches_the_server() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    for i in range(3):
        peer.store_message("201", f"before{i}")
    r.push(peer)
    r.settle()
    peer.resume_ok = False  # no replay: the refetch must bring the gap
    peer.gateway_refuse = True
    r.close(live_conn(peer), 1006, "")
    for i in range(250):
        peer.store_message("201", f"missed{i}")
    mark = len(r.log)
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core), within=600)
    gets = [
        e.url.split("/api/v1")[1]
        for _, e in r.log[mark:]
        if isinstance(e, HttpRequest) and e.method == "GET"
    ]
    assert gets[:3] == [
        "/spaces/100/channels",
        "/spaces/100/members?limit=1000",
        "/spaces/100/roles",
    ]
    message_gets = [g for g in gets if "/messages" in g]
    assert len(message_gets) == 3 and all("after=" in g for g in message_gets)
    server_ids = [m["id"] for m in peer.messages["201"]]
    assert _ids(core.messages("alpha", "201")) == server_ids


def test_refetch_stops_at_500_messages() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.store_message("201", "seen")
    r.push(peer)
    r.settle()
    peer.resume_ok = False
    r.close(live_conn(peer), 1006, "")
    for i in range(700):
        peer.store_message("201", f"m{i}")
    r.run_until(lambda: is_synced(core), within=600)
    assert len(core.messages("alpha", "201")) == 501


def test_resume_replay_fills_the_gap_without_duplicates() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    r.close(live_conn(peer), 1006, "")
    for i in range(5):
        peer.store_message("201", f"m{i}")  # replayed on RESUME
    r.run_until(lambda: is_synced(core), within=600)
    assert _ids(core.messages("alpha", "201")) == [m["id"] for m in peer.messages["201"]]
    received = [s.args[2] for s in r.signals("alpha", [sig.MESSAGE_RECEIVED])]
    assert len(received) == len(set(received)) == 5


def test_failed_refetch_still_ends_in_synced() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.rules.append(lambda req: HttpAnswer(500, None) if req.method == "GET" else None)
    mark = len(r.log)
    r.close(live_conn(peer), 1006, "")
    r.run_until(lambda: is_synced(core), within=600)
    assert signals_since(r, mark)[-1] == (sig.SERVER_SYNCED,)
    fetch_failed = r.signals("alpha", [sig.MESSAGE_FETCH_FAILED])
    assert [s.args[1:] for s in fetch_failed] == [("201", "Server error (HTTP 500)")]


# ----------------------------------------------------------------------------- channels, messages


def test_select_channel_before_connect_resolves_by_name() -> None:
    core, r, _peers = make()
    connect(core, r, channel="random")
    assert core.selected_channel() == ("alpha", "202")
    assert r.signals("alpha", [sig.CHANNEL_SELECTED])[0].args == ("alpha", "202", "random")
    assert core.channel_id("alpha", "general") == "201"


def test_select_and_fetch_emit_loading_and_loaded() -> None:
    core, r, peers = make()
    connect(core, r, channel=None)
    peers["alpha"].store_message("202", "x")
    r.push(peers["alpha"])
    r.settle()
    r.do(SelectChannel("alpha", "random"))
    r.settle()
    names = r.signal_names(
        "alpha", [sig.CHANNEL_SELECTED, sig.MESSAGES_LOADING, sig.MESSAGES_LOADED]
    )
    assert names == [sig.CHANNEL_SELECTED, sig.MESSAGES_LOADING, sig.MESSAGES_LOADED]
    assert r.signals("alpha", [sig.MESSAGES_LOADED])[0].args == ("alpha", "202", 1)


def test_fetch_failure_and_click_to_retry() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    peer.rest_enabled = False
    r.do(FetchMessages("alpha", "general"))
    r.settle()
    assert r.signals("alpha", [sig.MESSAGE_FETCH_FAILED])[-1].args == (
        "alpha",
        "201",
        "Could not connect to server",
    )
    peer.rest_enabled = True
    r.do(FetchMessages("alpha", "general"))
    r.settle()
    assert r.signal_names("alpha", [sig.MESSAGES_LOADED])


def test_gateway_events_update_caches() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    msg = peer.store_message("201", "hello")
    peer.dispatch("message.update", {**msg, "content": "edited"})
    peer.dispatch(
        "reaction.add",
        {"channel_id": "201", "message_id": msg["id"], "user_id": "2", "emoji": "👍"},
    )
    r.push(peer)
    r.settle()
    (cached,) = core.messages("alpha", "201")
    assert cached["content"] == "edited"
    # the server's own shape: the event's plain-string emoji becomes {id, name}
    assert cached["reactions"] == [{"emoji": {"id": None, "name": "👍"}, "count": 1, "me": False}]
    peer.dispatch("message.delete", {"id": msg["id"], "channel_id": "201", "space_id": "100"})
    peer.dispatch("channel.create", {"id": "203", "name": "new"})
    r.push(peer)
    r.settle()
    assert core.messages("alpha", "201") == []
    assert core.channel_id("alpha", "new") == "203"
    assert r.signal_names(
        "alpha", [sig.MESSAGE_EDITED, sig.MESSAGE_DELETED, sig.REACTION_CHANGED]
    ) == [
        sig.MESSAGE_EDITED,
        sig.REACTION_CHANGED,
        sig.MESSAGE_DELETED,
    ]


def test_edit_delete_reaction_failures() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    msg = peer.store_message("201", "hello", author_id=peer.user_id)  # only its author edits
    r.push(peer)
    r.settle()
    mid = msg["id"]
    r.do(StartEdit("alpha", mid))
    peer.rest_enabled = False
    r.do(EditMessage("alpha", mid, "new"))
    r.do(DeleteMessage("alpha", mid))
    r.do(AddReaction("alpha", mid, "👍"))
    r.settle()
    err = "Could not connect to server"
    assert r.signals("alpha", [sig.EDIT_STARTED])[0].args == ("alpha", mid)
    assert r.signals("alpha", [sig.MESSAGE_EDIT_FAILED])[0].args == ("alpha", mid, err)
    assert r.signals("alpha", [sig.MESSAGE_DELETE_FAILED])[0].args == ("alpha", mid, err)
    assert r.signals("alpha", [sig.REACTION_FAILED])[0].args == ("alpha", "201", mid, "👍", err)
    reaction_put = r.requests("PUT")[0]
    assert reaction_put.url.endswith(f"/channels/201/messages/{mid}/reactions/%F0%9F%91%8D/@me")
    peer.rest_enabled = True
    r.do(EditMessage("alpha", mid, "new"))
    r.do(DeleteMessage("alpha", mid))
    r.settle()
    # The edit's answer, then the server's message.update echo on the gateway (both
    # signal); the delete's answer (its message.delete echo finds nothing left).
    assert r.signal_names("alpha", [sig.MESSAGE_EDITED, sig.MESSAGE_DELETED]) == [
        sig.MESSAGE_EDITED,
        sig.MESSAGE_EDITED,
        sig.MESSAGE_DELETED,
    ]
    assert core.messages("alpha", "201") == []


# ----------------------------------------------------------------------------- multi-server


def test_failure_on_one_server_never_touches_another() -> None:
    core, r, peers = make(names=("alpha", "beta"))
    connect(core, r, "alpha")
    connect(core, r, "beta")
    alpha, beta = peers["alpha"], peers["beta"]
    # equal ids on both servers stay apart
    alpha.store_message("201", "from alpha")
    beta.store_message("201", "from beta")
    r.push(alpha)
    r.push(beta)
    r.settle()
    mark = len(r.log)
    beta.gateway_refuse = True
    r.close(live_conn(beta), 1006, "")
    r.do(SendMessage("beta", "general", "queued on beta"))
    r.do(SendMessage("alpha", "general", "direct on alpha"))
    r.run_until(lambda: core.status("beta") == "error", within=600)
    assert core.status("alpha") == "connected"
    assert signals_since(r, mark, "alpha") == []
    assert core.queue("alpha") == [] and len(core.queue("beta")) == 1
    assert [m["content"] for m in core.messages("alpha", "201")] == [
        "from alpha",
        "direct on alpha",
    ]
    assert [m["content"] for m in core.messages("beta", "201")] == ["from beta"]
    assert core.mode == "LIVE"


def test_rng_streams_are_per_server() -> None:
    delays = []
    for names in (("alpha",), ("beta", "alpha")):
        core, r, peers = make(names=names)
        for n in names:
            connect(core, r, n, channel=None)
        if "beta" in names:
            r.close(live_conn(peers["beta"]), 1006, "")  # draws on beta's stream first
        lost = r.now
        mark = len(r.log)
        r.close(live_conn(peers["alpha"]), 1006, "")
        r.run_until(lambda c=core: is_synced(c, "alpha"), within=60)  # type: ignore[misc]
        first = next(t for t, e in r.log[mark:] if isinstance(e, OpenSocket) and "alpha" in e.url)
        delays.append(first - lost)
    assert delays[0] == delays[1]


# ----------------------------------------------------------------------------- removal


def test_manual_removal() -> None:
    core, r, peers = make()
    connect(core, r)
    peer = peers["alpha"]
    conn = live_conn(peer)
    peer.gateway_refuse = True
    r.close(conn, 1006, "")
    r.do(SendMessage("alpha", "general", "pending"))
    peer.gateway_refuse = False
    r.run_until(lambda: is_synced(core), within=600)
    conn = live_conn(peer)
    peer.rules.append(
        lambda req: (
            HttpAnswer(503, None) if req.method == "POST" and "messages" in req.url else None
        )
    )
    r.close(conn, 1006, "")
    r.do(SendMessage("alpha", "general", "still queued"))
    r.run_until(lambda: is_synced(core), within=600)
    conn = live_conn(peer)
    mark = len(r.log)
    r.do(DisconnectServer("alpha"))
    r.settle()
    logout = [e for _, e in r.log[mark:] if isinstance(e, HttpRequest)]
    assert [(e.method, e.url.split("/api/v1")[1]) for e in logout] == [("POST", "/auth/logout")]
    assert CloseSocket(conn, 1000, "", 1.0) in [e for _, e in r.log[mark:]]
    assert r.signals("alpha")[-1] == Signal(sig.SERVER_REMOVED, ("alpha",))
    assert Signal(sig.MODE_CHANGED, ("CONNECTING",)) in [e for _, e in r.log[mark:]]
    assert core.status("alpha") == "none" and core.mode == "CONNECTING"
    assert core.queue("alpha") == [] and core.messages("alpha", "201") == []
    assert core.selected_channel() is None
    r.advance(3600)
    assert not [e for _, e in r.log[mark:] if isinstance(e, OpenSocket)]


def test_removal_keeps_live_mode_when_another_server_is_connected() -> None:
    core, r, _peers = make(names=("alpha", "beta"))
    connect(core, r, "alpha")
    connect(core, r, "beta")
    r.do(DisconnectServer("beta"))
    assert core.mode == "LIVE"
    assert core.servers() == ["alpha"]


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("base", "gateway"),
    [
        ("http://alpha.test:8443", None),
        ("https://alpha.test:8443", "ws://alpha.test:8443/ws"),
        ("ftp://alpha.test", None),
        ("alpha.test:8443", None),
    ],
)
def test_https_only_refused_before_any_socket(base: str, gateway: str | None) -> None:
    core, r, _ = make(names=())
    cfg = ServerConfig("alpha", base, "alice", "password", "accord", gateway_url=gateway)
    r.do(AddServer(cfg))
    r.do(ConfigureServer(cfg))
    r.advance(100)
    assert [s.args for s in r.signals("alpha")] == [
        ("alpha", "Only https:// servers are supported")
    ] * 2
    assert not r.effects(HttpRequest) and not r.effects(OpenSocket)
    assert core.status("alpha") == "none"


def test_password_never_in_repr_or_logs() -> None:
    core, r, _peers = make()
    assert "password" not in repr(core.config("alpha")).replace("password=", "")
    connect(core, r)
    logs = " ".join(str(e) for e in r.effects() if type(e).__name__ == "Log")
    assert "tok1" not in logs and "'password'" not in logs


def test_add_server_probe_then_connect() -> None:
    core, r, _ = make(names=())
    peer = FakePeer(base_url="https://alpha.test:8443")
    r.peers.append(peer)
    r.do(AddServer(config_for(peer)))
    r.run_until(lambda: is_synced(core), within=60)
    probe = r.requests()[0]
    assert (probe.method, probe.url) == ("GET", "https://alpha.test:8443/api/v1/auth/login")
    assert r.signal_names("alpha")[:4] == [
        sig.SERVER_ADDED,
        sig.SERVER_PROBE_STARTED,
        sig.SERVER_PROBE_OK,
        sig.SERVER_CONNECTING,
    ]


def test_add_server_probe_failure_rolls_back() -> None:
    core, r, _ = make(names=())
    peer = FakePeer(base_url="https://alpha.test:8443", rest_enabled=False)
    r.peers.append(peer)
    r.do(AddServer(config_for(peer)))
    r.settle()
    assert r.signals("alpha")[-1] == Signal(
        sig.SERVER_ADD_FAILED, ("alpha", "Could not connect to server")
    )
    assert core.servers() == [] and core.status("alpha") == "none"


def test_add_server_connect_failure_rolls_back() -> None:
    core, r, _ = make(names=())
    peer = FakePeer(base_url="https://alpha.test:8443")
    r.peers.append(peer)
    r.do(AddServer(ServerConfig("alpha", peer.base_url, "alice", "wrong", "accord")))
    r.settle()
    assert core.servers() == []
    assert r.signals("alpha")[-1] == Signal(
        sig.SERVER_ADD_FAILED, ("alpha", "Authentication failed")
    )


def test_unknown_server_actions_are_reported_not_crashed() -> None:
    core, r, _ = make(names=())
    r.do(SendMessage("ghost", "general", "boo"))
    r.do(DisconnectServer("ghost"))
    assert r.signals("ghost", [sig.MESSAGE_SEND_REFUSED])
    assert core.status("ghost") == "none"
