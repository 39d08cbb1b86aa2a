"""Worked-number tests for forecaster.evaluation.metrics and rolling_cutoffs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import CUTOFF, DS, ID, OUTAGE, Y, hi, lo
from forecaster.datasets import read_long_csv
from forecaster.evaluation import (
    band_quantiles,
    band_width,
    coverage,
    coverage_col,
    evaluate,
    evaluate_pooled,
    mae,
    mase,
    mase_scales,
    mean_pinball,
    pinball,
    rmse,
    rolling_cutoffs,
    seasonal_naive_scale,
    width_col,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# ------------------------------------------------------------------ array metrics


def test_mae_and_rmse_worked() -> None:
    y, yhat = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 8.0]
    # errors -1, 0, 2, -4: MAE = 7/4, RMSE = sqrt((1 + 0 + 4 + 16)/4)
    assert mae(y, yhat) == pytest.approx(1.75)
    assert rmse(y, yhat) == pytest.approx(math.sqrt(21 / 4))
    assert math.isnan(mae([], []))


@pytest.mark.parametrize(
    ("y", "pred", "q", "expected"),
    [
        (10.0, 8.0, 0.9, 1.8),  # under-forecast at a high quantile: 0.9 * 2
        (10.0, 8.0, 0.1, 0.2),  # under-forecast at a low quantile: 0.1 * 2
        (10.0, 13.0, 0.9, 0.3),  # over-forecast at a high quantile: 0.1 * 3
        (10.0, 13.0, 0.1, 2.7),  # over-forecast at a low quantile: 0.9 * 3
        (10.0, 10.0, 0.5, 0.0),
    ],
    ids=["under-q90", "under-q10", "over-q90", "over-q10", "exact"],
)
def test_pinball_worked(y: float, pred: float, q: float, expected: float) -> None:
    assert pinball([y], [pred], q) == pytest.approx(expected)


def test_pinball_at_median_is_half_mae() -> None:
    y, pred = np.array([3.0, 7.0, 1.0]), np.array([5.0, 5.0, 5.0])
    assert pinball(y, pred, 0.5) == pytest.approx(mae(y, pred) / 2)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_pinball_rejects_bad_quantile(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        pinball([1.0], [1.0], q)


def test_band_quantiles() -> None:
    assert band_quantiles(80) == pytest.approx((0.1, 0.9))
    assert band_quantiles(95) == pytest.approx((0.025, 0.975))
    assert band_quantiles(50) == pytest.approx((0.25, 0.75))


def test_mean_pinball_worked() -> None:
    # 80 band (8, 11) around y = 10: q10 loss 0.1*2 = 0.2, q90 loss 0.1*1 = 0.1 -> mean 0.15
    assert mean_pinball([10.0], {80: ([8.0], [11.0])}) == pytest.approx(0.15)
    # adding a 95 band (5, 12): q025 loss 0.025*5 = 0.125, q975 loss 0.025*2 = 0.05
    two = mean_pinball([10.0], {80: ([8.0], [11.0]), 95: ([5.0], [12.0])})
    assert two == pytest.approx((0.2 + 0.1 + 0.125 + 0.05) / 4)
    assert math.isnan(mean_pinball([10.0], {}))


def test_coverage_and_width_worked() -> None:
    y = [1.0, 5.0, 10.0, 3.0]
    lo_v = [0.0, 5.0, 11.0, 0.0]
    hi_v = [2.0, 6.0, 12.0, 2.0]
    # inside: 1 in [0,2] yes; 5 in [5,6] yes (bounds count); 10 in [11,12] no; 3 in [0,2] no
    assert coverage(y, lo_v, hi_v) == pytest.approx(0.5)
    assert band_width(lo_v, hi_v) == pytest.approx((2 + 1 + 1 + 2) / 4)


def test_seasonal_naive_scale_worked() -> None:
    # m = 2: |4-1| and |3-2| -> (3 + 1) / 2 = 2
    assert seasonal_naive_scale([1.0, 2.0, 4.0, 3.0], 2) == pytest.approx(2.0)
    # the pair (t=3, t-2=1) is dropped when y[1] is an outage -> only |4-1| = 3
    assert seasonal_naive_scale([1.0, 2.0, 4.0, 3.0], 2, observed=[1, 0, 1, 1]) == pytest.approx(3.0)
    assert math.isnan(seasonal_naive_scale([1.0, 2.0], 2))


def test_mase_worked() -> None:
    # MAE 1.75 scaled by 0.5 -> 3.5; undefined for a zero scale
    assert mase([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 8.0], 0.5) == pytest.approx(3.5)
    assert math.isnan(mase([1.0], [2.0], 0.0))


def test_column_helpers() -> None:
    assert coverage_col(80) == "coverage-80"
    assert width_col(95) == "width-95"


# ------------------------------------------------------------------ rolling cutoffs


def test_rolling_cutoffs_worked() -> None:
    end = pd.Timestamp("2024-01-10 00:00", tz="UTC")
    cuts = rolling_cutoffs(end, 12, 2, "1D", "5min")
    assert cuts == [pd.Timestamp("2024-01-08 23:00", tz="UTC"), pd.Timestamp("2024-01-09 23:00", tz="UTC")]
    # the last window's last target is history_end
    assert cuts[-1] + 12 * pd.Timedelta("5min") == end


def test_rolling_cutoffs_one_day_horizon_daily_step() -> None:
    end = pd.Timestamp("2024-01-15 23:55", tz="UTC")
    cuts = rolling_cutoffs(end, 288, 14, "1D", "5min")
    assert len(cuts) == 14
    assert cuts[-1] == pd.Timestamp("2024-01-14 23:55", tz="UTC")
    assert cuts[0] == pd.Timestamp("2024-01-01 23:55", tz="UTC")
    assert all(b - a == pd.Timedelta("1D") for a, b in itertools.pairwise(cuts))


@pytest.mark.parametrize(("h", "n", "step"), [(0, 1, "1D"), (1, 0, "1D"), (1, 1, "0s")])
def test_rolling_cutoffs_rejects(h: int, n: int, step: str) -> None:
    with pytest.raises(ValueError):
        rolling_cutoffs(pd.Timestamp("2024-01-01", tz="UTC"), h, n, step, "5min")


# ------------------------------------------------------------------ evaluate on a hand-made backtest


def _toy() -> tuple[pd.DataFrame, pd.DataFrame]:
    """History of 6 steps with season 2, one cutoff after step 4, two targets."""
    ds = pd.date_range("2024-01-01", periods=6, freq="5min", tz="UTC")
    history = pd.DataFrame({ID: "a", DS: ds, Y: [1.0, 2.0, 4.0, 3.0, 10.0, 12.0], OUTAGE: False})
    cv = pd.DataFrame(
        {
            ID: "a",
            DS: ds[4:],
            CUTOFF: ds[3],
            Y: [10.0, 12.0],
            OUTAGE: [False, False],
            "m": [8.0, 13.0],
            lo("m", 80): [7.0, 11.0],
            hi("m", 80): [9.0, 14.0],
        }
    )
    return history, cv


def test_evaluate_worked_numbers() -> None:
    history, cv = _toy()
    out = evaluate(cv, history, ["m"], [80], season_steps=2)
    row = out.iloc[0]
    assert row[ID] == "a" and row["model"] == "m" and row["n"] == 2
    assert row["mae"] == pytest.approx(1.5)  # errors 2 and 1
    # scale over history up to the cutoff (1, 2, 4, 3): 2 -> MASE = mean(2/2, 1/2)
    assert row["mase"] == pytest.approx(0.75)
    # y=10 outside [7, 9] (above hi: q90 loss 0.9*1 = 0.9, q10 loss 0.1*3 = 0.3)
    # y=12 inside [11, 14]: q10 loss 0.1*1 = 0.1, q90 loss 0.1*2 = 0.2
    assert row["pinball"] == pytest.approx((0.3 + 0.9 + 0.1 + 0.2) / 4)
    assert row[coverage_col(80)] == pytest.approx(0.5)
    assert row[width_col(80)] == pytest.approx(2.5)


def test_evaluate_excludes_outage_rows() -> None:
    history, cv = _toy()
    cv[OUTAGE] = [True, False]
    row = evaluate(cv, history, ["m"], [80], season_steps=2).iloc[0]
    assert row["n"] == 1
    assert row["mae"] == pytest.approx(1.0)
    assert row[coverage_col(80)] == pytest.approx(1.0)


def test_evaluate_model_without_bands_has_nan_band_metrics() -> None:
    history, cv = _toy()
    cv["flat"] = 11.0
    out = evaluate(cv, history, ["m", "flat"], [80, 95], season_steps=2).set_index("model")
    assert out.loc["flat", "mae"] == pytest.approx(1.0)
    assert math.isnan(out.loc["flat", "pinball"])
    assert math.isnan(out.loc["flat", coverage_col(80)])
    assert math.isnan(out.loc["m", coverage_col(95)])  # m has no 95 band


def test_evaluate_missing_column_is_an_error() -> None:
    history, cv = _toy()
    with pytest.raises(ValueError, match="missing columns"):
        evaluate(cv, history, ["nope"], [80], season_steps=2)


def test_mase_scale_ignores_outages_in_history() -> None:
    history, cv = _toy()
    history.loc[1, OUTAGE] = True  # drops the pair (3, 1): scale = |4 - 1| = 3
    scales = mase_scales(cv, history, 2)
    assert scales.tolist() == pytest.approx([3.0, 3.0])


def test_evaluate_groups_and_pooled() -> None:
    history_a, cv_a = _toy()
    history_b, cv_b = _toy()
    history_b[ID] = "b"
    history_b[Y] *= 10
    cv_b[ID] = "b"
    for col in ("m", lo("m", 80), hi("m", 80), Y):
        cv_b[col] = cv_b[col] * 10
    history = pd.concat([history_a, history_b], ignore_index=True)
    cv = pd.concat([cv_a, cv_b], ignore_index=True)
    per = evaluate(cv, history, ["m"], [80], season_steps=2)
    assert per[ID].tolist() == ["a", "b"]
    assert per["mae"].tolist() == pytest.approx([1.5, 15.0])
    assert per["mase"].tolist() == pytest.approx([0.75, 0.75])  # scale-free
    pooled = evaluate_pooled(cv, history, ["m"], [80], season_steps=2)
    assert ID not in pooled.columns and len(pooled) == 1
    assert pooled["mae"].iloc[0] == pytest.approx(8.25)
    assert pooled["mase"].iloc[0] == pytest.approx(0.75)
    assert pooled["n"].iloc[0] == 4


def test_evaluate_on_real_outage_fixture() -> None:
    """NASA August 1995: the hurricane outage rows are never scored."""
    history = read_long_csv(FIXTURES / "nasa_hurricane_5min.csv", unique_id="nasa")
    cut = pd.Timestamp("1995-08-01 12:00", tz="UTC")
    target = history[(history[DS] > cut) & (history[DS] <= cut + pd.Timedelta("1D"))].copy()
    target[CUTOFF] = cut
    target["zero"] = 0.0
    n_outage = int(target[OUTAGE].sum())
    assert n_outage > 100
    row = evaluate(target, history, ["zero"], [80], season_steps=288).iloc[0]
    assert row["n"] == len(target) - n_outage
    observed = target.loc[~target[OUTAGE], Y]
    assert row["mae"] == pytest.approx(observed.mean())
