"""The delivery checker: what the user sent against what the server stored.

client-behaviour.md s.6. Every message the client gave a nonce is followed through
the recorded HTTP requests that carried that nonce and their answers:
- accepted (a 2xx, or `message_sent`): stored exactly once, in send order per channel;
- refused (a 4xx other than 401/408/429): never stored;
- unknown (timeout, no response, 5xx, ...): stored at most once;
- pending (queued, never answered by the end): reported, not lost.
Stored messages by the client's user that no send explains are `unexpected`.
The server side comes from the fake server's database, which survives restarts and
keeps each message's nonce. A server that keeps no nonces (the real one, read over
REST after the run) gets them back by `attribute_sends`: the id an accepted answer
carried, else the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scenarios.records import RecordLike, effects, inputs, signals

REFUSAL_EXCEPTIONS = (401, 408, 429)


@dataclass
class Send:
    server: str
    channel_id: str
    content: str
    nonce: str
    order: int
    outcome: str = "pending"  # accepted | refused | unknown | pending
    message_id: str | None = None
    deleted: bool = False  # the user deleted it afterwards
    # A restored text sent again has two places in the send order and s.6 does not say
    # which counts (its first attempt may be the one stored): it is held to exactly
    # once, not to a place in the order (docs/architecture.md, delivery).
    sent_again: bool = False
    # Answered 2xx. A send settled only by finding its copy (its POST timed out, the
    # server stored it late) was not accepted in s.6's sense: held to exactly once, not
    # to a place in the order (the server may store it after later sends).
    answered: bool = False


@dataclass
class DeliveryReport:
    delivered: int = 0
    pending: int = 0
    refused: int = 0
    unknown: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched_lists: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.reordered
            or self.unexpected
            or self.mismatched_lists
        )

    def counts(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "pending": self.pending,
            "refused": self.refused,
            "unknown": self.unknown,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "reordered": len(self.reordered),
            "unexpected": len(self.unexpected),
        }

    def summary(self) -> str:
        parts = [f"{k} {v}" for k, v in self.counts().items()]
        details = (
            self.lost + self.duplicated + self.reordered + self.unexpected + self.mismatched_lists
        )
        return ", ".join(parts) + "".join(f"\n  - {d}" for d in details)


def _sends(records: Sequence[RecordLike]) -> dict[str, Send]:
    """Each nonce's send in the order first sent; `sent_again` marks a restored text
    the user sent again (same nonce, after its `message_send_failed`)."""
    sends: dict[str, Send] = {}
    failed: set[tuple[str, str, str]] = set()  # (server, channel, content) restored
    order = 0
    for s in signals(records):
        if s.name == "message_send_failed" and len(s.args) >= 3:
            failed.add((str(s.args[0]), str(s.args[1]), str(s.args[2])))
        elif s.name in ("message_sending", "message_queued") and len(s.args) >= 4:
            nonce = str(s.args[3])
            key = (str(s.args[0]), str(s.args[1]), str(s.args[2]))
            if nonce not in sends:
                sends[nonce] = Send(*key, nonce, order)
            elif key in failed:
                sends[nonce].sent_again = True
            failed.discard(key)
            order += 1
        elif s.name == "message_sent" and len(s.args) >= 4 and str(s.args[2]) in sends:
            send = sends[str(s.args[2])]
            send.outcome, send.message_id = "accepted", str(s.args[3])
    return sends


def _nonce_of(body: Any) -> str | None:
    if body is None:
        return None
    try:
        parsed = json.loads(body if isinstance(body, str | bytes) else json.dumps(body))
    except ValueError:
        return None
    nonce = parsed.get("nonce") if isinstance(parsed, dict) else None
    return str(nonce) if nonce is not None else None


def _apply_http_outcomes(records: Sequence[RecordLike], sends: dict[str, Send]) -> None:
    """Classify each send by the answers to the requests that carried its nonce."""
    by_req: dict[int, str] = {}
    for e in effects(records, "HttpRequest"):
        nonce = _nonce_of(e.data.get("body"))
        if nonce in sends and e.data.get("method") == "POST":
            by_req[int(e.data["req"])] = nonce
    ends = [(e.t, e.name, e.data) for e in inputs(records, "HttpResponse", "HttpFailed")]
    ends += [(e.t, e.name, e.data) for e in effects(records, "CancelHttp")]
    for _t, name, data in sorted(ends, key=lambda x: x[0]):
        nonce = by_req.get(int(data["req"]))
        if nonce is None:
            continue
        send = sends[nonce]
        status = int(data.get("status", 0)) if name == "HttpResponse" else 0
        if 200 <= status < 300:
            send.answered = True
        if send.outcome == "accepted":
            continue  # a 2xx settles it for good
        if 200 <= status < 300:
            send.outcome = "accepted"
        elif 400 <= status < 500 and status not in REFUSAL_EXCEPTIONS:
            send.outcome = "refused"
        else:
            send.outcome = "unknown"


def attribute_sends(
    records: Sequence[RecordLike],
    stored: Mapping[str, Sequence[Mapping[str, Any]]],
    user_ids: Mapping[str, str],
) -> dict[str, list[dict[str, Any]]]:
    """`stored` with each message by the client's user credited to the send it came
    from (its `nonce` set), for servers that do not keep nonces. A message is the
    send's whose 2xx answer carried its id; else the earliest send of the same text in
    the same channel not credited yet; else (one more copy) the latest such send, so a
    copy too many counts as a duplicate. A message no send of that text explains keeps
    no nonce (so it is `unexpected`)."""
    sends = sorted(_sends(records).values(), key=lambda s: s.order)
    by_id = {s.message_id: s for s in sends if s.message_id is not None}
    credited: set[str] = set()
    out: dict[str, list[dict[str, Any]]] = {}
    for server, messages in stored.items():
        rows = out.setdefault(server, [])
        for m in messages:
            row = dict(m)
            rows.append(row)
            if str(m.get("author_id")) != user_ids.get(server):
                continue
            send = by_id.get(str(m.get("id")))
            if send is None or send.server != server:
                same = [
                    s for s in sends
                    if s.server == server and s.channel_id == str(m.get("channel_id"))
                    and s.content == m.get("content")
                ]
                fresh = [s for s in same if s.nonce not in credited and s.message_id is None]
                send = fresh[0] if fresh else (same[-1] if same else None)
            if send is not None:
                row["nonce"] = send.nonce
                credited.add(send.nonce)
    return out


def check_delivery(
    records: Sequence[RecordLike],
    stored: Mapping[str, Sequence[Mapping[str, Any]]],
    user_ids: Mapping[str, str],
) -> DeliveryReport:
    """`stored`: each server's messages (oldest first); `user_ids`: the client's user per server."""
    sends = _sends(records)
    _apply_http_outcomes(records, sends)
    deleted_ids = {
        str(s.args[1]) for s in signals(records) if s.name == "message_deleted" and len(s.args) > 1
    }
    report = DeliveryReport()
    copies: dict[str, list[Mapping[str, Any]]] = {}
    for server, messages in stored.items():
        for m in messages:
            nonce = m.get("nonce")
            if nonce is not None and str(nonce) in sends and sends[str(nonce)].server == server:
                copies.setdefault(str(nonce), []).append(m)
            elif str(m.get("author_id")) == user_ids.get(server):
                report.unexpected.append(
                    f"{server}: stored {m.get('content')!r} (id {m.get('id')}), "
                    "which no send explains"
                )
    last_id: dict[tuple[str, str], tuple[int, str]] = {}
    for send in sorted(sends.values(), key=lambda s: s.order):
        found = copies.get(send.nonce, [])
        label = f"{send.server}: {send.content!r}"
        if send.message_id in deleted_ids or any(str(m.get("id")) in deleted_ids for m in found):
            send.deleted = True
        if send.outcome == "accepted":
            if not found and not send.deleted:
                report.lost.append(f"{label} was accepted but is not stored")
            elif len(found) > 1:
                report.duplicated.append(f"{label} is stored {len(found)} times")
            else:
                report.delivered += 1
            if found and not send.sent_again and send.answered:
                key = (send.server, send.channel_id)
                message_id = int(str(found[0].get("id")))
                previous = last_id.get(key)
                if previous is not None and message_id < previous[0]:
                    report.reordered.append(
                        f"{label} is stored before {previous[1]!r}, sent earlier"
                    )
                last_id[key] = (message_id, send.content)
        elif send.outcome == "refused":
            report.refused += 1
            if found:
                report.unexpected.append(f"{label} was refused but is stored")
        elif send.outcome == "unknown":
            report.unknown += 1
            if len(found) > 1:
                report.duplicated.append(f"{label} (outcome unknown) is stored {len(found)} times")
        else:
            report.pending += 1
            if len(found) > 1:
                report.duplicated.append(f"{label} (pending) is stored {len(found)} times")
    return report


def compare_lists(
    server: str, channel: str, client_ids: Sequence[str], server_ids: Sequence[str]
) -> list[str]:
    """The client's list (failed/pending entries left out) against the server's, from
    the client's oldest loaded message on (client-behaviour.md s.3)."""
    if not client_ids:
        wanted = list(server_ids)
    else:
        oldest = min(int(i) for i in client_ids)
        wanted = [i for i in server_ids if int(i) >= oldest]
    problems = []
    if len(set(client_ids)) != len(client_ids):
        problems.append(f"{server}/{channel}: the client shows a message twice")
    missing = [i for i in wanted if i not in set(client_ids)]
    extra = [i for i in client_ids if i not in set(wanted)]
    if missing:
        problems.append(
            f"{server}/{channel}: the client lacks {len(missing)} of the server's messages"
        )
    if extra:
        problems.append(
            f"{server}/{channel}: the client shows {len(extra)} messages the server lacks"
        )
    return problems
