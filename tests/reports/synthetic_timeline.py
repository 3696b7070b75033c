"""A synthetic timeline of one outage, shaped like the rig's real records."""

from __future__ import annotations

from typing import Any


def _signal(t: float, name: str, *args: Any) -> dict[str, Any]:
    return {"t": t, "src": "client", "kind": "signal", "name": name, "data": {"args": list(args)}}


def _banner(t: float, server: str, color: str | None, text: str) -> dict[str, Any]:
    prefix = f"servers.{server}.banner"
    return {
        "t": t,
        "src": "ui",
        "kind": "view",
        "name": "diff",
        "data": {
            "changes": {
                f"{prefix}.visible": [None, color is not None],
                f"{prefix}.color": [None, color],
                f"{prefix}.text": [None, text],
            }
        },
    }


def _step(
    t: float, phase: str, index: int, kind: str, text: str, ok: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {"phase": phase, "index": index, "line": 10 + index, "text": text}
    if phase == "end":
        data["ok"] = ok
    return {"t": t, "src": "rig", "kind": "step", "name": kind, "data": data}


def _fault(
    t: float, phase: str, name: str, fault_id: str, target: str, **extra: Any
) -> dict[str, Any]:
    data = {"phase": phase, "id": fault_id, "target": target, **extra}
    return {"t": t, "src": "chaos", "kind": "fault", "name": name, "data": data}


def outage_timeline(failed_last_step: bool = False) -> list[dict[str, Any]]:
    """alpha loses its gateway (latency, then down), queues two sends, recovers; beta stays up."""
    hidden = {"visible": False, "color": None, "text": "", "button": None}
    records: list[dict[str, Any]] = [
        {
            "t": 0.0,
            "src": "ui",
            "kind": "view",
            "name": "snapshot",
            "data": {"mode": "CONNECTING", "servers": {}, "banner": hidden},
        },
        _step(0.0, "start", 0, "connect", "connect: alpha"),
        _signal(0.01, "server_connecting", "alpha"),
        _banner(0.01, "alpha", "yellow", "Connecting..."),
        _signal(0.02, "server_connecting", "beta"),
        _signal(0.30, "server_connected", "alpha"),
        _banner(0.30, "alpha", None, ""),
        _signal(0.32, "server_connected", "beta"),
        _signal(0.45, "server_synced", "alpha"),
        _signal(0.46, "server_synced", "beta"),
        _step(0.5, "end", 0, "connect", "connect: alpha"),
        _step(0.5, "start", 1, "toxic", "toxic: {proxy: alpha.gateway, type: latency}"),
        _fault(
            0.55,
            "start",
            "latency",
            "latency-1",
            "alpha.gateway",
            stream="downstream",
            attributes={"latency": 1000, "jitter": 0},
        ),
        _step(0.56, "end", 1, "toxic", "toxic: {proxy: alpha.gateway, type: latency}"),
        _step(0.56, "start", 2, "down", "down: alpha.gateway"),
        _fault(1.0, "start", "down", "down-2", "alpha.gateway"),
        _fault(1.0, "end", "latency", "latency-1", "alpha.gateway"),
        _signal(1.01, "server_disconnected", "alpha", 1006, ""),
        _banner(1.01, "alpha", "yellow", "Connection lost. Reconnecting..."),
        _step(1.02, "end", 2, "down", "down: alpha.gateway"),
        _step(1.02, "start", 3, "send", "send: {channel: alpha/general, text: hello}"),
        _signal(1.05, "queue_changed", "alpha", 1),
        _signal(1.10, "queue_changed", "alpha", 2),
        _step(1.12, "end", 3, "send", "send: {channel: alpha/general, text: hello}"),
    ]
    for attempt, t in enumerate((1.2, 1.5, 2.0), start=1):
        records.append(_signal(t, "server_reconnecting", "alpha", attempt, 10))
        records.append(_banner(t, "alpha", "yellow", f"Reconnecting... (attempt {attempt}/10)"))
    records += [
        _step(2.1, "start", 4, "heal", "heal: all"),
        _fault(2.2, "end", "down", "down-2", "alpha.gateway"),
        _step(2.25, "end", 4, "heal", "heal: all"),
        _fault(2.3, "start", "freeze", "freeze-3", "beta"),
        _signal(2.4, "server_reconnected", "alpha"),
        _banner(2.4, "alpha", "yellow", "Reconnected — syncing data..."),
        _signal(2.6, "server_synced", "alpha"),
        _banner(2.6, "alpha", "green", "Reconnected!"),
        _signal(2.7, "queue_changed", "alpha", 1),
        _signal(2.8, "queue_changed", "alpha", 0),
        _step(2.8, "start", 5, "wait_for", "wait_for: {banner: hidden, within: 4s}"),
        _banner(3.2, "alpha", None, ""),
        _step(3.3, "end", 5, "wait_for", "wait_for: {banner: hidden, within: 4s}",
              ok=not failed_last_step),
        {"t": 3.4, "src": "client", "kind": "log", "name": "info", "data": {"message": "done"}},
    ]  # fmt: skip
    return records
