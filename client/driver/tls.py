"""The client's TLS settings: verified certificates, a configurable trust store."""

from __future__ import annotations

import ssl
from pathlib import Path


def client_ssl_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """Certificates and host names are always verified; `ca_file` (PEM) replaces the
    system trust store, e.g. with the rig's trustme test CA."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
