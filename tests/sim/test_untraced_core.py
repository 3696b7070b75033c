"""A core built with `trace=False` (benchmarks, load crowds) does the same I/O and
emits the same signals as a traced one; only timer, draw and log effects are gone."""

from __future__ import annotations

import json
import re
from typing import Any

from client.core.client import ClientCore
from client.core.io import (
    IO_EFFECTS,
    CancelTimer,
    Effect,
    HttpRequest,
    Log,
    RngDraw,
    SendText,
    SetTimer,
    Signal,
)
from client.core.timings import Timings
from sim.world import SimWorld, one_server

TRACE_ONLY = (SetTimer, CancelTimer, RngDraw, Log)


class _Everything:
    """A stepper that keeps every effect the core makes and performs the I/O ones."""

    def __init__(self, core: ClientCore) -> None:
        self.core = core
        self.seen: list[Effect] = []

    def _take(self) -> list[Effect]:
        effects = self.core.take_effects()
        self.seen.extend(effects)
        return [e for e in effects if isinstance(e, IO_EFFECTS)]

    def handle(self, now: float, event: Any) -> list[Effect]:
        self.core.handle(now, event)
        return self._take()

    def advance(self, now: float) -> list[Effect]:
        self.core.advance(now)
        return self._take()

    def next_deadline(self, now: float) -> float | None:
        return self.core.next_deadline()


def _run(trace: bool) -> list[Effect]:
    world = SimWorld(7)
    connect = one_server(world)
    core = ClientCore(timings=Timings(), seed=7, trace=trace)
    stepper = _Everything(core)
    world.attach(stepper)
    for action in connect:
        world.client_input(action)
    world.run_until(30.0)
    world.net.set_enabled("alpha.gateway", False)  # an outage: retries with backoff
    world.clock.call_later(12.0, lambda: world.net.set_enabled("alpha.gateway", True))
    world.run_until(90.0)
    assert core.status("alpha") == "connected"
    return stepper.seen


def _shape(effect: Effect) -> tuple[str, ...]:
    """What to compare: each run's fake server makes its own snowflake ids."""
    if isinstance(effect, Signal):
        return ("signal", effect.name)
    if isinstance(effect, HttpRequest):
        return ("http", effect.method, re.sub(r"\d{6,}", "<id>", effect.url))
    if isinstance(effect, SendText):
        return ("text", str(json.loads(effect.text).get("op")))
    return (type(effect).__name__,)


def test_an_untraced_core_does_the_same_io_and_signals_without_trace_effects() -> None:
    traced, untraced = _run(True), _run(False)
    assert any(isinstance(e, TRACE_ONLY) for e in traced)
    assert not any(isinstance(e, TRACE_ONLY) for e in untraced)
    kept = [_shape(e) for e in traced if isinstance(e, (*IO_EFFECTS, Signal))]
    assert [_shape(e) for e in untraced] == kept
    assert ("signal", "server_reconnected") in kept
