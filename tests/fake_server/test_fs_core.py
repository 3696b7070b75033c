"""The sans-I/O server core on virtual time: no sockets, no clock but `now`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fake_server.config import ServerConfig
from fake_server.core import Close, Drop, HttpReply, Out, SendText, ServerCore
from fake_server.intents import ALL_INTENTS
from fake_server.store import MEMORY


def make_core(seed: int = 1, **config: Any) -> ServerCore:
    return ServerCore.simulated(ServerConfig(db=MEMORY, control_port=None, **config), seed)


def reply(outs: list[Out], req: int) -> HttpReply:
    (found,) = [o for o in outs if isinstance(o, HttpReply) and o.req == req]
    return found


def frames(outs: list[Out], conn: int) -> list[Any]:
    return [json.loads(o.text) for o in outs if isinstance(o, SendText) and o.conn == conn]


def login(core: ServerCore, now: float, user: str = "alice", req: int = 1) -> str:
    body = json.dumps({"username": user, "password": "password"}).encode()
    answer = reply(core.http(now, req, "POST", "/api/v1/auth/login",
                             {"Content-Type": "application/json"}, body), req)
    assert answer.status == 200
    return str(json.loads(answer.body)["data"]["token"])


def identify(core: ServerCore, now: float, conn: int, token: str) -> dict[str, Any]:
    assert frames(core.socket_opened(now, conn), conn)[0]["op"] == 5
    outs = core.socket_text(now, conn, json.dumps(
        {"op": 2, "data": {"token": f"Bearer {token}", "intents": list(ALL_INTENTS)}}))
    (ready,) = frames(outs, conn)
    assert ready["type"] == "ready"
    return dict(ready)


def post(core: ServerCore, now: float, token: str, channel: str, content: str,
         req: int) -> list[Out]:
    return core.http(now, req, "POST", f"/api/v1/channels/{channel}/messages",
                     {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                     json.dumps({"content": content}).encode())


def test_drop_parks_and_resume_replays_on_virtual_time() -> None:
    core = make_core()
    token = login(core, 0.0)
    ready = identify(core, 0.0, 1, token)
    channel = ready["data"]["channels"][0]["id"]
    core.socket_closed(1.0, 1, None)  # the transport went away: parked
    assert [s["state"] for s in core.session_list()] == ["parked"]
    outs = post(core, 2.0, token, channel, "while away", req=2)
    assert reply(outs, 2).status == 200 and not frames(outs, 1)  # buffered, not sent
    core.socket_opened(3.0, 2)
    outs = core.socket_text(3.0, 2, json.dumps({"op": 3, "data": {
        "token": f"Bearer {token}", "session_id": ready["data"]["session_id"], "seq": 1}}))
    replayed = frames(outs, 2)
    assert [f.get("type") for f in replayed] == ["message.create", "resumed"]
    assert replayed[0]["data"]["content"] == "while away" and replayed[0]["seq"] == 2


def test_silence_and_handshake_deadlines_come_from_the_core() -> None:
    core = make_core(silence_drop_s=90.0, handshake_timeout_s=30.0)
    token = login(core, 0.0)
    core.socket_opened(0.0, 9)  # never identifies
    identify(core, 0.0, 1, token)
    assert core.next_deadline() == 30.0
    outs = core.on_deadline(30.0)
    assert frames(outs, 9) == [{"op": 7, "data": {"resumable": False}}]
    assert Drop(9, flush=True) in outs
    core.socket_text(50.0, 1, '{"op":1,"data":1}')  # a heartbeat moves the silence deadline
    while (due := core.next_deadline()) is not None and due < 140.0:
        assert core.on_deadline(due) == []
    assert core.next_deadline() == 140.0
    assert core.on_deadline(140.0) == [Drop(1)]
    assert [s["state"] for s in core.session_list()] == ["parked"]


def test_a_held_rest_answer_is_a_deadline_and_a_cancel_stops_it() -> None:
    core = make_core()
    token = login(core, 0.0)
    channel = identify(core, 0.0, 1, token)["data"]["channels"][0]["id"]
    core.apply(0.0, {"kind": "rest_latency", "seconds": 5, "count": 2})
    assert post(core, 1.0, token, channel, "late", req=2) == []
    assert core.next_deadline() == 6.0
    outs = core.on_deadline(6.0)
    assert reply(outs, 2).status == 200
    assert [f["type"] for f in frames(outs, 1)] == ["message.create"]
    assert post(core, 7.0, token, channel, "given up", req=3) == []
    core.http_cancelled(8.0, 3)  # the client gave up during the latency: nothing stored
    assert core.next_deadline() is None or core.on_deadline(20.0) == []
    assert [m["content"] for m in core.messages()] == ["late"]


def test_server_close_waits_for_the_socket_then_ends_the_session() -> None:
    core = make_core()
    token = login(core, 0.0)
    identify(core, 0.0, 1, token)
    result = core.apply(1.0, {"kind": "close", "code": 4005})
    assert result.result["affected"] and core.take_outputs() == [Close(1, 4005, "")]
    assert [s["state"] for s in core.session_list()] == ["open"]  # until the socket ends
    core.socket_closed(1.5, 1, None)
    assert core.session_list() == []


@pytest.mark.parametrize("seed", [1, 2])
def test_same_seed_same_run(seed: int) -> None:
    def run() -> list[Any]:
        core = make_core(seed)
        token = login(core, 0.0)
        ready = identify(core, 0.5, 1, token)
        return [token, ready["data"]["session_id"], core.history_records()]

    assert run() == run()


def test_a_restart_on_the_same_database_keeps_messages_not_sessions() -> None:
    core = make_core()
    token = login(core, 0.0)
    ready = identify(core, 0.0, 1, token)
    post(core, 1.0, token, ready["data"]["channels"][0]["id"], "kept", req=2)
    restarted = ServerCore.simulated(core.config, 2, store=core.store, history=core.history,
                                     now=10.0)
    restarted.socket_opened(10.0, 1)
    outs = restarted.socket_text(10.0, 1, json.dumps({"op": 3, "data": {
        "token": f"Bearer {token}", "session_id": ready["data"]["session_id"], "seq": 2}}))
    assert frames(outs, 1) == [{"op": 7, "data": {"resumable": False}}]
    assert [m["content"] for m in restarted.messages()] == ["kept"]
    boots = {r["boot"] for r in restarted.history_records()}
    assert len(boots) == 2
