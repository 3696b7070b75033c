"""`accord-rig explore`: Hypothesis-generated outages, each played in simulation,
checked against the properties every run must have; a failure is shrunk and
written as a scenario file that `accord-rig run` replays on the real stack.

A schedule is a scenario: connect every server, then a generated interleaving of
user actions and faults (each followed by a pause), then the heal (network,
server faults, killed servers restarted, frozen ones thawed) and the liveness
check: every server still configured is connected with an empty queue within
`LIVENESS_BOUND`, pressing Reconnect first if the client had given up (status
error is where the contract leaves it after "Reconnection failed"). The file's
`timeline:` section holds the checks the verdict code makes in both modes
(delivery, backoff formula, RESUME/heartbeat seq); `sim.properties` adds the rest.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from chaos import TOXIC_TYPES
from client.core import signals as signal_names
from client.core.bugs import BUG_NUMBERS
from client.core.protocol import FATAL_CODES, KNOWN_CLOSE_CODES
from scenarios.loader import LoadedScenario, load_scenario
from scenarios.runner import ScenarioResult, StepFailed, StepOutcome
from scenarios.schema import Step
from sim.properties import PROPERTIES_TAG, SendsInFlight
from sim.scenario import SimScenarioRun, sim_options
from sim.world import fewer_full_collections

SERVERS = ("alpha", "beta")
HEARTBEAT = "10s"
TIMESCALE = 0.05  # as the catalogue: the file replays at the same factor on the real stack
# After the heal, the spec's worst case until connected and flushed, for a fault whose
# effect outlives the heal (revoked tokens: every attempt gets INVALID_SESSION until
# attempt 10 escalates to a fresh login): the ten longest backoff waits
# (2+3+5+9+17+5*33 = 201 s) + ten INVALID_SESSION extra waits (50 s) + one attempt's
# open/HELLO/READY timeouts on a connection opened before the heal (30 s) + a REST
# request hung before the heal timing out (30 s) + the refetch (30 s) + 19 s to flush.
LIVENESS_BOUND = "360s"
LIVENESS_SECONDS = 360.0
# Outlasts the longest latency + jitter drawn (15 s + 2 s): an event posted just before
# the heal may still be on its way (explore --bug 2 found "the client lacks 1 of the
# server's messages" after a 1990 ms latency and a 2 s settle, with no bug on).
SETTLE = "20s"
# Every close a server can send (the schema's list; 1006 is the network's, not a code sent).
CLOSE_CODES = [code for code in KNOWN_CLOSE_CODES if code != 1006]
# Half the closes drawn are fatal (s.4: escalation, and a fatal close during re-auth is
# its own branch); the rest spread over every code.
DRAWN_CLOSE_CODES = st.one_of(
    st.sampled_from(sorted(int(c) for c in FATAL_CODES)), st.sampled_from(CLOSE_CODES)
)
PAUSES = (0.0, 0.5, 2.0, 5.0, 12.0, 30.0, 70.0, 180.0)  # seconds, shrinking towards 0
# (180 s outlasts nine backoff waits, 168 s at most: escalation is reachable)
# The user's wait before sending a failed text again: a send failed at once (5xx), or
# one that timed out (the REST timeout is 30 s).
RETRY_PAUSES = (5.0, 35.0, 70.0)
MESSAGES = "/channels/*/messages"
# A generated send of this text is the user sending again the text the composer holds
# restored after a failed send (s.6), resolved when the run reaches it (which send
# fails is known only then) and written to the file as that text; none restored: no step.
RESTORED_TEXT = "(the restored text)"


# ====================================================================== generation


@dataclass
class _State:
    servers: tuple[str, ...]
    killed: set[str] = field(default_factory=set)
    frozen: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)

    def up(self) -> list[str]:
        return [s for s in self.servers if s not in self.killed | self.frozen | self.removed]

    def configured(self) -> list[str]:
        return [s for s in self.servers if s not in self.removed]


Draw = Callable[[st.SearchStrategy[Any]], Any]


def _toxic(draw: Draw, server: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(TOXIC_TYPES))
    attributes: dict[str, Any]
    if kind == "latency":
        attributes = {"latency": draw(st.integers(50, 15000)), "jitter": draw(st.integers(0, 2000))}
    elif kind == "bandwidth":
        attributes = {"rate": draw(st.integers(1, 100))}
    elif kind == "slow_close":
        attributes = {"delay": draw(st.integers(0, 5000))}
    elif kind == "timeout":
        attributes = {"timeout": draw(st.sampled_from([0, 1000, 5000, 20000]))}
    elif kind == "reset_peer":
        attributes = {"timeout": draw(st.integers(0, 5000))}
    elif kind == "slicer":
        size = draw(st.integers(1, 200))
        attributes = {
            "average_size": size,
            "size_variation": draw(st.integers(0, size - 1)),
            "delay": draw(st.integers(0, 20000)),
        }
    else:
        attributes = {"bytes": draw(st.integers(0, 20000))}
    return {
        "toxic": {
            "proxy": f"{server}.{draw(st.sampled_from(['gateway', 'rest']))}",
            "type": kind,
            "stream": draw(st.sampled_from(["downstream", "upstream"])),
            "attributes": attributes,
        }
    }


def _server_fault(draw: Draw, server: str) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "drop",
                "close",
                "close",  # twice: a standing fatal close on IDENTIFY meets re-auth (s.4)
                "reconnect",
                "withhold_acks",
                "invalid_session",
                "rest_fail",
                "rest_hang",
                "rest_rate_limit",
                "request_heartbeat",
                "login_fail",
                "forget_sessions",
                "revoke_tokens",
                "garbage",
            ]
        )
    )
    spec: dict[str, Any] = {"server": server, "kind": kind}
    if kind in ("drop", "close", "invalid_session"):
        # now, or a standing fault on the next handshakes (null count: until healed)
        trigger = draw(st.sampled_from(["now", "on_identify", "on_identify", "on_resume"]))
        if trigger != "now":
            spec |= {"trigger": trigger, "count": draw(st.sampled_from([1, 2, None]))}
    if kind == "close":
        spec["code"] = draw(DRAWN_CLOSE_CODES)
    elif kind == "withhold_acks":
        spec["count"] = draw(st.integers(1, 3))
    elif kind == "invalid_session":
        form = draw(st.sampled_from(["object", "bool"]))
        spec |= {"resumable": draw(st.booleans()), "form": form}
    elif kind in ("rest_fail", "rest_hang", "rest_rate_limit"):
        spec |= {
            "method": draw(st.sampled_from(["POST", "GET", "*"])),
            "path": draw(st.sampled_from([MESSAGES, "*"])),
            "count": draw(st.integers(1, 4)),
        }
        if kind == "rest_fail":
            spec["status"] = draw(st.sampled_from([500, 502, 503, 400, 403, 404]))
        elif kind == "rest_hang":
            spec |= {
                "stage": draw(st.sampled_from(["before", "after"])),
                "seconds": draw(st.sampled_from([None, 5, 20, 45])),
            }
        else:
            spec["retry_after"] = draw(st.sampled_from([0.5, 1, 6, None]))
    elif kind == "login_fail":
        spec |= {"status": draw(st.sampled_from([401, 500])), "count": draw(st.integers(1, 3))}
    return {"server_fault": spec}


def _rest_fault(draw: Draw, server: str) -> dict[str, Any]:
    """A REST fault, mostly on sending (the path the delivery guarantees are about)."""
    kind = draw(st.sampled_from(["rest_fail", "rest_hang", "rest_rate_limit"]))
    spec: dict[str, Any] = {
        "server": server,
        "kind": kind,
        "method": draw(st.sampled_from(["POST", "POST", "*"])),
        "path": draw(st.sampled_from([MESSAGES, MESSAGES, "*"])),
        "count": draw(st.sampled_from([1, 2, 3, 4, None])),
    }
    if kind == "rest_fail":
        spec["status"] = draw(st.sampled_from([500, 503, 400, 403]))
    elif kind == "rest_hang":
        spec |= {
            # after the handler twice: stored, the answer late (an unknown outcome)
            "stage": draw(st.sampled_from(["after", "after", "before"])),
            "seconds": draw(st.sampled_from([45, None, 5])),
        }
    else:
        spec["retry_after"] = draw(st.sampled_from([0.5, 6, None]))
    return {"server_fault": spec}


# The op kinds drawn, with repeats as weights: sends (and bursts past the queue's 20)
# and REST faults on sending are what delivery is about, an outage of the gateway
# alone (REST up) is what queues them, and a heal of one proxy keeps the server's
# REST faults standing into the flush (s.6: flush failures); a standing close on the
# next IDENTIFY meets the re-authentication's own attempt (s.4).
OP_MIX = (
    # First, where shrinking moves each op: "thaw" is no step unless a server is
    # frozen, so shrinking an op to it deletes the op.
    "thaw",
    *("send",) * 3,
    *("send_burst",) * 2,
    *("rest_fault",) * 2,
    "toxic",
    *("proxy_down",) * 2,
    *("heal",) * 2,
    "server_close",
    *("server_fault",) * 2,
    "user_post",
    "kill",
    "restart",
    "freeze",
    "resend",
    # send, wait for the outcome, send the restored text again: one op, so a send
    # whose outcome is unknown (a POST hung past the handler) is sent twice (s.6)
    "send_retry",
    "edit",
    "delete",
    "select",
    "reconnect",
    "remove",
)


def _op(draw: Draw, state: _State, number: int) -> dict[str, Any] | list[dict[str, Any]] | None:
    """One generated step (or a user's few), or None when nothing applies (all
    servers down/removed)."""
    kind = draw(st.sampled_from(OP_MIX))
    configured, up = state.configured(), state.up()
    if not configured:
        return None
    server = draw(st.sampled_from(configured))
    channel = f"{server}/general"
    if kind == "send":
        text = f"m{number}"
        state.texts.append(text)
        return {"send": {"channel": channel, "text": text}}
    if kind == "send_burst":  # 21 and 24 go past the queue's capacity (20)
        text = f"b{number}-{{n}}"
        repeat = draw(st.sampled_from([2, 5, 21, 24]))
        return {"send": {"channel": channel, "text": text, "repeat": repeat}}
    if kind == "resend":  # the text the composer holds restored, when the run gets here
        return {"send": {"channel": channel, "text": RESTORED_TEXT}}
    if kind == "send_retry":
        text = f"m{number}"
        state.texts.append(text)
        return [
            {"send": {"channel": channel, "text": text}},
            {"pause": f"{draw(st.sampled_from(RETRY_PAUSES)):g}s"},
            {"send": {"channel": channel, "text": RESTORED_TEXT}},
        ]
    if kind in ("edit", "delete") and state.texts:
        target = draw(st.sampled_from(state.texts))
        if kind == "edit":
            return {"edit": {"channel": channel, "message": target, "text": f"{target} (edited)"}}
        return {"delete": {"channel": channel, "message": target}}
    if kind == "select":
        return {"select_channel": f"{server}/{draw(st.sampled_from(['general', 'random']))}"}
    if kind == "reconnect":
        return {"reconnect": server}
    if kind == "remove" and len(configured) > 1:
        state.removed.add(server)
        return {"remove_server": server}
    if kind == "toxic":
        return _toxic(draw, server)
    if kind == "proxy_down":
        target = draw(
            st.sampled_from([server, f"{server}.gateway", f"{server}.gateway", f"{server}.rest"])
        )
        return {"proxy_down": target}
    if kind == "heal":  # all / SERVER: also its server faults; SERVER.proxy: that proxy only
        gateway = f"{server}.gateway"
        target = draw(st.sampled_from(["all", server, gateway, gateway, f"{server}.rest"]))
        return {"heal": target}
    if kind == "kill" and server in up:
        state.killed.add(server)
        return {"kill_server": server}
    if kind == "restart" and server in state.killed:
        state.killed.discard(server)
        return {"restart_server": server}
    if kind == "freeze" and server in up:
        state.frozen.add(server)
        return {"freeze_server": server}
    if kind == "thaw" and server in state.frozen:
        state.frozen.discard(server)
        return {"thaw_server": server}
    if server not in up:
        return None
    if kind == "server_close":
        return {"server_close": {"server": server, "code": draw(DRAWN_CLOSE_CODES)}}
    if kind == "server_fault":
        return _server_fault(draw, server)
    if kind == "rest_fault":
        return _rest_fault(draw, server)
    if kind == "user_post":
        return {"user_post": {"channel": channel, "text": f"bob {number}"}}
    return None


@dataclass(frozen=True)
class Schedule:
    servers: tuple[str, ...]
    seed: int
    steps: tuple[dict[str, Any], ...]  # the generated part (ops and pauses)

    def __repr__(self) -> str:
        return f"Schedule(servers={self.servers}, seed={self.seed}, steps={list(self.steps)})"


@st.composite
def schedules(draw: Draw, max_ops: int = 12) -> Schedule:
    servers = SERVERS[: draw(st.sampled_from([1, 2]))]
    seed = draw(st.integers(0, 2**16))
    state = _State(servers)
    steps: list[dict[str, Any]] = []
    for number in range(1, draw(st.integers(1, max_ops)) + 1):
        step = _op(draw, state, number)
        if step is None:
            continue
        steps += step if isinstance(step, list) else [step]
        pause = draw(st.sampled_from(PAUSES))
        if pause:
            steps.append({"pause": f"{pause:g}s"})
    return Schedule(servers, seed, tuple(steps))


# ====================================================================== the scenario


def _still_frozen(schedule: Schedule) -> set[str]:
    frozen: set[str] = set()
    killed: set[str] = set()
    for step in schedule.steps:
        if "freeze_server" in step:
            frozen.add(step["freeze_server"])
        elif "thaw_server" in step:
            frozen.discard(step["thaw_server"])
        elif "kill_server" in step:
            killed.add(step["kill_server"])
            frozen.discard(step["kill_server"])
        elif "restart_server" in step:
            killed.discard(step["restart_server"])
            frozen.discard(step["restart_server"])
    return frozen | {f"killed:{k}" for k in killed}


def scenario_data(schedule: Schedule, bugs: tuple[int, ...], note: str = "") -> dict[str, Any]:
    servers = schedule.servers
    removed = {s["remove_server"] for s in schedule.steps if "remove_server" in s}
    # Processes first: a heal while a server is frozen or dead cannot clear its faults.
    tail: list[dict[str, Any]] = []
    for held in sorted(_still_frozen(schedule)):
        if held.startswith("killed:"):
            tail.append({"restart_server": held.removeprefix("killed:")})
        else:
            tail.append({"thaw_server": held})
    tail.append({"heal": "all"})
    for server in servers:
        if server not in removed:
            tail.append(
                {
                    "wait_for": {
                        "status": {server: "connected"},
                        "queue": {server: 0},
                        "within": LIVENESS_BOUND,
                    }
                }
            )
    # Let what is in flight land (an event posted just before the end) before the verdict
    # compares the client's list with the server's.
    tail.append({"pause": SETTLE})
    return {
        "name": f"explore seed {schedule.seed}: {len(schedule.steps)} generated steps",
        "tags": ["explore:generated", PROPERTIES_TAG],
        "description": note or "generated by accord-rig explore",
        "setup": {
            "servers": {s: {"heartbeat": HEARTBEAT} for s in servers},
            "seed": schedule.seed,
            "timescale": TIMESCALE,
            **({"bugs": list(bugs)} if bugs else {}),
        },
        "steps": [
            *({"connect": s} for s in servers),
            {"select_channel": f"{servers[0]}/general"},
            *({"wait_for": {"status": {s: "connected"}, "eventually": "30s"}} for s in servers),
            *schedule.steps,
            *tail,
        ],
        "timeline": {
            # The seq a beat / RESUME carries is explore's own check (sim.properties): the
            # server-side `received: {seq: latest}` bound assumes its ACKs arrive, which a
            # downstream black hole breaks.
            **{s: {"backoff": True} for s in servers},
            "delivery": {},
        },
    }


# The signals that start or end a send's life in the composer (client.core.signals).
_SEND_SIGNALS = (
    signal_names.MESSAGE_SENDING,
    signal_names.MESSAGE_QUEUED,
    signal_names.MESSAGE_SEND_FAILED,
    signal_names.MESSAGE_SEND_REFUSED,
)
_SEND_ENDED = (signal_names.MESSAGE_SEND_FAILED, signal_names.MESSAGE_SEND_REFUSED)


class ExploreRun(SimScenarioRun):
    """A generated scenario: user steps that cannot apply now (an edit of a message
    the client does not show, Reconnect while connected) are skipped and left out of
    the written file; before the liveness wait, a client that gave up is reconnected
    by the user (and the file says so)."""

    def __init__(self, loaded: LoadedScenario, work: Path) -> None:
        super().__init__(loaded, sim_options(work))
        self.skipped: set[int] = set()
        self.inserted: dict[int, list[dict[str, Any]]] = {}  # before step index
        self.replaced: dict[int, dict[str, Any]] = {}  # step index -> the step played
        self.settle_index = len(loaded.scenario.steps) - 1  # the tail's last pause

    def _sent_and_restored(self, server: str, text: str) -> tuple[bool, str | None]:
        """Was `text` sent to `server` before; the text its composer holds restored: the
        one whose send ended failed or refused if that is the server's latest send
        signal (the client keeps one restored text per server; a later send replaces
        or clears it)."""
        self._catch_up()
        sent = False
        last: tuple[str, str] | None = None  # the server's latest send signal, its text
        for seen in self._signals:
            args = seen.args
            if len(args) >= 3 and args[0] == server and seen.name in _SEND_SIGNALS:
                sent = sent or args[2] == text
                last = (seen.name, str(args[2]))
        return sent, last[1] if last is not None and last[0] in _SEND_ENDED else None

    def _may_send_again(self, server: str, text: str) -> bool:
        """A text never sent to `server`, or the one its composer holds restored (typed
        again while another send's failure holds the composer, it is a new send of a
        text whose first outcome may be unknown: explore seed 21, no bug on)."""
        sent, restored = self._sent_and_restored(server, text)
        return not sent or restored == text

    def _flush_paused(self, server: str) -> bool:
        """The server's flush stopped on a transient failure and has not gone on since."""
        self._catch_up()
        last = None
        for sig in self._signals:
            if sig.args and sig.args[0] == server and sig.name in (
                "queue_flush_paused",
                "queue_changed",
            ):
                last = sig.name
        return last == "queue_flush_paused"

    def _status(self, server: str) -> tuple[str, int]:
        self._catch_up()
        seen = self.observer.series[-1].server(server)
        return seen.status, seen.queue

    async def _do(self, step: Step, kind: str, value: Any, outcome: StepOutcome) -> None:
        if kind == "reconnect" and self._status(value)[0] not in (
            "disconnected",
            "reconnecting",
            "error",
        ):
            self.skipped.add(outcome.index)
            return
        if kind == "send" and value.text == RESTORED_TEXT:
            server = value.channel.split("/", 1)[0]
            restored = self._sent_and_restored(server, RESTORED_TEXT)[1]
            if restored is None:
                self.skipped.add(outcome.index)
                return
            value = value.model_copy(update={"text": restored})
            self.replaced[outcome.index] = {"send": {"channel": value.channel, "text": restored}}
        if kind == "send" and value.repeat == 1 and not self._may_send_again(
            value.channel.split("/", 1)[0], value.text
        ):
            # "send again" is the user re-sending a restored text; the same text typed
            # while its first send is still out is left out (docs/simulation.md: the
            # spec's settle-by-content rule cannot tell the two apart)
            self.skipped.add(outcome.index)
            return
        if kind in ("edit", "delete"):
            try:
                self._message_id(value.channel, value.message)
            except StepFailed:
                self.skipped.add(outcome.index)
                return
        if kind == "wait_for" and value.within is not None and value.queue:
            await self._liveness(next(iter(value.queue)), outcome)
        if kind == "pause" and outcome.index == self.settle_index:
            await self._sends_settle(outcome)
        await super()._do(step, kind, value, outcome)

    async def _sends_settle(self, outcome: StepOutcome) -> None:
        """Connected with empty queues, a direct send (never queued) may still have its
        POST out (hung before the heal: it ends at the REST timeout) or wait out a 429:
        wait until none is out, so the verdict reads each send's outcome, not a request
        cut off by the end of the run. The file gets the same wait as a pause (whole
        client seconds), so a replay on the real stack waits as long."""
        assert self.client is not None
        tracker = SendsInFlight()

        def none_out() -> bool:
            tracker.feed(self.timeline.records)
            return not tracker.out()

        t = self.timings
        # every request of one send ends within the REST timeout, its 429 retries wait
        # at most the cap each (s.1)
        bound = (t.rate_limit_retries + 1) * t.rest_wait + t.rate_limit_retries * t.scaled(
            t.rate_limit_cap
        )
        started = self.timeline.now()
        await self.client.wait(none_out, bound)
        waited = self.timeline.now() - started
        if waited <= 0:
            return
        seconds = math.ceil(waited / self.timescale)
        await self.client.wait(lambda: False, seconds * self.timescale - waited)
        self.inserted[outcome.index] = [{"pause": f"{seconds}s"}]

    async def _liveness(self, server: str, outcome: StepOutcome) -> None:
        """Let the client settle; if it gave up (error), the user presses Reconnect."""
        assert self.client is not None

        def settled() -> bool:
            status, queue = self._status(server)
            return status == "error" or (
                status == "connected" and (queue == 0 or self._flush_paused(server))
            )

        bound = LIVENESS_SECONDS * self.timescale
        await self.client.wait(settled, bound)
        status, queue = self._status(server)
        if status == "connected" and queue and self._flush_paused(server):
            # s.6: a paused flush resumes on the next server_synced, the user's
            # Reconnect or a send; connected and synced, the user sends again
            send = {"channel": f"{server}/general", "text": f"{server}: after the heal"}
            self.inserted[outcome.index] = [{"send": send}]
            from client.core import actions as act

            await self.client.act(act.SendMessage(server, "general", send["text"]))
        if self._status(server)[0] == "error":
            self.inserted[outcome.index] = [
                {"wait_for": {"status": {server: "error"}, "within": LIVENESS_BOUND}},
                {"reconnect": server},
            ]
            from client.core import actions as act

            await self.client.act(act.ReconnectServer(server))

    def played_steps(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`steps` (as generated) without the skipped ones, with the inserted ones."""
        out: list[dict[str, Any]] = []
        for index, step in enumerate(steps):
            out += self.inserted.get(index, [])
            if index not in self.skipped:
                out.append(self.replaced.get(index, step))
        return out


@dataclass
class Outcome:
    schedule: Schedule
    violations: list[str]
    data: dict[str, Any]
    result: ScenarioResult | None = None


def run_schedule(schedule: Schedule, bugs: tuple[int, ...], work: Path) -> Outcome:
    data = scenario_data(schedule, bugs)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "generated.scenario.yaml"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
    path.write_text(text, encoding="utf-8")
    loaded = load_scenario(path, text)
    run = ExploreRun(loaded, work)
    result = run.play()
    violations: list[str] = []
    if result.error:
        violations.append(f"rig/core error: {result.error}")
    violations += [f.title for f in result.failures]  # the properties too (PROPERTIES_TAG)
    data["steps"] = run.played_steps(data["steps"])
    return Outcome(schedule, violations, data, result)


# ====================================================================== exploring


@dataclass
class ExploreReport:
    examples: int
    seconds: float  # wall
    found: Outcome | None
    written: Path | None = None
    cpu_seconds: float = 0.0  # this process, one core
    first_found: int = 0  # schedules played up to the first failing one (before shrinking)
    first_found_cpu: float = 0.0


@fewer_full_collections()
def explore(
    budget: int,
    seed: int,
    bugs: tuple[int, ...] = (),
    out_dir: Path | None = None,
    max_ops: int = 12,
) -> ExploreReport:
    """Generate up to `budget` schedules (Hypothesis, seeded), stop at the first that
    breaks a property, shrink it, write it as a scenario file."""
    work = Path(tempfile.mkdtemp(prefix="accord-explore-"))
    try:
        return _explore(budget, seed, bugs, out_dir, max_ops, work)
    finally:  # the schedules' scratch files; what is kept was written to `out_dir`
        shutil.rmtree(work, ignore_errors=True)


def _explore(
    budget: int,
    seed: int,
    bugs: tuple[int, ...],
    out_dir: Path | None,
    max_ops: int,
    work: Path,
) -> ExploreReport:
    count = 0
    last_failure: list[Outcome] = []
    first: list[float] = [0, 0.0]

    def breaks(schedule: Schedule) -> bool:
        nonlocal count
        count += 1
        outcome = run_schedule(schedule, bugs, work / f"{count % 4}")
        if outcome.violations:
            last_failure[:] = [outcome]
            if not first[0]:
                first[:] = [count, time.process_time() - cpu_started]
        return bool(outcome.violations)

    started = time.perf_counter()
    cpu_started = time.process_time()
    options = settings(
        max_examples=budget,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    try:
        minimal = find(
            schedules(max_ops=max_ops), breaks, settings=options, random=random.Random(seed)
        )
    except NoSuchExample:
        return ExploreReport(
            count,
            time.perf_counter() - started,
            None,
            cpu_seconds=time.process_time() - cpu_started,
        )
    outcome = run_schedule(minimal, bugs, work / "final")
    if not outcome.violations:  # flaky would be a simulator bug: keep the last failure seen
        outcome = last_failure[0]
    if bugs:
        _tail_of_the_fixed_client(outcome, work / "clean")
    seconds = time.perf_counter() - started
    report = ExploreReport(
        count,
        seconds,
        outcome,
        cpu_seconds=time.process_time() - cpu_started,
        first_found=int(first[0]),
        first_found_cpu=first[1],
    )
    if out_dir is not None:
        report.written = write_scenario(outcome, out_dir, seed, bugs)
    return report


def _replay_fails(data: dict[str, Any], work: Path) -> bool:
    """`data` played as `accord-rig run --sim` plays a file: does it fail?"""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "replay.scenario.yaml"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
    path.write_text(text, encoding="utf-8")
    result = SimScenarioRun(load_scenario(path, text), sim_options(work)).play()
    return bool(result.error or result.failures)


def _tail_of_the_fixed_client(outcome: Outcome, work: Path) -> None:
    """The steps a switch-free client plays (its liveness tail: no Reconnect a buggy
    client needed after giving up), kept when the file still fails with the switch,
    so the file fails with the switch and passes without it."""
    clean = run_schedule(outcome.schedule, (), work)
    if clean.violations or clean.data["steps"] == outcome.data["steps"]:
        return
    candidate = dict(outcome.data, steps=clean.data["steps"])
    if _replay_fails(candidate, work):
        outcome.data = candidate


def write_scenario(outcome: Outcome, out_dir: Path, seed: int, bugs: tuple[int, ...]) -> Path:
    data = dict(outcome.data)
    failed = "; ".join(outcome.violations[:3])
    data["name"] = f"explore seed {seed}{' bug ' + ','.join(map(str, bugs)) if bugs else ''}"
    data["description"] = (
        f"Found by accord-rig explore --seed {seed}"
        f"{''.join(f' --bug {b}' for b in bugs)} and shrunk. Failed: {failed}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "_", data["name"].lower()).strip("_")
    path = out_dir / f"{slug}.scenario.yaml"
    header = (
        "# yaml-language-server: $schema=../schema.json\n"
        f"# failed assertion(s) in simulation: {failed}\n"
    )
    path.write_text(
        header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    return path


def add_parser(sub: Any) -> None:
    p = sub.add_parser("explore", help="generate outages (Hypothesis) and check them in simulation")
    p.add_argument("--budget", type=int, default=200, help="schedules to try (default 200)")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (reproducible)")
    p.add_argument("--bug", type=int, action="append", default=[], choices=BUG_NUMBERS)
    p.add_argument("--max-ops", type=int, default=12, help="generated steps per schedule")
    p.add_argument("--out", default="out/explore", help="where a failing schedule is written")


def cmd_explore(args: argparse.Namespace) -> int:
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    report = explore(args.budget, args.seed, tuple(args.bug), Path(args.out), max_ops=args.max_ops)
    rate = report.examples / report.cpu_seconds if report.cpu_seconds else 0.0
    timing = (
        f"{report.seconds:.1f}s wall, {report.cpu_seconds:.1f}s CPU, {rate:.1f} schedules/CPU s"
    )
    if report.found is None:
        err.print(f"[green]ok[/green] {report.examples} schedules, no property broken ({timing})")
        return 0
    err.print(
        f"[red]found[/red] at schedule {report.first_found} "
        f"({report.first_found_cpu:.1f}s CPU), {report.examples} with shrinking ({timing}): "
        + "; ".join(report.found.violations[:3])
    )
    err.print(f"shrunk to {len(report.found.schedule.steps)} generated steps: {report.written}")
    return 1
