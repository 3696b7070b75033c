"""One gateway connection, sans I/O: handshake, heartbeats, RESUME, bad input, faults.

Session rules (accord-protocol.md s.2, s.5): a session is parked only when its socket
ends without a close frame (reset, EOF, a proxy cut, the server's own silence drop or
drop fault) or by a server close that does not end it; any client close frame, the
server's 4005/4008 and INVALID_SESSION end it, unless an opt-in behaviour says otherwise.

A connection only emits `Out`s into the core's outbox; the driver keeps per-socket
order (frames, then a close or a flushing drop).
"""

from __future__ import annotations

import json
from collections import deque
from typing import TYPE_CHECKING, Any

from fake_server.config import INBOUND_FRAME_LIMIT, INBOUND_FRAME_WINDOW_S, MAX_FRAME_BYTES
from fake_server.core.io import Close, Drop, SendText
from fake_server.faults import (
    CloseSpec,
    DelayHelloSpec,
    DropSpec,
    GarbageSpec,
    GatewayAction,
    HeartbeatIntervalSpec,
    InvalidSessionSpec,
    ReconnectSpec,
    RequestHeartbeatSpec,
    SendFrameSpec,
    StaleReplaySpec,
    Trigger,
)
from fake_server.history import clip
from fake_server.sessions import Session

if TYPE_CHECKING:
    from fake_server.core.server import ServerCore

# Server closes after which the session is over (accord-protocol.md s.2, s.5).
SESSION_ENDING_CODES = frozenset({4003, 4004, 4005, 4008, 4009, 4012, 4013, 4014})
# Client closes that end the session even under `park_on_client_close`.
CLIENT_ENDING_CODES = frozenset({1000, 1001})
TOKEN_SCHEMES = ("Bearer ", "Bot ")
INVALID_SESSION = {"op": 7, "data": {"resumable": False}}
# One encoder (json.dumps with options builds a new one per call: the per-frame path).
_ENCODER = json.JSONEncoder(separators=(",", ":"))
encode = _ENCODER.encode


class Connection:
    def __init__(self, core: ServerCore, conn_id: int, now: float) -> None:
        self.core = core
        self.id = conn_id
        self.session: Session | None = None
        self.user: dict[str, Any] | None = None
        self.finished = False
        """No more input is handled (the socket is ending)."""
        self.cut = False
        """A Close or Drop went out: nothing more is sent."""
        # How the connection ended: by client/server/drop/lost, code, reason.
        self.ended_by: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.end_reason: str | None = None
        """Set when the session must end with this socket (the history's reason)."""
        self.park_reason = "connection lost"
        self._frame_times: deque[float] = deque()  # non-heartbeat frames after READY
        self.hello_at: float | None = None
        """When a delayed HELLO is due; None once sent (or never delayed)."""
        self.held: list[tuple[str, Any]] = []
        """Input that came before a delayed HELLO, handled once it is sent."""
        self.handshake_deadline = now
        self.last_input = now

    # ------------------------------------------------------------------ lifecycle

    def open(self, now: float) -> None:
        core = self.core
        delay = core.board.take(lambda s: isinstance(s, DelayHelloSpec))
        if delay is not None and isinstance(delay.spec, DelayHelloSpec):
            core.fault_fired(delay, conn=self.id)
            seconds = core.config.scaled(delay.spec.seconds)
            if seconds > 0:
                self.hello_at = now + seconds
                core.schedule(self.hello_at, "hello", self.id)
                return
        self.hello(now)

    def hello(self, now: float) -> None:
        """Send HELLO, start the handshake clock, then handle what came meanwhile."""
        core, cfg = self.core, self.core.config
        self.hello_at = None
        interval = core.board.take(lambda s: isinstance(s, HeartbeatIntervalSpec))
        ms = cfg.heartbeat_interval_ms
        if interval is not None and isinstance(interval.spec, HeartbeatIntervalSpec):
            core.fault_fired(interval, conn=self.id)
            ms = interval.spec.ms
        self.send({"op": 5, "data": {"heartbeat_interval": cfg.scaled_ms(ms)}})
        self.handshake_deadline = now + cfg.scaled(cfg.handshake_timeout_s)
        self.last_input = now
        core.schedule(self.handshake_deadline, "conn", self.id)
        held, self.held = self.held, []
        for kind, item in held:
            if self.finished:
                break
            if kind == "text":
                self.on_text(now, item)
            else:
                self.on_binary(now, item)

    def input_deadline(self) -> float:
        """When silence ends this socket: the handshake's end, or silence after READY."""
        if self.session is None:
            return self.handshake_deadline
        return self.last_input + self.core.config.scaled(self.core.config.silence_drop_s)

    def on_deadline(self, now: float) -> None:
        if self.finished or self.hello_at is not None:
            return
        due = self.input_deadline()
        if due > now:
            self.core.schedule(due, "conn", self.id)
        elif self.session is None:
            self._reject_handshake()
        else:  # silent too long: as the reference, no close frame, parked
            self.drop(park_reason="silence")

    def release_session(self) -> bool:
        """Park or end the session as accord-protocol.md s.2 says; True if parked."""
        session = self.session
        if session is None or session.conn is not self:
            return False  # never identified, ended already, or taken over by a newer socket
        registry = self.core.sessions
        if self.ended_by == "client":
            parks = (self.core.config.has("park_on_client_close")
                     and self.close_code not in CLIENT_ENDING_CODES)
            if not parks:
                self.end_reason = self.end_reason or "client close frame"
            self.park_reason = "client close frame"
        elif self.ended_by == "server":
            self.park_reason = str(self.close_code)
        if session.forgotten:
            self.end_reason = "forgotten"
        if self.end_reason is not None:
            registry.end(session, self.end_reason)
            return False
        registry.park(session, self.park_reason)
        return True

    def ended(self, by: str, code: int, reason: str) -> None:
        if self.ended_by is None:
            self.ended_by, self.close_code, self.close_reason = by, code, reason
        self.finished = True

    # ------------------------------------------------------------------ output

    def send(self, frame: Any) -> None:
        """Send a JSON frame (dict) on this connection."""
        if not self.finished:
            self.core.out.append(SendText(self.id, encode(frame)))
            self.core.record("frame", "out", self._frame_data(frame=frame))

    def send_text(self, text: str) -> None:
        if not self.finished:
            self.core.out.append(SendText(self.id, text))
            self.core.record("frame", "out", self._frame_data(text=clip(text)))

    def close(self, code: int, reason: str, end_session: bool | None = None) -> None:
        """Close with a close frame after the frames already sent."""
        if end_session is None:
            end_session = code in SESSION_ENDING_CODES
        if end_session and self.end_reason is None:
            self.end_reason = str(code)
        self.ended("server", code, reason)
        if not self.cut:
            self.cut = True
            self.core.out.append(Close(self.id, code, reason))

    def drop(self, park_reason: str = "server drop") -> None:
        """Abort the TCP connection at once: no close frame (the client sees 1006)."""
        self.park_reason = park_reason
        self.ended("drop", 1006, "")
        if not self.cut:
            self.cut = True
            self.core.out.append(Drop(self.id))
        self.core.finish(self)

    def _frame_data(self, **payload: Any) -> dict[str, Any]:
        return {
            "conn": self.id,
            "session_id": self.session.session_id if self.session else None,
            "user": self.user["username"] if self.user else None,
            **payload,
        }

    def _record_in(self, payload: dict[str, Any]) -> None:
        self.core.record("frame", "in", self._frame_data(**payload))

    # ------------------------------------------------------------------ input

    def _admit(self, now: float, kind: str, item: Any) -> bool:
        """Hold input until a delayed HELLO is out; False when it is not handled now."""
        if self.hello_at is not None:
            self.held.append((kind, item))
            return False
        if self.finished:
            return False
        self.last_input = now
        return True

    def on_binary(self, now: float, size: int) -> None:
        if not self._admit(now, "binary", size):
            return
        self._record_in({"binary": size})  # ignored, as the reference
        self._over_frame_limit(now)

    def on_oversized(self) -> None:
        """A frame over MAX_FRAME_BYTES: the transport closes with 1009 (the session parks)."""
        self.ended("server", 1009, "frame too big")

    def on_text(self, now: float, text: str) -> None:
        if not self._admit(now, "text", text):
            return
        if len(text) * 4 > MAX_FRAME_BYTES and len(text.encode()) > MAX_FRAME_BYTES:
            # A driver with no transport limit of its own (the simulator).
            self.on_oversized()
            self.cut = True
            self.core.out.append(Close(self.id, 1009, "frame too big"))
            return
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            frame = None
        valid = isinstance(frame, dict) and type(frame.get("op")) is int
        if valid:
            self._record_in({"frame": frame})
        else:
            self._record_in({"text": clip(text)})
        if self.session is None:
            if not valid:
                self._reject_handshake()
            else:
                self._on_handshake_frame(now, frame)
            return
        op = frame["op"] if valid else None
        if op == 1:
            self._on_heartbeat()
        elif self._over_frame_limit(now):
            return
        elif op in (2, 3):
            self.close(4005, "already authenticated")
        elif op == 8:
            self._on_presence(frame.get("data"))
        # Anything else (not JSON, an unknown op, op 9 / 10): ignored, as the reference.

    def _over_frame_limit(self, now: float) -> bool:
        """Count a frame other than HEARTBEAT after READY; over the limit: close 4008."""
        if self.session is None:
            return False
        window = self.core.config.scaled(INBOUND_FRAME_WINDOW_S)
        times = self._frame_times
        times.append(now)
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) <= INBOUND_FRAME_LIMIT:
            return False
        if not self.finished:
            self.close(4008, "rate limit exceeded")
        return True

    def _on_handshake_frame(self, now: float, frame: dict[str, Any]) -> None:
        op = frame["op"]
        if op == 1:
            if not self._fire_trigger("on_heartbeat", None):
                self.send({"op": 4})
        elif op == 2:
            self._on_identify(now, frame.get("data"))
        elif op == 3:
            self._on_resume(now, frame.get("data"))
        else:
            self._reject_handshake()

    def _reject_handshake(self) -> None:
        """INVALID_SESSION {"resumable": false}, then drop the socket (as the reference)."""
        self.send(INVALID_SESSION)
        self.end_reason = self.end_reason or "invalid_session"
        self.ended("drop", 1006, "")
        if not self.cut:
            self.cut = True
            self.core.out.append(Drop(self.id, flush=True))
        self.core.finish(self)

    def _token_user(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The token's user; None for a bad, revoked or scheme-less token."""
        token = data.get("token")
        if not isinstance(token, str):
            return None
        scheme = next((p for p in TOKEN_SCHEMES if token.startswith(p)), None)
        if scheme is None:
            return None
        token = token[len(scheme) :]
        if not token.isascii():  # tokens are hex; anything else (even "\ud800") is bad
            return None
        return self.core.store.user_for_token(token)

    def _bad_token(self) -> None:
        fault = self.core.board.take(lambda s: s.kind == "bad_token_close")
        if fault is None:
            self._reject_handshake()
            return
        self.core.fault_fired(fault, conn=self.id)
        self.close(fault.spec.code, fault.spec.reason, end_session=True)  # type: ignore[union-attr]

    def _on_identify(self, now: float, data: Any) -> None:
        intents = data.get("intents") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or "token" not in data
            or not isinstance(intents, list)
            or not all(isinstance(i, str) for i in intents)
        ):
            self._reject_handshake()
            return
        user = self._token_user(data)
        if self._fire_trigger("on_identify", user):
            return
        if user is None:
            self._bad_token()
            return
        self.user = user
        core = self.core
        session = core.sessions.create(
            core.new_session_id(), user["id"], user["username"], frozenset(intents), self
        )
        self.session = session
        self.send({"op": 0, "type": "ready", "data": core.ready_payload(session, user),
                   "seq": 1})
        core.schedule(self.input_deadline(), "conn", self.id)

    def _on_resume(self, now: float, data: Any) -> None:
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("session_id"), str)
            or type(data.get("seq")) is not int
            or "token" not in data
        ):
            self._reject_handshake()
            return
        user = self._token_user(data)
        if self._fire_trigger("on_resume", user, session_id=data["session_id"]):
            return
        if user is None:
            self._bad_token()
            return
        self.user = user
        core = self.core
        registry = core.sessions
        session = registry.get_resumable(data["session_id"], now)
        if session is None or session.user_id != user["id"]:
            self._reject_handshake()
            return
        old = session.conn
        if old is not None and not core.config.has("takeover_resume"):
            self._reject_handshake()  # its socket is still open: left as it is
            return
        seq = data["seq"]
        replay = session.replay_after(seq) if 0 < seq <= session.seq else None
        if replay is None:
            # seq 0, ahead, or older than the buffer: a parked session is over; a live
            # one is left alone (a stray RESUME must not kill a working socket).
            if old is None:
                registry.end(session, "invalid_session")
            self._reject_handshake()
            return
        stale = core.board.take(
            lambda s: isinstance(s, StaleReplaySpec)
            and targets(s, session.username, session.session_id)
        )
        if stale is not None and isinstance(stale.spec, StaleReplaySpec):
            start = max(seq - stale.spec.back, session.oldest_replayable)
            replay = session.replay_after(start) or []
            core.fault_fired(stale, conn=self.id, session_id=session.session_id,
                             asked=seq, replayed_from=start + 1)
        registry.attach(session, self, "takeover" if old is not None else "resume")
        self.session = session
        if old is not None:
            old.close(4000, "session taken over", end_session=False)
        for event in replay:
            self.send(event)
        self.send(
            {
                "op": 0,
                "type": "resumed",
                "data": {"session_id": session.session_id, "seq": session.seq,
                         "replayed": len(replay)},
                "seq": session.seq,
            }
        )
        core.schedule(self.input_deadline(), "conn", self.id)

    def _on_heartbeat(self) -> None:
        session = self.session
        assert session is not None
        if self._fire_trigger("on_heartbeat", self.user):
            return
        board = self.core.board
        if board.active:
            withheld = board.take(
                lambda s: s.kind == "withhold_acks" and targets(s, session.username,
                                                                session.session_id)
            )
            if withheld is not None:
                self.core.fault_fired(withheld, conn=self.id, session_id=session.session_id)
                return
        self.send({"op": 4})

    def _on_presence(self, data: Any) -> None:
        session = self.session
        if session is None or not isinstance(data, dict):
            return
        status = data.get("status")
        if not isinstance(status, str):
            return
        activity = data.get("activity")
        payload = {
            "user_id": session.user_id,
            "status": status,
            "client_status": {"desktop": status},
            "activities": [activity] if activity is not None else [],
        }
        core = self.core
        core.presences[session.user_id] = payload
        for space in core.store.spaces_of(session.user_id):  # the user's own too
            core.dispatch("presence.update", payload, space["id"], None)

    # ------------------------------------------------------------------ faults

    def _fire_trigger(
        self, trigger: Trigger, user: dict[str, Any] | None, session_id: str | None = None
    ) -> bool:
        """Run a standing gateway action instead of the normal answer; True if one ran."""
        board = self.core.board
        if not board.active:
            return False
        username = user["username"] if user else None
        sid = session_id or (self.session.session_id if self.session else None)
        fault = board.take(
            lambda s: getattr(s, "trigger", None) == trigger and targets(s, username, sid)
        )
        if fault is None:
            return False
        self.core.fault_fired(fault, conn=self.id, session_id=sid)
        self.perform(fault.spec)  # type: ignore[arg-type]
        return True

    def perform(self, action: GatewayAction) -> None:
        if isinstance(action, CloseSpec):
            self.close(action.code, action.reason)
        elif isinstance(action, DropSpec):
            self.drop()
        elif isinstance(action, InvalidSessionSpec):
            form: Any = action.resumable
            if action.form == "object":
                form = {"resumable": action.resumable}
            self.send({"op": 7, "data": form})
            if not action.resumable:
                self.end_reason = "invalid_session"
                if self.session is not None and self.session.conn is self:
                    self.core.sessions.end(self.session, "invalid_session")
        elif isinstance(action, ReconnectSpec):
            self.send({"op": 6})
        elif isinstance(action, RequestHeartbeatSpec):
            self.send({"op": 1})
        elif isinstance(action, GarbageSpec):
            self.send_text(action.text)
        elif isinstance(action, SendFrameSpec):
            if action.text is not None:
                self.send_text(action.text)
            else:
                self.send(action.frame)


def targets(spec: Any, username: str | None, session_id: str | None) -> bool:
    """Does a spec's optional user / session_id target match?"""
    want_user = getattr(spec, "user", None)
    want_sid = getattr(spec, "session_id", None)
    return (want_user is None or want_user == username) and (
        want_sid is None or want_sid == session_id
    )
