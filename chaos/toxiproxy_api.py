"""An asyncio adapter over the toxiproxy-python package.

toxiproxy-python 0.1.1 is synchronous (requests), keeps the server's host and
port as class attributes of `APIConsumer`, and its high-level objects set no
timeouts. So this adapter:
- calls `APIConsumer.get/post/delete` (the package's HTTP layer and its
  409/404/400 exception mapping), which pass `timeout=` through to requests;
  the high-level `Toxiproxy`/`Proxy` objects cannot take a timeout, and
  `Proxy.add_toxic()` returns nothing, so they are not used;
- runs every call in a thread (`asyncio.to_thread`), bounded by a timeout;
- holds one process-wide lock while it sets host/port and makes the call, so
  two adapters for two servers never cross;
- retries on 503 and on connection errors/timeouts (Toxiproxy can answer 503
  or stall while removing toxics under load: upstream issues #159, #412, #558).
`requests` and `toxiproxy` are imported lazily: importing them before locust
breaks locust's gevent patching (toolchain-facts.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

_CONSUMER_LOCK = threading.Lock()


class ToxiproxyError(RuntimeError):
    """A Toxiproxy control call failed; the message says which call and why."""


class ProxyNotFound(ToxiproxyError):
    pass


class ProxyExists(ToxiproxyError):
    pass


class ToxicRejected(ToxiproxyError):
    """Toxiproxy answered 400: an attribute or toxic it does not accept."""


class ToxiproxyApi:
    """Async control of one Toxiproxy server at `host:port`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        retry_backoff: float = 0.2,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ calls

    async def version(self) -> str:
        response = await self._call("get", "/version")
        if isinstance(response, dict):  # v2.12 answers {"version": ...}
            return str(response.get("version", ""))
        return str(response).strip()

    async def proxies(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = await self._call("get", "/proxies")
        return result

    async def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> dict[str, Any]:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        try:
            created: dict[str, Any] = await self._call("post", "/proxies", body)
        except ProxyExists:
            # A retried POST whose first try went through: accept it if it is ours.
            existing: dict[str, Any] = await self._call("get", f"/proxies/{name}")
            if existing.get("upstream") != upstream:
                raise
            return existing
        return created

    async def delete_proxy(self, name: str) -> None:
        # Already gone is fine (or a retried delete whose first try went through).
        with contextlib.suppress(ProxyNotFound):
            await self._call("delete", f"/proxies/{name}")

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("post", f"/proxies/{name}", {"enabled": enabled})
        return result

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("get", f"/proxies/{proxy}/toxics")
        return result

    async def add_toxic(self, proxy: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("post", f"/proxies/{proxy}/toxics", body)
        return result

    async def remove_toxic(self, proxy: str, toxic: str) -> None:
        with contextlib.suppress(ProxyNotFound):  # already gone is fine
            await self._call("delete", f"/proxies/{proxy}/toxics/{toxic}")

    async def reset(self) -> None:
        """Every proxy enabled, every toxic removed (on the whole server: tools only)."""
        await self._call("post", "/reset")

    # ------------------------------------------------------------------ plumbing

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # The thread's own requests timeout bounds each try; this bounds the whole.
        overall = (self.timeout + self.retry_backoff * 4) * (self.retries + 1)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a Ctrl-C's
            # cancellation that lands as the call finishes.
            async with asyncio.timeout(overall):
                return await asyncio.to_thread(self._call_blocking, method, path, body)
        except TimeoutError:
            raise ToxiproxyError(
                f"{method.upper()} {self.url}{path}: no answer within {overall:.1f}s"
            ) from None

    def _call_blocking(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        import requests  # lazily: see the module docstring
        from toxiproxy import exceptions as tp_errors

        what = f"{method.upper()} {self.url}{path}"
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))  # retry backoff
            try:
                response = self._send(method, path, body)
            except tp_errors.NotFound as exc:
                raise ProxyNotFound(f"{what}: not found: {_text(exc)}") from None
            except tp_errors.ProxyExists as exc:
                raise ProxyExists(f"{what}: already exists: {_text(exc)}") from None
            except tp_errors.InvalidToxic as exc:
                raise ToxicRejected(f"{what}: rejected: {_text(exc)}") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 503:
                last_problem = "503 Service Unavailable"
                continue
            if response.status_code >= 400:
                raise ToxiproxyError(f"{what}: HTTP {response.status_code}: {response.text}")
            if response.status_code == 204 or not response.content:
                return None
            if "json" in response.headers.get("Content-Type", ""):
                return response.json()
            return response.text
        raise ToxiproxyError(f"{what}: failed after {self.retries + 1} tries: {last_problem}")

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        from toxiproxy.api import APIConsumer

        with _CONSUMER_LOCK:
            APIConsumer.host = self.host
            APIConsumer.port = self.port
            if method == "get":
                return APIConsumer.get(path, timeout=self.timeout)
            if method == "post":
                return APIConsumer.post(path, json=body, timeout=self.timeout)
            if method == "delete":
                return APIConsumer.delete(path, timeout=self.timeout)
            raise ValueError(f"unsupported method {method!r}")


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace").strip()
    return str(arg).strip()
