"""One message on its way to the server, however it travels (s.6): a direct send
waiting its turn, a queued message, the text restored to the composer after a
failure, or a failed entry the server refused (then `error` says why). The nonce
stays with the text, so the same text sent again is stored at most once."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel_id: str
    content: str
    nonce: str
    error: str = ""  # a failed entry: what the server said

    def failed(self, error: str) -> Outgoing:
        return replace(self, error=error)


# The names ClientCore.queue() and failed_entries() have always returned.
QueuedMessage = Outgoing
FailedEntry = Outgoing


@dataclass(slots=True)
class Attempt:
    """One message on its way to the server, by nonce, until it is settled (s.6).

    `baseline` is the newest id the client knew in the channel when the first
    attempt began: a copy stored by an earlier attempt must be newer. `unknown`:
    an attempt may have reached the server (timeout, connection lost after the
    request went out), so the next POST must look for it first. `busy`: a POST or
    a look-up for it is out (its own answer settles it, not a page or an echo)."""

    channel_id: str
    content: str
    baseline: str | None
    unknown: bool = False
    busy: bool = False
