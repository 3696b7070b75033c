"""The simulated network: each toxic does to a link's byte stream what Toxiproxy does."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from sim.clock import SimClock
from sim.network import BASE_DELAY, Chunk, Link, SimNetwork


class Client:
    def __init__(self) -> None:
        self.cut_at: float | None = None
        self.clock: SimClock | None = None

    def link_cut(self) -> None:
        assert self.clock is not None
        self.cut_at = self.clock.now

    def upgraded(self) -> None: ...
    def text(self, text: str) -> Callable[[], None]:
        return lambda: None

    def close_frame(self, code: int, reason: str) -> Callable[[], None]:
        return lambda: None

    def http_answer(self, reply: Any) -> Callable[[], None]:
        return lambda: None


def setup(*toxics: dict[str, Any]) -> tuple[SimNetwork, Link, Client]:
    clock = SimClock()
    net = SimNetwork(clock, random.Random(1))
    net.create_proxy("alpha.gateway", "alpha")
    for number, toxic in enumerate(toxics):
        net.add_toxic("alpha.gateway", {"name": f"t{number}", **toxic})
    client = Client()
    client.clock = clock
    link = Link(net, net.proxies["alpha.gateway"], 1, client)
    return net, link, client


def arrivals(
    net: SimNetwork, link: Link, sizes: list[int], stream: str = "downstream"
) -> list[float]:
    seen: list[float] = []
    pipe = link.down if stream == "downstream" else link.up
    for size in sizes:
        pipe.send(Chunk(size, lambda: seen.append(net.clock.now)))
    while net.clock.run_one():
        pass
    return seen


def test_no_toxic_is_the_loopback_delay() -> None:
    net, link, _ = setup()
    assert arrivals(net, link, [100]) == [pytest.approx(BASE_DELAY)]


def test_latency_delays_each_chunk_and_keeps_order() -> None:
    net, link, _ = setup(
        {"type": "latency", "stream": "downstream", "attributes": {"latency": 500}}
    )
    times = arrivals(net, link, [10, 10])
    assert times == [pytest.approx(0.5 + BASE_DELAY)] * 2
    # upstream is untouched
    assert arrivals(net, link, [10], "upstream") == [pytest.approx(0.5 + BASE_DELAY + BASE_DELAY)]


def test_bandwidth_is_a_delay_by_size() -> None:
    net, link, _ = setup({"type": "bandwidth", "stream": "downstream", "attributes": {"rate": 10}})
    times = arrivals(net, link, [10_000, 10_000])  # 10 KB/s: one second each, one after the other
    assert times == [pytest.approx(1.0 + BASE_DELAY), pytest.approx(2.0 + BASE_DELAY)]


def test_slicer_delay_between_slices() -> None:
    toxic = {"average_size": 10, "delay": 100_000}  # 100 ms between 10-byte slices
    net, link, _ = setup({"type": "slicer", "stream": "downstream", "attributes": toxic})
    assert arrivals(net, link, [50]) == [pytest.approx(0.4 + BASE_DELAY)]


def test_timeout_drops_data_then_closes_after_silence() -> None:
    net, link, client = setup(
        {"type": "timeout", "stream": "downstream", "attributes": {"timeout": 2000}}
    )
    assert arrivals(net, link, [10]) == []
    assert client.cut_at == pytest.approx(2.0 + BASE_DELAY)


def test_timeout_zero_holds_open_and_removing_it_closes() -> None:
    net, link, client = setup(
        {"type": "timeout", "stream": "downstream", "attributes": {"timeout": 0}}
    )
    assert arrivals(net, link, [10]) == []
    assert client.cut_at is None
    net.remove_toxic("alpha.gateway", "t0")
    while net.clock.run_one():
        pass
    assert client.cut_at is not None


def test_reset_peer_takes_the_first_chunk_and_resets_later() -> None:
    net, link, client = setup(
        {"type": "reset_peer", "stream": "downstream", "attributes": {"timeout": 1000}}
    )
    assert arrivals(net, link, [10, 10]) == []
    assert client.cut_at == pytest.approx(1.0 + 2 * BASE_DELAY)


def test_limit_data_passes_the_budget_then_cuts() -> None:
    net, link, client = setup(
        {"type": "limit_data", "stream": "downstream", "attributes": {"bytes": 150}}
    )
    assert len(arrivals(net, link, [100, 100])) == 1  # the second chunk crosses the limit
    assert client.cut_at is not None


def test_slow_close_delays_the_close_only() -> None:
    net, link, _ = setup(
        {"type": "slow_close", "stream": "downstream", "attributes": {"delay": 3000}}
    )
    seen: list[tuple[str, float]] = []
    link.down.send(Chunk(10, lambda: seen.append(("data", net.clock.now))))
    link.down.send(Chunk(0, lambda: seen.append(("fin", net.clock.now)), is_close=True))
    while net.clock.run_one():
        pass
    assert [kind for kind, _ in seen] == ["data", "fin"]
    assert [t for _, t in seen] == [pytest.approx(BASE_DELAY), pytest.approx(3.0 + BASE_DELAY)]


def test_proxy_down_cuts_open_links() -> None:
    net, link, client = setup()
    net.set_enabled("alpha.gateway", False)
    while net.clock.run_one():
        pass
    assert client.cut_at is not None and link.closed
