"""`classify`: every network exception maps to one NetError. The real-socket
rows are in test_driver_transport.py; this covers the rows a loopback socket
cannot produce without touching the network (DNS) and the ordering of the
aiohttp exception hierarchy."""

from __future__ import annotations

import socket
import ssl
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from client.core.io import NetError
from client.driver.errors import classify, describe

KEY: Any = SimpleNamespace(host="accord.invalid", port=443, ssl=True)
NO_REQUEST: Any = None


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name unknown")), NetError.DNS),
        (aiohttp.ClientConnectorError(KEY, socket.gaierror(-3, "Try again")), NetError.DNS),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
            NetError.REFUSED,
        ),
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError(104, "reset")), NetError.REFUSED),
        (aiohttp.ClientConnectorSSLError(KEY, ssl.SSLEOFError(8, "EOF")), NetError.REFUSED),
        (
            aiohttp.ClientConnectorCertificateError(
                KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
            ),
            NetError.TLS,
        ),
        (aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "wrong version")), NetError.TLS),
        (aiohttp.ClientConnectorError(KEY, OSError(101, "Network is unreachable")), NetError.OTHER),
        (aiohttp.ServerDisconnectedError(), NetError.NO_RESPONSE),
        (aiohttp.ClientPayloadError("truncated"), NetError.NO_RESPONSE),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), NetError.NO_RESPONSE),
        (aiohttp.ClientOSError(32, "Broken pipe"), NetError.NO_RESPONSE),
        (aiohttp.ClientOSError(113, "No route to host"), NetError.OTHER),
        (ConnectionResetError(104, "reset"), NetError.NO_RESPONSE),
        (aiohttp.WSServerHandshakeError(NO_REQUEST, (), status=503), NetError.OTHER),
        (ValueError("odd"), NetError.OTHER),
    ],
)
def test_classify(exc: BaseException, expected: NetError) -> None:
    assert classify(exc) is expected


def test_client_os_error_caused_by_a_reset_is_no_response() -> None:
    exc = aiohttp.ClientOSError("write failed")
    exc.__cause__ = ConnectionResetError(104, "reset")
    assert classify(exc) is NetError.NO_RESPONSE


def test_describe_is_short_and_names_the_type() -> None:
    text = describe(aiohttp.ServerDisconnectedError())
    assert text.startswith("ServerDisconnectedError")
    assert len(describe(ValueError("x" * 1000))) <= 300
