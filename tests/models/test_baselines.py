"""Tests of forecaster.evaluation.baselines: worked forecasts, lags, empirical bands, backtest layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import CUTOFF, DS, ID, OUTAGE, Y, hi, lo
from forecaster.datasets import read_long_csv
from forecaster.evaluation import coverage_col, evaluate, rolling_cutoffs
from forecaster.evaluation.baselines import (
    BASELINES,
    NAIVE,
    SNAIVE_DAY,
    SNAIVE_WEEK,
    baseline_backtest,
    baseline_name,
    error_quantiles,
    lags,
    naive_forecast,
    seasonal_naive_forecast,
)
from forecaster.forecasting.history import prepare_history

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _frame(values: list[float], uid: str = "a", freq: str = "5min") -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=len(values), freq=freq, tz="UTC")
    return pd.DataFrame({ID: uid, DS: ds, Y: values, OUTAGE: False})


@pytest.mark.parametrize(
    ("h", "p", "expected"),
    [(5, 1, [1, 2, 3, 4, 5]), (5, 2, [2, 2, 4, 4, 6]), (3, 288, [288, 288, 288])],
    ids=["naive", "p2", "day"],
)
def test_lags(h: int, p: int, expected: list[int]) -> None:
    assert lags(h, p).tolist() == expected


@pytest.mark.parametrize(
    ("p", "freq", "name"),
    [(1, "5min", NAIVE), (288, "5min", SNAIVE_DAY), (2016, "5min", SNAIVE_WEEK), (48, "30min", SNAIVE_DAY),
     (336, "30min", SNAIVE_WEEK), (7, "5min", "snaive_7")],
)
def test_baseline_name(p: int, freq: str, name: str) -> None:
    assert baseline_name(p, freq) == name


def test_naive_forecast_worked() -> None:
    out = naive_forecast(pd.concat([_frame([1.0, 2.0, 3.0]), _frame([7.0, 5.0], "b")]), 2, "5min")
    assert out.columns.tolist() == [ID, DS, NAIVE]
    assert out[NAIVE].tolist() == [3.0, 3.0, 5.0, 5.0]
    assert out[DS].iloc[0] == pd.Timestamp("2024-01-01 00:15", tz="UTC")
    assert out[DS].iloc[2] == pd.Timestamp("2024-01-01 00:10", tz="UTC")


def test_seasonal_naive_worked() -> None:
    # p = 2: history [1, 2, 3, 4] -> next steps repeat the last season [3, 4, 3, 4, 3]
    out = seasonal_naive_forecast(_frame([1.0, 2.0, 3.0, 4.0]), 5, "5min", 2)
    assert out.columns.tolist() == [ID, DS, "snaive_2"]
    assert out["snaive_2"].tolist() == [3.0, 4.0, 3.0, 4.0, 3.0]


def test_seasonal_naive_day_name_and_short_history_falls_back_to_naive() -> None:
    out = seasonal_naive_forecast(_frame([1.0, 2.0, 3.0]), 2, "5min", 288)
    assert SNAIVE_DAY in out.columns
    assert out[SNAIVE_DAY].tolist() == [3.0, 3.0]


def test_seasonal_naive_rejects_h0() -> None:
    with pytest.raises(ValueError):
        naive_forecast(_frame([1.0]), 0, "5min")


def test_error_quantiles_worked() -> None:
    # y = 0, 1, ..., 9: every k-step naive error is exactly k
    y = np.arange(10, dtype=float)
    eq = error_quantiles(y, np.ones(10, bool), 3, 1, [0.1, 0.9], window=10)
    assert eq.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    # a trailing window of 3 points: errors y[t] - y[t-1] for t = 7, 8, 9 (still 1)
    assert error_quantiles(y, np.ones(10, bool), 1, 1, [0.5], window=3).tolist() == [[1.0]]


def test_error_quantiles_skip_outages_and_empty_steps() -> None:
    y = np.array([0.0, 100.0, 2.0, 3.0])
    ok = np.array([True, False, True, True])
    eq = error_quantiles(y, ok, 1, 1, [0.5], window=4)
    assert eq.tolist() == [[1.0]]  # only the pair (3, 2) is usable
    assert np.isnan(error_quantiles(y[:1], ok[:1], 1, 1, [0.5], window=4)).all()


def _daily(days: int, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 288)
    values = 100 + 20 * np.sin(2 * np.pi * t / 288) + noise * rng.standard_normal(t.size)
    return _frame(values.tolist())


def test_backtest_layout_and_cutoff_semantics() -> None:
    history = _daily(9)
    cuts = rolling_cutoffs(history[DS].max(), 12, 3, "1D", "5min")
    cv = baseline_backtest(history, 12, cuts, "5min", (80, 95))
    assert len(cv) == 3 * 12
    for name in BASELINES:
        for col in (name, lo(name, 80), hi(name, 80), lo(name, 95), hi(name, 95)):
            assert col in cv.columns
    first = cv[cv[CUTOFF] == cuts[0]]
    assert first[DS].min() == cuts[0] + pd.Timedelta("5min")
    assert first[DS].max() == cuts[0] + 12 * pd.Timedelta("5min")
    assert cv[DS].max() == history[DS].max()
    # the naive forecast is the value at the cutoff
    at_cut = history.set_index(DS).loc[cuts[0], Y]
    assert first[NAIVE].eq(at_cut).all()


def test_backtest_exact_on_a_pure_daily_pattern() -> None:
    history = _daily(9)
    cuts = rolling_cutoffs(history[DS].max(), 288, 2, "1D", "5min")
    cv = baseline_backtest(history, 288, cuts, "5min", (80,))
    np.testing.assert_allclose(cv[SNAIVE_DAY], cv[Y], atol=1e-9)
    np.testing.assert_allclose(cv[SNAIVE_WEEK], cv[Y], atol=1e-9)
    # zero in-sample errors -> zero-width bands for snaive_day
    np.testing.assert_allclose(cv[hi(SNAIVE_DAY, 80)] - cv[lo(SNAIVE_DAY, 80)], 0.0, atol=1e-9)


def test_backtest_bands_nested_and_roughly_calibrated() -> None:
    history = _daily(20, noise=5.0)
    cuts = rolling_cutoffs(history[DS].max(), 288, 5, "1D", "5min")
    cv = baseline_backtest(history, 288, cuts, "5min", (80, 95))
    for name in BASELINES:
        assert (cv[lo(name, 95)] <= cv[lo(name, 80)] + 1e-12).all()
        assert (cv[lo(name, 80)] <= cv[name] + 1e-12).all()
        assert (cv[name] <= cv[hi(name, 80)] + 1e-12).all()
        assert (cv[hi(name, 80)] <= cv[hi(name, 95)] + 1e-12).all()
    scores = evaluate(cv, history, list(BASELINES), (80, 95), 288).set_index("model")
    # snaive_day errors are differences of two N(0, 5) draws; its empirical 80% band should hold ~80%
    assert 0.72 < scores.loc[SNAIVE_DAY, coverage_col(80)] < 0.88
    assert 0.90 < scores.loc[SNAIVE_DAY, coverage_col(95)] < 0.99
    # on a daily pattern the day-ahead naive is far worse than the seasonal naive
    # (snaive_day MAE ~ 5 * sqrt(2) * sqrt(2 / pi) = 5.6; naive adds the daily swing)
    assert scores.loc[SNAIVE_DAY, "mae"] == pytest.approx(5.64, rel=0.1)
    assert scores.loc[NAIVE, "mae"] > 2 * scores.loc[SNAIVE_DAY, "mae"]


def test_backtest_skips_cutoffs_off_the_series() -> None:
    history = _daily(3)
    cuts = [pd.Timestamp("2023-01-01", tz="UTC"), pd.Timestamp("2024-01-02 00:02", tz="UTC")]
    cv = baseline_backtest(history, 12, cuts, "5min", (80,))
    assert cv.empty
    assert NAIVE in cv.columns


def test_backtest_on_real_bitbrains_fixture() -> None:
    raw = read_long_csv(FIXTURES / "bitbrains_3vm_5min.csv")
    history, _ = prepare_history(raw, "5min")
    cuts = rolling_cutoffs(history[DS].max(), 12, 2, "1D", "5min")
    cv = baseline_backtest(history, 12, cuts, "5min", (80, 95))
    assert sorted(cv[ID].unique()) == ["bitbrains-vm001", "bitbrains-vm002", "bitbrains-vm003"]
    assert len(cv) == 3 * 2 * 12
    assert not cv[[NAIVE, SNAIVE_DAY, SNAIVE_WEEK]].isna().any().any()
    # under 7 days of history the weekly rule falls back to naive
    np.testing.assert_allclose(cv[SNAIVE_WEEK], cv[NAIVE])
