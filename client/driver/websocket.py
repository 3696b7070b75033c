"""One gateway WebSocket: connect, read whole messages, write in order, close or
abort. It reports what the network did through `report`; once the core has
closed or aborted it, it reports nothing more (the core already counted it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from client.core.io import (
    SocketClosed,
    SocketOpened,
    SocketOpenFailed,
    SocketText,
    TransportInput,
)
from client.driver.errors import classify, describe

log = logging.getLogger(__name__)

DROPPED = 1006  # no close frame: reset, EOF, proxy cut
MAX_MESSAGE = 4 * 1024 * 1024


class GatewaySocket:
    def __init__(
        self,
        conn: int,
        url: str,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext,
        report: Callable[[TransportInput], None],
        note: Callable[[str, dict[str, Any]], None] | None = None,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.conn = conn
        self._gate: contextlib.AbstractAsyncContextManager[Any] = (
            gate if gate is not None else contextlib.nullcontext()
        )
        self.url = url
        self._session = session
        self._ssl = ssl_context
        self._report = report
        self._note = note or (lambda name, data: None)  # driver-side facts for the timeline
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._silenced = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._spawn(self._run())

    @property
    def done(self) -> bool:
        return not self._tasks

    # ----------------------------------------------------------------- commands

    def send(self, text: str) -> None:
        self._outbox.put_nowait(text)

    def close(self, code: int, reason: str, handshake_timeout: float) -> None:
        """Start a close handshake; abort the transport if it is not done in time."""
        self._silenced = True
        if self._ws is None:
            self.abort()
        else:
            self._spawn(self._close(self._ws, code, reason, handshake_timeout))

    def abort(self) -> None:
        """Drop the transport now (or stop a connect still in progress)."""
        self._silenced = True
        if self._ws is not None:
            _abort_transport(self._ws)
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----------------------------------------------------------------- tasks

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _emit(self, event: TransportInput) -> None:
        if not self._silenced:
            self._report(event)

    async def _run(self) -> None:
        try:
            # The core owns liveness and every timeout: no aiohttp heartbeat, no
            # auto-pong, no receive/close timeouts of aiohttp's own.
            async with self._gate:  # the driver's cap on opens in flight, if any
                ws = await self._session.ws_connect(
                    self.url,
                    ssl=self._ssl,
                    heartbeat=None,
                    autoping=False,
                    autoclose=True,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=None),
                    max_msg_size=MAX_MESSAGE,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._emit(SocketOpenFailed(self.conn, classify(exc), describe(exc)))
            return
        self._ws = ws
        if self._silenced:  # aborted while the upgrade finished
            _abort_transport(ws)
            return
        self._emit(SocketOpened(self.conn))
        self._spawn(self._write(ws))
        try:
            code, reason = await self._read(ws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let one socket take the driver down
            log.warning("gateway socket %s read failed: %s", self.conn, describe(exc))
            code, reason = DROPPED, ""
        if not self._silenced:  # a close the core started is finished by _close()
            _abort_transport(ws)
            self._emit(SocketClosed(self.conn, code, reason))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
        """Report whole text messages until the socket ends or the core closes it;
        return its close code."""
        # Once the core has started a close, never call receive() again: aiohttp's
        # receive() on a closing socket calls close() itself with code 1000, which
        # would beat our own close frame (4000 ...) to the wire when a frame arrived
        # just as the close began, and the server would end the session.
        while not self._silenced:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._emit(SocketText(self.conn, msg.data))
            elif msg.type is aiohttp.WSMsgType.PING:
                # Protocol-level courtesy (RFC 6455); liveness is the core's heartbeat.
                await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                # A close frame: aiohttp has answered it (autoclose).
                return int(msg.data), str(msg.extra or "")
            elif msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PONG):
                continue  # binary frames are not Accord frames
            else:  # CLOSED / ERROR / CLOSING: the stream ended without a close frame
                return DROPPED, ""
        return DROPPED, ""  # closed by the core: _close() finishes the handshake

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            text = await self._outbox.get()
            try:
                await ws.send_str(text)
            except Exception as exc:  # the reader reports the drop
                log.debug("gateway socket %s send failed: %s", self.conn, describe(exc))
                return
            finally:
                self._outbox.task_done()

    async def _close(
        self, ws: aiohttp.ClientWebSocketResponse, code: int, reason: str, timeout: float
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                with contextlib.suppress(ValueError):  # queued frames go out first
                    await self._outbox.join()
                await ws.close(code=code, message=reason.encode())
            self._note("close_handshake_done", {"conn": self.conn, "code": code})
        except TimeoutError:
            log.debug("gateway socket %s: close handshake timed out, aborting", self.conn)
            self._note("close_handshake_timeout", {"conn": self.conn, "aborted": True})
        except Exception as exc:
            log.debug("gateway socket %s close failed: %s", self.conn, describe(exc))
            self._note("close_failed", {"conn": self.conn, "detail": describe(exc)})
        finally:
            _abort_transport(ws)
            for task in list(self._tasks):
                if task is not asyncio.current_task():
                    task.cancel()


def _abort_transport(ws: aiohttp.ClientWebSocketResponse) -> None:
    """aiohttp has no public abort for a client WebSocket: reach the transport."""
    response = ws._response
    connection = response.connection
    if connection is not None and connection.transport is not None:
        connection.transport.abort()
    response.close()
