"""Run-scoped proxies: created per fake server, unique per run, all deleted at the end."""

from __future__ import annotations

from chaos_helpers import EchoServer, round_trip

from chaos import ChaosError, ListSink, NetworkChaos, ToxiproxyServer


async def test_a_server_gets_rest_and_gateway_proxies(
    network: NetworkChaos, echo: EchoServer, toxiproxy: ToxiproxyServer
) -> None:
    alpha = await network.add_server("alpha", echo.port)
    assert network.proxy_names == ["alpha.gateway", "alpha.rest"]
    assert alpha.rest.port != alpha.gateway.port
    assert alpha.base_url == f"https://127.0.0.1:{alpha.rest.port}"
    assert alpha.gateway_url == f"wss://127.0.0.1:{alpha.gateway.port}/ws?v=1&encoding=json"
    known = await toxiproxy.api().proxies()
    assert known[alpha.gateway.toxiproxy_name]["upstream"] == f"127.0.0.1:{echo.port}"
    # Both really forward to the server.
    await round_trip(alpha.rest.port)
    await round_trip(alpha.gateway.port)


async def test_two_runs_on_one_toxiproxy_do_not_collide(
    toxiproxy: ToxiproxyServer, echo: EchoServer
) -> None:
    first = NetworkChaos(toxiproxy.api(), sink=ListSink())
    second = NetworkChaos(toxiproxy.api(), sink=ListSink())
    try:
        a = await first.add_server("alpha", echo.port)
        b = await second.add_server("alpha", echo.port)
        assert a.gateway.toxiproxy_name != b.gateway.toxiproxy_name
        await first.down("alpha.gateway")
        await round_trip(b.gateway.port)  # the other run's proxy is untouched
    finally:
        await first.close()
        await second.close()
    names = await toxiproxy.api().proxies()
    assert not [n for n in names if n.startswith((first.run_id, second.run_id))]


async def test_close_deletes_every_proxy_and_ends_open_faults(
    toxiproxy: ToxiproxyServer, echo: EchoServer
) -> None:
    sink = ListSink()
    chaos = NetworkChaos(toxiproxy.api(), sink=sink)
    await chaos.add_server("alpha", echo.port)
    await chaos.add_server("beta", echo.port)
    await chaos.add_toxic("beta.rest", {"type": "latency", "attributes": {"latency": 10}})
    await chaos.down("alpha.gateway")
    await chaos.close()
    assert [n for n in await toxiproxy.api().proxies() if n.startswith(chaos.run_id)] == []
    ends = [r for r in sink.faults() if r["data"]["phase"] == "end"]
    assert sorted(r["name"] for r in ends) == ["down", "latency"]
    await chaos.close()  # idempotent


async def test_unknown_proxy_and_duplicate_names_are_clear_errors(
    network: NetworkChaos, echo: EchoServer
) -> None:
    await network.add_server("alpha", echo.port)
    try:
        await network.add_toxic("alpha.gatway", {"type": "reset_peer"})
    except ChaosError as exc:
        assert "unknown proxy 'alpha.gatway'" in str(exc) and "alpha.gateway" in str(exc)
    else:
        raise AssertionError("an unknown proxy was accepted")
    try:
        await network.add_server("alpha", echo.port)
    except ChaosError as exc:
        assert "already exists" in str(exc)
    else:
        raise AssertionError("a duplicate proxy was accepted")
