"""The client core's tables rendered as Markdown, from the code that runs them
(as h11 draws its state diagrams), so docs/architecture.md cannot drift:
`python -m client.tables_doc` writes them between the markers, and
tests/client/core/test_core_tables.py fails when the page is out of date.

Pure: this module only formats what the tables hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from client.core import gateway_policy as gw
from client.core import purposes, session, signals, steps
from client.core.protocol import CloseCode, Reason4000, Status, close_text
from client.core.timers import Machine, TimerKey, TimerKind


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _names(items: Iterable[object]) -> str:
    return ", ".join(f"`{getattr(i, 'value', i)}`" for i in items)


def session_table() -> list[str]:
    order = list(Status)
    rows = [
        (f"`{event.value}`", _names(s for s in order if s in sources), f"`{target.value}`", when)
        for event, (sources, target, when) in session.TRANSITIONS.items()
    ]
    guards = [
        ("user Reconnect allowed in", session.CAN_RECONNECT),
        ("a send is refused in", session.SEND_REFUSED),
        ("a send is queued in (or while the queue is not empty)", session.SEND_QUEUED),
        ("opening a channel loads its messages in", session.LOADS_MESSAGES),
    ]
    return [
        "Per-server session (`client/core/session.py`, `Session.go` raises on any other move).",
        "`syncing` reads as status `connected` with `syncing(server)` true.",
        "",
        *_table(("event", "from", "to", "when / guard"), rows),
        "",
        *_table(
            ("guard", "phases"),
            ((name, _names(s for s in order if s in phases)) for name, phases in guards),
        ),
    ]


def gateway_tables() -> list[str]:
    way_in = [
        (f"`{phase.value}`", f"`{event}`", f"`{target.value}`")
        for (phase, event), target in gw.TRANSITIONS.items()
    ]
    way_out = [
        (
            str(i),
            e.when,
            f"`{e.then.value}`" + (" (attempt count restarts)" if e.restart_attempts else ""),
            _names(e.reports) or "—",
        )
        for i, e in enumerate(gw.ENDINGS, 1)
    ]
    return [
        "Gateway, the way in (`client/core/gateway_policy.py` `TRANSITIONS`):",
        "",
        *_table(("phase", "event", "next phase"), way_in),
        "",
        "Gateway, the way out (`ENDINGS`): when a connection ends, the first row that"
        " applies (a BACKOFF after INVALID_SESSION waits 1-5 s first).",
        "",
        *_table(("#", "when", "next phase", "reported to the session"), way_out),
        "",
        *_table(("switch", "bends the way out"), gw.BUG_EXITS),
    ]


def step_tables() -> list[str]:
    def rows(table: Sequence[steps.Step]) -> list[tuple[str, str, str, str]]:
        return [
            (str(i), f"`{s.method} {s.path}`", s.on_ok, s.on_failure)
            for i, s in enumerate(table, 1)
        ]

    head = ("#", "request", "on success", "on failure")
    return [
        "Connect chain (`client/core/steps.py` `CONNECT_CHAIN`), then one gateway attempt:",
        "",
        *_table(head, rows(steps.CONNECT_CHAIN)),
        "",
        "Refetch after READY/RESUMED (`REFETCH`), then `server_synced` and the queue flush:",
        "",
        *_table(head, rows(steps.REFETCH)),
    ]


def purpose_table() -> list[str]:
    rows = [
        (
            f"`{p.__name__}`",
            f"`{p.SCOPE.value}`",
            "re-login, once more" if p.RELOGIN else "its answer",
            (p.__doc__ or "").strip(),
        )
        for p in purposes.PURPOSES
    ]
    return [
        "REST answers (`client/core/purposes.py`): each request names its purpose and a"
        " token (the session's epoch, the purpose's scope); its answer is a `RestAnswered`"
        " event the core drains (`Rest.take_events()`) and dispatches by purpose. The one"
        " staleness check drops an answer once its server is removed, and a `connection`"
        " one once the epoch moved on (connect, loss, READY, teardown). REST timers are keyed"
        " by request id, gateway timers by kind and attempt.",
        "",
        *_table(("purpose", "token scope", "a 401 under way (s.3)", "its answer"), rows),
    ]


def close_code_table() -> list[str]:
    rows = [
        (str(int(c)), c.name.lower(), "FATAL" if c.fatal else "reconnect", c.text)
        for c in CloseCode
    ]
    reasons = [(f"`{r.value}`", close_text(CloseCode.UNKNOWN_ERROR, r)) for r in Reason4000]
    return [
        "Close codes (`client/core/protocol.py` `CloseCode`; the banner and the gateway"
        " both read it):",
        "",
        *_table(("code", "name", "client reaction", "banner text"), rows),
        "",
        *_table(("4000 reason", "banner text"), reasons),
    ]


def signal_status_table() -> list[str]:
    rows = [(f"`{name}`", f"`{status.value}`") for name, status in signals.SIGNAL_STATUS.items()]
    return [
        "Connection signal -> the status it leaves (`client/core/signals.py`"
        " `SIGNAL_STATUS`; the verdict folds `syncing` into `connected`):",
        "",
        *_table(("signal", "status"), rows),
    ]


def timer_table() -> list[str]:
    gateway_kinds = [k for k in TimerKind if k not in _HTTP_KINDS.values()]
    rows = [
        (
            f"`{Machine.GATEWAY.value}`",
            f"`{k.value}`",
            f"`{TimerKey('alpha', Machine.GATEWAY, k).name}`",
        )
        for k in gateway_kinds
    ] + [
        (
            f"`{m.value}`",
            f"`{k.value}`",
            f"`{TimerKey('alpha', m, k, 7).name}`",
        )
        for m, k in _HTTP_KINDS.items()
    ]
    return [
        "Timers (`client/core/timers.py`): a `TimerKey` dispatched by machine and kind;"
        " `SetTimer` carries `server`, `machine`, `kind`, `attempt`, and the display name:",
        "",
        *_table(("machine", "kind", "name (server alpha, id 7)"), rows),
    ]


_HTTP_KINDS = {
    Machine.HTTP: TimerKind.REQUEST_TIMEOUT,
    Machine.HTTP_RETRY: TimerKind.RATE_LIMIT_RETRY,
}


def render(import_graph: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    """Every table, as the Markdown that goes between the markers."""
    parts = [
        session_table(),
        gateway_tables(),
        step_tables(),
        purpose_table(),
        close_code_table(),
        signal_status_table(),
        timer_table(),
    ]
    if import_graph:
        rows = [(f"`{m}`", _names(deps) or "—") for m, deps in import_graph]
        parts.append(
            [
                "Imports inside `client/core` (acyclic; tests/client/core/test_core_tables.py):",
                "",
                *_table(("module", "imports"), rows),
            ]
        )
    return "\n\n".join("\n".join(p) for p in parts) + "\n"
