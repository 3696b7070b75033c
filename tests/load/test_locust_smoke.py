"""The Locust load test runs real clients and every accepted send is stored once."""

from __future__ import annotations

from pathlib import Path

from load.run import run_load


def test_locust_users_connect_send_and_the_server_stores_exactly_the_accepted(
    tmp_path: Path,
) -> None:
    result = run_load(users=3, seconds=6, work=tmp_path)
    assert result.exit_code == 0, result.output[-2000:]
    assert result.failures == []
    connect, sends = result.stats["connect"], result.stats["send_message"]
    assert (connect.requests, connect.failures) == (3, 0)
    assert sends.requests >= 3 and sends.failures == 0
    # Every accepted send is stored (nothing lost); beyond those, only the sends in
    # flight when Locust stopped its users (at most one per user, their outcome
    # never reported) may be stored too, and nothing is doubled.
    assert sends.requests <= result.stored_messages <= sends.requests + 3
