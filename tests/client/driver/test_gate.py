"""The crowd's cap on opens in flight: newest waiter first, no slot lost to a cancel."""

from __future__ import annotations

import asyncio

import pytest

from client.driver.gate import NewestFirstGate


async def _hold(gate: NewestFirstGate, name: str, order: list[str], release: asyncio.Event) -> None:
    async with gate:
        order.append(name)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_freed_slot_goes_to_the_newest_waiter() -> None:
    gate = NewestFirstGate(1)
    order: list[str] = []
    releases = {name: asyncio.Event() for name in "abcd"}
    tasks = []
    for name in "abcd":  # a takes the slot; b, c, d wait in that order
        tasks.append(asyncio.create_task(_hold(gate, name, order, releases[name])))
        await _settle()
    assert order == ["a"] and gate.waiting == 3
    for name in ("a", "d", "c"):  # each release hands the slot to the newest waiter
        releases[name].set()
        await _settle()
    assert order == ["a", "d", "c", "b"]
    releases["b"].set()
    await asyncio.gather(*tasks)
    assert gate.waiting == 0


async def test_cancelled_waiters_are_skipped_and_no_slot_is_lost() -> None:
    gate = NewestFirstGate(2)
    order: list[str] = []
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(gate, n, order, release)) for n in ("a", "b")]
    await _settle()
    waiters = [asyncio.create_task(_hold(gate, n, order, release)) for n in ("c", "d", "e")]
    await _settle()
    assert gate.waiting == 3
    waiters[2].cancel()  # e: an open the core gave up on while it waited
    waiters[1].cancel()  # d
    await _settle()
    assert gate.waiting == 1
    release.set()
    await asyncio.gather(*holders, waiters[0])
    assert order == ["a", "b", "c"]
    # Both slots are free again: two new holders get in at once.
    again = asyncio.Event()
    late = [asyncio.create_task(_hold(gate, n, order, again)) for n in ("f", "g")]
    await _settle()
    assert order[-2:] == ["f", "g"] and gate.waiting == 0
    again.set()
    await asyncio.gather(*late)


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        NewestFirstGate(0)
