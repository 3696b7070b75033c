"""Both gevent <-> asyncio bridges pass the same tests: a result comes back, an
exception is re-raised, a deadline holds, many waiting greenlets all get theirs."""

from __future__ import annotations

import asyncio
import time

import gevent
import pytest

from load.bridge import NotifyBridge, PollingBridge, _LoopThread

BRIDGES = {"notify": NotifyBridge, "poll": PollingBridge}
_made: dict[str, _LoopThread] = {}


@pytest.fixture(params=sorted(BRIDGES))
def bridge(request: pytest.FixtureRequest) -> _LoopThread:
    kind = str(request.param)
    if kind not in _made:  # one loop thread per kind for the whole test process
        _made[kind] = BRIDGES[kind]()
    return _made[kind]


async def _answer(value: int, delay: float = 0.0) -> int:
    await asyncio.sleep(delay)
    return value


async def _boom() -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


def test_a_result_comes_back(bridge: _LoopThread) -> None:
    assert bridge.run(_answer(42, 0.01), timeout=5) == 42


def test_an_exception_is_raised_in_the_waiting_greenlet(bridge: _LoopThread) -> None:
    with pytest.raises(ValueError, match="boom"):
        bridge.run(_boom(), timeout=5)


def test_the_deadline_holds_and_cancels_the_coroutine(bridge: _LoopThread) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        bridge.run(_answer(1, 30.0), timeout=0.2)
    assert time.monotonic() - started < 5.0


def test_many_waiting_greenlets_each_get_their_own_answer(bridge: _LoopThread) -> None:
    jobs = [gevent.spawn(bridge.run, _answer(i, 0.05), 10) for i in range(200)]
    gevent.joinall(jobs, timeout=20)
    assert [j.value for j in jobs] == list(range(200))
