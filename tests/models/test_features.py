"""Worked examples and the no-leakage property of ``forecaster.models.features``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.models.features import Y_DERIVED, FeatureSpec, Panel, build_features, row_base, row_scale

HOUR_NS = 3600 * 10**9
# A toy grid: "day" = 4 steps, "week" = 8 steps, one step = 1 hour.
SPEC = FeatureSpec(day=4, week=8, step_ns=HOUR_NS)


def _history(values: dict[str, np.ndarray], start: str = "2024-01-01", outage: dict | None = None) -> pd.DataFrame:
    frames = []
    for uid, y in values.items():
        ds = pd.date_range(start, periods=len(y), freq="1h", tz="UTC")
        out = np.zeros(len(y), bool) if outage is None or uid not in outage else outage[uid]
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y.astype(float), "is_outage": out}))
    return pd.concat(frames, ignore_index=True).sort_values(["unique_id", "ds"], ignore_index=True)


def _feats(panel: Panel, s: int, t: int, k: int, spec: FeatureSpec = SPEC, **kw: object) -> dict[str, float]:
    X, _ = build_features(panel, np.array([s]), np.array([t]), np.array([k]), spec, scaled=False, **kw)
    return dict(zip(spec.names, X[0].astype(float), strict=True))


Y20 = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4], dtype=float)


@pytest.fixture
def panel20() -> Panel:
    return Panel.from_history(_history({"a": Y20}))


def test_worked_example_origin_10_step_3(panel20: Panel) -> None:
    f = _feats(panel20, 0, 10, 3)
    y = Y20
    assert f["step"] == 3
    assert f["y_last"] == y[10] == 5
    assert f["diff_1"] == y[10] - y[9] == 2
    assert f["mean_3"] == pytest.approx((5 + 3 + 5) / 3)
    assert f["mean_12"] == pytest.approx(y[0:11].mean())  # only 11 values before/at the origin
    assert f["mean_day"] == pytest.approx(y[7:11].mean())  # day = 4 steps
    assert f["std_12"] == pytest.approx(y[0:11].std(), rel=1e-6)
    # seasonal lags relative to the TARGET 13: one day back is 9, two days 5, one week 5
    assert f["lag_day"] == y[9]
    assert f["lag_2day"] == y[5]
    assert f["lag_week"] == y[5]
    assert f["lag_day_smooth"] == pytest.approx(y[7:11].mean())  # 9-2 .. min(9+2, origin 10)
    assert f["origin_lag_day"] == y[6]
    assert f["mean_12_day_ago"] == pytest.approx(y[0:7].mean())


def test_step_beyond_a_day_takes_two_days_back(panel20: Panel) -> None:
    f = _feats(panel20, 0, 10, 5)  # target 15, k = 5 > day: 15 - 8 = 7 (never after the origin)
    assert f["lag_day"] == Y20[7]
    assert f["lag_2day"] == Y20[3]
    assert f["lag_week"] == Y20[7]


def test_lags_before_the_start_are_nan(panel20: Panel) -> None:
    f = _feats(panel20, 0, 2, 1)
    assert np.isnan(f["lag_week"]) and np.isnan(f["origin_lag_day"]) and np.isnan(f["mean_12_day_ago"])
    assert np.isnan(f["lag_day"])  # target 3 - one day = position -1
    assert f["lag_day_smooth"] != f["lag_day_smooth"]
    g = _feats(panel20, 0, 0, 1)
    assert g["diff_1"] == 0.0 and g["std_12"] == 0.0 and g["mean_12"] == Y20[0]


def test_calendar_of_the_target_time() -> None:
    # 2024-01-05 is a Friday; the series starts at 16:00 UTC
    panel = Panel.from_history(_history({"a": np.ones(30)}, start="2024-01-05 16:00"))
    t = 28  # 2024-01-05 16:00 + 28 h = Saturday 2024-01-06 20:00
    f = _feats(panel, 0, t, 3)  # target 23:00 Saturday
    assert f["minute_of_day"] == 23 * 60 and f["dow"] == 5 and f["is_weekend"] == 1
    f = _feats(panel, 0, t, 5)  # target Sunday 01:00
    assert f["minute_of_day"] == 60 and f["dow"] == 6 and f["is_weekend"] == 1
    f = _feats(panel, 0, 0, 8)  # target Saturday 00:00 -> Friday 16:00 + 8 h
    assert f["dow"] == 5 and f["minute_of_day"] == 0


def test_scaled_features_divide_by_mean_abs_of_last_week_without_outages() -> None:
    y = np.array([100.0, 1, 2, 3, 4, 5, 6, 7, 8, 1000.0])
    out = np.zeros(10, bool)
    out[9] = True  # the outage value is not used for the scale
    panel = Panel.from_history(_history({"a": y}, outage={"a": out}))
    scale = row_scale(panel, np.array([0]), np.array([9]), week=8)
    assert scale[0] == pytest.approx(np.mean([2, 3, 4, 5, 6, 7, 8]))
    X, sc = build_features(panel, np.array([0]), np.array([8]), np.array([1]), SPEC)
    raw, _ = build_features(panel, np.array([0]), np.array([8]), np.array([1]), SPEC, scaled=False)
    assert sc[0] == pytest.approx(np.mean(y[1:9]))
    for j, name in enumerate(SPEC.names):
        expected = raw[0, j] / sc[0] if name in Y_DERIVED else raw[0, j]
        assert X[0, j] == pytest.approx(expected, rel=1e-5, nan_ok=True), name


@pytest.mark.parametrize("values", [np.zeros(12), np.full(12, 7.0)], ids=["all-zero", "constant"])
def test_zero_and_constant_series_have_finite_features(values: np.ndarray) -> None:
    panel = Panel.from_history(_history({"a": values}))
    t = np.arange(12)
    X, scale = build_features(panel, np.zeros(12, int), t, np.ones(12, int), SPEC)
    assert np.all(scale > 0)
    cols = [SPEC.names.index(c) for c in ("y_last", "mean_3", "std_12", "diff_1", "log_scale")]
    assert np.isfinite(X[:, cols]).all()
    assert X[:, SPEC.names.index("std_12")].max() == 0.0


def test_series_do_not_bleed_into_each_other() -> None:
    panel = Panel.from_history(_history({"a": np.full(10, 50.0), "b": np.arange(10.0) + 1}))
    f = _feats(panel, 1, 1, 1)  # series b at its second value
    assert f["mean_12"] == pytest.approx(1.5)  # (1 + 2) / 2, nothing from series a
    assert f["y_last"] == 2.0
    assert np.isnan(f["origin_lag_day"]) and np.isnan(f["lag_week"])
    assert f["diff_1"] == 1.0


def test_tail_keeps_the_last_rows_of_every_series() -> None:
    panel = Panel.from_history(_history({"a": np.arange(10.0), "b": np.arange(3.0) + 100}))
    tail = panel.tail(4)
    assert list(tail.lengths) == [4, 3]
    assert list(tail.y) == [6, 7, 8, 9, 100, 101, 102]
    assert list(tail.last_ns()) == list(panel.last_ns())


def test_events_active_at_target_with_scope_globs_and_exclusive_end() -> None:
    panel = Panel.from_history(_history({"web-1": np.ones(10), "db-1": np.ones(10)}))
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    events = pd.DataFrame({
        "name": ["promo", "xmas"], "kind": ["sale", "holiday"],
        "start": [t0 + pd.Timedelta(hours=5), t0 + pd.Timedelta(hours=7)],
        "end": [t0 + pd.Timedelta(hours=7), t0 + pd.Timedelta(hours=8)],
        "scope": ["web-*", None],
    })
    spec = FeatureSpec(4, 8, HOUR_NS, event_kinds=("holiday", "sale"))
    assert list(panel.ids) == ["db-1", "web-1"]  # the history's sorted order
    s = np.array([1, 1, 1, 0, 0])  # web-1 three times, then db-1 twice
    k = np.array([1, 3, 4, 3, 4])  # origin 3 -> targets 4, 6, 7, 6, 7
    X, _ = build_features(panel, s, np.full(5, 3), k, spec, events=events)
    sale = X[:, spec.names.index("event_sale")]
    hol = X[:, spec.names.index("event_holiday")]
    assert list(sale[:3]) == [0, 1, 0]  # hour 6 inside [5, 7), hour 7 is the exclusive end
    assert list(sale[3:]) == [0, 0]  # db-1 is out of the sale's scope
    assert list(hol) == [0, 0, 1, 0, 1]


def test_known_signals_at_target_observed_only_at_origin() -> None:
    panel = Panel.from_history(_history({"a": np.ones(10)}))
    ds = pd.date_range("2024-01-01", periods=20, freq="1h", tz="UTC")
    signals = pd.concat([
        pd.DataFrame({"ds": ds, "signal": "temp", "value": np.arange(20.0), "known_in_advance": True}),
        pd.DataFrame({"ds": ds, "signal": "mood", "value": 100 + np.arange(20.0), "known_in_advance": False}),
    ])
    spec = FeatureSpec(4, 8, HOUR_NS, known_signals=("temp",), observed_signals=("mood",))
    X, _ = build_features(panel, np.zeros(3, int), np.array([5, 5, 9]), np.array([1, 4, 3]), spec, signals=signals)
    assert list(X[:, spec.names.index("sig_temp")]) == [6, 9, 12]  # value at the target
    assert list(X[:, spec.names.index("obs_mood")]) == [105, 105, 109]  # value at the origin, never later


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 40),
    origin_frac=st.floats(0, 0.95),
    step=st.integers(1, 12),
    scaled=st.booleans(),
)
def test_no_leakage_perturbing_after_origin_changes_nothing(
    seed: int, n: int, origin_frac: float, step: int, scaled: bool
) -> None:
    rng = np.random.default_rng(seed)
    ya, yb = rng.gamma(2, 10, n), rng.gamma(2, 10, 15)
    origin = min(int(origin_frac * n), n - 1)
    ds = pd.date_range("2024-01-01", periods=n + 12, freq="1h", tz="UTC")
    signals = pd.DataFrame({"ds": ds, "signal": "obs", "value": rng.normal(size=n + 12),
                            "known_in_advance": False})
    spec = FeatureSpec(4, 8, HOUR_NS, observed_signals=("obs",))
    args = (np.array([0]), np.array([origin]), np.array([step]), spec)
    before, _ = build_features(Panel.from_history(_history({"a": ya, "b": yb})), *args, signals=signals,
                               scaled=scaled)
    ya2 = ya.copy()
    ya2[origin + 1:] = rng.gamma(2, 1000, n - origin - 1)  # rewrite the future of the series
    sig2 = signals.copy()
    sig2.loc[sig2["ds"] > ds[origin], "value"] = 1e6  # and of the observed-only signal
    after, _ = build_features(Panel.from_history(_history({"a": ya2, "b": yb})), *args, signals=sig2,
                              scaled=scaled)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-9, equal_nan=True)


def test_row_base_is_level_corrected_seasonal_naive() -> None:
    panel = Panel.from_history(_history({"a": np.array([1.0, 2, 3, 4, 2, 3])}))
    base = row_base(panel, np.array([0, 0, 0]), np.array([5, 5, 2]), np.array([1, 5, 1]), day=4)
    # t=5, k=1: y[2] + (y[5] - y[1]) = 3 + 1; k=5: y[5+5-8] + 1 = 3 + 1; t=2 < day: y[-1] missing -> y[2]
    assert list(base) == [4.0, 4.0, 3.0]


def test_relative_mode_measures_levels_from_the_base(panel20: Panel) -> None:
    X, scale = build_features(panel20, np.array([0]), np.array([10]), np.array([3]), SPEC, relative=True)
    raw, _ = build_features(panel20, np.array([0]), np.array([10]), np.array([3]), SPEC, scaled=False)
    names = SPEC.names
    base = Y20[9] + Y20[10] - Y20[6]
    assert X[0, names.index("y_last")] == pytest.approx((Y20[10] - base) / scale[0], rel=1e-5)
    assert X[0, names.index("lag_day")] == pytest.approx(raw[0, names.index("lag_day")] / scale[0], rel=1e-5)
    assert X[0, names.index("std_12")] == pytest.approx(raw[0, names.index("std_12")] / scale[0], rel=1e-5)
