"""Load: N Locust users, each a real client, against one fake server on loopback.

Every user registers, runs the full first connect (login, REST chain, WSS
IDENTIFY/READY, refetch) and then sends messages, each timed until the server
accepted it. Prints Locust's numbers beside what the server actually stored.

    .venv/bin/python bench/bench_load.py [--users 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from load.run import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="accord-load-") as tmp:
        result = run_load(args.users, args.seconds, Path(tmp), args.spawn_rate)
    print(f"users {args.users}, {args.seconds} s, locust exit code {result.exit_code}")
    header = ("request", "count", "fails", "p50 ms", "p95 ms", "p99 ms", "req/s")
    print(f"{header[0]:<14}" + "".join(f"{h:>9}" for h in header[1:]))
    for s in result.stats.values():
        print(
            f"{s.name:<14}{s.requests:>9}{s.failures:>9}{s.p50_ms:>9.0f}"
            f"{s.p95_ms:>9.0f}{s.p99_ms:>9.0f}{s.rps:>9.1f}"
        )
    sends = result.stats.get("send_message")
    accepted = sends.requests - sends.failures if sends else 0
    print(
        f"server stored {result.stored_messages} messages; the clients saw "
        f"{sum(result.client_accepted.values())} accepted; locust counted {accepted} "
        "(it can stop a user mid-send)"
    )
    for line in result.failures:
        print("failure:", line)


if __name__ == "__main__":
    main()
