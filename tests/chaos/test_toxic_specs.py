"""Toxic validation and timescale arithmetic (client-behaviour.md s.1)."""

from __future__ import annotations

import pytest

from chaos import TOXIC_TYPES, ToxicSpecError, parse_toxic, scale_duration, scale_rate


def test_durations_scale_by_the_timescale() -> None:
    latency = parse_toxic({"type": "latency", "attributes": {"latency": 1000, "jitter": 200}})
    assert latency.scaled_attributes(0.05) == {"latency": 50, "jitter": 10}
    assert parse_toxic({"type": "timeout", "attributes": {"timeout": 4000}}).scaled_attributes(
        0.1
    ) == {"timeout": 400}
    slow = parse_toxic({"type": "slow_close", "attributes": {"delay": 300}})
    assert slow.scaled_attributes(0.5) == {"delay": 150}
    reset = parse_toxic({"type": "reset_peer", "attributes": {"timeout": 2000}})
    assert reset.scaled_attributes(0.25) == {"timeout": 500}


def test_slicer_delay_is_microseconds_and_sizes_are_not_scaled() -> None:
    slicer = parse_toxic(
        {"type": "slicer", "attributes": {"average_size": 64, "size_variation": 8, "delay": 10000}}
    )
    assert slicer.scaled_attributes(0.1) == {"average_size": 64, "size_variation": 8, "delay": 1000}


def test_bandwidth_is_divided_and_limit_data_is_untouched() -> None:
    bandwidth = parse_toxic({"type": "bandwidth", "attributes": {"rate": 100}})
    assert bandwidth.scaled_attributes(0.05) == {"rate": 2000}
    limit = parse_toxic({"type": "limit_data", "attributes": {"bytes": 1234}})
    assert limit.scaled_attributes(0.05) == {"bytes": 1234}


def test_a_positive_duration_never_becomes_zero() -> None:
    # timeout 0 means "forever": a 5 ms timeout at f=0.01 must stay a timeout.
    assert scale_duration(5, 0.01) == 1
    assert scale_duration(0, 0.01) == 0
    assert scale_rate(1, 1000) == 1


def test_api_body_has_defaults() -> None:
    toxic = parse_toxic({"type": "reset_peer"})
    assert toxic.to_api(1.0) == {
        "name": "reset_peer_downstream",
        "type": "reset_peer",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"timeout": 0},
    }


@pytest.mark.parametrize("toxic_type", TOXIC_TYPES)
def test_every_type_rejects_unknown_attributes(toxic_type: str) -> None:
    with pytest.raises(ToxicSpecError) as caught:
        parse_toxic({"type": toxic_type, "attributes": {"bogus": 1}}, "s.yaml:7")
    assert "s.yaml:7" in str(caught.value)
    assert "attributes.bogus: Extra inputs are not permitted" in caught.value.problems


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "latncy"}, "type: 'latncy' is not one of"),
        ({"attributes": {}}, "type: missing"),
        ({"type": "latency", "attributes": {"latency": -1}}, "attributes.latency:"),
        ({"type": "latency", "stream": "up", "attributes": {"latency": 1}}, "stream:"),
        ({"type": "latency", "toxicity": 2, "attributes": {"latency": 1}}, "toxicity:"),
        ({"type": "bandwidth", "attributes": {"rate": 0}}, "attributes.rate:"),
        ({"type": "timeout", "attributes": {"timeout": "soon"}}, "attributes.timeout:"),
        (
            {"type": "slicer", "attributes": {"average_size": 4, "size_variation": 4}},
            "size_variation must be smaller than average_size",
        ),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, object], problem: str) -> None:
    with pytest.raises(ToxicSpecError) as caught:
        parse_toxic(spec)
    assert problem in str(caught.value)
