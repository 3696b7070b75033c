"""Synthetic timelines for the engine's unit tests: the records the recorder would
write for a few well-known stories, without any socket."""

from __future__ import annotations

import json
from typing import Any

from client.core.io import RngDraw, SetTimer
from client.timeline import Timeline

GATEWAY = "wss://127.0.0.1:9001/ws?v=1&encoding=json"
REST = "https://127.0.0.1:9000/api/v1"


def backoff_draw(attempt: int, value: float) -> dict[str, Any]:
    """alpha's backoff jitter draw, with the fields the core's RngDraw carries."""
    draw = RngDraw(
        "alpha:gateway", f"backoff attempt {attempt}", value, "alpha", "backoff", attempt
    )
    return {f: getattr(draw, f) for f in draw.__slots__}


def backoff_timer(at: float, delay: float, attempt: int = 1) -> dict[str, Any]:
    """alpha's backoff timer, with the fields the core's SetTimer carries."""
    timer = SetTimer("alpha:gateway:backoff", at, delay, "alpha", "gateway", "backoff", attempt)
    return {f: getattr(timer, f) for f in timer.__slots__}


class Story:
    """Builds a timeline record by record, in time order."""

    def __init__(self) -> None:
        self.timeline = Timeline(origin=0.0)
        self.conn = 0
        self.req = 0

    def signal(self, t: float, name: str, *args: Any) -> Story:
        self.timeline.add(t, "client", "signal", name, {"args": list(args)})
        return self

    def effect(self, t: float, effect: str, **data: Any) -> Story:
        """As the Recorder files effects: timers and draws under their own kinds."""
        kind = {"SetTimer": "timer", "CancelTimer": "timer", "RngDraw": "rng"}.get(effect, "effect")
        record_name = data["purpose"] if effect == "RngDraw" else effect
        self.timeline.add(t, "client", kind, record_name, data)
        return self

    def transport(self, t: float, name: str, **data: Any) -> Story:
        self.timeline.add(t, "client", "input", name, data)
        return self

    def step(self, start: float, end: float, index: int, kind: str = "pause") -> Story:
        """A rig step record pair (index is 0-based, as the runner writes it)."""
        self.timeline.add(start, "rig", "step", kind, {"phase": "start", "index": index})
        self.timeline.add(end, "rig", "step", kind, {"phase": "end", "index": index})
        return self

    def server(self, t: float, kind: str, name: str, server: str = "alpha", **data: Any) -> Story:
        """A fake-server history record as the runner merges it (src server:NAME)."""
        self.timeline.add(t, f"server:{server}", kind, name, data)
        return self

    def open_socket(self, t: float) -> int:
        self.conn += 1
        self.effect(t, "OpenSocket", conn=self.conn, url=GATEWAY)
        return self.conn

    def send_frame(self, t: float, conn: int, frame: dict[str, Any]) -> Story:
        return self.effect(t, "SendText", conn=conn, text=json.dumps(frame))

    def post(
        self, t: float, nonce: str, content: str, status: int | None, channel: str = "c1"
    ) -> int:
        """A send's HTTP request, answered with `status` (None: no answer)."""
        self.req += 1
        body = json.dumps({"content": content, "nonce": nonce})
        self.effect(
            t,
            "HttpRequest",
            req=self.req,
            method="POST",
            url=f"{REST}/channels/{channel}/messages",
            headers=[],
            body=body,
        )
        if status is not None:
            self.transport(
                t + 0.01, "HttpResponse", req=self.req, status=status, headers=[], body="{}"
            )
        return self.req


def connected_story(resume_at: float = 1.09) -> Story:
    """alpha connects, the user selects #general, the connection drops (1006),
    attempt 1 resumes, sync ends with the green banner."""
    s = Story()
    s.signal(0.0, "server_added", "alpha")
    s.signal(0.0, "server_connecting", "alpha")
    conn = s.open_socket(0.01)
    s.send_frame(0.02, conn, {"op": 2, "data": {}})
    s.signal(0.05, "server_connected", "alpha")
    s.signal(0.05, "channel_selected", "alpha", "c1", "general")
    s.signal(0.06, "server_synced", "alpha")
    s.transport(1.0, "SocketClosed", conn=conn, code=1006, reason="")
    s.signal(1.0, "server_disconnected", "alpha", 1006, "")
    s.signal(1.0, "server_reconnecting", "alpha", 1, 10)
    s.effect(1.0, "RngDraw", **backoff_draw(1, 0.5))
    s.effect(1.0, "SetTimer", **backoff_timer(1.075, 0.075))
    conn2 = s.open_socket(1.08)
    s.send_frame(resume_at, conn2, {"op": 3, "data": {}})
    s.signal(1.1, "server_reconnected", "alpha")
    s.signal(1.2, "server_synced", "alpha")
    s.signal(2.0, "message_sending", "alpha", "c1", "later", "n9")  # keeps the clock going
    return s
