"""Predicted actual use (``forecaster.rightsizing.predict``) and the ``forecaster`` policy built on it.

Worked numbers for the window statistics, the decaying-histogram source, its short-history widening and
the per-series conformal bands; the engine path on a small synthetic fleet; no future data is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from rs_builders import GIB, MIB, T0, history, usage_frame

from forecaster.contracts.errors import InputError
from forecaster.rightsizing import rightsize
from forecaster.rightsizing.frames import UsageError
from forecaster.rightsizing.policies import forecaster_policy, get_policy
from forecaster.rightsizing.predict import (
    FORECAST,
    HISTOGRAM,
    PREDICTED,
    PredictedStatistic,
    UsagePredictor,
    histogram_estimate,
    predict_usage,
    request_statistics,
    window_statistics,
)
from forecaster.rightsizing.recommend import recommend

FAST: dict[str, Any] = {"members": ("seasonal",), "n_windows": 3}
"""Engine settings that keep these tests quick (the benchmark uses the defaults)."""


def two_days() -> pd.DataFrame:
    """Hourly samples over two days: day 1 CPU 0..23 (/100 cores), day 2 constant 0.5; memory day 1 1 GiB."""
    cpu = np.r_[np.arange(24) / 100, np.full(24, 0.5)]
    mem = np.r_[np.full(24, 1.0), np.full(24, 2.0)] * GIB
    return usage_frame(periods=48, freq="1h", cpu=cpu, memory=mem, cpu_request=2.0, memory_request=4 * GIB)


def test_window_statistics_worked_numbers() -> None:
    stats = window_statistics(two_days(), T0 + pd.Timedelta("2D"), pd.Timedelta("1D"))
    got = {(k.split("|", 1)[1], d): y for k, d, y in stats.itertuples(index=False)}
    day1, day2 = T0, T0 + pd.Timedelta("1D")
    assert got[("cpu|p99", day1)] == pytest.approx(np.quantile(np.arange(24) / 100, 0.99))  # 0.2277
    assert got[("cpu|mean", day1)] == pytest.approx(0.115)
    assert got[("cpu|p99", day2)] == pytest.approx(0.5)
    assert got[("memory|peak", day1)] == 1 * GIB
    assert got[("memory|peak", day2)] == 2 * GIB
    assert len(stats) == 12  # 2 windows x (p99, p95, p90, mean, peak, mean)


def test_window_statistics_aligns_windows_to_now_and_drops_sparse_ones() -> None:
    frame = two_days()
    stats = window_statistics(frame, T0 + pd.Timedelta("36h"), pd.Timedelta("1D"))
    # windows end at now: [T0+12h, T0+36h) is complete, [T0-12h, T0+12h) holds 12 of 24 samples (kept at 50 %)
    assert sorted(stats["ds"].unique()) == [T0 - pd.Timedelta("12h"), T0 + pd.Timedelta("12h")]
    sparse = frame.iloc[::4]  # 6 samples a day where the median spacing says 6: still complete
    assert len(window_statistics(sparse, T0 + pd.Timedelta("2D"), pd.Timedelta("1D"))) == 12
    gappy = pd.concat([frame.iloc[:3], frame.iloc[24:]])  # day 1 has 3 of 24 hourly samples
    assert set(window_statistics(gappy, T0 + pd.Timedelta("2D"), pd.Timedelta("1D"))["ds"]) == {T0 + pd.Timedelta("1D")}


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("mean", (1.0 * 1 + 0.5 * 3) / 1.5),  # ages 0 and 1 half-life: weights 1 and 0.5
        ("p99", 3.0),  # 99 % of the weight is only reached by the larger sample
        ("peak", 3.0),
    ],
)
def test_histogram_estimate_worked_numbers(statistic: str, expected: float) -> None:
    now = T0 + pd.Timedelta("24h")
    ds = np.array([np.datetime64(now.tz_localize(None) - pd.Timedelta("24h"), "ns"),
                   np.datetime64(now.tz_localize(None), "ns")])
    value = histogram_estimate(ds, np.array([3.0, 1.0]), now, statistic, pd.Timedelta("24h"), pd.Timedelta("1D"))
    assert value == pytest.approx(expected)


def test_short_history_uses_the_histogram_with_widened_bands() -> None:
    frame = usage_frame(periods=12, freq="1h", cpu=0.4, memory=512 * MIB)
    pred = predict_usage(frame, T0 + pd.Timedelta("12h"), forecaster=FAST)
    assert set(pred["source"]) == {HISTOGRAM}
    assert pred["reason"].str.contains("< 7D").all()
    cpu = pred[(pred["resource"] == "cpu") & (pred["statistic"] == "p99")].iloc[0]
    # d = max(11 h / 24 h, 1 day) = 1: hi-80 = x(1 + 0.5), hi-95 = x(1 + 1), lo-80 = /1.5
    assert cpu[PREDICTED] == pytest.approx(0.4)
    assert cpu["predicted-hi-80"] == pytest.approx(0.6)
    assert cpu["predicted-hi-95"] == pytest.approx(0.8)
    assert cpu["predicted-lo-80"] == pytest.approx(0.4 / 1.5)


def fleet(days: int = 24, seed: int = 0) -> pd.DataFrame:
    """Three containers at 15-minute steps, daily pattern plus noise, weekday/weekend levels."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, level in enumerate((0.2, 1.0, 3.0)):
        n = days * 96
        ds = pd.date_range(T0, periods=n, freq="15min")
        daily = 1 + 0.5 * np.sin(2 * np.pi * np.arange(n) / 96)
        weekend = np.where(ds.day_of_week >= 5, 0.6, 1.0)
        cpu = level * daily * weekend * rng.lognormal(0, 0.1, n)
        mem = (1 + 0.2 * daily) * level * GIB * rng.lognormal(0, 0.02, n)
        parts.append(usage_frame(f"ns{i}/app/main", periods=n, freq="15min", cpu=cpu, memory=mem,
                                 cpu_request=level * 4, memory_request=level * 4 * GIB))
    return pd.concat(parts, ignore_index=True)


def test_engine_source_predicts_next_day_statistics() -> None:
    frame = fleet()
    now = T0 + pd.Timedelta("22D")  # a Tuesday after a Monday (on daily grids the seasonal member is the last value)
    pred = predict_usage(frame[frame["ds"] < now], now, forecaster=FAST)
    assert set(pred["source"]) == {FORECAST}
    nxt = frame[(frame["ds"] >= now) & (frame["ds"] < now + pd.Timedelta("1D"))]
    actual = nxt.groupby("unique_id")["cpu"].quantile(0.99)
    p99 = pred[pred["statistic"] == "p99"].set_index("unique_id")
    ratio = actual / p99[PREDICTED]
    assert ratio.between(0.7, 1.3).all(), ratio
    cols = ["predicted-lo-95", "predicted-lo-80", PREDICTED, "predicted-hi-80", "predicted-hi-95"]
    assert (np.diff(pred[cols].to_numpy(float), axis=1) >= -1e-9).all()


def test_no_future_data_is_used() -> None:
    frame = fleet()
    now = T0 + pd.Timedelta("21D")
    changed = frame.copy()
    later = changed["ds"] >= now
    changed.loc[later, "cpu"] *= 100.0
    a = predict_usage(frame, now, forecaster=FAST)
    b = predict_usage(changed, now, forecaster=FAST)
    pd.testing.assert_frame_equal(a, b)


def test_update_records_one_residual_per_series_and_conformal_bands_follow_them() -> None:
    frame = fleet(days=28)
    p = UsagePredictor(forecaster=FAST)
    t = T0 + pd.Timedelta("21D")
    p.fit(frame, t)
    p.predict(frame, t)
    before = {k: len(v) for k, v in p._resid.items()}
    p.update(frame, t + pd.Timedelta("1D"))
    after = {k: len(v) for k, v in p._resid.items()}
    assert after and all(after[k] == min(before.get(k, 0) + 1, 28) for k in after)
    with pytest.raises(InputError, match="whole number of windows"):
        p.update(frame, t + pd.Timedelta("30h"))


def test_conformal_band_ranks_worked_example() -> None:
    p = UsagePredictor(levels=(80, 95))
    p._resid = {"k": [float(x) for x in range(-9, 10)]}  # n = 19
    out = pd.DataFrame({PREDICTED: [100.0], "predicted-lo-80": [0.0], "predicted-hi-80": [0.0],
                        "predicted-lo-95": [0.0], "predicted-hi-95": [0.0]}, index=["k"])
    p._conformal_bands(out, "k", 100.0)
    # L = 80: k_hi = ceil(20 * 0.9) = 18 -> +8; k_lo = floor(20 * 0.1) = 2 -> -8
    # L = 95: k_hi = min(19, ceil(20 * 0.975)) = 19 -> +9; k_lo = max(1, floor(0.5)) = 1 -> -9
    assert out.loc["k"].tolist() == [100.0, 92.0, 108.0, 91.0, 109.0]


def test_predicted_statistic_estimator_and_missing_container() -> None:
    table = pd.DataFrame({"unique_id": ["a"], "resource": ["cpu"], "statistic": ["p99"], "source": [FORECAST],
                          PREDICTED: [0.3], "predicted-hi-80": [0.45], "reason": ["engine"]})
    est = PredictedStatistic(table, "predicted-hi-80").estimate(history([0.1, 0.2], uid="a"))
    assert (est.value, est.source) == (0.45, FORECAST)
    other = PredictedStatistic(table, "predicted-hi-80").estimate(history([0.1, 0.2], uid="b", request=2.0))
    assert (other.value, other.source) == (2.0, "current")
    with pytest.raises(InputError, match="no column"):
        PredictedStatistic(table, "predicted-hi-95")


def test_forecaster_policy_chain_worked_numbers() -> None:
    table = pd.DataFrame({
        "unique_id": ["c", "c"], "resource": ["cpu", "memory"], "statistic": ["p99", "peak"],
        "source": [FORECAST, FORECAST], PREDICTED: [0.30, 800 * MIB], "predicted-hi-80": [0.4004, 900 * MIB],
        "predicted-hi-95": [0.5, 1000 * MIB], "predicted-lo-80": [0.2, 700 * MIB],
        "predicted-lo-95": [0.1, 600 * MIB], "reason": ["engine", "engine"]})
    frame = usage_frame("c", periods=12, cpu=0.3, memory=700 * MIB)
    recs = recommend(frame, policy=get_policy("forecaster", prediction=table, margin=0.1)).set_index("resource")
    # CPU: hi-80 0.4004 x 1.1 = 0.44044 -> rounded up to whole millicores 0.441
    assert recs.loc["cpu", "target"] == pytest.approx(0.441)
    # memory: hi-95 1000 MiB x 1.1 = 1100 MiB; no OOM, above the 250 MiB minimum
    assert recs.loc["memory", "target"] == pytest.approx(1100 * MIB)
    assert recs.loc["memory", "lower_bound"] == pytest.approx(880 * MIB)  # the median x 1.1
    tiny = table.assign(**{PREDICTED: [0.001, MIB], "predicted-hi-80": [0.002, MIB], "predicted-hi-95": [0.003, MIB]})
    recs = recommend(frame, policy=forecaster_policy(tiny)).set_index("resource")
    assert recs.loc["cpu", "target"] == pytest.approx(0.025)  # the VPA pod minimum, 25 millicores
    # memory: the 250 MiB minimum is below the 700 MiB the container used: the peak floor raises it
    assert recs.loc["memory", "target"] == pytest.approx(700 * MIB)
    assert "raised to the 8d memory peak 700.0 MiB" in recs.loc["memory", "reason"]


def test_forecaster_policy_needs_a_prediction() -> None:
    with pytest.raises(UsageError, match="needs prediction"):
        get_policy("forecaster")


def test_rightsize_with_the_forecaster_policy_end_to_end() -> None:
    frame = fleet(days=10)
    result = rightsize(frame, policy="forecaster", now=T0 + pd.Timedelta("9D"))
    recs = result.recommendations
    assert set(recs["policy"]) == {"forecaster"}
    assert len(recs) == 6 and (recs["target"] > 0).all()  # 3 containers x (cpu, memory)
    assert set(request_statistics(predict_usage(frame, T0 + pd.Timedelta("9D"), forecaster=FAST))["statistic"]) == {
        "p99", "peak"}
    assert result.containers["risk"].between(0, 1).all()
