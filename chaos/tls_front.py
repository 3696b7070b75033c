"""A TLS-terminating TCP forwarder: the rig's own TLS front for a plain-HTTP server.

The real Accord server speaks plain HTTP; its deployments put a TLS proxy in front.
The client only speaks verified HTTPS/WSS, so against such a server the rig puts this
front between Toxiproxy and the server: Toxiproxy's proxies dial the front, the front
terminates TLS with a certificate of the rig's test CA (naming the host the client
connects to) and forwards the bytes to the server. It works below HTTP (a WebSocket
upgrade is just bytes), so REST and the gateway both pass unchanged.

The front runs its own event loop in a thread, so its blocking `start`/`stop` fit the
server handles' interface and the client's loop never carries its traffic. A server
that is down is seen as a front that accepts and closes at once, as Toxiproxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

CONNECT_TIMEOUT = 5.0
"""Real seconds to reach the upstream server (a frozen one still accepts: the kernel does)."""
HANDSHAKE_TIMEOUT = 60.0
"""Real seconds a client's TLS handshake may take (asyncio's and nginx's default). It must
outlast the client's own I/O timeouts at timescale 1 (30 s per request), so that a slow or
black-holed network ends in the client's verdict ("Request timed out"), never in an abort
by the front: at timescale 1 a 3 s latency toxic already makes a handshake take over 6 s."""
CHUNK = 64 * 1024


@dataclass
class TlsFront:
    """Listen with TLS on `host:port` (0: a free port); forward to the upstream server."""

    upstream_host: str
    upstream_port: int
    cert: Path
    key: Path
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0  # accepted so far (for tests and logs)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _server: asyncio.Server | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def start(self) -> int:
        """Start listening (bounded); the port it listens on."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        loop = asyncio.new_event_loop()
        started = threading.Event()
        problem: list[BaseException] = []

        async def listen() -> None:
            try:
                self._server = await asyncio.start_server(
                    self._serve, self.host, self.port, ssl=context,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to the caller of start
                problem.append(exc)
            finally:
                started.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            opening = loop.create_task(listen())
            loop.run_forever()
            opening.cancel()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="tls-front", daemon=True)
        self._thread.start()
        if not started.wait(CONNECT_TIMEOUT) or problem:
            self.stop()
            why = f"{problem[0]}" if problem else f"not listening within {CONNECT_TIMEOUT:g}s"
            raise OSError(f"TLS front on {self.host}:{self.port}: {why}")
        return self.port

    def stop(self) -> None:
        """Close the listener and every forwarded connection; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None

        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shut(), loop).result(CONNECT_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(CONNECT_TIMEOUT)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    server_r, server_w = await asyncio.open_connection(
                        self.upstream_host, self.upstream_port
                    )
            except (OSError, TimeoutError):
                return  # the server is down: close, as a proxy to nothing does
            try:
                pumps = [
                    asyncio.ensure_future(_pump(client_r, server_w)),
                    asyncio.ensure_future(_pump(server_r, client_w)),
                ]
                # Either side ending ends the connection (TLS has no useful half-close).
                _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                for pump in pending:
                    pump.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            finally:
                await _close(server_w)
        finally:
            await _close(client_w)
            self._tasks.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError, ssl.SSLError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()


CLOSE_GRACE = 1.0
"""Real seconds to flush what is written before a close; then the socket is aborted
(the peer may be frozen or gone)."""


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_GRACE):
            await writer.wait_closed()
    except (Exception, asyncio.CancelledError):
        writer.transport.abort()
