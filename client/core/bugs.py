"""The regression switches (client-behaviour.md s.9).

Each switch puts back exactly one behaviour of the original client that the
contract forbids, so the rig can prove that a scenario catches it. All are off
by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum

ENV_VAR = "ACCORD_RIG_BUGS"


class Bug(IntEnum):
    ONLY_NINE_RETRIES = 1
    REAUTH_GUARD_CLEARED_ON_OPEN = 2
    REAUTH_REUSES_TOKEN = 3
    FLUSH_FAILURE_LOSES_MESSAGE = 4
    QUEUE_CAP_BYPASS = 5
    MANUAL_RECONNECT_NEVER_FLUSHES = 6
    CONNECTED_AT_SOCKET_OPEN = 7
    REST_HAS_NO_TIMEOUT = 8
    RATE_LIMIT_TWO_RETRIES = 9
    REFUSED_OPEN_STOPS_RETRIES = 10
    CLOSE_FRAME_BEFORE_RESUME = 11
    RESEND_WITHOUT_CHECK = 12


DESCRIPTIONS: Mapping[Bug, str] = {
    Bug.ONLY_NINE_RETRIES: "only 9 socket retries happen before escalation, not 10",
    Bug.REAUTH_GUARD_CLEARED_ON_OPEN: "the re-auth guard is cleared when the socket opens",
    Bug.REAUTH_REUSES_TOKEN: "re-auth reuses the stored token instead of logging in again",
    Bug.FLUSH_FAILURE_LOSES_MESSAGE: "a queued message whose flush send fails is lost",
    Bug.QUEUE_CAP_BYPASS: "sends past the queue cap are dropped while the UI says queued",
    Bug.MANUAL_RECONNECT_NEVER_FLUSHES: (
        "after 'Reconnection failed', a manual reconnect never flushes the queue"
    ),
    Bug.CONNECTED_AT_SOCKET_OPEN: "status reads connected as soon as the socket opens",
    Bug.REST_HAS_NO_TIMEOUT: "REST has no timeout, a hung request hangs forever",
    Bug.RATE_LIMIT_TWO_RETRIES: "429 gets 2 retries, not 3",
    Bug.REFUSED_OPEN_STOPS_RETRIES: "a refused socket open stops the retry loop for good",
    Bug.CLOSE_FRAME_BEFORE_RESUME: (
        "a heartbeat timeout or op 6 closes with a close frame 4000, so the resume fails"
    ),
    Bug.RESEND_WITHOUT_CHECK: (
        "a restored text sent again after an unknown outcome is posted again without checking"
    ),
}
BUG_NUMBERS = tuple(int(b) for b in Bug)
BUG_RANGE = f"{min(BUG_NUMBERS)}..{max(BUG_NUMBERS)}"  # "1..12", for messages and docs


def parse_bugs(text: str, *, source: str = ENV_VAR) -> frozenset[Bug]:
    """Parse "1,4,8", "all" or "" (none). Raises ValueError naming the bad item."""
    text = text.strip()
    if not text:
        return frozenset()
    if text.lower() == "all":
        return frozenset(Bug)
    found: set[Bug] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            found.add(Bug(int(item)))
        except ValueError:
            raise ValueError(
                f"{source}: {item!r} is not a bug number"
                f" (expected {BUG_RANGE}, a comma list, or 'all')"
            ) from None
    return frozenset(found)


def bugs_from_env(environ: Mapping[str, str]) -> frozenset[Bug]:
    """The switches named in ACCORD_RIG_BUGS of `environ`. The core never reads the
    process environment itself: the rig passes `os.environ` in (scenarios/harness)."""
    return parse_bugs(environ.get(ENV_VAR, ""))


def as_bugs(numbers: Iterable[int]) -> frozenset[Bug]:
    """Validate plain ints (e.g. from a scenario file) into switches."""
    out: set[Bug] = set()
    for n in numbers:
        try:
            out.add(Bug(n))
        except ValueError:
            raise ValueError(f"bug switch {n!r} is not in {BUG_RANGE}") from None
    return frozenset(out)
