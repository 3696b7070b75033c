"""Numbers from a load run: recovery, herd, sends, delivery; and the threshold verdicts.

Every figure comes from the clients' own summaries (their timelines: loss ->
reconnected, attempts, resume or identify) and from what the fake servers stored,
never from Locust's request timer.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from load.conductor import HEARTBEAT, LoadRun

HERD_WINDOW = 0.1  # seconds
# Faults that start a storm (losses and reconnect attempts follow them).
STORM_KINDS = frozenset(
    {
        "toxic",
        "proxy_down",
        "kill_server",
        "freeze_server",
        "server_fault",
        "server_close",
        "invalid_session",
    }
)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Storm:
    index: int
    text: str
    wall: float
    losses: int = 0
    recovered: int = 0
    attempts: int = 0  # socket opens during the storm's losses
    herd: float | None = None  # peak per 100 ms window / mean
    to_recovered: dict[int, float | None] = field(default_factory=dict)  # 50/95/99/100 -> s


@dataclass
class Figures:
    clients: int
    reported: int
    connected_first: int
    episodes: int
    recovered: int
    unrecovered: int
    gave_up: int
    recovery: dict[str, float | None]  # p50, p95, p99, max (seconds, real time)
    attempts_mean: float
    attempts_max: int
    attempt_failures: dict[str, int]  # why reconnect attempts failed, most first
    resumed: int
    reauthenticated: int
    herd: float | None  # the worst storm's
    storms: list[Storm]
    sends_attempted: int
    sends_accepted: int
    sends_failed: int
    sends_refused: int  # composer disabled at that moment (reconnecting): never sent
    send_failure_ratio: float
    lost: int
    duplicated: int
    unexpected: int
    unanswered_stored: int  # stored sends the client never saw accepted (answers lost)
    connected_at_end: float  # percent of the crowd

    @property
    def resume_share(self) -> float:
        return self.resumed / self.recovered if self.recovered else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "storms"}
        out["resume_share"] = self.resume_share
        out["storms"] = [s.__dict__ for s in self.storms]
        return out


def herd_ratio(times: list[float], start: float) -> float | None:
    """Peak attempts in a 100 ms window over the mean per window, from `start` to
    the last attempt (a crowd without jitter puts them all in one window)."""
    if len(times) < 2:
        return None
    windows = Counter(int((t - start) / HERD_WINDOW) for t in times if t >= start)
    if not windows:
        return None
    span = max(windows) + 1
    mean = sum(windows.values()) / span
    return max(windows.values()) / mean


def compute(run: LoadRun) -> Figures:
    summaries = run.summaries
    episodes = [e for s in summaries for e in s.get("episodes", [])]
    durations = [e["back"] - e["lost"] for e in episodes if e.get("back") is not None]
    recovered = len(durations)
    attempts = [int(e.get("attempts", 0)) for e in episodes]
    recovery: dict[str, float | None] = {
        "p50": percentile(durations, 50),
        "p95": percentile(durations, 95),
        "p99": percentile(durations, 99),
        "max": max(durations) if durations else None,
    }
    storms = _storms(run, episodes, [t for s in summaries for t in s.get("attempt_times", [])])
    herds = [s.herd for s in storms if s.herd is not None]
    failures: Counter[str] = Counter()
    for s in summaries:
        failures.update(s.get("attempt_failures", {}))
    attempted = sum(len(s.get("nonces", [])) for s in summaries)
    accepted_nonces = Counter(n for s in summaries for n in s.get("accepted", []))
    failed = sum(int(s.get("send_failed", 0)) for s in summaries)
    sent_nonces = {n for s in summaries for n in s.get("nonces", [])}
    stored = Counter(
        str(row["nonce"]) for rows in run.stored.values() for row in rows if row.get("nonce")
    )
    lost = sum(1 for n in accepted_nonces if stored[n] == 0)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    duplicated += sum(count - 1 for count in accepted_nonces.values() if count > 1)
    unexpected = sum(1 for n in stored if n not in sent_nonces)
    unanswered = sum(1 for n in stored if n in sent_nonces and n not in accepted_nonces)
    connected_end = sum(1 for s in summaries if s.get("connected_now"))
    return Figures(
        clients=run.clients,
        reported=len(summaries),
        connected_first=sum(
            1 for s in summaries if s.get("connect_seconds") and not s.get("connect_error")
        ),
        episodes=len(episodes),
        recovered=recovered,
        unrecovered=len(episodes) - recovered,
        gave_up=sum(1 for e in episodes if e.get("gave_up")),
        recovery=recovery,
        attempts_mean=sum(attempts) / len(attempts) if attempts else 0.0,
        attempts_max=max(attempts, default=0),
        attempt_failures=dict(failures.most_common()),
        resumed=sum(1 for e in episodes if e.get("how") == "resume"),
        reauthenticated=sum(1 for e in episodes if e.get("reauth")),
        herd=max(herds) if herds else None,
        storms=storms,
        sends_attempted=attempted,
        sends_accepted=len(accepted_nonces),
        sends_failed=failed,
        sends_refused=sum(int(s.get("send_refused", 0)) for s in summaries),
        send_failure_ratio=failed / attempted if attempted else 0.0,
        lost=lost,
        duplicated=duplicated,
        unexpected=unexpected,
        unanswered_stored=unanswered,
        connected_at_end=100.0 * connected_end / run.clients if run.clients else 0.0,
    )


def _storms(
    run: LoadRun, episodes: list[dict[str, Any]], attempt_times: list[float]
) -> list[Storm]:
    starts = [f for f in run.fired if f.kind in STORM_KINDS]
    storms: list[Storm] = []
    for i, fired in enumerate(starts):
        until = starts[i + 1].wall if i + 1 < len(starts) else math.inf
        storm = Storm(fired.index, fired.text, fired.wall)
        mine = [e for e in episodes if fired.wall - 0.05 <= e["lost"] < until]
        storm.losses = len(mine)
        backs = sorted(e["back"] - fired.wall for e in mine if e.get("back") is not None)
        storm.recovered = len(backs)
        for q in (50, 95, 99, 100):
            needed = max(1, math.ceil(q / 100.0 * len(mine))) if mine else 0
            storm.to_recovered[q] = backs[needed - 1] if mine and needed <= len(backs) else None
        times = [t for t in attempt_times if fired.wall - 0.05 <= t < until]
        storm.attempts = len(times)
        storm.herd = herd_ratio(times, fired.wall)
        storms.append(storm)
    return storms


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Verdict:
    name: str
    limit: str
    measured: str
    ok: bool


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def judge(run: LoadRun, figures: Figures) -> list[Verdict]:
    """One row per threshold the file sets, plus the rig's own must-haves."""
    t = run.loaded.load.thresholds
    rows: list[Verdict] = []
    ts = run.timescale
    rows.append(
        Verdict(
            "clients reported",
            f"{figures.clients}",
            f"{figures.reported}",
            figures.reported >= figures.clients,
        )
    )
    if t.recovery is not None:
        for key in ("p50", "p95", "p99"):
            limit = getattr(t.recovery, key)
            if limit is None:
                continue
            seconds = limit.resolve(HEARTBEAT) * ts
            value = figures.recovery[key]
            ok = value is not None and value <= seconds
            rows.append(Verdict(f"recovery {key}", f"<= {seconds:.3f}s", _seconds(value), ok))
        if t.recovery.all_within is not None:
            seconds = t.recovery.all_within.resolve(HEARTBEAT) * ts
            worst = figures.recovery["max"]
            ok = figures.unrecovered == 0 and (worst is None or worst <= seconds)
            measured = _seconds(worst) + (
                f", {figures.unrecovered} not recovered" if figures.unrecovered else ""
            )
            rows.append(Verdict("recovery all_within", f"<= {seconds:.3f}s", measured, ok))
    if t.lost is not None:
        rows.append(Verdict("lost", f"<= {t.lost}", str(figures.lost), figures.lost <= t.lost))
    if t.duplicated is not None:
        rows.append(
            Verdict(
                "duplicated",
                f"<= {t.duplicated}",
                str(figures.duplicated),
                figures.duplicated <= t.duplicated,
            )
        )
    rows.append(Verdict("unexpected stored", "0", str(figures.unexpected), figures.unexpected == 0))
    if t.send_failure_ratio is not None:
        rows.append(
            Verdict(
                "send failure ratio",
                f"<= {t.send_failure_ratio:g}",
                f"{figures.send_failure_ratio:.4f} "
                f"({figures.sends_failed}/{figures.sends_attempted})",
                figures.send_failure_ratio <= t.send_failure_ratio,
            )
        )
    if t.herd is not None:
        value = figures.herd
        rows.append(
            Verdict(
                "herd (peak/mean per 100 ms)",
                f"<= {t.herd:g}",
                "-" if value is None else f"{value:.2f}",
                value is not None and value <= t.herd,
            )
        )
    if t.connected_at_end is not None:
        rows.append(
            Verdict(
                "connected at end",
                f">= {t.connected_at_end:g}%",
                f"{figures.connected_at_end:.1f}%",
                figures.connected_at_end >= t.connected_at_end,
            )
        )
    for problem in run.problems:
        rows.append(Verdict("schedule/rig", "ok", problem, False))
    return rows
