"""The server's side of the story: the `server:` section of a timeline entry, judged on
the fake server's history as merged into the run's timeline (src `server:NAME`;
record shapes in docs/fake-server.md "History").

Closes as the server saw them, requests per route, the gateway frames it received
(with the seq a heartbeat or RESUME carried against the seq the server had sent), the
IDENTIFY/RESUME order, and the sessions it created, resumed, parked and ended.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scenarios.records import RecordLike
from scenarios.schema import OPS, FrameExpectation, ServerCloseSeen, ServerSide
from scenarios.verdict import Failure, Seen, count_check, sequence_check

API_PREFIX = "/api/v1"
OP_NAMES = {number: name for name, number in OPS.items()}


def _history(records: Sequence[RecordLike], server: str) -> list[RecordLike]:
    return [r for r in records if r.src == f"server:{server}"]


def server_close_series(history: Sequence[RecordLike]) -> list[Seen]:
    out = []
    for r in history:
        if r.kind == "conn" and r.name == "close":
            by, code, reason = str(r.data.get("by")), r.data.get("code"), r.data.get("reason", "")
            out.append(Seen(r.t, (by, code, reason), f"{by} {code} {reason!r}"))
    return out


def _server_close_matches(expected: ServerCloseSeen, seen: Seen) -> bool:
    by, code, reason = seen.item
    return (
        (expected.by is None or expected.by == by)
        and (expected.code is None or expected.code == code)
        and (expected.reason is None or expected.reason == reason)
    )


def _show_server_close(c: ServerCloseSeen) -> str:
    reason = f" {c.reason!r}" if c.reason is not None else ""
    return f"{c.by or 'any'} {c.code if c.code is not None else 'any code'}{reason}"


def request_key(r: RecordLike) -> str:
    path = str(r.data.get("path", ""))
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :] or "/"
    return f"{r.data.get('method')} {path}"


def _request_matches(pattern: str, key: str) -> bool:
    method, _, path = pattern.partition(" ")
    got_method, _, got_path = key.partition(" ")
    return (method in ("*", got_method)) and fnmatch.fnmatchcase(got_path, path)


@dataclass(frozen=True)
class Received:
    """A frame the server received, with the seq window the client's copy must fall in."""

    record: RecordLike
    frame: dict[str, Any]
    latest: int  # the highest seq the server had sent on the frame's session by then
    settled: int  # ... by its last HEARTBEAT_ACK to that session (the client read up to it)


def received_frames(history: Sequence[RecordLike]) -> list[Received]:
    """Every frame the server received, with the seqs it had sent on the session."""
    sent: dict[str, int] = {}
    settled: dict[str, int] = {}
    out = []
    for r in history:
        frame = r.data.get("frame")
        if r.kind != "frame" or not isinstance(frame, dict):
            continue
        session = r.data.get("session_id")
        if r.name == "out" and session is not None:
            key = str(session)
            if isinstance(frame.get("seq"), int):
                sent[key] = max(sent.get(key, 0), int(frame["seq"]))
            if frame.get("op") == OPS["heartbeat_ack"]:
                settled[key] = sent.get(key, 0)
        elif r.name == "in":
            data = frame.get("data")
            if frame.get("op") == OPS["resume"] and isinstance(data, dict):
                session = data.get("session_id")
            key = str(session)
            out.append(Received(r, frame, sent.get(key, 0), settled.get(key, 0)))
    return out


def _frame_seq(frame: dict[str, Any]) -> Any:
    data = frame.get("data")
    if frame.get("op") == OPS["resume"]:
        return data.get("seq") if isinstance(data, dict) else None
    return data


def contains(expected: Any, seen: Any) -> bool:
    """`seen` holds `expected`: mappings by their keys, recursively; anything else equal."""
    if isinstance(expected, dict):
        return isinstance(seen, dict) and all(
            k in seen and contains(v, seen[k]) for k, v in expected.items()
        )
    return bool(expected == seen)


def _seq_problem(expect: FrameExpectation, got: Received) -> str | None:
    seq = _frame_seq(got.frame)
    if expect.seq == "latest":
        # Frames the server sent after its last ACK may still be on the wire when the
        # client sends, so any seq in [settled, latest] is the client's latest.
        if not isinstance(seq, int) or not got.settled <= seq <= got.latest:
            window = (
                str(got.latest) if got.settled == got.latest else f"{got.settled}..{got.latest}"
            )
            return f"seq {seq!r}, expected {window}"
    elif expect.seq is not None and seq != expect.seq:
        return f"seq {seq!r}, expected {expect.seq}"
    return None


def _frame_failures(
    server: str, op: str, expect: FrameExpectation, frames: list[Received]
) -> list[Failure]:
    mine = [got for got in frames if got.frame.get("op") == OPS[op]]
    failures = []
    if expect.count is not None:
        failures += count_check(f"{op} frames received by {server}", expect.count, len(mine))
    wrong = []
    for got in mine:
        problems = []
        seq_problem = _seq_problem(expect, got)
        if seq_problem is not None:
            problems.append(seq_problem)
        if expect.data is not None and not contains(expect.data, got.frame.get("data")):
            problems.append("data differs")
        if problems:
            text = json.dumps(got.frame.get("data"), ensure_ascii=False)[:200]
            wrong.append(f"t={got.record.t:8.3f}  {'; '.join(problems)}: {text}")
    if wrong:
        wanted_rows = []
        if expect.seq is not None:
            wanted_rows.append(
                "seq = the latest the server had sent on the session"
                if expect.seq == "latest"
                else f"seq = {expect.seq}"
            )
        if expect.data is not None:
            wanted_rows.append(f"data contains {json.dumps(expect.data, ensure_ascii=False)}")
        failures.append(Failure(f"{op} frames received by {server}", wanted_rows, wrong))
    return failures


def judge_server_side(
    server: str, expect: ServerSide, records: Sequence[RecordLike]
) -> list[Failure]:
    history = _history(records, server)
    failures: list[Failure] = []
    if expect.closes is not None:
        failures += sequence_check(
            f"closes {server} saw",
            expect.closes.exactly,
            expect.closes.in_order,
            server_close_series(history),
            _server_close_matches,
            _show_server_close,
        )
    if expect.requests is not None:
        keys = [request_key(r) for r in history if r.kind == "http" and r.name == "request"]
        for pattern, count in expect.requests.items():
            n = sum(1 for k in keys if _request_matches(pattern, k))
            for failure in count_check(f"requests {pattern!r} received by {server}", count, n):
                failure.observed += [f"{k}: {c}" for k, c in sorted(Counter(keys).items())]
                failures.append(failure)
    frames = received_frames(history)
    for op, frame_expect in (expect.received or {}).items():
        failures += _frame_failures(server, op, frame_expect, frames)
    if expect.handshakes is not None:
        shakes = [
            Seen(got.record.t, OP_NAMES[got.frame["op"]], OP_NAMES[got.frame["op"]])
            for got in frames
            if got.frame.get("op") in (OPS["identify"], OPS["resume"])
        ]
        failures += sequence_check(
            f"handshakes {server} received",
            expect.handshakes.exactly,
            expect.handshakes.in_order,
            shakes,
            lambda e, s: e == s.item,
            str,
        )
    if expect.sessions is not None:
        names = Counter(r.name for r in history if r.kind == "session")
        for name in ("created", "resumed", "parked", "ended"):
            count = getattr(expect.sessions, name)
            if count is not None:
                failures += count_check(f"sessions {name} on {server}", count, names[name])
    return failures
