"""Small socket helpers for the chaos tests (client side of the echo server)."""

from __future__ import annotations

import asyncio
import time


async def open_conn(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)


async def round_trip(port: int, payload: bytes = b"ping\n", timeout: float = 5.0) -> float:
    """Seconds from send to the whole echo on a fresh connection."""
    reader, writer = await open_conn(port)
    try:
        started = time.monotonic()
        writer.write(payload)
        await writer.drain()
        received = await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
        assert received == payload
        return time.monotonic() - started
    finally:
        writer.close()


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    """Everything until EOF (a reset propagates as ConnectionResetError)."""
    data = b""
    async with asyncio.timeout(timeout):
        while chunk := await reader.read(65536):
            data += chunk
    return data


class EchoServer:
    """Echoes every chunk; on a chunk ending in b"close\\n" it closes the connection."""

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
                if chunk.endswith(b"close\n"):
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
