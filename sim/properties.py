"""Properties every run must have, checked on a simulated run's records and view
series (client-behaviour.md). The verdict code already judges delivery (s.6), the
backoff formula against the recorded draws, the RESUME/heartbeat seq the server
received, and the steps' own waits (liveness); these add the rules a scenario file
cannot state:

- s.5: at every instant the dot, the banner colour and the composer agree with the
  status;
- s.2: CONNECTED only after READY / `resumed`; a beat and a RESUME carry the last
  seq the client saw; the attempt counter counts 1, 2, ...
  within an outage, never past 10; a close meant to resume sends no close frame;
  after INVALID_SESSION the next handshake is RESUME if resumable, else IDENTIFY;
- s.4: escalation only after attempt 10 failed, a fatal close, or the user's
  Reconnect, once per outage, and it logs in again before its gateway attempt;
- s.6: nothing dropped silently: every send ends sent, failed/refused, queued or
  out at the end;
- s.7: nothing but its logout goes to a removed server (the logout may be retried
  after a 429), and no other timer of its is set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from client.core.protocol import FATAL_CODES, Op, Reason4000
from client.timeline import Record
from client.ui.texts import COMPOSER_OFFLINE, COMPOSER_QUEUEING, COMPOSER_SYNCING
from scenarios.observation import Observation
from scenarios.verdict import ServerWiring, conn_server

MAX_ATTEMPTS = 10  # client-behaviour.md s.1: gateway attempts before escalation
RESUME_REASONS = (Reason4000.HEARTBEAT, Reason4000.RECONNECT)

_DOT = {"disconnected": "yellow", "reconnecting": "yellow", "error": "red"}
_BANNER: dict[str, set[str | None]] = {
    "error": {"red"},
    "connected": {None, "green"},
    "syncing": {None, "yellow"},
    "disconnected": {"yellow"},
    "reconnecting": {"yellow"},
    "connecting": {"yellow"},
}
_COMPOSER = {  # status -> (enabled, placeholder; None = "Message #<channel>")
    "connected": (True, None),
    "syncing": (False, COMPOSER_SYNCING),
    "disconnected": (True, COMPOSER_QUEUEING),
    "reconnecting": (True, COMPOSER_QUEUEING),
    "error": (False, COMPOSER_OFFLINE),
    "connecting": (False, COMPOSER_OFFLINE),
}


def view_violations(series: Sequence[Observation]) -> list[str]:
    """s.5: what the user sees agrees with the status, at every instant."""
    found: list[str] = []
    for obs in series:
        for name, seen in obs.servers.items():
            status = seen.status
            if status == "none":
                continue
            if seen.dot != _DOT.get(status):
                found.append(f"t={obs.t:.3f} {name}: dot {seen.dot} while {status} (s.5)")
            if status in _BANNER and seen.banner.color not in _BANNER[status]:
                found.append(f"t={obs.t:.3f} {name}: banner {seen.banner} while {status} (s.5)")
            if obs.composer is not None and obs.screen_server == name and status in _COMPOSER:
                enabled, placeholder = _COMPOSER[status]
                shown = obs.composer.placeholder
                right = (
                    shown.startswith("Message #") if placeholder is None else shown == placeholder
                )
                if obs.composer.enabled != enabled or not right:
                    found.append(
                        f"t={obs.t:.3f} {name}: composer "
                        f"{'enabled' if obs.composer.enabled else 'disabled'} {shown!r} "
                        f"while {status} (s.5)"
                    )
        if len(found) > 5:
            break
    return found


def _frame(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _resumable(frame: dict[str, Any]) -> bool:
    data = frame.get("data")
    if isinstance(data, dict):
        return bool(data.get("resumable"))
    return bool(data)


def gateway_violations(records: Sequence[Record], wiring: dict[str, ServerWiring]) -> list[str]:
    """s.2 and s.4, from the client's inputs, effects and signals in order."""
    owners = conn_server(records, wiring)
    found: list[str] = []
    last: dict[str, str] = {}  # server -> what its gateway last said ("ready", "opened"...)
    attempts: dict[str, int] = {}
    fatal: dict[str, bool] = {}
    user_asked: dict[str, bool] = {}
    escalated: dict[str, bool] = {}
    need_login: dict[str, bool] = {}
    seen_seq: dict[str, int | None] = {}  # server -> the last op 0 seq the client got
    resume_pending: dict[str, bool] = {}
    tried: dict[str, bool] = {}  # server -> the announced attempt opened its socket
    next_handshake: dict[str, int] = {}  # server -> op the next handshake must be (2 / 3)

    def server_of_url(url: str) -> str | None:
        for name, wire in wiring.items():
            if url.startswith(wire.rest_base.rsplit("/api/v1", 1)[0]):
                return name
        return None

    for r in records:
        data = r.data
        if r.src == "client" and r.kind == "input":
            conn = data.get("conn")
            server = owners.get(int(conn)) if conn is not None else None
            if server is None:
                continue
            if r.name == "SocketOpened":
                last[server] = "opened"
            elif r.name == "SocketClosed" and int(data.get("code", 0)) in FATAL_CODES:
                fatal[server] = True  # also on an attempt, where no server_disconnected comes
            elif r.name == "SocketText":
                frame = _frame(str(data.get("text", "")))
                kind = frame.get("type") if frame.get("op") == 0 else f"op{frame.get('op')}"
                last[server] = str(kind)
                seq = frame.get("seq")
                if frame.get("op") == 0 and isinstance(seq, int) and not isinstance(seq, bool):
                    seen_seq[server] = seq
                if frame.get("op") == Op.INVALID_SESSION:
                    # resumable answers a RESUME: resume again; not resumable: identify
                    # (resumable in answer to an IDENTIFY leaves no session to resume)
                    if not _resumable(frame):
                        next_handshake[server] = 2
                        seen_seq[server] = None
                    elif resume_pending.get(server):
                        next_handshake[server] = 3
                if kind in ("resumed", f"op{Op.INVALID_SESSION}"):
                    resume_pending[server] = False
            elif r.name in ("SocketClosed", "SocketOpenFailed") and resume_pending.get(server):
                seen_seq[server] = None  # s.2: a drop while RESUME is pending clears it
                resume_pending[server] = False
        elif r.src == "ui" and r.kind == "input" and r.name == "ReconnectServer":
            server = str(data.get("server", ""))
            user_asked[server] = True
            attempts[server] = 0
        elif r.src == "client" and r.kind == "signal":
            args = data.get("args") or []
            server = str(args[0]) if args else ""
            if r.name in ("server_connected", "server_reconnected"):
                if last.get(server) not in ("ready", "resumed"):
                    found.append(
                        f"t={r.t:.3f} {server}: {r.name} after {last.get(server)!r}, "
                        "not READY/resumed (s.2: CONNECTED means READY)"
                    )
                attempts[server] = 0
                escalated[server] = fatal[server] = False
            elif r.name == "server_reconnecting" and len(args) >= 2:
                n = int(args[1])
                if n != attempts.get(server, 0) + 1 or n > MAX_ATTEMPTS:
                    found.append(
                        f"t={r.t:.3f} {server}: attempt {n} after attempt "
                        f"{attempts.get(server, 0)} (s.2 attempt counter)"
                    )
                attempts[server] = n
                tried[server] = False
            elif r.name == "server_disconnected" and len(args) >= 2:
                fatal[server] = int(args[1]) in FATAL_CODES
            elif r.name == "server_reauthenticating":
                automatic = not user_asked.get(server)
                done = attempts.get(server, 0) - (0 if tried.get(server, True) else 1)
                if automatic and not fatal.get(server) and done < MAX_ATTEMPTS:
                    found.append(
                        f"t={r.t:.3f} {server}: escalated after {done} socket attempts "
                        f"(s.2/s.4: after attempt {MAX_ATTEMPTS} fails)"
                    )
                if automatic and escalated.get(server):
                    found.append(
                        f"t={r.t:.3f} {server}: a second automatic escalation in one outage (s.4)"
                    )
                escalated[server] = escalated.get(server, False) or automatic
                user_asked[server] = False
                fatal[server] = False
                attempts[server] = 0
                need_login[server] = True
                next_handshake.pop(server, None)  # a fresh login, a fresh session
                seen_seq[server] = None  # s.4: the connect sequence again, IDENTIFY, seq 0
                resume_pending[server] = False
        elif r.src == "client" and r.kind == "effect":
            if r.name == "HttpRequest":
                server = server_of_url(str(data.get("url", "")))
                if server and data.get("method") == "POST" and "/auth/login" in data.get("url", ""):
                    need_login[server] = False
            elif r.name == "OpenSocket":
                server = owners.get(int(data["conn"]))
                if server:
                    tried[server] = True
                if server and need_login.get(server):
                    found.append(
                        f"t={r.t:.3f} {server}: gateway attempt after re-authentication "
                        "without a new login (s.4)"
                    )
                    need_login[server] = False
            elif r.name == "CloseSocket":
                server = owners.get(int(data["conn"]))
                if (
                    data.get("code") == 4000
                    and data.get("reason") in RESUME_REASONS
                    and data.get("frame")
                ):
                    found.append(
                        f"t={r.t:.3f} {server}: close 4000 {data.get('reason')!r} sent a close "
                        "frame (s.2: a close meant to resume has none)"
                    )
            elif r.name == "SendText":
                server = owners.get(int(data["conn"]))
                sent = _frame(str(data.get("text", "")))
                op = sent.get("op")
                if server and op in (1, 3):
                    # s.2: a beat and a RESUME carry the last seq seen (0: none yet)
                    carried = sent.get("data") if op == 1 else (sent.get("data") or {}).get("seq")
                    if carried != (seen_seq.get(server) or 0):
                        found.append(
                            f"t={r.t:.3f} {server}: op {op} carries seq {carried}, the last "
                            f"seen is {seen_seq.get(server) or 0} (s.2)"
                        )
                    if op == 3:
                        resume_pending[server] = True
                if server and op in (2, 3) and server in next_handshake:
                    wanted = next_handshake.pop(server)
                    if op != wanted:
                        names = {2: "IDENTIFY", 3: "RESUME"}
                        found.append(
                            f"t={r.t:.3f} {server}: {names[op]} after INVALID_SESSION, "
                            f"expected {names[wanted]} (s.2)"
                        )
        if len(found) > 5:
            break
    return found


def removal_violations(records: Sequence[Record], wiring: dict[str, ServerWiring]) -> list[str]:
    """s.7: after `server_removed`, no socket, request or timer for that server."""
    found: list[str] = []
    removed: dict[str, float] = {}
    owners_by_url = {name: wire.gateway_url.split("?")[0] for name, wire in wiring.items()}
    for r in records:
        if r.src != "client":
            continue
        if r.kind == "signal" and r.name == "server_removed":
            removed[str((r.data.get("args") or [""])[0])] = r.t
            continue
        for name, t0 in removed.items():
            if r.t <= t0:
                continue
            if r.kind == "timer" and r.name == "SetTimer":
                # the logout of the removal may time out or wait out a 429 (s.7: the
                # removal logs out); the requests themselves are checked below
                timer = str(r.data.get("name", ""))
                if timer.startswith(f"{name}:") and not timer.startswith(f"{name}:http"):
                    found.append(f"t={r.t:.3f} {name}: timer {r.data.get('name')} after removal")
            elif r.kind == "effect" and r.name in ("OpenSocket", "HttpRequest"):
                url = str(r.data.get("url", ""))
                rest = wiring[name].rest_base
                if url.startswith(owners_by_url[name]) or (
                    url.startswith(rest) and "/auth/logout" not in url
                ):
                    found.append(f"t={r.t:.3f} {name}: {r.name} {url} after removal (s.7)")
    return found[:5]


def _nonce(body: Any) -> str | None:
    try:
        value = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    return str(value.get("nonce")) if isinstance(value, dict) and value.get("nonce") else None


def rest_violations(records: Sequence[Record], rest_wait: float, end: float) -> list[str]:
    """s.1: every HTTP request ends (answer, failure or the client's cancel) within the
    REST timeout, 429 waits apart (each retry is its own request); s.1 REST 429: a
    send reported "Rate limited after 3 retries" made 4 requests answered 429."""
    found: list[str] = []
    started: dict[int, tuple[float, str]] = {}
    nonce_of: dict[int, str] = {}
    throttled: dict[str, int] = {}  # nonce -> 429 answers
    sending: dict[tuple[str, str], str] = {}  # (server, content) -> nonce
    slack = 0.01 + rest_wait * 0.01
    for r in records:
        data = r.data
        if r.src == "client" and r.kind == "effect" and r.name == "HttpRequest":
            req = int(data["req"])
            started[req] = (r.t, f"{data.get('method')} {data.get('url')}")
            nonce = _nonce(data.get("body"))
            if nonce is not None:
                nonce_of[req] = nonce
        elif (
            r.src == "client" and r.kind == "input" and r.name in ("HttpResponse", "HttpFailed")
        ) or (r.src == "client" and r.kind == "effect" and r.name == "CancelHttp"):
            req = int(data["req"])
            began = started.pop(req, None)
            if began is not None and r.t - began[0] > rest_wait + slack:
                found.append(
                    f"t={began[0]:.3f} {began[1]} ended only after {r.t - began[0]:.3f}s "
                    f"(REST timeout {rest_wait:g}s, s.1)"
                )
            if r.name == "HttpResponse" and data.get("status") == 429 and req in nonce_of:
                throttled[nonce_of[req]] = throttled.get(nonce_of[req], 0) + 1
        elif r.src == "client" and r.kind == "signal":
            args = data.get("args") or []
            if r.name in ("message_sending", "message_queued") and len(args) >= 4:
                sending[(str(args[0]), str(args[2]))] = str(args[3])
            elif (
                r.name == "message_send_failed"
                and len(args) >= 4
                and "Rate limited" in str(args[3])
            ):
                nonce = sending.get((str(args[0]), str(args[2])))
                if nonce is not None and throttled.get(nonce, 0) < 4:
                    found.append(
                        f"t={r.t:.3f} {args[0]}: {args[2]!r} failed rate-limited after "
                        f"{throttled.get(nonce, 0)} answers 429 (s.1: 3 retries, 4 requests)"
                    )
    for t0, what in started.values():
        if end - t0 > rest_wait + slack:
            found.append(f"t={t0:.3f} {what} never ended (REST timeout {rest_wait:g}s, s.1)")
    return found[:5]


class SendsInFlight:
    """Which sends still have their POST out, fed the records in order (incrementally:
    explore's tail asks after every simulated event): a request carrying the nonce is
    not answered, failed or cancelled yet, or it was answered 429 and the retry has
    neither been made nor has the send settled (sent, failed, refused, a failed entry)."""

    def __init__(self) -> None:
        self.fed = 0  # records read so far
        self._requests: dict[int, str] = {}  # request not ended -> nonce
        self._retrying: set[str] = set()  # nonces answered 429, the retry not made yet
        self._keys: dict[str, tuple[str, str, str]] = {}  # nonce -> (server, channel, text)

    def feed(self, records: Sequence[Record]) -> None:
        for r in records[self.fed :]:
            self._feed_one(r)
        self.fed = len(records)

    def _feed_one(self, r: Record) -> None:
        if r.src != "client":
            return
        data = r.data
        if r.kind == "effect" and r.name == "HttpRequest":
            nonce = _nonce(data.get("body"))
            if nonce is not None:
                self._requests[int(data["req"])] = nonce
                self._retrying.discard(nonce)
        elif (r.kind == "input" and r.name in ("HttpResponse", "HttpFailed")) or (
            r.kind == "effect" and r.name == "CancelHttp"
        ):
            nonce = self._requests.pop(int(data["req"]), None)
            if nonce is not None and r.name == "HttpResponse" and data.get("status") == 429:
                self._retrying.add(nonce)
        elif r.kind == "signal":
            args = data.get("args") or []
            if r.name in ("message_sending", "message_queued") and len(args) >= 4:
                self._keys[str(args[3])] = (str(args[0]), str(args[1]), str(args[2]))
            elif r.name in ("message_sent", "message_failed_entry") and len(args) >= 3:
                self._retrying.discard(str(args[2]))
            elif r.name in ("message_send_failed", "message_send_refused") and len(args) >= 3:
                key = (str(args[0]), str(args[1]), str(args[2]))
                self._retrying -= {n for n in self._retrying if self._keys.get(n) == key}
            elif r.name == "server_removed" and args:
                gone = {n for n, key in self._keys.items() if key[0] == str(args[0])}
                self._retrying -= gone
                self._requests = {q: n for q, n in self._requests.items() if n not in gone}

    def out(self) -> set[str]:
        """The nonces whose send is still out."""
        return set(self._requests.values()) | self._retrying


def silent_drop_violations(records: Sequence[Record]) -> list[str]:
    """s.6 "nothing is ever dropped silently": at the end, every message the client
    gave a nonce was sent (`message_sent`), reported failed or refused (the composer
    or a failed entry), is still in its server's queue, has its request out (or
    answered 429: its retry waits), waits behind such a send, or went with its
    removed server. So per
    server the other open sends are at most the final queue depth."""
    open_sends: dict[str, dict[str, tuple[str, str]]] = {}  # server -> nonce -> (channel, text)
    depth: dict[str, int] = {}
    removed: set[str] = set()
    requested: set[str] = set()  # nonces a request carried
    out: dict[int, str] = {}  # request -> nonce, for the requests not ended
    for r in records:
        if r.src != "client":
            continue
        args = r.data.get("args") or []
        if r.kind == "effect" and r.name == "HttpRequest":
            nonce = _nonce(r.data.get("body"))
            if nonce is not None:
                out[int(r.data["req"])] = nonce
                requested.add(nonce)
        elif r.kind == "input" and r.name == "HttpResponse" and r.data.get("status") == 429:
            pass  # its send is out until the retry
        elif (r.kind == "input" and r.name == "HttpFailed") or (
            r.kind in ("input", "effect") and r.name in ("HttpResponse", "CancelHttp")
        ):
            out.pop(int(r.data["req"]), None)
        if r.kind != "signal" or not args:
            continue
        server = str(args[0])
        sends = open_sends.setdefault(server, {})
        if r.name in ("message_sending", "message_queued") and len(args) >= 4:
            sends[str(args[3])] = (str(args[1]), str(args[2]))
        elif r.name in ("message_sent", "message_failed_entry") and len(args) >= 3:
            sends.pop(str(args[2]), None)
        elif r.name in ("message_send_failed", "message_send_refused") and len(args) >= 3:
            for nonce, key in list(sends.items()):
                if key == (str(args[1]), str(args[2])):
                    del sends[nonce]
        elif r.name == "queue_changed" and len(args) >= 2:
            depth[server] = int(args[1])
        elif r.name == "server_removed":
            removed.add(server)
    in_flight = set(out.values())
    found: list[str] = []
    for server, sends in open_sends.items():
        if server in removed:
            continue
        busy = any(nonce in in_flight for nonce in sends)
        dropped = [
            text
            for nonce, (_channel, text) in sends.items()
            if nonce not in in_flight and not (busy and nonce not in requested)
        ]
        if len(dropped) > depth.get(server, 0):
            found.append(
                f"{server}: {len(dropped)} sends neither sent, failed, refused, queued nor"
                f" out at the end (s.6: nothing dropped silently): {dropped[:3]}"
            )
    return found

# A scenario with this tag is also judged by these properties, in both modes
# (scenarios.runner): the files explore writes carry it, so a replay judges them too.
PROPERTIES_TAG = "check:properties"


def all_violations(
    records: Sequence[Record],
    series: Sequence[Observation],
    wiring: dict[str, ServerWiring],
    rest_wait: float,
    end: float,
) -> list[str]:
    return [
        *view_violations(series),
        *gateway_violations(records, wiring),
        *removal_violations(records, wiring),
        *rest_violations(records, rest_wait, end),
        *silent_drop_violations(records),
    ]
