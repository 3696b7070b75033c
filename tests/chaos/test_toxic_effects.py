"""Each toxic's observable effect through the real Toxiproxy on a TCP echo server.

Lower bounds on delays are asserted (the toxic must delay); upper bounds only
as generous liveness limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from chaos_helpers import EchoServer, open_conn, read_until_closed, round_trip

from chaos import ListSink, NetworkChaos, ProxyInfo


async def _proxy(network: NetworkChaos, echo: EchoServer) -> ProxyInfo:
    return await network.add_proxy("echo", f"127.0.0.1:{echo.port}")


async def test_latency_delays_by_the_scaled_amount(
    toxiproxy_scaled: NetworkChaos, echo: EchoServer
) -> None:
    proxy = await _proxy(toxiproxy_scaled, echo)  # timescale 0.5
    await toxiproxy_scaled.add_toxic("echo", {"type": "latency", "attributes": {"latency": 400}})
    assert await round_trip(proxy.port) >= 0.19  # 400 ms * 0.5


async def test_zero_toxicity_never_applies(network: NetworkChaos, echo: EchoServer) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic(
        "echo", {"type": "latency", "toxicity": 0, "attributes": {"latency": 5000}}
    )
    assert await round_trip(proxy.port) < 4


async def test_bandwidth_slows_a_large_payload(network: NetworkChaos, echo: EchoServer) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "bandwidth", "attributes": {"rate": 20}})
    assert await round_trip(proxy.port, b"x" * 8192) >= 0.3  # 8 KB at 20 KB/s


async def test_slow_close_holds_the_close_back(network: NetworkChaos, echo: EchoServer) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "slow_close", "attributes": {"delay": 300}})
    reader, writer = await open_conn(proxy.port)
    started = time.monotonic()
    writer.write(b"close\n")  # the echo server closes after echoing this
    assert await read_until_closed(reader) == b"close\n"
    assert time.monotonic() - started >= 0.25
    writer.close()


async def test_timeout_zero_black_holes_but_keeps_the_connection(
    network: NetworkChaos, echo: EchoServer
) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "timeout", "attributes": {"timeout": 0}})
    reader, writer = await open_conn(proxy.port)
    writer.write(b"ping\n")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(100), 0.4)
    assert not reader.at_eof()
    writer.close()
    await network.heal("echo")
    await round_trip(proxy.port)


async def test_timeout_closes_after_the_silence(network: NetworkChaos, echo: EchoServer) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "timeout", "attributes": {"timeout": 200}})
    reader, writer = await open_conn(proxy.port)
    started = time.monotonic()
    writer.write(b"ping\n")
    assert await read_until_closed(reader) == b""  # data dropped, then closed
    assert time.monotonic() - started >= 0.15
    writer.close()


async def test_reset_peer_resets_the_connection(network: NetworkChaos, echo: EchoServer) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "reset_peer", "attributes": {"timeout": 0}})
    reader, writer = await open_conn(proxy.port)
    writer.write(b"ping\n")
    with pytest.raises(ConnectionResetError):
        await read_until_closed(reader)
    writer.close()


async def test_slicer_splits_the_stream_but_keeps_every_byte(
    network: NetworkChaos, echo: EchoServer
) -> None:
    proxy = await _proxy(network, echo)
    spec = {"type": "slicer", "attributes": {"average_size": 4, "delay": 20000}}
    await network.add_toxic("echo", spec)
    reader, writer = await open_conn(proxy.port)
    payload = bytes(range(48))
    writer.write(payload)
    received, reads = b"", 0
    async with asyncio.timeout(5):
        while len(received) < len(payload):
            received += await reader.read(1024)
            reads += 1
    assert received == payload
    assert reads >= 3
    writer.close()


async def test_limit_data_cuts_after_n_bytes(network: NetworkChaos, echo: EchoServer) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "limit_data", "attributes": {"bytes": 10}})
    reader, writer = await open_conn(proxy.port)
    writer.write(b"0123456789abcdefghij\n")
    assert await read_until_closed(reader) == b"0123456789"
    writer.close()


async def test_upstream_limit_data_cuts_what_the_server_gets(
    network: NetworkChaos, echo: EchoServer
) -> None:
    proxy = await _proxy(network, echo)
    spec = {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 5}}
    await network.add_toxic("echo", spec)
    reader, writer = await open_conn(proxy.port)
    writer.write(b"0123456789\n")
    assert await read_until_closed(reader) in (b"", b"01234")
    writer.close()


async def test_down_cuts_and_refuses_and_up_restores_the_same_port(
    network: NetworkChaos, echo: EchoServer
) -> None:
    proxy = await _proxy(network, echo)
    reader, writer = await open_conn(proxy.port)
    await network.down("echo")
    with contextlib.suppress(ConnectionResetError):  # a reset is a cut too
        assert await read_until_closed(reader) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await open_conn(proxy.port)
    await network.up("echo")
    await round_trip(proxy.port)


async def test_heal_removes_every_toxic_and_enables(
    network: NetworkChaos, echo: EchoServer
) -> None:
    proxy = await _proxy(network, echo)
    await network.add_toxic("echo", {"type": "latency", "attributes": {"latency": 3000}})
    await network.add_toxic("echo", {"type": "latency", "attributes": {"latency": 3000}})
    await network.down("echo")
    await network.heal()
    assert await network.api.toxics(proxy.toxiproxy_name) == []
    assert network.active_faults() == []
    assert await round_trip(proxy.port) < 2.5


async def test_faults_are_recorded_as_start_end_pairs(
    toxiproxy_scaled: NetworkChaos, echo: EchoServer
) -> None:
    await _proxy(toxiproxy_scaled, echo)
    spec = {"type": "latency", "stream": "upstream", "attributes": {"latency": 100}}
    latency_id = await toxiproxy_scaled.add_toxic("echo", spec)
    down_id = await toxiproxy_scaled.down("echo")
    await toxiproxy_scaled.remove(latency_id)
    await toxiproxy_scaled.heal("echo")
    sink = toxiproxy_scaled.faults.sink
    assert isinstance(sink, ListSink)
    faults = sink.faults()
    assert [(r["name"], r["data"]["phase"], r["data"]["id"]) for r in faults] == [
        ("latency", "start", latency_id),
        ("down", "start", down_id),
        ("latency", "end", latency_id),
        ("down", "end", down_id),
    ]
    start = faults[0]
    assert start["src"] == "chaos" and start["kind"] == "fault"
    assert start["data"]["target"] == "echo"
    assert start["data"]["stream"] == "upstream"
    assert start["data"]["attributes"] == {"latency": 100, "jitter": 0}
    assert start["data"]["scaled"] == {"latency": 50, "jitter": 0}
    assert faults[0]["t"] <= faults[2]["t"]
