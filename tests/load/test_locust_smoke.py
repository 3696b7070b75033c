"""The Locust load test runs real clients and every accepted send is stored once."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.run import run_load


@pytest.mark.parametrize("driver", ["gevent", "asyncio"])
def test_locust_users_connect_send_and_the_server_stores_exactly_the_accepted(
    tmp_path: Path, driver: str
) -> None:
    result = run_load(users=3, seconds=6, work=tmp_path, driver=driver)
    assert result.failures == []
    assert result.exit_code == 0
    connect, sends = result.stats["connect"], result.stats["send_message"]
    assert (connect.requests, connect.failures) == (3, 0)
    assert sends.requests >= 3 and sends.failures == 0
    # Each client settled its sends before reporting what it saw accepted: the
    # server stored exactly those (nothing lost, nothing doubled).
    assert len(result.client_accepted) == 3
    accepted = sum(result.client_accepted.values())
    assert result.stored_messages == accepted
    assert sends.requests <= accepted
