"""Network exceptions -> `NetError`, classified once, here at the driver boundary.

The core turns a `NetError` into the user's text (client-behaviour.md s.5):
REFUSED `Could not connect to server`, DNS `Could not resolve hostname`, TLS
`TLS/SSL handshake failed`, NO_RESPONSE `No response from server`, OTHER
`Connection error`.
"""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp

from client.core.io import NetError

# The peer went away in the middle of an exchange (TLS handshake or request).
_DROPPED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError)
_DROPPED_ERRNOS = frozenset({errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})


def describe(exc: BaseException) -> str:
    """A short detail for the log: exception type and message, never a header."""
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]


def classify(exc: BaseException) -> NetError:
    """Classify an exception from connecting, sending a request or reading a response."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return NetError.DNS
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return NetError.TLS
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _classify_connect(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return NetError.NO_RESPONSE
    if isinstance(exc, aiohttp.ClientOSError):  # failed while sending or reading
        dropped = exc.errno in _DROPPED_ERRNOS or isinstance(exc.__cause__, _DROPPED)
        return NetError.NO_RESPONSE if dropped else NetError.OTHER
    if isinstance(exc, _DROPPED):
        return NetError.NO_RESPONSE
    if isinstance(exc, ssl.SSLError):
        return NetError.TLS
    return NetError.OTHER


def classify_connect(exc: BaseException) -> NetError:
    """A failure of a plain socket connect or TLS handshake (drivers without aiohttp)."""
    return _classify_connect(exc) if isinstance(exc, OSError) else classify(exc)


def _classify_connect(os_error: OSError) -> NetError:
    """Failures before the connection is usable: TCP connect and TLS handshake."""
    if isinstance(os_error, ConnectionRefusedError):
        return NetError.REFUSED
    if isinstance(os_error, socket.gaierror):
        return NetError.DNS
    if isinstance(os_error, _DROPPED):
        # Closed or reset during the TLS handshake reads as "could not connect" (s.5).
        return NetError.REFUSED
    if isinstance(os_error, ssl.SSLError):  # certificate not trusted, protocol error
        return NetError.TLS
    return NetError.OTHER
