"""One timescale for the whole rig, and the real-time floor under deadlines.

Scenario files speak real-client time. A run at factor `f` scales the client's
timers, the fake server's and the toxics by `f` (their own code does it); the rig
scales `wait_for` deadlines and pauses the same way, but a deadline never drops
below `DEADLINE_FLOOR` real seconds: TLS handshakes, process starts and the
five-request connect sequence do not get faster with `f`. For the same reason the
client's I/O timeouts never drop below `CLIENT_TIMEOUT_FLOOR` (`Timings.floor`).
The floors were measured with bench/bench_catalogue.py (see docs/scenarios.md).
"""

from __future__ import annotations

from scenarios.durations import Duration

DEFAULT_TIMESCALE = 0.05
DEFAULT_SEED = 1
DEFAULT_HEARTBEAT = 45.0  # seconds, real-client time (protocol page: HELLO 45000 ms)
DEADLINE_FLOOR = 2.0  # real seconds
# Under the client's own I/O timeouts (gateway open, HELLO, READY, REST request):
# at 0.02 an open timeout is 0.2 s, less than a TLS handshake can take on a busy
# 2-core machine, and a spurious timeout there is a flake no assertion can tell
# from a bug. 1 s is about 20x the measured p99 of those round trips.
CLIENT_TIMEOUT_FLOOR = 1.0  # real seconds


def scaled_deadline(
    duration: Duration, timescale: float, heartbeat: float, floor: float = DEADLINE_FLOOR
) -> float:
    """Real seconds to wait for a condition written as `duration`."""
    return max(floor, duration.resolve(heartbeat) * timescale)


def scaled_pause(duration: Duration, timescale: float, heartbeat: float) -> float:
    """Real seconds for a `pause` step: no floor, it is part of the story."""
    return duration.resolve(heartbeat) * timescale
