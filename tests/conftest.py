"""Shared fixtures: one trustme test CA per session, and a server certificate for
127.0.0.1/localhost. The client trusts `ca_file`; servers use `server_ssl`."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
import trustme

# tests/stack needs a Docker engine and the rig image: its own CI stage
# (scripts/stack test) runs it, where a missing engine fails the stage.
collect_ignore = [] if os.environ.get("ACCORD_RIG_STACK_TESTS") else ["stack"]


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "test-ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_ssl(test_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context
