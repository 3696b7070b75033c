"""The fake server's sans-I/O core on virtual time, no client: how many outages per
second one core plays. One outage: the socket drops (parked), a message is posted
while away (REST, stored, buffered), a new socket RESUMEs and gets the replay and
`resumed`, then a heartbeat and its ACK.

    python bench/bench_server_core.py --cycles 5000
"""

from __future__ import annotations

import argparse
import json
import time

from fake_server.config import ServerConfig
from fake_server.core import HttpReply, SendText, ServerCore
from fake_server.intents import ALL_INTENTS
from fake_server.store import MEMORY

JSON = {"Content-Type": "application/json"}


def connected() -> tuple[ServerCore, str, str, str]:
    core = ServerCore.simulated(ServerConfig(db=MEMORY, control_port=None), rng_seed=1)
    body = json.dumps({"username": "alice", "password": "password"}).encode()
    (login,) = core.http(0.0, 1, "POST", "/api/v1/auth/login", JSON, body)
    assert isinstance(login, HttpReply) and login.status == 200
    token = json.loads(login.body)["data"]["token"]
    core.socket_opened(0.0, 1)
    identify = {"op": 2, "data": {"token": f"Bearer {token}", "intents": list(ALL_INTENTS)}}
    (ready,) = core.socket_text(0.0, 1, json.dumps(identify))
    assert isinstance(ready, SendText)
    data = json.loads(ready.text)["data"]
    return core, token, data["session_id"], data["channels"][0]["id"]


def bench_outages(cycles: int) -> None:
    core, token, session_id, channel = connected()
    auth = {**JSON, "Authorization": f"Bearer {token}"}
    post_path = f"/api/v1/channels/{channel}/messages"
    seq, now, conn = 1, 0.0, 1
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(cycles):
        now += 1.0
        core.socket_closed(now, conn, None)
        core.http(now, i + 2, "POST", post_path, auth, b'{"content": "while away"}')
        conn += 1
        core.socket_opened(now, conn)
        resume = {"op": 3, "data": {"token": f"Bearer {token}", "session_id": session_id,
                                    "seq": seq}}
        outs = core.socket_text(now, conn, json.dumps(resume))
        assert len(outs) == 2, outs  # the replayed message.create, then resumed
        seq += 1
        assert core.socket_text(now, conn, f'{{"op":1,"data":{seq}}}')[0].text == '{"op":4}'  # type: ignore[union-attr]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU time too: on a shared machine the wall clock mostly measures the neighbours.
    print(f"server-core outages (drop, REST post, RESUME + replay, heartbeat): {cycles} in "
          f"{elapsed:.3f}s wall, {cpu:.3f}s CPU -> {cycles / elapsed:,.0f} per second "
          f"({cycles / cpu:,.0f} per CPU second)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=5_000)
    bench_outages(parser.parse_args().cycles)


if __name__ == "__main__":
    main()
