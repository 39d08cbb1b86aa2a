"""Tests of ``forecaster.scaling.rules``: each post-processing step on its docstring's worked numbers."""

from __future__ import annotations

import pytest

from forecaster.scaling.rules import (
    apply_reactive_floor,
    clamp,
    hpa_ratio_rule,
    in_cooldown,
    is_stale,
    scale_down_limit,
)


@pytest.mark.parametrize(("value", "floor", "out"), [(8, 11, 11), (12, 11, 12), (0, 0, 0)])
def test_reactive_floor(value: int, floor: int, out: int) -> None:
    assert apply_reactive_floor(value, floor) == out


@pytest.mark.parametrize(("value", "out"), [(0, 1), (1, 1), (5, 5), (10, 10), (12, 10)])
def test_clamp(value: int, out: int) -> None:
    assert clamp(value, 1, 10) == out


@pytest.mark.parametrize(
    ("now", "last", "expected"),
    [(399.0, 100.0, True), (400.0, 100.0, False), (1e9, None, False), (100.0, 100.0, True)],
    ids=["inside", "boundary", "never-raised", "same-instant"],
)
def test_cooldown(now: float, last: float | None, expected: bool) -> None:
    assert in_cooldown(now, last, 300.0) is expected


@pytest.mark.parametrize(
    ("ref", "elapsed", "limit"),
    [
        (40, 60.0, 36),  # 10 % of 40 = 4 pods in a minute
        (5, 60.0, 4),  # 1 pod/min beats 10 % of 5
        (5, 30.0, 5),  # half a pod is not a pod yet
        (40, 30.0, 38),
        (40, 0.0, 40),
        (3, 600.0, 0),  # never below 0
        (10, -5.0, 10),  # clock skew: no credit
    ],
    ids=["fraction", "pods", "half-pod", "half-minute", "no-time", "floor-zero", "negative-elapsed"],
)
def test_scale_down_limit(ref: int, elapsed: float, limit: int) -> None:
    assert scale_down_limit(ref, elapsed, pods_per_min=1.0, fraction_per_min=0.1) == limit


@pytest.mark.parametrize(
    ("issued", "now", "stale"),
    [(0.0, 1800.0, False), (0.0, 1801.0, True), (None, 0.0, True)],
    ids=["at-limit", "past-limit", "absent"],
)
def test_is_stale(issued: float | None, now: float, stale: bool) -> None:
    assert is_stale(issued, now, 1800.0) is stale


@pytest.mark.parametrize(
    ("current", "ratio", "counted", "expected"),
    [
        (4, 1.5, None, 6),  # 4 pods at 105 % CPU for a 70 % target
        (10, 1.04, None, 10),  # within the tolerance
        (10, 0.9, None, 10),  # the boundary is inclusive
        (10, 0.88, None, 9),
        (6, 0.5, 4, 2),  # 4 of 6 pods counted (2 pending): the ratio multiplies the counted pods
        (10, 1.1000000000000001, None, 11),  # 77 % / 70 % in float64 is just outside the tolerance; 11.0 -> 11
    ],
    ids=["docstring-6", "tolerance", "boundary", "down", "counted", "float-boundary"],
)
def test_hpa_ratio_rule(current: int, ratio: float, counted: int | None, expected: int) -> None:
    assert hpa_ratio_rule(current, ratio, counted=counted) == expected


def test_hpa_ratio_rule_tolerance_is_a_parameter() -> None:
    assert hpa_ratio_rule(10, 1.04, tolerance=0.0) == 11
    assert hpa_ratio_rule(10, 1.25, tolerance=0.3) == 10
