"""Sending (s.6): direct sends one at a time, the offline queue and its flush, failed
entries, nonces, and the at-most-once check before a send whose outcome is unknown.
Every message on its way is one `Outgoing` (client.core.outgoing).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from client.core import payloads as pl
from client.core import signals as sig
from client.core.bugs import Bug
from client.core.cache import dict_items, id_order, str_id
from client.core.context import REFETCH_LIMIT, REFETCH_PAGE, UNEXPECTED_RESPONSE, CoreContext
from client.core.outgoing import Attempt, Outgoing
from client.core.protocol import Status
from client.core.purposes import LookForCopy, Post, Via
from client.core.rest import RestResult
from client.core.session import SEND_QUEUED, SEND_REFUSED, Session


class Outbox:
    """Mixin of ClientCore: everything a message goes through on its way out."""

    def _new_nonce(self: CoreContext) -> str:
        self._nonce_count += 1
        return f"{self._nonce_prefix}-{self._nonce_count}"

    def _nonce_for(self: CoreContext, srv: Session, channel_id: str, content: str) -> str:
        """A restored text sent again unchanged keeps its nonce (stored at most once)."""
        restored, srv.restored = srv.restored, None
        if restored is not None and (restored.channel_id, restored.content) == (
            channel_id,
            content,
        ):
            return restored.nonce
        return self._new_nonce()

    def _send(self: CoreContext, now: float, srv: Session, ref: str, content: str) -> None:
        cid = srv.cache.resolve_channel(ref) or ref
        if srv.phase in SEND_REFUSED:
            self._emit(pl.MessageSendRefused(srv.name, cid, content, sig.REFUSED_DISABLED))
            return
        if srv.phase in SEND_QUEUED or srv.queue:
            self._enqueue(now, srv, cid, content)
            return
        nonce = self._nonce_for(srv, cid, content)
        self._emit(pl.MessageSending(srv.name, cid, content, nonce))
        msg = Outgoing(cid, content, nonce)
        if srv.posting:
            srv.direct.append(msg)
            return
        self._post_direct(now, srv, msg)

    def _post_direct(self: CoreContext, now: float, srv: Session, msg: Outgoing) -> None:
        srv.posting = True
        # Bug 12: the original forgot an unknown outcome, so the restored text,
        # sent again, is posted again without looking for the first copy.
        at_most_once = not self._bug_on(Bug.RESEND_WITHOUT_CHECK)
        self._post_message(now, srv, msg, Via.DIRECT, at_most_once=at_most_once)

    def _direct_answered(
        self: CoreContext, now: float, srv: Session, msg: Outgoing, res: RestResult
    ) -> None:
        srv.posting = False
        if res.ok:
            self._accepted(srv, msg.channel_id, msg.nonce, res.data)
        else:
            error = res.error or UNEXPECTED_RESPONSE
            srv.restored = msg
            self._emit(pl.MessageSendFailed(srv.name, msg.channel_id, msg.content, error))
        if srv.direct:
            self._post_direct(now, srv, srv.direct.popleft())
        else:
            self._flush(now, srv)  # a flush waits for the direct sends before it

    def _post_message(
        self: CoreContext,
        now: float,
        srv: Session,
        msg: Outgoing,
        via: Via,
        *,
        at_most_once: bool = True,
    ) -> None:
        """POST a message at most once (s.6): the server neither echoes nor
        deduplicates nonces, so when an earlier attempt's outcome is unknown the
        channel is checked first, and a copy found there is the answer (its
        sender gets a 2xx result carrying it)."""
        att = srv.attempts.get(msg.nonce)
        if att is None:
            att = Attempt(msg.channel_id, msg.content, srv.cache.newest_id(msg.channel_id))
            srv.attempts[msg.nonce] = att
        att.busy = True
        if att.unknown and at_most_once:
            look = LookForCopy(msg, via, at_most_once, att, pages=0, forward=False)
            self._look_for_copy(now, srv, look, att.baseline)
        else:
            self._post(now, srv, Post(msg, via, at_most_once, att))

    def _post(self: CoreContext, now: float, srv: Session, post: Post) -> None:
        body = {"content": post.msg.content, "nonce": post.msg.nonce}  # sent, never relied on
        self._call(now, srv, "POST", f"/channels/{post.msg.channel_id}/messages", post, body)

    def _posted(self: CoreContext, now: float, srv: Session, post: Post, res: RestResult) -> None:
        att, nonce = post.att, post.msg.nonce
        att.busy = False
        if res.ok:
            srv.attempts.pop(nonce, None)
        elif res.outcome_unknown and post.at_most_once:
            att.unknown = True
            found = self._find_own_copy(srv, att)
            if found is not None:  # its gateway echo came while the POST was out
                srv.attempts.pop(nonce, None)
                res = RestResult(True, 200, data=found)
        elif not att.unknown or not post.at_most_once:
            srv.attempts.pop(nonce, None)  # known not stored: nothing to look for
        self._sender_answered(now, srv, post.msg, post.via, res)

    def _sender_answered(
        self: CoreContext, now: float, srv: Session, msg: Outgoing, via: Via, res: RestResult
    ) -> None:
        if via is Via.DIRECT:
            self._direct_answered(now, srv, msg, res)
        else:
            self._flush_answered(now, srv, msg, res)

    def _look_for_copy(
        self: CoreContext, now: float, srv: Session, look: LookForCopy, after: str | None
    ) -> None:
        """Page the channel after the baseline for this user's copy of the
        message; found: it was delivered; not found: post it; the check failed:
        the outcome stays unknown and the sender gets a transient failure."""
        path = f"/channels/{look.att.channel_id}/messages?limit={REFETCH_PAGE}"
        if after is not None:
            path += f"&after={after}"
        self._call(now, srv, "GET", path, replace(look, forward=after is not None))

    def _copy_page(
        self: CoreContext, now: float, srv: Session, look: LookForCopy, res: RestResult
    ) -> None:
        att = look.att
        if not res.ok:
            att.busy = False
            self._log("warning", f"at-most-once check failed: {res.error}", srv.name)
            failed = RestResult(False, 0, error=res.error, transient=True, outcome_unknown=True)
            self._sender_answered(now, srv, look.msg, look.via, failed)
            return
        batch = dict_items(res.data)
        for msg in batch:
            self._store_message(srv, msg, att.channel_id)
        found = self._find_own_copy(srv, att)
        if found is not None:
            att.busy = False
            srv.attempts.pop(look.msg.nonce, None)
            self._log("info", "an unknown send was found stored: not posted again", srv.name)
            self._sender_answered(now, srv, look.msg, look.via, RestResult(True, 200, data=found))
            return
        pages = look.pages + 1
        ids = [i for i in (str_id(m.get("id")) for m in batch) if i is not None]
        more = bool(res.cursor.get("has_more")) if res.cursor else len(batch) >= REFETCH_PAGE
        if look.forward and ids and more and pages * REFETCH_PAGE < REFETCH_LIMIT:
            self._look_for_copy(now, srv, replace(look, pages=pages), max(ids, key=id_order))
            return
        att.unknown = False  # looked, not there: this POST is the only copy
        self._post(now, srv, Post(look.msg, look.via, look.at_most_once, att))

    def _find_own_copy(self: CoreContext, srv: Session, att: Attempt) -> dict[str, Any] | None:
        """The oldest message in the attempt's channel by this user with its
        content, newer than its baseline and not already another send's."""
        if srv.user_id is None:
            return None
        floor = id_order(att.baseline) if att.baseline is not None else None
        for msg in srv.cache.ordered(att.channel_id):
            mid = str_id(msg.get("id"))
            if (
                mid is not None
                and mid not in srv.own_ids
                and (floor is None or id_order(mid) > floor)
                and str_id(msg.get("author_id")) == srv.user_id
                and msg.get("content") == att.content
            ):
                return msg
        return None

    def _settle_from_cache(self: CoreContext, srv: Session, channel_id: str) -> None:
        """An unknown send that a gateway echo or a fetched page shows stored is
        delivered: it leaves the queue, the composer and the failed entries."""
        for nonce, att in list(srv.attempts.items()):
            if not att.unknown or att.busy or att.channel_id != channel_id:
                continue
            found = self._find_own_copy(srv, att)
            if found is None:
                continue
            del srv.attempts[nonce]
            for queued in [q for q in srv.queue if q.nonce == nonce]:
                srv.queue.remove(queued)
                self._emit(pl.QueueChanged(srv.name, len(srv.queue)))
            if srv.restored is not None and srv.restored.nonce == nonce:
                srv.restored = None
            srv.failed = [f for f in srv.failed if f.nonce != nonce]
            self._log("info", "an unknown send was seen stored: delivered", srv.name)
            self._accepted(srv, channel_id, nonce, found)

    def _accepted(self: CoreContext, srv: Session, channel_id: str, nonce: str, msg: Any) -> None:
        """A 2xx: the server has it. A body without a message still counts. The
        id in the answer is how the client knows its own message (no nonce echo)."""
        message_id = ""
        if isinstance(msg, dict):
            message_id = str_id(msg.get("id")) or ""
            if message_id:
                srv.own_ids.add(message_id)
            self._store_message(srv, msg, channel_id)
        self._emit(pl.MessageSent(srv.name, channel_id, nonce, message_id))

    def _enqueue(
        self: CoreContext, now: float, srv: Session, channel_id: str, content: str
    ) -> None:
        nonce = self._nonce_for(srv, channel_id, content)
        depth = len(srv.queue)
        if depth >= self.timings.queue_capacity:
            if self._bug_on(Bug.QUEUE_CAP_BYPASS):
                # Bug 5: the original said "queued" and the message went nowhere.
                self._emit(pl.MessageQueued(srv.name, channel_id, content, nonce, depth))
                return
            srv.restored = Outgoing(channel_id, content, nonce)  # the text stays in the composer
            self._emit(pl.MessageSendRefused(srv.name, channel_id, content, sig.REFUSED_QUEUE_FULL))
            # s.6: a paused flush resumes "when the user sends again", refused or not
            # (found by accord-rig explore: a full, paused queue never drained).
            self._flush(now, srv)
            return
        srv.queue.append(Outgoing(channel_id, content, nonce))
        self._emit(pl.MessageQueued(srv.name, channel_id, content, nonce, len(srv.queue)))
        self._emit(pl.QueueChanged(srv.name, len(srv.queue)))
        self._flush(now, srv)  # a send while connected resumes a paused flush

    def _flush(self: CoreContext, now: float, srv: Session) -> None:
        """Send the queue head; on success go on with the next, in order."""
        if srv.flushing or srv.posting or not srv.queue or srv.phase is not Status.CONNECTED:
            return
        srv.flushing = True
        self._post_message(now, srv, srv.queue[0], Via.FLUSH)

    def _flush_answered(
        self: CoreContext, now: float, srv: Session, head: Outgoing, res: RestResult
    ) -> None:
        srv.flushing = False
        if not srv.queue or srv.queue[0] is not head:
            return
        if res.ok:
            srv.queue.popleft()
            self._emit(pl.QueueChanged(srv.name, len(srv.queue)))
            self._accepted(srv, head.channel_id, head.nonce, res.data)
            self._flush(now, srv)
            return
        error = res.error or UNEXPECTED_RESPONSE
        if self._bug_on(Bug.FLUSH_FAILURE_LOSES_MESSAGE):
            srv.queue.popleft()  # bug 4: gone, without a word
            self._emit(pl.QueueChanged(srv.name, len(srv.queue)))
            self._flush(now, srv)
            return
        if res.transient or res.unauthorized:
            self._emit(pl.QueueFlushPaused(srv.name, error))
            return
        srv.queue.popleft()
        srv.failed.append(head.failed(error))
        self._emit(pl.QueueChanged(srv.name, len(srv.queue)))
        self._emit(
            pl.MessageFailedEntry(srv.name, head.channel_id, head.nonce, head.content, error)
        )
        self._flush(now, srv)

    def _retry_failed(self: CoreContext, now: float, srv: Session, nonce: str) -> None:
        entry = next((f for f in srv.failed if f.nonce == nonce), None)
        if entry is None:
            self._log("warning", f"no failed entry with nonce {nonce}", srv.name)
            return
        srv.failed.remove(entry)
        srv.restored = entry.failed("")
        self._send(now, srv, entry.channel_id, entry.content)
