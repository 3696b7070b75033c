"""Shared set-up for the core's unit tests: a core on virtual time with fake peers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from client.core import signals as sig
from client.core.actions import ConfigureServer, ConnectServer, SelectChannel, ServerConfig
from client.core.client import ClientCore
from client.core.io import HttpRequest, OpenSocket, Signal
from client.core.timings import Timings
from client.virtual import HANG, FakePeer, HttpRule, VirtualRunner

SEED = 7


def config_for(peer: FakePeer, name: str = "alpha", **kw: Any) -> ServerConfig:
    return ServerConfig(
        name=name,
        base_url=peer.base_url,
        username=peer.username,
        password=peer.password,
        space="accord",
        gateway_url=peer.gateway_url,
        **kw,
    )


def make(
    *,
    bugs: Iterable[int] = (),
    names: Iterable[str] = ("alpha",),
    scale: float = 1.0,
    latency: float = 0.0,
) -> tuple[ClientCore, VirtualRunner, dict[str, FakePeer]]:
    core = ClientCore(Timings(scale=scale), seed=SEED, bugs=bugs, environ={})
    peers = {n: FakePeer(base_url=f"https://{n}.test:8443", latency=latency) for n in names}
    runner = VirtualRunner(core, peers.values())
    for name, peer in peers.items():
        runner.do(ConfigureServer(config_for(peer, name)))
    return core, runner, peers


def is_synced(core: ClientCore, name: str = "alpha") -> bool:
    return core.status(name) == "connected" and not core.syncing(name)


def connect(
    core: ClientCore, runner: VirtualRunner, name: str = "alpha", channel: str | None = "general"
) -> None:
    if channel is not None:
        runner.do(SelectChannel(name, channel))
    runner.do(ConnectServer(name))
    runner.run_until(lambda: is_synced(core, name), within=60)


def connection_signals(runner: VirtualRunner, name: str = "alpha") -> list[tuple[Any, ...]]:
    """(signal name, *args after the server) for the s.3 lifecycle signals."""
    return [(s.name, *s.args[1:]) for s in runner.signals(name, sig.CONNECTION_SIGNALS)]


def signals_since(runner: VirtualRunner, mark: int, name: str = "alpha") -> list[tuple[Any, ...]]:
    out = []
    for _, e in runner.log[mark:]:
        if isinstance(e, Signal) and e.name in sig.CONNECTION_SIGNALS and e.args[0] == name:
            out.append((e.name, *e.args[1:]))
    return out


def live_conn(peer: FakePeer) -> int:
    conns = peer.live_conns()
    assert len(conns) == 1, conns
    return conns[0]


def open_times(runner: VirtualRunner, since: int = 0) -> list[float]:
    return [t for t, e in runner.log[since:] if isinstance(e, OpenSocket)]


def reconnecting(k: int) -> list[tuple[Any, ...]]:
    return [(sig.SERVER_RECONNECTING, n, 10) for n in range(1, k + 1)]


def lose_first_answer(peer: FakePeer, *, store: bool, echo: bool) -> HttpRule:
    """The first POST times out; the server stored it (with or without its
    gateway echo) or not."""
    state = {"first": True}

    def rule(req: HttpRequest) -> object:
        if req.method == "POST" and req.url.endswith("/messages") and state["first"]:
            state["first"] = False
            if store:
                body = json.loads(req.body or b"{}")
                peer.store_message("201", body["content"], author_id=peer.user_id, dispatch=echo)
            return HANG
        return None

    return rule  # type: ignore[return-value]
