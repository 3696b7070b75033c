"""What the parts of the client core share: the state the router (`ClientCore`)
holds and the operations one part calls in another, as a Protocol the parts
take as their `self` type. The parts are mixins of `ClientCore` in their own
modules (connection, sync, relogin, channels, outbox), so each reads as one
concern; this module is the only thing they import from each other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from client.core.bugs import Bug
from client.core.io import Effect
from client.core.outgoing import Attempt, Outgoing
from client.core.payloads import Payload
from client.core.rest import Rest, RestResult
from client.core.session import Event, Session
from client.core.timers import Timers
from client.core.timings import Timings

RECONNECTION_FAILED = "Reconnection failed"
UNEXPECTED_RESPONSE = "Unexpected response from server"
NOT_CONNECTED = "Not connected"
UNKNOWN_MESSAGE = "Unknown message"

MESSAGE_PAGE = 50  # newest messages loaded when a channel is opened
REFETCH_PAGE = 100  # page size when catching up with `after`
REFETCH_LIMIT = 500  # most messages one sync fetches per channel


class CoreContext(Protocol):
    timings: Timings
    seed: int
    mode: str
    bugs: set[Bug]
    _out: list[Effect]
    _timers: Timers
    _servers: dict[str, Session]
    _rngs: dict[str, random.Random]
    _retired: list[Rest]
    _selected: tuple[str, str] | None
    _pending_selection: tuple[str, str] | None
    _nonce_prefix: str
    _nonce_count: int

    def _rollback_add(self, now: float, srv: Session, error: str) -> None: ...

    def _connect(self, now: float, srv: Session) -> None: ...

    def _run_connect_sequence(self, now: float, srv: Session, *, login: bool) -> None: ...

    def _open_gateway(self, now: float, srv: Session) -> None: ...

    def _first_connect_failed(self, now: float, srv: Session, text: str) -> None: ...

    def _gw_opened(self, now: float, srv: Session) -> None: ...

    def _gw_ready(self, now: float, srv: Session, data: Any, resumed: bool) -> None: ...

    def _announce_connected(self, srv: Session, event: Event) -> None: ...

    def _gw_lost(self, now: float, srv: Session, code: int, reason: str) -> None: ...

    def _gw_failed(self, now: float, srv: Session, text: str, code: int) -> None: ...

    def _escalate(self, now: float, srv: Session) -> None: ...

    def _user_reconnect(self, now: float, srv: Session) -> None: ...

    def _reconnect_server(self, now: float, srv: Session) -> None: ...

    def _reconnection_failed(self, now: float, srv: Session) -> None: ...

    def _stop_gateway(
        self, now: float, srv: Session, code: int = 1000, reason: str = ""
    ) -> None: ...

    def _call(
        self,
        now: float,
        srv: Session,
        method: str,
        path: str,
        on_done: Callable[[float, RestResult], None],
        body: Any = None,
    ) -> None: ...

    def _relogin(self, now: float, srv: Session, waiter: Callable[[float, bool], None]) -> None: ...

    def _refetch(self, now: float, srv: Session, epoch: int) -> None: ...

    def _synced(self, now: float, srv: Session) -> None: ...

    def _catch_up_messages(
        self, now: float, srv: Session, channel_id: str, then: Callable[[float], None]
    ) -> None: ...

    def _store_channels(self, now: float, srv: Session, data: Any) -> None: ...

    def _select(self, now: float, srv: Session, ref: str) -> None: ...

    def _resolve_pending_selection(self, now: float, srv: Session) -> None: ...

    def _fetch_channel(self, now: float, srv: Session, ref: str) -> None: ...

    def _load_channel(self, now: float, srv: Session, channel_id: str) -> None: ...

    def _store_message(
        self, srv: Session, msg: dict[str, Any], channel_hint: str | None = None
    ) -> str | None: ...

    def _gw_event(self, now: float, srv: Session, event_type: str, data: Any) -> None: ...

    def _new_nonce(self) -> str: ...

    def _nonce_for(self, srv: Session, channel_id: str, content: str) -> str: ...

    def _send(self, now: float, srv: Session, ref: str, content: str) -> None: ...

    def _post_direct(self, now: float, srv: Session, msg: Outgoing) -> None: ...

    def _post_message(
        self,
        now: float,
        srv: Session,
        channel_id: str,
        content: str,
        nonce: str,
        done: Callable[[float, RestResult], None],
        *,
        at_most_once: bool = True,
    ) -> None: ...

    def _look_for_copy(
        self,
        now: float,
        srv: Session,
        nonce: str,
        att: Attempt,
        done: Callable[[float, RestResult], None],
        post: Callable[[float], None],
    ) -> None: ...

    def _find_own_copy(self, srv: Session, att: Attempt) -> dict[str, Any] | None: ...

    def _settle_from_cache(self, srv: Session, channel_id: str) -> None: ...

    def _accepted(self, srv: Session, channel_id: str, nonce: str, msg: Any) -> None: ...

    def _enqueue(self, now: float, srv: Session, channel_id: str, content: str) -> None: ...

    def _flush(self, now: float, srv: Session) -> None: ...

    def _retry_failed(self, now: float, srv: Session, nonce: str) -> None: ...

    def _edit(self, now: float, srv: Session, message_id: str, content: str) -> None: ...

    def _delete(self, now: float, srv: Session, message_id: str) -> None: ...

    def _react(self, now: float, srv: Session, message_id: str, emoji: str, add: bool) -> None: ...

    def _bug_on(self, bug: Bug) -> bool: ...

    def _next_id(self) -> int: ...

    def _current(self, srv: Session, epoch: int | None = None) -> bool: ...

    def _connect_step(self, now: float, srv: Session, epoch: int, index: int) -> None: ...

    def _connect_step_done(
        self, now: float, srv: Session, epoch: int, index: int, data: Any
    ) -> None: ...

    def _connect_chain_failed(self, now: float, srv: Session, text: str) -> None: ...

    def _refetch_step(self, now: float, srv: Session, epoch: int, index: int) -> None: ...

    def _refetch_finished(self, now: float, srv: Session, epoch: int) -> None: ...

    def _drain_gateway(self, now: float, srv: Session) -> None: ...

    def _emit(self, payload: Payload) -> None: ...

    def _log(self, level: str, message: str, server: str = "") -> None: ...
