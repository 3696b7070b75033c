"""Network faults for one scenario run: its proxies, toxics, down/up and heal.

Scenario-facing proxy names are `<server>.rest` and `<server>.gateway` (or any
name given to `add_proxy`). In Toxiproxy each is created as `<run_id>.<name>`,
so parallel runs sharing one Toxiproxy server never collide, and `close()`
deletes exactly the proxies this run created.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaos.recording import ClockedTimeline, FaultLog, RecordSink
from chaos.toxics import ToxicSpec, parse_toxic
from chaos.toxiproxy_api import ToxiproxyApi

GATEWAY_PATH = "/ws?v=1&encoding=json"


class ChaosError(RuntimeError):
    """A fault request that cannot be carried out (unknown proxy or fault id...)."""


@dataclass(frozen=True)
class ProxyInfo:
    name: str  # as scenarios say it, e.g. "alpha.gateway"
    toxiproxy_name: str  # as Toxiproxy knows it, "<run_id>.alpha.gateway"
    host: str
    port: int  # where the proxy listens
    upstream: str  # "host:port" it forwards to


@dataclass(frozen=True)
class ServerProxies:
    """The two proxies in front of one fake server, and the client URLs through them."""

    server: str
    rest: ProxyInfo
    gateway: ProxyInfo

    @property
    def base_url(self) -> str:
        return f"https://{self.rest.host}:{self.rest.port}"

    @property
    def gateway_url(self) -> str:
        return f"wss://{self.gateway.host}:{self.gateway.port}{GATEWAY_PATH}"


@dataclass(frozen=True)
class ActiveFault:
    fault_id: str
    name: str  # toxic type, or "down"
    proxy: str
    toxic_name: str | None  # the Toxiproxy toxic name; None for "down"


class NetworkChaos:
    """The proxies and network faults of one run, recorded in the timeline."""

    def __init__(
        self,
        api: ToxiproxyApi,
        *,
        timescale: float = 1.0,
        sink: RecordSink | ClockedTimeline | None = None,
        run_id: str | None = None,
        host: str = "127.0.0.1",
        listen_host: str | None = None,
        rest_api: ToxiproxyApi | None = None,
    ) -> None:
        """`rest_api`: put every `<server>.rest` proxy on a second Toxiproxy. A crowd
        holds four descriptors per client in the Toxiproxy it goes through (two
        sockets per connection, a gateway and a REST one), and this machine's hard
        limit of 20,000 per process is reached at 5,000 clients."""
        if timescale <= 0:
            raise ValueError(f"timescale must be > 0, got {timescale}")
        self.api = api
        self.rest_api = rest_api or api
        self.timescale = timescale
        self.run_id = run_id or f"run{secrets.token_hex(4)}"
        self.host = host  # where clients dial the proxies
        self.listen_host = listen_host or host  # where Toxiproxy binds them
        self.faults = FaultLog(sink)
        self._proxies: dict[str, ProxyInfo] = {}
        self._apis: dict[str, ToxiproxyApi] = {}  # proxy name -> the Toxiproxy holding it
        self._active: dict[str, ActiveFault] = {}

    # ------------------------------------------------------------------ proxies

    async def add_server(
        self, server: str, upstream_port: int, upstream_host: str = "127.0.0.1"
    ) -> ServerProxies:
        """Create `<server>.rest` and `<server>.gateway`, both to the server's port."""
        upstream = f"{upstream_host}:{upstream_port}"
        rest = await self.add_proxy(f"{server}.rest", upstream, self.rest_api)
        gateway = await self.add_proxy(f"{server}.gateway", upstream)
        return ServerProxies(server, rest, gateway)

    async def add_proxy(
        self, name: str, upstream: str, api: ToxiproxyApi | None = None
    ) -> ProxyInfo:
        if name in self._proxies:
            raise ChaosError(f"proxy {name!r} already exists in run {self.run_id}")
        api = api or self.api
        toxiproxy_name = f"{self.run_id}.{name}"
        created = await api.create_proxy(toxiproxy_name, upstream, f"{self.listen_host}:0")
        port = int(str(created["listen"]).rsplit(":", 1)[1])
        info = ProxyInfo(name, toxiproxy_name, self.host, port, upstream)
        self._proxies[name] = info
        self._apis[name] = api
        return info

    def api_of(self, proxy: str) -> ToxiproxyApi:
        """The Toxiproxy that holds `proxy`."""
        self.proxy(proxy)  # a clear error for an unknown name
        return self._apis[proxy]

    def proxy(self, name: str) -> ProxyInfo:
        try:
            return self._proxies[name]
        except KeyError:
            known = ", ".join(sorted(self._proxies)) or "none"
            raise ChaosError(f"unknown proxy {name!r} (known: {known})") from None

    @property
    def proxy_names(self) -> list[str]:
        return sorted(self._proxies)

    def active_faults(self, proxy: str | None = None) -> list[ActiveFault]:
        return [f for f in self._active.values() if proxy is None or f.proxy == proxy]

    # ------------------------------------------------------------------ faults

    async def add_toxic(self, proxy: str, spec: ToxicSpec | Mapping[str, Any]) -> str:
        """Apply a toxic (scaled by the timescale); returns its fault id."""
        info = self.proxy(proxy)
        toxic = spec if not isinstance(spec, Mapping) else parse_toxic(spec, f"toxic on {proxy}")
        fault_id = self.faults.new_id(toxic.type_name())
        # The fault id names the toxic in Toxiproxy too: two toxics of one type never clash.
        body = toxic.to_api(self.timescale) | {"name": fault_id}
        await self.api_of(proxy).add_toxic(info.toxiproxy_name, body)
        self._active[fault_id] = ActiveFault(fault_id, toxic.type_name(), proxy, fault_id)
        self.faults.record(
            "start",
            toxic.type_name(),
            fault_id,
            proxy,
            stream=toxic.stream,
            toxicity=toxic.toxicity,
            attributes=toxic.attributes.model_dump(),
            scaled=body["attributes"],
            label=toxic.name,
        )
        return fault_id

    async def remove(self, fault_id: str) -> None:
        """End one fault: remove its toxic, or bring its proxy back up."""
        fault = self._active.get(fault_id)
        if fault is None:
            raise ChaosError(f"no active fault {fault_id!r} in run {self.run_id}")
        info, api = self.proxy(fault.proxy), self.api_of(fault.proxy)
        if fault.toxic_name is None:
            await api.set_enabled(info.toxiproxy_name, True)
        else:
            await api.remove_toxic(info.toxiproxy_name, fault.toxic_name)
        del self._active[fault_id]
        self.faults.record("end", fault.name, fault_id, fault.proxy)

    async def down(self, proxy: str) -> str:
        """Disable the proxy: open connections are cut, new ones refused."""
        info = self.proxy(proxy)
        for fault in self.active_faults(proxy):
            if fault.name == "down":
                return fault.fault_id  # already down: one window, not two
        fault_id = self.faults.new_id("down")
        await self.api_of(proxy).set_enabled(info.toxiproxy_name, False)
        self._active[fault_id] = ActiveFault(fault_id, "down", proxy, None)
        self.faults.record("start", "down", fault_id, proxy)
        return fault_id

    async def up(self, proxy: str) -> None:
        for fault in self.active_faults(proxy):
            if fault.name == "down":
                await self.remove(fault.fault_id)
                return
        await self.api_of(proxy).set_enabled(self.proxy(proxy).toxiproxy_name, True)

    async def heal(self, proxy: str | None = None) -> None:
        """Remove every toxic and enable the proxy (`None`: every proxy of this run)."""
        names = [proxy] if proxy is not None else self.proxy_names
        for name in names:
            info, api = self.proxy(name), self.api_of(name)
            for fault in self.active_faults(name):
                await self.remove(fault.fault_id)
            # Toxics this object did not add (none expected) go too: heal means clean.
            for toxic in await api.toxics(info.toxiproxy_name):
                await api.remove_toxic(info.toxiproxy_name, str(toxic["name"]))
            await api.set_enabled(info.toxiproxy_name, True)

    async def close(self) -> None:
        """End every open fault and delete every proxy this run created."""
        problems: list[str] = []
        for fault in list(self._active.values()):
            self._active.pop(fault.fault_id, None)
            self.faults.record("end", fault.name, fault.fault_id, fault.proxy, reason="cleanup")
        for name in list(self._proxies):
            try:
                await self.api_of(name).delete_proxy(self._proxies[name].toxiproxy_name)
            except Exception as exc:  # keep deleting the others, then report
                problems.append(f"{name}: {exc}")
            else:
                del self._proxies[name]
                del self._apis[name]
        if problems:
            raise ChaosError("could not delete proxies: " + "; ".join(problems))
