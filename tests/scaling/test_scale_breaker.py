"""Tests of ``forecaster.scaling.breaker``: hysteresis of the circuit breaker and bucket-level recent error."""

from __future__ import annotations

import pytest

from forecaster.scaling import CircuitBreaker, ErrorTracker


def test_breaker_worked_example() -> None:
    b = CircuitBreaker(open_ratio=3.0, close_ratio=1.5, min_points=6)
    assert b.update(25.0, 10.0, 12) is False  # 2.5 <= 3
    assert b.update(35.0, 10.0, 12) is True  # 3.5 > 3 -> open
    assert b.update(20.0, 10.0, 12) is True  # 2.0: hysteresis keeps it open
    assert b.update(14.0, 10.0, 12) is False  # 1.4 <= 1.5 -> closed (recovered)
    assert b.ratio == pytest.approx(1.4)


@pytest.mark.parametrize(
    ("recent", "backtest", "n"),
    [(None, 10.0, 12), (50.0, None, 12), (50.0, 0.0, 12), (50.0, 10.0, 3)],
    ids=["no-recent", "no-backtest", "zero-backtest", "too-few-points"],
)
def test_breaker_needs_evidence(recent: float | None, backtest: float | None, n: int) -> None:
    b = CircuitBreaker(min_points=6)
    assert b.update(recent, backtest, n) is False
    b.is_open = True
    assert b.update(recent, backtest, n) is True  # no evidence: no change either way


def test_tracker_scores_whole_buckets() -> None:
    t = ErrorTracker(window=2)
    for actual in (10.0, 20.0, 30.0, 40.0, 50.0):  # one 5-minute bucket: mean 30, predicted 25
        t.observe(0, actual, 25.0)
    assert t.mae is None  # bucket not finished yet
    t.observe(1, 100.0, 90.0)
    assert t.mae == pytest.approx(5.0)
    assert t.n_points == 1
    t.observe(2, 0.0, 0.0)
    t.observe(3, 0.0, 0.0)
    assert t.n_points == 2  # window keeps the last two buckets: |100-90| and 0
    assert t.mae == pytest.approx(5.0)
