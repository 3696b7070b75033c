"""Fault records reach the real client timeline."""

from __future__ import annotations

from chaos import FaultLog
from client.timeline import Timeline


def test_fault_records_land_on_the_client_timeline_with_its_clock() -> None:
    timeline = Timeline()
    log = FaultLog(timeline)
    log.record("start", "down", "down-1", "alpha.gateway")
    (record,) = timeline.select(kind="fault")
    assert (record.src, record.name, record.data["phase"], record.data["id"]) == (
        "chaos",
        "down",
        "start",
        "down-1",
    )
    assert 0 <= record.t < 5
