"""The core's tables: docs/architecture.md shows them as the code has them, the
session table is enforced, and client/core imports without cycles."""

from __future__ import annotations

import pytest

from client.core import payloads as pl
from client.core import signals as sig
from client.core.actions import ServerConfig
from client.core.io import Signal
from client.core.payloads import PAYLOADS, decode
from client.core.protocol import Status
from client.core.rest import Rest
from client.core.session import TRANSITIONS, Event, Session
from client.core.timers import Timers
from client.core.timings import Timings
from client.tables_doc import DOC, cycle, import_graph, render


def test_architecture_doc_shows_the_current_tables() -> None:
    text = DOC.read_text()
    assert render(text) == text, "run: python -m client.tables_doc"


def test_client_core_imports_have_no_cycle() -> None:
    graph = import_graph()
    assert {"client", "session", "gateway", "protocol"} <= {m for m, _ in graph}
    assert cycle(graph) is None
    assert cycle([("a", ["b"]), ("b", ["c"]), ("c", ["a"])]) is not None  # it can fail


def _session() -> Session:
    config = ServerConfig("alpha", "https://127.0.0.1:1", "u", "p", "s")
    rest = Rest(
        "alpha",
        config.rest_base,
        out=[],
        timers=Timers([]),
        next_id=lambda: 1,
        timings=Timings(),
        bug_on=lambda bug: False,
    )
    return Session(config=config, rest=rest)


def test_a_move_the_session_table_lacks_raises() -> None:
    srv = _session()
    with pytest.raises(RuntimeError, match="no transition for synced in none"):
        srv.go(Event.SYNCED)
    srv.go(Event.CONNECT)
    srv.go(Event.READY)
    assert (srv.phase, srv.status, srv.syncing) == (Status.SYNCING, Status.CONNECTED, True)
    srv.go(Event.SYNCED)
    assert (srv.status, srv.syncing) == (Status.CONNECTED, False)


def test_every_phase_but_none_is_reachable() -> None:
    targets = {target for _, target, _ in TRANSITIONS.values()}
    assert targets == set(Status) - {Status.NONE}


def test_every_signal_has_one_payload_type() -> None:
    names = {v for k, v in vars(sig).items() if k.isupper() and isinstance(v, str)}
    names -= {sig.REFUSED_DISABLED, sig.REFUSED_QUEUE_FULL}  # reasons, not signals
    assert set(PAYLOADS) == names
    signal = pl.ServerDisconnected("alpha", 4004, "authentication failed").to_signal()
    assert signal == Signal(sig.SERVER_DISCONNECTED, ("alpha", 4004, "authentication failed"))
    assert decode(signal) == pl.ServerDisconnected("alpha", 4004, "authentication failed")
