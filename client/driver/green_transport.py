"""The gevent driver's transport: one gateway WebSocket (wsproto) and HTTPS
requests (h11), each over a gevent TLS socket. Sans-I/O protocol code over
explicit gevent sockets, so it cooperates with Locust's monkey-patched world and
also runs, unpatched, on any thread that has a gevent hub (the driver tests).

What the network did is reported through `report` once, classified here
(`client.driver.errors`); once the core has closed or aborted a socket, the
socket reports nothing more, as the asyncio driver's `GatewaySocket`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.queue
import gevent.socket
import gevent.ssl
import h11
from gevent import Greenlet
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from client.core.io import (
    HttpFailed,
    HttpResponse,
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
    TransportInput,
)
from client.driver.errors import classify, classify_connect, describe
from client.driver.websocket import DROPPED, MAX_MESSAGE

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
NO_UPGRADE = "the server did not upgrade to a WebSocket"


class PeerClosed(ConnectionResetError):
    """The peer ended the connection before the exchange was complete."""


def _address(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return host, port, target


def tls_connect(host: str, port: int, context: ssl.SSLContext) -> gevent.ssl.SSLSocket:
    """TCP connect and TLS handshake; raises what went wrong, classified by the caller
    with `classify_connect`. The handshake blocks only this greenlet (killing it
    abandons the connect)."""
    raw = gevent.socket.create_connection((host, port))
    try:
        raw.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
        sock = gevent.ssl.SSLSocket(
            raw, server_hostname=host, do_handshake_on_connect=False, _context=context
        )
        sock.do_handshake()
    except BaseException:
        raw.close()
        raise
    return sock


def _recv(sock: gevent.ssl.SSLSocket) -> bytes:
    try:
        return bytes(sock.recv(READ_SIZE))
    except ssl.SSLZeroReturnError:  # close_notify: a clean end of stream
        return b""


class GreenGatewaySocket:
    def __init__(
        self,
        conn: int,
        url: str,
        ssl_context: ssl.SSLContext,
        report: Callable[[TransportInput], None],
        note: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.conn = conn
        self.url = url
        self._ssl = ssl_context
        self._report = report
        self._note = note
        self._sock: gevent.ssl.SSLSocket | None = None
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._outbox: gevent.queue.Queue[tuple[str, Any]] = gevent.queue.Queue()
        self._silenced = False
        self._peer_closed = gevent.event.Event()  # the peer's close frame arrived
        self._greenlets: set[Greenlet[Any, Any]] = set()
        self._spawn(self._run)

    @property
    def done(self) -> bool:
        return not self._greenlets

    # ----------------------------------------------------------------- commands

    def send(self, text: str) -> None:
        self._outbox.put(("text", text))

    def close(self, code: int, reason: str, handshake_timeout: float) -> None:
        """Send a close frame after the queued frames; abort if the peer's answer
        does not come in time."""
        self._silenced = True
        if self._sock is None:
            self.abort()
        else:
            self._outbox.put(("close", (code, reason, handshake_timeout)))

    def abort(self) -> None:
        """Drop the transport now (or stop a connect still in progress)."""
        self._silenced = True
        current = gevent.getcurrent()
        others = [g for g in self._greenlets if g is not current]
        self._drop_transport()
        gevent.killall(others, block=False)

    def wait_closed(self, timeout: float | None = None) -> None:
        gevent.joinall(list(self._greenlets), timeout=timeout)

    # ----------------------------------------------------------------- greenlets

    def _spawn(self, run: Callable[[], None]) -> None:
        greenlet = gevent.spawn(run)
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)

    def _emit(self, event: TransportInput) -> None:
        if not self._silenced:
            self._report(event)

    def _drop_transport(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()  # no close_notify, no close frame

    def _run(self) -> None:
        host, port, target = _address(self.url)
        try:
            sock = tls_connect(host, port, self._ssl)
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            self._emit(SocketOpenFailed(self.conn, classify_connect(exc), describe(exc)))
            return
        self._sock = sock
        try:
            self._upgrade(sock, host, port, target)
        except gevent.GreenletExit:
            self._drop_transport()
            raise
        except Exception as exc:
            self._drop_transport()
            self._emit(SocketOpenFailed(self.conn, classify(exc), describe(exc)))
            return
        if self._silenced:  # aborted while the upgrade finished
            self._drop_transport()
            return
        self._emit(SocketOpened(self.conn))
        self._spawn(self._write)
        try:
            code, reason = self._read(sock)
        except gevent.GreenletExit:
            raise
        except Exception as exc:  # never let one socket take the driver down
            log.debug("gateway socket %s read failed: %s", self.conn, describe(exc))
            code, reason = DROPPED, ""
        if not self._silenced:  # a close the core started is finished by the writer
            self._drop_transport()
            self._emit(SocketClosed(self.conn, code, reason))

    def _upgrade(self, sock: gevent.ssl.SSLSocket, host: str, port: int, target: str) -> None:
        authority = host if port == 443 else f"{host}:{port}"
        sock.sendall(self._ws.send(Request(host=authority, target=target)))
        while True:
            data = _recv(sock)
            if not data:
                raise PeerClosed("connection closed before the upgrade answer")
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection | RejectData):
                    raise ConnectionError(
                        f"{NO_UPGRADE} (HTTP {getattr(event, 'status_code', '?')})"
                    )

    def _read(self, sock: gevent.ssl.SSLSocket) -> tuple[int, str]:
        """Report whole text messages until the stream ends; return the close code."""
        parts: list[str] = []
        size = 0
        while True:
            data = _recv(sock)
            if not data:
                return DROPPED, ""
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > MAX_MESSAGE:
                        return DROPPED, ""  # as the asyncio driver: too big is a broken stream
                    if event.message_finished:
                        text, parts, size = "".join(parts), [], 0
                        self._emit(SocketText(self.conn, text))
                elif isinstance(event, Ping):
                    # Protocol-level courtesy (RFC 6455); liveness is the core's heartbeat.
                    self._outbox.put(("raw", self._ws.send(event.response())))
                elif isinstance(event, CloseConnection):
                    self._peer_closed.set()
                    if not self._silenced:  # answer the peer's close (ours is answered already)
                        self._outbox.put(("raw", self._ws.send(event.response())))
                        self._outbox.put(("stop", None))
                    return event.code, event.reason or ""
                elif isinstance(event, BytesMessage):
                    continue  # binary frames are not Accord frames

    def _write(self) -> None:
        while True:
            kind, item = self._outbox.get()
            sock = self._sock
            if sock is None:
                return
            try:
                if kind == "text":
                    sock.sendall(self._ws.send(TextMessage(data=item)))
                elif kind == "raw":
                    sock.sendall(item)
                elif kind == "close":
                    self._close(sock, *item)
                    return
                else:
                    return
            except gevent.GreenletExit:
                raise
            except Exception as exc:  # the reader reports the drop
                log.debug("gateway socket %s send failed: %s", self.conn, describe(exc))
                return

    def _close(self, sock: gevent.ssl.SSLSocket, code: int, reason: str, timeout: float) -> None:
        try:
            with gevent.Timeout(timeout):
                sock.sendall(self._ws.send(CloseConnection(code=code, reason=reason)))
                self._peer_closed.wait()
            self._note("close_handshake_done", {"conn": self.conn, "code": code})
        except gevent.Timeout:
            log.debug("gateway socket %s: close handshake timed out, aborting", self.conn)
            self._note("close_handshake_timeout", {"conn": self.conn, "aborted": True})
        except Exception as exc:
            log.debug("gateway socket %s close failed: %s", self.conn, describe(exc))
            self._note("close_failed", {"conn": self.conn, "detail": describe(exc)})
        finally:
            self.abort()


# --------------------------------------------------------------------- HTTPS


class HttpConnection:
    """One keep-alive-able HTTPS connection (h11 over a gevent TLS socket)."""

    def __init__(self, key: tuple[str, int], sock: gevent.ssl.SSLSocket) -> None:
        self.key = key
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_MESSAGE)

    def close(self) -> None:
        self.sock.close()

    def exchange(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        conn = self.h11
        payload = body or b""
        request = h11.Request(method=method, target=target, headers=headers)
        self.sock.sendall(conn.send(request) + conn.send(h11.Data(data=payload)) * bool(payload)
                          + conn.send(h11.EndOfMessage()))  # fmt: skip
        status = 0
        head: tuple[tuple[str, str], ...] = ()
        chunks: list[bytes] = []
        ended = False  # the peer closed the stream
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if ended:  # closed before (or in the middle of) the response
                    raise PeerClosed(f"connection closed before the response: {exc}") from exc
                raise
            if event is h11.NEED_DATA:
                data = _recv(self.sock)
                ended = not data
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                head = tuple(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in event.headers.raw_items()
                )
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, head, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise PeerClosed("connection closed before the response")

    @property
    def reusable(self) -> bool:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False


class HttpClient:
    """HTTPS requests for one driver; with `keepalive`, idle connections are reused."""

    def __init__(self, ssl_context: ssl.SSLContext, keepalive: bool) -> None:
        self._ssl = ssl_context
        self._keepalive = keepalive
        self._idle: dict[tuple[str, int], list[HttpConnection]] = {}
        self._busy: set[HttpConnection] = set()

    def request(
        self, req: int, method: str, url: str, headers: tuple[tuple[str, str], ...],
        body: bytes | None,
    ) -> HttpResponse | HttpFailed:  # fmt: skip
        host, port, target = _address(url)
        key = (host, port)
        authority = host if port == 443 else f"{host}:{port}"
        wanted = [("Host", authority), *headers]
        if not self._keepalive:
            wanted.append(("Connection", "close"))
        if body and not any(name.lower() == "content-length" for name, _ in headers):
            wanted.append(("Content-Length", str(len(body))))
        pool = self._idle.get(key, [])
        connection = pool.pop() if pool else None
        if connection is None:
            try:
                connection = HttpConnection(key, tls_connect(host, port, self._ssl))
            except gevent.GreenletExit:
                raise
            except Exception as exc:
                return HttpFailed(req, classify_connect(exc), describe(exc))
        self._busy.add(connection)
        try:
            status, head, data = connection.exchange(method, target, wanted, body)
        except gevent.GreenletExit:
            connection.close()
            raise
        except Exception as exc:
            connection.close()
            return HttpFailed(req, classify(exc), describe(exc))
        finally:
            self._busy.discard(connection)
        if self._keepalive and connection.reusable:
            self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()
        return HttpResponse(req, status, head, data)

    def close(self) -> None:
        for pool in self._idle.values():
            for connection in pool:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
        self._busy.clear()
