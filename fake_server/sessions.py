"""Gateway sessions: sequence numbers, replay buffers, intents, parking and expiry.

Sessions live in memory only; a restarted server has none (RESUME -> INVALID_SESSION).
Every change of a session's life is a `session` history record: `created`, `resumed`,
`parked`, `ended`, data `{session_id, user, conn, seq, reason}`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fake_server.intents import wants

if TYPE_CHECKING:
    from fake_server.core.gateway import Connection

# record(kind, name, data): the server's history
Recorder = Callable[[str, str, dict[str, Any]], None]


@dataclass(eq=False)
class Session:
    session_id: str
    user_id: str
    username: str
    replay_size: int
    intents: frozenset[str] = frozenset()
    seq: int = 1  # READY is seq 1
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    conn: Connection | None = None
    parked_at: float | None = None
    """The server's time (`now`) the socket went away; None while a socket is attached."""
    forgotten: bool = False
    last_conn: int | None = None
    """The id of the connection that carried it last (for the history)."""

    def wants(self, event_type: str) -> bool:
        """Does this session's IDENTIFY ask for the intent this event needs?"""
        return wants(self.intents, event_type)

    def next_event(self, event_type: str, data: Any) -> dict[str, Any]:
        """Number an event and keep it for replay."""
        self.seq += 1
        frame = {"op": 0, "type": event_type, "data": data, "seq": self.seq}
        self.buffer.append(frame)
        while len(self.buffer) > self.replay_size:
            self.buffer.popleft()
        return frame

    def replay_after(self, seq: int) -> list[dict[str, Any]] | None:
        """Events after `seq`, or None if some of them fell out of the buffer."""
        missing = self.seq - seq
        if missing == 0:
            return []
        if missing > len(self.buffer):
            return None
        buffer = self.buffer
        return [buffer[i] for i in range(-missing, 0)]  # from the right end: no full copy

    @property
    def oldest_replayable(self) -> int:
        """The lowest seq a RESUME may name and still be replayed in full."""
        return self.seq - len(self.buffer)

    @property
    def state(self) -> str:
        return "open" if self.conn is not None else "parked"

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "user": self.username,
            "user_id": self.user_id,
            "seq": self.seq,
            "state": self.state,
            "buffered": len(self.buffer),
        }


class SessionRegistry:
    """Every session of one server run; time is passed in (`now`), never read."""

    def __init__(self, replay_size: int, resume_window: float, record: Recorder) -> None:
        self._sessions: dict[str, Session] = {}
        # Parked sessions in the order they parked (`now` never goes back), so
        # expiring looks at the oldest few, not every session: a storm's thousands of
        # RESUMEs each expire first.
        self._parked: dict[str, Session] = {}
        self.replay_size = replay_size
        self.resume_window = resume_window  # already scaled
        self.record = record
        self.now = 0.0
        """The latest time the server was told; what `expire()` and friends go by."""

    def _record(self, name: str, session: Session, reason: str) -> None:
        self.record("session", name, {
            "session_id": session.session_id, "user": session.username,
            "conn": session.last_conn, "seq": session.seq, "reason": reason,
        })

    def create(self, session_id: str, user_id: str, username: str, intents: frozenset[str],
               conn: Connection) -> Session:
        session = Session(session_id, user_id, username, self.replay_size, intents)
        self._sessions[session_id] = session
        session.conn, session.last_conn = conn, conn.id
        self._record("created", session, "identify")
        return session

    def attach(self, session: Session, conn: Connection, reason: str) -> None:
        """A RESUME moved the session onto `conn` (reason `resume` or `takeover`)."""
        session.conn, session.parked_at, session.last_conn = conn, None, conn.id
        self._parked.pop(session.session_id, None)
        self._record("resumed", session, reason)

    def get_resumable(self, session_id: str, now: float | None = None) -> Session | None:
        self.expire(now)
        session = self._sessions.get(session_id)
        return None if session is None or session.forgotten else session

    def park(self, session: Session, reason: str) -> None:
        session.conn = None
        session.parked_at = self.now
        self._parked.pop(session.session_id, None)
        self._parked[session.session_id] = session
        self._record("parked", session, reason)

    def end(self, session: Session, reason: str) -> None:
        session.conn = None
        self._parked.pop(session.session_id, None)
        if self._sessions.pop(session.session_id, None) is not None:
            self._record("ended", session, reason)

    def forget(self, predicate: Callable[[Session], bool]) -> int:
        """Forget matching sessions: parked ones go now, open ones when their socket ends."""
        n = 0
        for session in list(self._sessions.values()):
            if predicate(session):
                n += 1
                session.forgotten = True
                if session.conn is None:
                    self.end(session, "forgotten")
        return n

    def expire(self, now: float | None = None) -> None:
        if now is not None:
            self.now = max(self.now, now)
        deadline = self.now - self.resume_window
        while self._parked:
            session = next(iter(self._parked.values()))
            if session.parked_at is None or session.parked_at >= deadline:
                break
            self.end(session, "expired")

    def live(self, now: float | None = None) -> Iterable[Session]:
        """Every session that should still receive events (open or parked)."""
        self.expire(now)
        return list(self._sessions.values())

    def open(self) -> list[Session]:
        return [s for s in self._sessions.values() if s.conn is not None]

    def __len__(self) -> int:
        return len(self._sessions)
