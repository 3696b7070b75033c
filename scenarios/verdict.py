"""Assertions over a whole recorded run (the scenario's `timeline:` block).

Each check reads the timeline only: signals for statuses and attempts, the folded
observations for banners, composer and dots, client effects and inputs for
closes, logins, RESUME/IDENTIFY and the scheduled backoff. A failed check keeps
the expected and the observed sequences so the report can show them side by side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from client.core.signals import SIGNAL_STATUS
from client.core.timers import Machine, TimerKind
from scenarios.conditions import banner_matches, describe_banner
from scenarios.observation import Observation
from scenarios.records import EffectAt, RecordLike, SignalAt, effects, inputs, signals
from scenarios.schema import BannerState, CloseSeen, Count, Reconnections, ServerTimeline

# Wall-clock slack allowed between a backoff timer's due time and the next socket
# open: generous, the machine is shared. Never asserted the other way beyond 5 ms.
BACKOFF_LATE_SLACK = 1.0
BACKOFF_EARLY_SLACK = 0.005


@dataclass
class Failure:
    """One failed check, with both sides for a side-by-side view."""

    title: str
    expected: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)  # "t=1.234  item"
    note: str = ""


@dataclass(frozen=True)
class ServerWiring:
    """How to tell one server's traffic apart in the client's effects."""

    gateway_url: str  # the URL the client opens (through the proxy)
    rest_base: str  # https://HOST:PORT/api/v1 (through the proxy)


@dataclass(frozen=True)
class Seen:
    t: float
    item: Any
    text: str


T = TypeVar("T")


def _dedupe(items: Sequence[Seen]) -> list[Seen]:
    out: list[Seen] = []
    for s in items:
        if not out or out[-1].text != s.text:
            out.append(s)
    return out


def _subsequence(
    expected: Sequence[T], observed: Sequence[Seen], match: Callable[[T, Seen], bool]
) -> bool:
    i = 0
    for seen in observed:
        if i < len(expected) and match(expected[i], seen):
            i += 1
    return i == len(expected)


def _exact(
    expected: Sequence[T], observed: Sequence[Seen], match: Callable[[T, Seen], bool]
) -> bool:
    return len(expected) == len(observed) and all(
        match(e, o) for e, o in zip(expected, observed, strict=True)
    )


def sequence_check(
    title: str,
    exactly: Sequence[T] | None,
    in_order: Sequence[T] | None,
    observed: list[Seen],
    match: Callable[[T, Seen], bool],
    show: Callable[[T], str],
) -> list[Failure]:
    out = []
    shown = [f"t={s.t:8.3f}  {s.text}" for s in observed]
    if exactly is not None and not _exact(exactly, observed, match):
        out.append(Failure(f"{title} (exactly)", [show(e) for e in exactly], shown))
    if in_order is not None and not _subsequence(in_order, observed, match):
        out.append(Failure(f"{title} (in this order)", [show(e) for e in in_order], shown))
    return out


# --------------------------------------------------------------------------- series


def status_series(sigs: Sequence[SignalAt], server: str) -> list[Seen]:
    items = [
        # In sequences `syncing` is part of `connected`.
        Seen(s.t, SIGNAL_STATUS[s.name].core.value, SIGNAL_STATUS[s.name].core.value)
        for s in sigs
        if s.name in SIGNAL_STATUS and s.args and s.args[0] == server
    ]
    return _dedupe(items)


def banner_series(observations: Sequence[Observation], server: str) -> list[Seen]:
    items = [
        Seen(o.t, o.servers[server].banner, str(o.servers[server].banner))
        for o in observations
        if server in o.servers
    ]
    return _dedupe(items)


def dot_series(observations: Sequence[Observation], server: str) -> list[Seen]:
    items = [
        Seen(o.t, o.servers[server].dot or "none", o.servers[server].dot or "none")
        for o in observations
        if server in o.servers
    ]
    return _dedupe(items)


def composer_series(observations: Sequence[Observation], server: str, part: str) -> list[Seen]:
    items = []
    for o in observations:
        if o.composer is None or not (o.selected_channel or "").startswith(f"{server}/"):
            continue
        value = getattr(o.composer, part)
        if part == "label" and not value:
            items.append(Seen(o.t, "", ""))  # a gap separates two equal labels
            continue
        items.append(Seen(o.t, value, str(value)))
    return [s for s in _dedupe(items) if s.text or part != "label"]


def conn_server(records: Sequence[RecordLike], wiring: dict[str, ServerWiring]) -> dict[int, str]:
    owners: dict[int, str] = {}
    for e in effects(records, "OpenSocket"):
        for server, wire in wiring.items():
            if str(e.data.get("url", "")).startswith(wire.gateway_url.split("?")[0]):
                owners[int(e.data["conn"])] = server
    return owners


def close_series(
    records: Sequence[RecordLike], wiring: dict[str, ServerWiring], server: str
) -> list[Seen]:
    owners = conn_server(records, wiring)
    closed_by_client: set[int] = set()
    items: list[Seen] = []
    events: list[tuple[float, int, EffectAt]] = [
        (e.t, 0, e) for e in effects(records, "CloseSocket")
    ]
    events += [(e.t, 1, e) for e in inputs(records, "SocketClosed")]
    for _t, _order, e in sorted(events, key=lambda x: (x[0], x[1])):
        conn = int(e.data["conn"])
        if owners.get(conn) != server:
            continue
        code, reason = int(e.data["code"]), str(e.data.get("reason", ""))
        if e.name == "CloseSocket":
            closed_by_client.add(conn)
            by = "client"
        elif conn in closed_by_client:
            continue  # the echo of our own close
        else:
            by = "network" if code == 1006 else "server"
        items.append(Seen(e.t, (by, code, reason), f"{by} {code} {reason!r}"))
    return items


def close_matches(expected: CloseSeen, seen: Seen) -> bool:
    by, code, reason = seen.item
    return (
        code == expected.code
        and (expected.by is None or expected.by == by)
        and (expected.reason is None or expected.reason == reason)
    )


def _show_close(c: CloseSeen) -> str:
    reason = f" {c.reason!r}" if c.reason is not None else ""
    return f"{c.by or 'any'} {c.code}{reason}"


def count_check(title: str, count: Count, value: int) -> list[Failure]:
    if (count.min is not None and value < count.min) or (
        count.max is not None and value > count.max
    ):
        want = (
            f"{count.min}"
            if count.min == count.max
            else f"{count.min or 0}..{count.max if count.max is not None else '∞'}"
        )
        return [Failure(title, [want], [str(value)])]
    return []


def _sent_ops(records: Sequence[RecordLike], conns: set[int]) -> list[tuple[float, int]]:
    out = []
    for e in effects(records, "SendText"):
        if int(e.data["conn"]) not in conns:
            continue
        try:
            op = json.loads(str(e.data["text"])).get("op")
        except (ValueError, AttributeError):
            continue
        if op in (2, 3):
            out.append((e.t, int(op)))
    return out


def backoff_failures(
    records: Sequence[RecordLike],
    server: str,
    scale: float,
    wiring: dict[str, ServerWiring],
    ranges: Sequence[Sequence[float]] | None,
    per_spec: bool,
) -> list[Failure]:
    """Each scheduled reconnect delay against the spec formula and the RNG draw."""
    failures: list[Failure] = []
    owners = conn_server(records, wiring)

    def backoff_of_server(e: EffectAt) -> bool:
        return e.data.get("server") == server and e.data.get("kind") == TimerKind.BACKOFF

    draws = [e for e in effects(records, "RngDraw") if backoff_of_server(e)]
    timers = [
        e
        for e in effects(records, "SetTimer")
        if backoff_of_server(e) and e.data.get("machine") == Machine.GATEWAY
    ]
    # A backoff the client cancelled (the user's Reconnect, a removal) bounds no open.
    cancels = [
        e.t
        for e in effects(records, "CancelTimer")
        if backoff_of_server(e) and e.data.get("machine") == Machine.GATEWAY
    ]
    opens = [
        e.t for e in effects(records, "OpenSocket") if owners.get(int(e.data["conn"])) == server
    ]
    expected_rows: list[str] = []
    observed_rows: list[str] = []
    bad = False
    for index, timer in enumerate(timers):
        delay = float(timer.data["delay"])
        draw = next(
            (d for d in reversed(draws) if d.t <= timer.t),
            None,
        )
        if draw is None:
            failures.append(
                Failure(
                    f"backoff of {server}",
                    ["an RNG draw before each delay"],
                    [f"t={timer.t:8.3f}  delay {delay:.4f}s without a draw"],
                )
            )
            continue
        attempt = int(draw.data["attempt"])
        jitter = float(draw.data["value"])
        formula = scale * (2 ** min(attempt - 1, 5) + jitter)
        real = delay / scale
        expected_rows.append(
            f"attempt {attempt}: {formula:.6f}s"
            f" = {scale:g}*(2^{min(attempt - 1, 5)} + {jitter:.6f})"
        )
        observed_rows.append(f"t={timer.t:8.3f}  attempt {attempt}: {delay:.6f}s")
        if per_spec and abs(delay - formula) > 1e-9:
            bad = True
        if ranges is not None and index < len(ranges):
            low, high = ranges[index]
            if not low <= real <= high:
                failures.append(
                    Failure(
                        f"backoff delay {index + 1} of {server}",
                        [f"{low:g}..{high:g}s (real-client)"],
                        [f"{real:.3f}s (real-client)"],
                    )
                )
        opened = next((t for t in opens if t > timer.t), None)
        if opened is not None and any(timer.t <= c <= opened for c in cancels):
            opened = None
        due = timer.t + delay
        if per_spec and opened is not None and opened < due - BACKOFF_EARLY_SLACK:
            bad = True
            observed_rows[-1] += f"  (opened early at t={opened:.3f})"
        # a late open is only a failure when absurdly late (shared machine)
        if (
            per_spec
            and opened is not None
            and opened > due + BACKOFF_LATE_SLACK
            and opened - due < 1e6
        ):
            nxt = next((tm.t for tm in timers if tm.t > timer.t), None)
            if nxt is None or opened < nxt:
                bad = True
                observed_rows[-1] += f"  (opened {opened - due:.3f}s late)"
    if ranges is not None and len(ranges) > len(timers):
        failures.append(
            Failure(
                f"backoff of {server}: fewer delays than expected",
                [f"{len(ranges)} delays"],
                [f"{len(timers)} delays"],
            )
        )
    if bad:
        failures.append(Failure(f"backoff of {server} (per spec)", expected_rows, observed_rows))
    return failures


# --------------------------------------------------------------------------- the verdict


def judge_server(
    server: str,
    expect: ServerTimeline,
    records: Sequence[RecordLike],
    observations: Sequence[Observation],
    wiring: dict[str, ServerWiring],
    scale: float,
) -> list[Failure]:
    failures: list[Failure] = []
    sigs = signals(records)
    if expect.status is not None:
        failures += sequence_check(
            f"status of {server}",
            expect.status.exactly,
            expect.status.in_order,
            status_series(sigs, server),
            lambda e, s: e == s.item,
            str,
        )
    if expect.banners is not None:

        def banner_match(e: BannerState, s: Seen) -> bool:
            return banner_matches(e, s.item)

        failures += sequence_check(
            f"banners of {server}",
            expect.banners.exactly,
            expect.banners.in_order,
            banner_series(observations, server),
            banner_match,
            describe_banner,
        )
    if expect.dots is not None:
        failures += sequence_check(
            f"dot of {server}",
            expect.dots.exactly,
            expect.dots.in_order,
            dot_series(observations, server),
            lambda e, s: e == s.item,
            str,
        )
    for part, spec in (("placeholder", expect.placeholders), ("label", expect.labels)):
        if spec is not None:
            failures += sequence_check(
                f"composer {part}s on {server}",
                spec.exactly,
                spec.in_order,
                composer_series(observations, server, part),
                lambda e, s: e == s.item,
                repr,
            )
    if expect.closes is not None:
        failures += sequence_check(
            f"closes on {server}",
            expect.closes.exactly,
            expect.closes.in_order,
            close_series(records, wiring, server),
            close_matches,
            _show_close,
        )
    if expect.attempts is not None:
        n = sum(
            1 for s in sigs if s.name == "server_reconnecting" and s.args and s.args[0] == server
        )
        failures += count_check(f"reconnect attempts of {server}", expect.attempts, n)
    if expect.logins is not None and server in wiring:
        login = wiring[server].rest_base.rstrip("/") + "/auth/login"
        n = sum(
            1
            for e in effects(records, "HttpRequest")
            if e.data.get("method") == "POST" and str(e.data.get("url", "")).split("?")[0] == login
        )
        failures += count_check(f"logins (POST /auth/login) to {server}", expect.logins, n)
    if expect.reconnected_by is not None:
        failures += _reconnected_by(server, expect.reconnected_by, sigs, records, wiring)
    if expect.backoff is not None:
        failures += backoff_failures(
            records, server, scale, wiring, expect.backoff.delays, expect.backoff.per_spec
        )
    if expect.server is not None:
        from scenarios.server_side import judge_server_side

        failures += judge_server_side(server, expect.server, records)
    return failures


def reconnection_series(
    server: str,
    sigs: Sequence[SignalAt],
    records: Sequence[RecordLike],
    wiring: dict[str, ServerWiring],
) -> list[Seen]:
    """One entry per `server_reconnected`: what the client last sent (IDENTIFY or
    RESUME) on this server's sockets before it."""
    conns = {c for c, s in conn_server(records, wiring).items() if s == server}
    ops = _sent_ops(records, conns)
    out = []
    for s in sigs:
        if s.name != "server_reconnected" or not s.args or s.args[0] != server:
            continue
        before = [op for t, op in ops if t <= s.t]
        seen = {2: "identify", 3: "resume"}[before[-1]] if before else "nothing sent"
        out.append(Seen(s.t, seen, seen))
    return out


def _reconnected_by(
    server: str,
    wanted: Reconnections,
    sigs: Sequence[SignalAt],
    records: Sequence[RecordLike],
    wiring: dict[str, ServerWiring],
) -> list[Failure]:
    observed = reconnection_series(server, sigs, records, wiring)
    shown = [f"t={s.t:8.3f}  {s.text}" for s in observed] or ["no server_reconnected"]
    title = f"reconnections of {server}"
    if wanted.every is not None and (not observed or any(s.item != wanted.every for s in observed)):
        return [Failure(f"{title} (every one)", [f"each by {wanted.every}"], shown)]
    if wanted.exactly is not None and [s.item for s in observed] != wanted.exactly:
        return [Failure(f"{title} (one entry each)", list(wanted.exactly), shown)]
    return []
