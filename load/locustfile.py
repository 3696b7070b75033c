"""Locust load test: every simulated user is a real accord-rig client.

    locust -f load/locustfile.py --headless -u 50 -r 10 -t 60s \
        --host https://127.0.0.1:PORT        # a fake server (or any Accord server)

Environment: ACCORD_RIG_CA (the server's CA bundle; the fake server prints it as
"ca"), ACCORD_LOAD_TIMEOUT (seconds per operation, default 30), ACCORD_LOAD_REPORT
(a file each user appends `{"user", "accepted"}` to when it stops: the clients' own
count of accepted sends, to check against the server). Reported requests:
`connect` (register + the full first-connect sequence to synced) and
`send_message` (SendMessage until the server accepted it), both type "client".
"""

from __future__ import annotations

# locust first: it monkey-patches the process with gevent, and ssl (imported by
# aiohttp and the client below) must come after that patching.
from locust import User, between, events, task  # isort: skip

import itertools
import json
import os
import time
import uuid
from typing import Any

from load.bridge import AsyncioBridge
from load.session import ChatSession, Timed

TIMEOUT = float(os.environ.get("ACCORD_LOAD_TIMEOUT", "30"))
_bridge: AsyncioBridge | None = None
_ids = itertools.count(1)
_run = uuid.uuid4().hex[:6]


def bridge() -> AsyncioBridge:
    global _bridge
    if _bridge is None:
        _bridge = AsyncioBridge()
    return _bridge


def report(name: str, timed: Timed) -> None:
    events.request.fire(  # type: ignore[no-untyped-call]
        request_type="client",
        name=name,
        response_time=timed.seconds * 1000.0,
        response_length=0,
        exception=RuntimeError(timed.error) if timed.error else None,
        context={},
    )


class ChatUser(User):
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        number = next(_ids)
        ca = os.environ.get("ACCORD_RIG_CA")
        if not ca:
            raise RuntimeError("set ACCORD_RIG_CA to the server's CA bundle (PEM)")
        self.session = ChatSession(str(self.host), f"load-{_run}-{number}", ca, seed=number)
        self.sent = 0
        report("connect", self._call(self.session.connect(TIMEOUT)))

    @task
    def send_message(self) -> None:
        self.sent += 1
        text = f"{self.session.username} message {self.sent} at {time.time():.3f}"
        report("send_message", self._call(self.session.send(text, TIMEOUT)))

    def on_stop(self) -> None:
        accepted = self._call(self.session.settle(TIMEOUT))
        report_path = os.environ.get("ACCORD_LOAD_REPORT")
        if report_path and isinstance(accepted, int):
            with open(report_path, "a") as f:  # one short write per user
                f.write(json.dumps({"user": self.session.username, "accepted": accepted}) + "\n")
        self._call(self.session.close())

    def _call(self, coro: Any) -> Any:
        try:
            return bridge().run(coro, TIMEOUT + 5)
        except Exception as exc:  # a load run reports failures, it does not stop
            return Timed(TIMEOUT, f"{type(exc).__name__}: {exc}")
