"""TLS material: a trustme test CA generated beside the database, or given files."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from fake_server.config import ServerConfig


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None


DEFAULT_NAMES = ("127.0.0.1", "localhost")


def ensure_test_pki(directory: Path, extra_names: tuple[str, ...] = ()) -> TlsFiles:
    """Create the CA and a certificate for 127.0.0.1, localhost and `extra_names` once;
    reuse them afterwards (so a running client keeps trusting them). A different set of
    names makes a new CA and certificate."""
    files = TlsFiles(
        cert=directory / "server.pem", key=directory / "server-key.pem", ca=directory / "ca.pem"
    )
    names = list(dict.fromkeys((*DEFAULT_NAMES, *extra_names)))
    names_file = directory / "names.txt"
    recorded = (
        names_file.read_text().split() if names_file.exists() else list(DEFAULT_NAMES)
    )
    if (
        files.cert.exists() and files.key.exists() and files.ca is not None
        and files.ca.exists() and sorted(recorded) == sorted(names)
    ):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    names_file.unlink(missing_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(*names)
    # Key first, CA last: a half-written set is regenerated on the next start.
    leaf.private_key_pem.write_to_path(str(files.key))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert), append=True)
    ca.cert_pem.write_to_path(str(files.ca))
    names_file.write_text("\n".join(names) + "\n")
    return files


def resolve_tls(config: ServerConfig) -> TlsFiles:
    if config.tls_cert is not None and config.tls_key is not None:
        return TlsFiles(cert=config.tls_cert, key=config.tls_key, ca=config.tls_ca)
    return ensure_test_pki(config.tls_dir, config.tls_names)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    except (OSError, ssl.SSLError) as exc:
        raise OSError(f"cannot load TLS certificate {files.cert} / key {files.key}: {exc}") from exc
    return ctx


def client_context(ca: Path) -> ssl.SSLContext:
    """A verifying client context that trusts `ca` (for tests and the bench)."""
    return ssl.create_default_context(cafile=str(ca))


TLS_READ_BUFFER = 32 * 1024


def small_tls_read_buffers(size: int = TLS_READ_BUFFER) -> None:
    """Make asyncio's per-connection TLS read buffer `size` bytes, process-wide.

    Python 3.11's `asyncio.sslproto.SSLProtocol` allocates a zero-filled 256 KiB
    read buffer for every TLS connection (its `max_size` class attribute), so a
    thousand gateway sockets plus their REST keep-alive connections held about
    half a gigabyte of buffers in the fake server (and as much again in the
    crowd). A TLS record is at most 16 KiB, so 32 KiB still reads a whole record
    per call; larger frames simply take more calls."""
    import asyncio.sslproto

    asyncio.sslproto.SSLProtocol.max_size = size
