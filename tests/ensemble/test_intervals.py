"""``forecaster.ensemble.intervals``: conformal widening factors per horizon step, worked and simulated."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import hi, lo
from forecaster.ensemble.intervals import (
    MAX_FACTOR,
    Calibration,
    adjust_col,
    conformal_quantile,
    fit_calibration,
    recency_weights,
    required_factors,
    series_adjustments,
)
from forecaster.ensemble.leads import LEAD, horizon_steps

T = pd.Timestamp("2024-01-01T00:00Z")
LEVELS = (80, 95)
H = 12


# --- worked examples ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scores", "level", "expected"),
    [
        ([0.5, 1, 2, 3], 50, 1.5),  # the docstring: position 5 * 0.5 = 2.5, halfway from the 2nd to the 3rd
        ([3, 0.5, 2, 1], 50, 1.5),  # order of the input does not matter
        ([0.5, 1, 2, 3], 80, 3.0),  # position 5 * 0.8 = 4: the 4th
        ([0.5, 1, 2, 3], 95, 3.0),  # position 4.75 > ... past n - 1 + 1: the largest (never beyond it)
        ([0.5, 1, 2, 3], 10, 0.5),  # position 0.5 < 1: the smallest
        (list(range(1, 100)), 80, 80.0),  # n = 99: position 100 * 0.8 = 80th
        (list(range(1, 100)), 75, 75.0),  # position 75
        ([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0], 80, pytest.approx(44.8)),  # n = 7: position 6.4: 32 + 0.4 * 32
    ],
    ids=["docstring", "unsorted", "80", "rank-past-n", "below-first", "n99", "n99-75", "n7-interpolated"],
)
def test_conformal_quantile(scores: list[float], level: int, expected: float) -> None:
    assert conformal_quantile(np.array(scores, float), level) == expected


def test_conformal_quantile_by_rank_when_not_interpolating(monkeypatch: pytest.MonkeyPatch) -> None:
    """``INTERPOLATE = False``: the ceil((n+1) L/100)-th smallest (the classic rank, conservative)."""
    import forecaster.ensemble.intervals as intervals

    monkeypatch.setattr(intervals, "INTERPOLATE", False)
    assert conformal_quantile(np.array([0.5, 1, 2, 3]), 50) == 2.0
    assert conformal_quantile(np.array([0.5, 1, 2, 3]), 95) == 3.0


def test_interpolated_quantile_covers_near_the_nominal_rate_on_small_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """n = 7 calibration scores, a new score from the same distribution, L = 80. Uniform scores: the interpolated
    quantile at position 6.4 covers 80 % (E F(r_(k)) = k / 8, linear in between); the classic rank covers
    ceil(6.4) / 8 = 87.5 %. Exponential scores (a long tail): interpolated about 82 %, still nearer 80 % than
    the rank. Simulated with 20,000 draws each."""
    import forecaster.ensemble.intervals as intervals

    rng = np.random.default_rng(7)

    def coverage(draws: np.ndarray) -> float:
        return float(np.mean([d[7] <= conformal_quantile(d[:7], 80) for d in draws]))

    uniform, expo = rng.uniform(size=(20_000, 8)), rng.exponential(size=(20_000, 8))
    interp_u, interp_e = coverage(uniform), coverage(expo)
    monkeypatch.setattr(intervals, "INTERPOLATE", False)
    rank_u, rank_e = coverage(uniform), coverage(expo)
    assert abs(interp_u - 0.80) < 0.012
    assert abs(rank_u - 0.875) < 0.012
    assert abs(interp_e - 0.80) < abs(rank_e - 0.80) - 0.03


def test_conformal_quantile_of_nothing_is_nan() -> None:
    assert np.isnan(conformal_quantile(np.array([]), 80))


def test_required_factors_worked() -> None:
    """e = 10, band [6, 12]: y = 11 -> 1/2 of the upper half-width; y = 4 -> 6/4; y = 10 -> 0;
    a zero-width upper half uses the floor (0.5): y = 11 -> 1 / 0.5 = 2."""
    y = np.array([11.0, 4.0, 10.0, 11.0])
    e = np.full(4, 10.0)
    lo_v = np.array([6.0, 6.0, 6.0, 6.0])
    hi_v = np.array([12.0, 12.0, 12.0, 10.0])
    np.testing.assert_allclose(required_factors(y, e, lo_v, hi_v, np.full(4, 0.5)), [0.5, 1.5, 0.0, 2.0])


def test_horizon_steps() -> None:
    frame = pd.DataFrame(
        {"cutoff": [T, T, T - pd.Timedelta("1h")], "ds": [T + pd.Timedelta("5min"), T + pd.Timedelta("1h"), T]}
    )
    assert horizon_steps(frame, "5min").tolist() == [1, 12, 12]


def test_apply_widens_around_the_point_and_clips_steps_to_the_horizon() -> None:
    cal = Calibration((80,), np.array([[2.0], [0.5]]), n_obs=10)
    frame = pd.DataFrame({"ensemble": [100.0] * 3, "ensemble-lo-80": [90.0] * 3, "ensemble-hi-80": [104.0] * 3})
    out = cal.apply(frame, np.array([1, 2, 7]))  # step 7 > horizon 2 uses the last factor
    np.testing.assert_allclose(out["ensemble-lo-80"], [80.0, 95.0, 95.0])
    np.testing.assert_allclose(out["ensemble-hi-80"], [108.0, 102.0, 102.0])  # asymmetry kept
    assert cal.horizon == 2


def test_identity_calibration_changes_nothing() -> None:
    cal = Calibration.identity(LEVELS, 4)
    assert cal.factors.shape == (4, 2) and (cal.factors == 1).all() and cal.n_obs == 0
    frame = pd.DataFrame(
        {
            "ensemble": [5.0],
            **{
                c: [v]
                for c, v in zip(
                    [lo("ensemble", 80), hi("ensemble", 80), lo("ensemble", 95), hi("ensemble", 95)],
                    [4, 6, 3, 7],
                    strict=True,
                )
            },
        }
    )
    pd.testing.assert_frame_equal(cal.apply(frame.copy(), np.array([3])), frame.astype(float))


# --- simulated backtests -----------------------------------------------------------------------------------
def gaussian_backtest(n_series: int, n_windows: int, narrow: float, seed: int) -> pd.DataFrame:
    """Ensemble = truth's mean; errors N(0, sd) with sd growing with the step and the series' scale;
    raw bands ``e +/- narrow * z_L * sd`` (``narrow`` < 1 = too narrow)."""
    rng = np.random.default_rng(seed)
    series, window, k = (
        a.ravel() for a in np.meshgrid(np.arange(n_series), np.arange(n_windows), np.arange(1, H + 1), indexing="ij")
    )
    scale = 10.0 * (series + 1)
    sd = scale * 0.05 * (1 + k / H)
    e = scale * 10
    cutoff = T + pd.to_timedelta(window, unit="h")
    frame = pd.DataFrame(
        {
            "unique_id": np.char.add("s", series.astype(str)),
            "ds": cutoff + pd.to_timedelta(5 * k, unit="min"),
            "cutoff": cutoff,
            "y": e + rng.normal(0, sd),
            "ensemble": e,
        }
    )
    for level in LEVELS:
        z = NormalDist().inv_cdf(0.5 + level / 200)
        frame[lo("ensemble", level)] = e - narrow * z * sd
        frame[hi("ensemble", level)] = e + narrow * z * sd
    return frame


def coverage(frame: pd.DataFrame, level: int) -> float:
    inside = (frame["y"] >= frame[lo("ensemble", level)]) & (frame["y"] <= frame[hi("ensemble", level)])
    return 100.0 * float(inside.mean())


def test_calibrated_coverage_on_fresh_draws_is_close_to_nominal() -> None:
    train = gaussian_backtest(n_series=8, n_windows=60, narrow=0.5, seed=1)
    cal = fit_calibration(train, "5min", LEVELS, H)
    assert cal.n_obs == len(train) and cal.factors.shape == (H, 2)
    np.testing.assert_allclose(cal.factors, 2.0, rtol=0.25)  # the bands were half as wide as they should be
    fresh = gaussian_backtest(n_series=8, n_windows=250, narrow=0.5, seed=2)
    assert coverage(fresh, 80) < 60 and coverage(fresh, 95) < 75  # raw bands are badly too narrow
    calibrated = cal.apply(fresh.copy(), horizon_steps(fresh, "5min"))
    assert abs(coverage(calibrated, 80) - 80) <= 4
    assert abs(coverage(calibrated, 95) - 95) <= 3


def test_well_calibrated_bands_stay_about_the_same() -> None:
    cal = fit_calibration(gaussian_backtest(8, 60, narrow=1.0, seed=3), "5min", LEVELS, H)
    np.testing.assert_allclose(cal.factors, 1.0, rtol=0.2)


def test_small_backtests_pool_neighbouring_steps() -> None:
    """8 rows per step < min_obs: each step borrows neighbours, so factors exist for every step."""
    cal = fit_calibration(gaussian_backtest(2, 4, narrow=0.5, seed=4), "5min", LEVELS, H, min_obs=40)
    assert np.isfinite(cal.factors).all() and (cal.factors > 1).all()


def test_outage_and_missing_actuals_are_ignored() -> None:
    bt = gaussian_backtest(4, 30, narrow=1.0, seed=5)
    clean = fit_calibration(bt, "5min", LEVELS, H)
    polluted = bt.assign(is_outage=False)
    extra = bt.iloc[:300].assign(y=0.0, is_outage=True)  # outage zeros far below every band
    missing = bt.iloc[300:400].assign(y=np.nan, is_outage=False)
    polluted = pd.concat([polluted, extra, missing], ignore_index=True)
    got = fit_calibration(polluted, "5min", LEVELS, H)
    np.testing.assert_allclose(got.factors, clean.factors)
    assert got.n_obs == len(bt)


def test_nothing_usable_gives_the_identity() -> None:
    bt = gaussian_backtest(1, 2, narrow=1.0, seed=6).assign(is_outage=True)
    cal = fit_calibration(bt, "5min", LEVELS, H)
    assert (cal.factors == 1).all() and cal.n_obs == 0


def test_factors_are_capped() -> None:
    """e = 100, zero-width bands, y = 150: the floor is 1e-3 * 150 = 0.15, so r = 50 / 0.15 = 333 -> 100."""
    bt = pd.DataFrame(
        {
            "unique_id": "s",
            "cutoff": T,
            "ds": T + pd.Timedelta("5min") * np.arange(1, 4),
            "y": 150.0,
            "ensemble": 100.0,
            **{c: 100.0 for level in LEVELS for c in (lo("ensemble", level), hi("ensemble", level))},
        }
    )
    cal = fit_calibration(bt, "5min", LEVELS, 3, min_obs=1)
    np.testing.assert_allclose(cal.factors, MAX_FACTOR)


# --- per-series adjustments --------------------------------------------------------------------------------
def test_series_adjustment_worked_example() -> None:
    """The docstring: a series needing twice the pooled width (q = 2) with n = 50 rows -> 2 ** 0.5."""
    n = 50
    scores = {80: np.full(n, 2.0)}
    adj = series_adjustments(np.array(["s"] * n), np.arange(1, n + 1), scores, np.ones((n, 1)), (80,), (n,), 50)
    assert adj[LEAD].tolist() == [n]
    np.testing.assert_allclose(adj[adjust_col(80)].iloc[0], 2.0**0.5)


def per_series_coverage(frame: pd.DataFrame, level: int) -> pd.Series:
    inside = (frame["y"] >= frame[lo("ensemble", level)]) & (frame["y"] <= frame[hi("ensemble", level)])
    return 100.0 * inside.groupby(frame["unique_id"]).mean()


def test_per_series_adjustment_holds_coverage_for_each_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw bands too narrow for series s0 (x0.4) and too wide for s1 (x2.5): one pooled factor misses both,
    the per-series adjustment brings each close to nominal on fresh draws. (The adjustment alone: the
    cross-validated level, on by default, raises the level of these exchangeable windows from 80 to 80.7, within
    its noise, and s1's coverage from 84.9 to 85.7.)"""
    import forecaster.ensemble.intervals as intervals

    monkeypatch.setattr(intervals, "CROSS_VALIDATE", False)

    def mixed(n_windows: int, seed: int) -> pd.DataFrame:
        parts = []
        for uid, narrow in (("s0", 0.4), ("s1", 2.5)):
            part = gaussian_backtest(1, n_windows, narrow=narrow, seed=seed + int(uid[1]))
            parts.append(part.assign(unique_id=uid))
        return pd.concat(parts, ignore_index=True)

    train, fresh = mixed(80, 10), mixed(300, 20)
    pooled = fit_calibration(train, "5min", LEVELS, H).apply(fresh.copy(), horizon_steps(fresh, "5min"))
    per = fit_calibration(train, "5min", LEVELS, H, lead_ends=(H,)).apply(fresh.copy(), horizon_steps(fresh, "5min"))
    cov_pooled, cov_per = per_series_coverage(pooled, 80), per_series_coverage(per, 80)
    assert (cov_pooled - 80).abs().max() > 10  # pooled: one series far over, the other far under
    assert (cov_per - 80).abs().max() <= 5
    assert (per_series_coverage(per, 95) - 95).abs().max() <= 4


def test_a_series_absent_from_calibration_keeps_the_pooled_factors() -> None:
    train = gaussian_backtest(2, 30, narrow=0.5, seed=4)
    cal = fit_calibration(train, "5min", LEVELS, H, lead_ends=(H,))
    other = gaussian_backtest(1, 3, narrow=0.5, seed=5).assign(unique_id="new")
    steps = horizon_steps(other, "5min")
    pooled_only = Calibration(cal.levels, cal.factors, cal.n_obs)
    pd.testing.assert_frame_equal(cal.apply(other.copy(), steps), pooled_only.apply(other.copy(), steps))


# --- recency weighting ---------------------------------------------------------------------------------------
def test_weighted_conformal_quantile_worked_example() -> None:
    """The docstring: weights 0.125, 0.25, 0.5, 1 at L = 50 -> 4 (the unweighted rank rule gives 3)."""
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    w = recency_weights(np.array([1, 2, 3, 4]), half_life=1.0)
    assert w is not None
    np.testing.assert_allclose(w, [0.125, 0.25, 0.5, 1.0])
    assert conformal_quantile(scores, 50, w) == 4.0
    assert conformal_quantile(scores, 50) == 2.5  # interpolated at position 2.5


@pytest.mark.parametrize("level", [50, 80, 90, 95])
def test_equal_unit_weights_give_the_rank_rule(level: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import forecaster.ensemble.intervals as intervals

    monkeypatch.setattr(intervals, "INTERPOLATE", False)
    rng = np.random.default_rng(level)
    scores = rng.exponential(size=37)
    assert conformal_quantile(scores, level, np.ones(37)) == conformal_quantile(scores, level)


def test_no_half_life_means_no_weights() -> None:
    assert recency_weights(np.array([1, 2]), None) is None


def test_recent_windows_steer_the_factor_when_the_errors_grew() -> None:
    """Bands that were right in old windows and too narrow in the recent ones: recency weighting widens more."""
    old = gaussian_backtest(4, 20, narrow=1.0, seed=6)
    new = gaussian_backtest(4, 5, narrow=0.5, seed=7)
    new["cutoff"] = new["cutoff"] + pd.Timedelta("30D")
    new["ds"] = new["ds"] + pd.Timedelta("30D")
    both = pd.concat([old, new], ignore_index=True)
    plain = fit_calibration(both, "5min", LEVELS, H)
    recent = fit_calibration(both, "5min", LEVELS, H, half_life=3.0)
    assert recent.factors.mean() > plain.factors.mean() * 1.2


# --- cross-validated level -----------------------------------------------------------------------------------
def test_cross_validated_level_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """The docstring (``CV_MIN_WINDOWS`` = 3): windows A = [1, 2], B = [2, 3], C = [3, 4], D = [4, 5] in time order
    at L = 50: C scored by [1, 2, 2, 3], D by [1, 2, 2, 3, 3, 4]; C's 3 is covered from p = 80, D's 4 from
    p = 600 / 7 -> 85.7."""
    import forecaster.ensemble.intervals as intervals
    from forecaster.ensemble.intervals import cross_validated_level

    assert intervals.CV_MIN_WINDOWS == 5
    assert cross_validated_level(np.array([1.0, 2, 2, 3, 3, 4, 4, 5]), np.repeat(np.arange(4), 2), 50) == 50.0
    monkeypatch.setattr(intervals, "CV_MIN_WINDOWS", 3)
    scores = np.array([1.0, 2, 2, 3, 3, 4, 4, 5])
    windows = np.repeat(pd.date_range(T, periods=4, freq="1D").to_numpy(), 2)
    assert abs(cross_validated_level(scores, windows, 50) - 600 / 7) <= 0.01
    assert cross_validated_level(scores[:4], windows[:4], 50) == 50.0  # 2 windows < CV_MIN_WINDOWS
    # three windows [1, 2]: the third scored by [1, 1, 2, 2] at p = 50 (quantile 1.5) has 1 of 2 covered: nominal
    assert cross_validated_level(np.array([1.0, 2, 1, 2, 1, 2]), windows[:6], 50) == 50.0


def test_leave_one_window_out_level_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CV_MODE = "lowo"`` with narrowing: A = [1, 2], B = [3, 4], C = [5, 6] at L = 50: without A, B, C the
    quantiles at p = 40 are 4, 2, 2 (2 of 6 rows covered); B's 3 is covered once the quantile of [1, 2, 5, 6],
    2 + 3 (5 p / 100 - 2), reaches 3, at p = 140 / 3 = 46.7 (3 of 6)."""
    import forecaster.ensemble.intervals as intervals

    monkeypatch.setattr(intervals, "CV_MODE", "lowo")
    monkeypatch.setattr(intervals, "CV_NARROW", True)
    monkeypatch.setattr(intervals, "CV_MIN_WINDOWS", 3)
    p = intervals.cross_validated_level(np.array([1.0, 2, 3, 4, 5, 6]), np.array(["A", "A", "B", "B", "C", "C"]), 50)
    assert abs(p - 140 / 3) <= 0.01


def day_effect_backtest(n_windows: int, seed: int, start: int = 0) -> pd.DataFrame:
    """One series, ``H`` steps per window; each window's errors share a level error N(0, 1) (a day the members
    misjudged) plus row noise N(0, 0.3); raw bands e +/- 1 (too narrow, the same shape every step)."""
    rng = np.random.default_rng(seed)
    window, k = (a.ravel() for a in np.meshgrid(np.arange(n_windows), np.arange(1, H + 1), indexing="ij"))
    cutoff = T + pd.to_timedelta(start + window, unit="D")
    day = rng.normal(0, 1.0, n_windows)[window]
    frame = pd.DataFrame(
        {
            "unique_id": "s",
            "ds": cutoff + pd.to_timedelta(5 * k, unit="min"),
            "cutoff": cutoff,
            "y": 100.0 + day + rng.normal(0, 0.3, len(window)),
            "ensemble": 100.0,
        }
    )
    for level in LEVELS:
        frame[lo("ensemble", level)] = 99.0
        frame[hi("ensemble", level)] = 101.0
    return frame


def test_cross_validated_level_holds_coverage_when_rows_of_a_window_move_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """7 calibration windows, then the next window scored, 300 times. Rows of a window share its level error, so
    the pooled rows' quantile covers the next window's rows less often than nominal (77.1 % at 80 %, 89.0 % at
    95 % here). The cross-validated level (forward folds, only raised) brings them to 83.9 % and 92.1 %: inside the
    issue's bounds [75, 85] and [92, 98], a little above 80 % because its folds hold fewer windows than the final
    quantile; leave-one-window-out (no order) gives 79.3 % and 91.7 %."""
    import forecaster.ensemble.intervals as intervals

    def mean_coverage(cross_validate: bool) -> dict[int, float]:
        monkeypatch.setattr(intervals, "CROSS_VALIDATE", cross_validate)
        cov: dict[int, list[float]] = {level: [] for level in LEVELS}
        for rep in range(300):
            both = day_effect_backtest(8, seed=100 + rep)
            last = both["cutoff"] == both["cutoff"].max()
            cal = fit_calibration(both[~last], "5min", LEVELS, H, lead_ends=(H,))
            out = cal.apply(both[last].copy(), horizon_steps(both[last], "5min"))
            for level in LEVELS:
                cov[level].append(coverage(out, level))
        return {level: float(np.mean(v)) for level, v in cov.items()}

    nominal, crossed = mean_coverage(False), mean_coverage(True)
    assert nominal[80] <= 78 and nominal[95] <= 90
    assert 80 <= crossed[80] <= 85 and 92 <= crossed[95] <= 98
    monkeypatch.setattr(intervals, "CV_MODE", "lowo")
    lowo = mean_coverage(True)
    assert abs(lowo[80] - 80) <= 1.5 and lowo[95] >= nominal[95] + 2


# --- member disagreement ---------------------------------------------------------------------------------------
def test_spread_bands_worked_example() -> None:
    """The docstring: members 90 and 110 (sd 10), ensemble 100 with raw 80 % band [95, 103]: z_80 = 1.2816, so the
    lower half-width becomes sqrt(5^2 + 12.816^2) = 13.757 and the upper sqrt(3^2 + 12.816^2) = 13.162."""
    from forecaster.ensemble.intervals import spread_bands

    frame = pd.DataFrame(
        {"ensemble": [100.0], "ensemble-lo-80": [95.0], "ensemble-hi-80": [103.0], "seasonal": [90.0], "lgbm": [110.0]}
    )
    out = spread_bands(frame, (80,), ("seasonal", "events", "lgbm"))  # absent members are skipped
    z = NormalDist().inv_cdf(0.9)
    np.testing.assert_allclose(out["ensemble-lo-80"], [100 - np.sqrt(25 + (10 * z) ** 2)])
    np.testing.assert_allclose(out["ensemble-hi-80"], [100 + np.sqrt(9 + (10 * z) ** 2)])
    np.testing.assert_allclose(out["ensemble-lo-80"], [86.243], atol=1e-3)
    assert spread_bands(frame, (80,), ()) == {}


def test_calibration_widens_by_disagreement_before_the_factors() -> None:
    """The bands a calibration applies are the spread-widened raw bands times the factors, so a calibration fitted
    on a backtest whose members agree everywhere keeps its raw bands' shape; where they disagree the band widens."""
    bt = gaussian_backtest(2, 30, narrow=1.0, seed=8).assign(
        seasonal=lambda f: f["ensemble"], lgbm=lambda f: f["ensemble"]
    )
    cal = fit_calibration(bt, "5min", LEVELS, H, lead_ends=(H,))
    assert cal.spread_members == ("seasonal", "lgbm")
    fresh = gaussian_backtest(2, 2, narrow=1.0, seed=9).assign(
        seasonal=lambda f: f["ensemble"], lgbm=lambda f: f["ensemble"]
    )
    steps = horizon_steps(fresh, "5min")
    agree = cal.apply(fresh.copy(), steps)
    apart = cal.apply(fresh.assign(seasonal=fresh["ensemble"] - 50, lgbm=fresh["ensemble"] + 50), steps)
    assert (apart["ensemble-hi-80"] - apart["ensemble-lo-80"] > agree["ensemble-hi-80"] - agree["ensemble-lo-80"]).all()


def test_calibration_is_the_same_scored_block_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ROWS_PER_BLOCK`` only bounds the temporaries: 37 rows a block (cutting through series and windows) gives
    the same factors, levels and per-series adjustments as one block, with members' spread and recency on, and the
    per-series table lists the series in the order of their first row (step-sorted), one row per bucket."""
    import forecaster.ensemble.intervals as intervals

    bt = gaussian_backtest(5, 8, narrow=0.7, seed=11)
    rng = np.random.default_rng(2)
    bt["seasonal"] = bt["ensemble"] + rng.normal(0, 1, len(bt))
    bt["lgbm"] = bt["ensemble"] + rng.normal(0, 2, len(bt))
    bt.loc[bt.index[::29], "y"] = np.nan
    one = fit_calibration(bt, "5min", LEVELS, H, lead_ends=(4, H), half_life=3.0)
    monkeypatch.setattr(intervals, "ROWS_PER_BLOCK", 37)
    blocks = fit_calibration(bt, "5min", LEVELS, H, lead_ends=(4, H), half_life=3.0)
    np.testing.assert_array_equal(blocks.factors, one.factors)
    assert one.series_adjust is not None and blocks.series_adjust is not None
    pd.testing.assert_frame_equal(blocks.series_adjust, one.series_adjust)
    assert list(one.series_adjust["unique_id"]) == [f"s{i}" for _ in (4, H) for i in range(5)]
    assert list(one.series_adjust[LEAD]) == [4] * 5 + [H] * 5
    assert one.spread_members == ("seasonal", "lgbm") and one.n_obs == int(bt["y"].notna().sum())


def test_series_adjustments_group_by_series_and_bucket_as_a_grouping_would() -> None:
    """The integer-key grouping against pandas' own grouping of the same rows (ids in any order, weights on)."""
    rng = np.random.default_rng(5)
    n = 400
    ids = rng.choice(np.array(["b", "a", "c"], dtype=object), n)
    steps = rng.integers(1, 13, n)
    scores = {80: rng.gamma(2.0, 1.0, n)}
    factors = np.full((12, 1), 1.5)
    w = rng.uniform(0.2, 1.0, n)
    got = series_adjustments(ids, steps, scores, factors, (80,), (4, 12), 50, w)
    frame = pd.DataFrame({"id": ids, "lead": np.where(steps <= 4, 4, 12), "r": scores[80] / 1.5, "w": w})
    for (uid, lead), g in frame.groupby(["id", "lead"], sort=False):
        q = conformal_quantile(g["r"].to_numpy(), 80, g["w"].to_numpy())
        row = got[(got["unique_id"] == uid) & (got[LEAD] == lead)]
        assert row[adjust_col(80)].item() == pytest.approx(q ** (len(g) / (len(g) + 50)))
    firsts = frame.drop_duplicates(["id", "lead"])
    assert list(zip(got["unique_id"], got[LEAD], strict=True)) == list(zip(firsts["id"], firsts["lead"], strict=True))
