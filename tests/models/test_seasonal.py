"""The ``seasonal`` member: pattern recovery, periods used, fallbacks, update without refit, parallel fits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import band_columns, hi, lo
from forecaster.forecasting.history import prepare_history
from forecaster.models.base import FitData
from forecaster.models.seasonal import SeasonalMember

LEVELS = (80, 95)


def clean(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    return prepare_history(df, freq)[0]


def fit(history: pd.DataFrame, freq: str = "5min", horizon: int = 24, **kw: Any) -> SeasonalMember:
    return SeasonalMember(**kw).fit(FitData(history, freq, LEVELS, horizon))


# --- accuracy ------------------------------------------------------------------------------------------------
def pattern_errors(make_series: Any, pattern: Callable[..., np.ndarray], seed: int) -> tuple[float, float]:
    """MAE against the noise-free pattern over the next day, of the member and of the daily seasonal naive,
    after 4 days of 5-minute data with noise sd 10 % of the level."""
    history = clean(make_series(4, seed=seed, noise=0.1), "5min")
    member = fit(history, horizon=288)
    forecast = member.predict(288)
    truth = pattern(pd.DatetimeIndex(forecast["ds"]))
    naive = history["y"].to_numpy()[-288:]
    return float(np.abs(forecast["seasonal"] - truth).mean()), float(np.abs(naive - truth).mean())


def test_beats_the_seasonal_naive_on_a_noisy_daily_pattern(
    make_series: Any, pattern: Callable[..., np.ndarray]
) -> None:
    member_mae, naive_mae = np.mean([pattern_errors(make_series, pattern, seed) for seed in (0, 1)], axis=0)
    assert naive_mae == pytest.approx(8.0, rel=0.1)  # one day of N(0, 10) noise: 10 * sqrt(2/pi)
    assert member_mae < 0.95 * naive_mae


def test_recovers_the_daily_pattern_far_better_than_the_naive(
    make_series: Any, pattern: Callable[..., np.ndarray]
) -> None:
    member_mae, naive_mae = np.mean([pattern_errors(make_series, pattern, seed) for seed in (0, 1)], axis=0)
    assert member_mae < 0.7 * naive_mae


def test_noise_free_pattern_is_reproduced(make_series: Any, pattern: Callable[..., np.ndarray]) -> None:
    history = clean(make_series(4, noise=0.0), "5min")
    member = fit(history)
    forecast = member.predict(24)
    truth = pattern(pd.DatetimeIndex(forecast["ds"]))
    np.testing.assert_allclose(forecast["seasonal"], truth, atol=1.0)  # 1 % of the level
    fitted = member.fitted_
    assert fitted is not None and list(fitted.columns) == ["unique_id", "ds", "seasonal"]
    assert len(fitted) == len(history) and not fitted["seasonal"].isna().any()
    np.testing.assert_allclose(fitted["seasonal"], history["y"], atol=2.0)


# --- periods -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("days", "periods"), [(14, (24,)), (15, (24, 168))], ids=["14-days", "15-days"])
def test_weekly_period_only_with_more_than_two_weeks(days: int, periods: tuple[int, ...], make_series: Any) -> None:
    member = fit(clean(make_series(days, freq="1h"), "1h"), freq="1h")
    assert member.periods_ == {"a": periods}
    assert member.fallbacks_ == {}


def test_max_history_days_limits_the_window(make_series: Any) -> None:
    member = fit(clean(make_series(15, freq="1h"), "1h"), freq="1h", max_history_days=10)
    assert member.periods_ == {"a": (24,)}  # 10 days kept: no weekly period


# --- fallbacks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("y", "reason", "expected"),
    [
        (np.full(96, 7.0), "constant series", np.full(24, 7.0)),
        (np.zeros(96), "constant series", np.zeros(24)),
        (np.arange(20.0), "under two days", np.full(24, 19.0)),  # under a day: the last value
    ],
    ids=["constant", "all-zero", "under-a-day"],
)
def test_fallbacks_are_recorded(y: np.ndarray, reason: str, expected: np.ndarray) -> None:
    ds = pd.date_range("2024-01-01", periods=len(y), freq="1h", tz="UTC")
    member = fit(clean(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y}), "1h"), freq="1h")
    assert reason in member.fallbacks_["a"]
    forecast = member.predict(24)
    np.testing.assert_allclose(forecast["seasonal"], expected)
    assert member.periods_ == {"a": ()}


def test_between_one_and_two_days_uses_the_last_day(make_series: Any, pattern: Callable[..., np.ndarray]) -> None:
    history = clean(make_series(1.5, freq="1h", noise=0.0), "1h")
    member = fit(history, freq="1h")
    assert "under two days" in member.fallbacks_["a"]
    np.testing.assert_allclose(member.predict(24)["seasonal"], history["y"].to_numpy()[-24:])


def test_fallback_bands_grow_from_in_sample_errors(make_series: Any) -> None:
    member = fit(clean(make_series(0.5, freq="1h", noise=0.1), "1h"), freq="1h")
    f = member.predict(6)
    width = (f[hi("seasonal", 80)] - f[lo("seasonal", 80)]).to_numpy()
    assert (width > 0).all() and width[-1] >= width[0]


# --- update ------------------------------------------------------------------------------------------------
@pytest.fixture
def fitted_5min(make_series: Any) -> tuple[SeasonalMember, pd.DataFrame]:
    history = clean(make_series(3, seed=5, noise=0.05), "5min")
    return fit(history), history


def test_update_moves_the_origin_without_refitting(fitted_5min: tuple[SeasonalMember, pd.DataFrame]) -> None:
    """Feed the forecast's own first k points as observations: the Kalman innovations are 0, so the
    updated forecast must equal the remaining steps of the original one (exactly, bar rounding)."""
    member, history = fitted_5min
    before = member.predict(24)
    params = np.asarray(member._states["a"].results.params).copy()
    k = 6
    new = before.iloc[:k][["unique_id", "ds"]].assign(y=before["seasonal"].iloc[:k].to_numpy(), is_outage=False)
    member.update(FitData(pd.concat([history, new], ignore_index=True), "5min", LEVELS, 24))
    after = member.predict(24 - k)
    np.testing.assert_array_equal(np.asarray(member._states["a"].results.params), params)  # no refit
    assert after["ds"].iloc[0] == before["ds"].iloc[k]  # origin moved by k steps
    np.testing.assert_allclose(after["seasonal"], before["seasonal"].iloc[k:], rtol=1e-9, atol=1e-9)


def test_update_with_other_values_changes_the_forecast(fitted_5min: tuple[SeasonalMember, pd.DataFrame]) -> None:
    member, history = fitted_5min
    before = member.predict(12)
    new = before.iloc[:3][["unique_id", "ds"]].assign(y=before["seasonal"].iloc[:3].to_numpy() + 30.0)
    member.update(FitData(pd.concat([history, new], ignore_index=True), "5min", LEVELS, 24))
    after = member.predict(9)
    moved = after["seasonal"].to_numpy() - before["seasonal"].iloc[3:].to_numpy()
    assert (moved > 0).all() and moved[0] > 1.0  # the level moved up (most at the next step)


def test_update_without_new_rows_changes_nothing(fitted_5min: tuple[SeasonalMember, pd.DataFrame]) -> None:
    member, history = fitted_5min
    before = member.predict(12)
    member.update(FitData(history, "5min", LEVELS, 24))
    pd.testing.assert_frame_equal(member.predict(12), before)


def test_update_with_a_gap_raises(fitted_5min: tuple[SeasonalMember, pd.DataFrame]) -> None:
    member, history = fitted_5min
    late = history.tail(1).assign(ds=history["ds"].max() + pd.Timedelta("15min"))
    with pytest.raises(ValueError, match="one step after the last"):
        member.update(FitData(pd.concat([history, late], ignore_index=True), "5min", LEVELS, 24))


def test_update_of_a_fallback_series_uses_the_new_values() -> None:
    ds = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
    history = clean(pd.DataFrame({"unique_id": "a", "ds": ds, "y": 5.0}), "1h")
    member = fit(history, freq="1h")
    new = pd.DataFrame({"unique_id": "a", "ds": [ds[-1] + pd.Timedelta("1h")], "y": [9.0]})
    member.update(FitData(pd.concat([history, new], ignore_index=True), "1h", LEVELS, 24))
    f = member.predict(24)
    assert f["ds"].iloc[0] == ds[-1] + pd.Timedelta("2h")
    assert f["seasonal"].iloc[-1] == 9.0  # the last day, which now ends with the new 9


# --- shape and parallelism ---------------------------------------------------------------------------------
def test_bands_nested_and_growing_with_the_horizon(fitted_5min: tuple[SeasonalMember, pd.DataFrame]) -> None:
    member, _ = fitted_5min
    f = member.predict(24)
    assert list(f.columns) == ["unique_id", "ds", *band_columns("seasonal", LEVELS)]
    assert (f[lo("seasonal", 95)] <= f[lo("seasonal", 80)]).all()
    assert (f[hi("seasonal", 80)] <= f[hi("seasonal", 95)]).all()
    width = (f[hi("seasonal", 95)] - f[lo("seasonal", 95)]).to_numpy()
    assert width[-1] > width[0]  # ARIMA(1, 1, 1): uncertainty grows with the step


def test_process_pool_gives_the_same_forecast_as_serial(make_series: Any) -> None:
    history = clean(pd.concat([make_series(3, f"s{i}", seed=i, freq="1h") for i in range(4)], ignore_index=True), "1h")
    serial = fit(history, freq="1h", n_jobs=1).predict(12)
    pooled = fit(history, freq="1h", n_jobs=2).predict(12)  # 4 series >= 2 per worker: a real pool
    pd.testing.assert_frame_equal(serial, pooled)
    assert serial["unique_id"].unique().tolist() == ["s0", "s1", "s2", "s3"]


def test_a_smooth_noise_free_curve_never_gives_a_nan_forecast() -> None:
    """The chaos benchmark's Prometheus stand-in curve for ``svc-1`` (issue 22, d0f3b1d): statsmodels' level filter
    ended in a NaN state (innovation variance ~1e-11), so every forecast of the series was NaN. The member now
    falls back to the daily rule, which is exact on such a curve, and says why."""
    ds = pd.date_range("2026-12-04T14:05Z", "2026-12-07T14:05Z", freq="5min")
    phase = 24.0 * 50 / 255.0  # the stand-in's phase of 'svc-1', hours
    hour = (ds.as_unit("s").asi8 / 3600.0 + phase) % 24.0
    base = 200.0 + 400.0 * 189 / 255.0  # promstandin.base_of('svc-1')
    y = base * (1.0 + 0.5 * np.sin(2.0 * np.pi * hour / 24.0))
    member = fit(pd.DataFrame({"unique_id": "svc-1", "ds": ds, "y": y}), horizon=288)
    forecast = member.predict(288)
    assert np.isfinite(forecast.drop(columns=["unique_id", "ds"]).to_numpy()).all()
    future = (pd.DatetimeIndex(forecast["ds"]).as_unit("s").asi8 / 3600.0 + phase) % 24.0
    truth = base * (1.0 + 0.5 * np.sin(2.0 * np.pi * future / 24.0))
    np.testing.assert_allclose(forecast["seasonal"], truth, rtol=1e-6)
    assert "non-finite ARIMA state" in member.fallbacks_["svc-1"]


def test_a_level_without_uncertainty_only_predicts() -> None:
    """``_Level.extend`` with ``F = Z P Z' + H = 0``: the state moves by the transition alone (no 0/0)."""
    from forecaster.models.seasonal import _Level

    level = _Level(np.zeros(1), np.array([1.0]), 0.0, 0.0, np.array([[1.0]]), np.array([0.0]), np.zeros((1, 1)),
                   np.array([5.0]), np.zeros((1, 1)))
    level.extend(np.array([7.0, 9.0]))
    assert level.a.tolist() == [5.0] and level.P.tolist() == [[0.0]]
    mean, var = level.forecast(2)
    assert mean.tolist() == [5.0, 5.0] and var.tolist() == [0.0, 0.0]
