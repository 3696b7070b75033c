"""TLS material: a trustme test CA generated beside the database, or given files."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

from fake_server.config import ServerConfig


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None


def ensure_test_pki(directory: Path, names: Sequence[str] = ()) -> TlsFiles:
    """Create the CA and a 127.0.0.1/localhost certificate once; reuse them afterwards.

    `names`: more DNS names for the certificate (e.g. `toxiproxy`, the host a client
    in a container dials); a restart on the same database passes the same names."""
    files = TlsFiles(
        cert=directory / "server.pem", key=directory / "server-key.pem", ca=directory / "ca.pem"
    )
    if files.cert.exists() and files.key.exists() and files.ca is not None and files.ca.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost", *names)
    # Key first, CA last: a half-written set is regenerated on the next start.
    leaf.private_key_pem.write_to_path(str(files.key))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert), append=True)
    ca.cert_pem.write_to_path(str(files.ca))
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
