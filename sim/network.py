"""A simulated network: Toxiproxy's proxies and toxics modelled by what they do to
the byte streams of each connection, on the virtual clock.

A connection through a proxy is a `Link` with two `Pipe`s (upstream = client to
server, downstream = server to client). What crosses a pipe is a `Chunk` of a
known size (a TLS handshake flight, a WebSocket frame, an HTTP request or
response, a close). Each toxic on the link's proxy and stream is one stage of the
pipe, in the order the toxics were added, as in Toxiproxy (v2.12 semantics):

- latency: a chunk leaves `latency +/- jitter` after it arrived; order is kept.
- bandwidth: a chunk occupies the pipe for `size / rate` (rate in KB/s = bytes/ms).
- slicer: a chunk is cut in slices of `average_size +/- size_variation` bytes with
  `delay` microseconds between them; the message is whole when its last slice is.
- timeout: data is dropped on the ground; `timeout > 0` closes the link after that
  much silence on the stream (0: held open, silent); removing the toxic closes the
  links it held (Toxiproxy's Cleanup closes the stub).
- reset_peer: the first chunk after the toxic applies is taken and dropped, and the
  link is reset `timeout` ms later; nothing passes meanwhile.
- limit_data: `bytes` pass, then the link is closed (a chunk crossing the limit
  arrives cut, so it is lost).
- slow_close: a close (FIN) waits `delay` ms before it is passed on.

`toxicity` is drawn per link and toxic from the seeded RNG. A disabled proxy cuts
its links and refuses new connects; a dead upstream (killed server) makes the
proxy accept, fail to dial and close (the client sees a refused connect).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaos import TOXIC_TYPES
from sim.clock import Handle, SimClock

Stream = Literal["upstream", "downstream"]

# One-way delay of the loopback hop with no toxic (client -> proxy -> server).
BASE_DELAY = 0.0005
# Bytes of the TLS handshake flights, so limit_data and bandwidth see them (a
# self-signed test certificate chain is about 2 KB; ClientHello about 0.5 KB).
TLS_CLIENT_FLIGHT = 517
TLS_SERVER_FLIGHT = 2200
TLS_RECORD_OVERHEAD = 29
HTTP_HEADER_BYTES = 180  # the request line and headers of an HTTP/1.1 request or answer
WS_UPGRADE_BYTES = 320


def ws_frame_size(text: str, *, masked: bool) -> int:
    """Bytes on the wire of one WebSocket text frame inside one TLS record."""
    n = len(text.encode())
    header = 2 if n < 126 else (4 if n < 65536 else 10)
    return n + header + (4 if masked else 0) + TLS_RECORD_OVERHEAD


@dataclass
class Toxic:
    name: str  # Toxiproxy's toxic name (the fault id)
    type: str
    stream: Stream
    toxicity: float
    attributes: dict[str, float]


@dataclass
class Chunk:
    size: int
    deliver: Callable[[], None]
    is_close: bool = False  # a FIN: slow_close holds it


class ServerEnd(Protocol):
    """The server side of a link, as the network calls it."""

    def link_data(self, link: Link, data: Any) -> None: ...
    def link_closed(self, link: Link) -> None: ...


@dataclass
class _Stage:
    free_at: float = 0.0  # when the stage can pass the next chunk (order, bandwidth)
    passed: int = 0  # limit_data
    armed: Handle | None = None  # timeout's silence timer, reset_peer's reset


class Pipe:
    def __init__(self, link: Link, stream: Stream) -> None:
        self.link = link
        self.stream = stream
        self.stages: dict[str, _Stage] = {}
        self.free_at = 0.0

    def toxics(self) -> list[Toxic]:
        return [t for t in self.link.proxy.toxics if t.stream == self.stream and self.link.hit(t)]

    def arm(self, toxic: Toxic, now: float) -> None:
        """The toxic starts on this pipe (added, or the link just opened)."""
        stage = self.stages.setdefault(toxic.name, _Stage(free_at=now))
        if toxic.type == "timeout" and toxic.attributes.get("timeout", 0) > 0:
            self._rearm_timeout(toxic, stage)

    def disarm(self, toxic: Toxic) -> None:
        stage = self.stages.pop(toxic.name, None)
        if stage is not None and stage.armed is not None:
            stage.armed.cancel()
        if toxic.type == "timeout" and self.link.hit(toxic):
            self.link.cut()  # Toxiproxy's TimeoutToxic.Cleanup closes the stub

    def _rearm_timeout(self, toxic: Toxic, stage: _Stage) -> None:
        if stage.armed is not None:
            stage.armed.cancel()
        delay = toxic.attributes["timeout"] / 1000
        stage.armed = self.link.net.clock.call_later(delay, self.link.cut)

    def send(self, chunk: Chunk) -> None:
        link = self.link
        if link.closed:
            return
        net = link.net
        t = net.clock.now + BASE_DELAY
        for toxic in self.toxics() if link.proxy.toxics else ():
            stage = self.stages.setdefault(toxic.name, _Stage(free_at=net.clock.now))
            attrs = toxic.attributes
            kind = toxic.type
            if kind == "latency":
                jitter = attrs.get("jitter", 0.0)
                extra = net.rng.uniform(-jitter, jitter) if jitter else 0.0
                t = max(t + max(0.0, attrs["latency"] + extra) / 1000, stage.free_at)
            elif kind == "bandwidth":
                t = max(t, stage.free_at) + chunk.size / attrs["rate"] / 1000
            elif kind == "slicer":
                slices = _slices(chunk.size, attrs, net.rng)
                t = max(t, stage.free_at) + (slices - 1) * attrs.get("delay", 0.0) / 1e6
            elif kind == "timeout":
                if attrs.get("timeout", 0) > 0:
                    self._rearm_timeout(toxic, stage)
                return  # dropped on the ground
            elif kind == "reset_peer":
                # Toxiproxy takes the first chunk, drops it, waits `timeout`, resets;
                # nothing passes meanwhile.
                if stage.armed is None:
                    stage.armed = net.clock.call_at(t + attrs.get("timeout", 0) / 1000, link.reset)
                return
            elif kind == "limit_data":
                left = int(attrs["bytes"]) - stage.passed
                if chunk.size > left or chunk.is_close:
                    stage.passed += max(0, left)
                    net.clock.call_at(t, link.cut)
                    return
                stage.passed += chunk.size
                if stage.passed >= attrs["bytes"]:
                    net.clock.call_at(t, link.cut)  # delivered first (scheduled earlier)
            elif kind == "slow_close" and chunk.is_close:
                t += attrs.get("delay", 0.0) / 1000
            stage.free_at = t
        t = max(t, self.free_at)
        self.free_at = t
        net.clock.call_at(t, lambda: None if link.cut_done else chunk.deliver())


def _slices(size: int, attrs: dict[str, float], rng: random.Random) -> int:
    average = max(1, int(attrs["average_size"]))
    variation = int(attrs.get("size_variation", 0))
    if not variation:
        return max(1, math.ceil(size / average))
    left, count = size, 0
    while left > 0:
        left -= max(1, average + rng.randint(-variation, variation))
        count += 1
    return max(1, count)


class Link:
    """One TCP connection through a proxy: the client's socket or HTTP request."""

    def __init__(self, net: SimNetwork, proxy: Proxy, ident: int, client: ClientEnd) -> None:
        self.net = net
        self.proxy = proxy
        self.ident = ident
        self.client = client
        self.server: Any = None  # the sim.world.SimServer that accepted it (ServerEnd)
        self.up = Pipe(self, "upstream")
        self.down = Pipe(self, "downstream")
        self.closed = False  # no more data either way (cut, reset or both FINs)
        self.cut_done = False
        self._hits: dict[str, bool] = {}
        proxy.links.add(self)
        for toxic in proxy.toxics:
            self.apply(toxic)

    def hit(self, toxic: Toxic) -> bool:
        if toxic.name not in self._hits:
            self._hits[toxic.name] = toxic.toxicity >= 1 or self.net.rng.random() < toxic.toxicity
        return self._hits[toxic.name]

    def apply(self, toxic: Toxic) -> None:
        if self.hit(toxic):
            (self.up if toxic.stream == "upstream" else self.down).arm(toxic, self.net.clock.now)

    def remove(self, toxic: Toxic) -> None:
        (self.up if toxic.stream == "upstream" else self.down).disarm(toxic)
        self._hits.pop(toxic.name, None)

    def cut(self) -> None:
        """The proxy closes both sides (no close frame): a drop, 1006 for the client."""
        if self.cut_done:
            return
        self.cut_done = self.closed = True
        self.proxy.links.discard(self)
        server = self.server
        clock = self.net.clock
        clock.call_later(BASE_DELAY, self.client.link_cut)
        if server is not None:
            clock.call_later(BASE_DELAY, lambda: server.link_closed(self))

    reset = cut  # a TCP RST reads as the same drop on both ends

    def client_end(self) -> ClientEnd:
        return self.client

    def forget(self) -> None:
        """Both ends are done with it (normal end of an HTTP exchange)."""
        self.closed = self.cut_done = True
        self.proxy.links.discard(self)


class ClientEnd(Protocol):
    """The client side of a link, as the network and the servers call it."""

    def link_cut(self) -> None: ...
    def upgraded(self) -> None: ...
    def text(self, text: str) -> Callable[[], None]: ...
    def close_frame(self, code: int, reason: str) -> Callable[[], None]: ...
    def http_answer(self, reply: Any) -> Callable[[], None]: ...


@dataclass
class Proxy:
    name: str  # as scenarios say it: alpha.gateway
    host: str
    port: int
    upstream: str  # the server's name
    enabled: bool = True
    toxics: list[Toxic] = field(default_factory=list)
    links: set[Link] = field(default_factory=set)


class SimNetwork:
    def __init__(self, clock: SimClock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self.proxies: dict[str, Proxy] = {}
        self._next_port = 21000
        self._next_link = 0

    def new_link_id(self) -> int:
        self._next_link += 1
        return self._next_link

    # ------------------------------------------------------------ proxies (Toxiproxy API)

    def create_proxy(self, name: str, upstream: str) -> Proxy:
        self._next_port += 1
        proxy = Proxy(name, "127.0.0.1", self._next_port, upstream)
        self.proxies[name] = proxy
        return proxy

    def proxy_at(self, host: str, port: int) -> Proxy | None:
        for proxy in self.proxies.values():
            if (proxy.host, proxy.port) == (host, port):
                return proxy
        return None

    def set_enabled(self, name: str, enabled: bool) -> None:
        proxy = self.proxies[name]
        proxy.enabled = enabled
        if not enabled:
            for link in list(proxy.links):
                link.cut()

    def add_toxic(self, name: str, body: dict[str, Any]) -> None:
        if body["type"] not in TOXIC_TYPES:
            raise ValueError(f"toxic type {body['type']!r} is not one of {', '.join(TOXIC_TYPES)}")
        proxy = self.proxies[name]
        toxic = Toxic(
            str(body["name"]),
            str(body["type"]),
            body.get("stream", "downstream"),
            float(body.get("toxicity", 1.0)),
            {k: float(v) for k, v in dict(body.get("attributes") or {}).items()},
        )
        proxy.toxics.append(toxic)
        for link in list(proxy.links):
            link.apply(toxic)

    def remove_toxic(self, name: str, toxic: str) -> None:
        proxy = self.proxies[name]
        gone = [t for t in proxy.toxics if t.name == toxic]
        proxy.toxics = [t for t in proxy.toxics if t.name != toxic]
        for removed in gone:
            for link in list(proxy.links):
                link.remove(removed)

    def cut_upstream(self, server: str) -> None:
        """Every link to `server` is cut (the process died)."""
        for proxy in self.proxies.values():
            if proxy.upstream == server:
                for link in list(proxy.links):
                    link.cut()
