"""``forecaster.Forecaster``: the Forecast contract, weights, calibration, backtest without leakage,
explain, update, holidays, outages and input errors."""

from __future__ import annotations

import itertools
import pickle
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster import Forecaster
from forecaster.contracts.errors import DefaultWeightsWarning, FrequencyError, InputError, NotFittedError, SeriesError
from forecaster.contracts.frames import MEMBERS, band_columns, forecast_columns, hi, lo

FREQ, H, LEVELS = "5min", 12, (80, 95)
STEP = pd.Timedelta(FREQ)
T0 = pd.Timestamp("2024-03-04T00:00Z")


def make(fast_lgbm: dict[str, Any], **kw: Any) -> Forecaster:
    opts: dict[str, Any] = {"horizon": H, "n_windows": 3, "min_windows": 2, "member_params": {"lgbm": fast_lgbm}}
    return Forecaster(FREQ, LEVELS, **(opts | kw))


@pytest.fixture(scope="module")
def fitted(multi_frame: pd.DataFrame, fast_lgbm: dict[str, Any]) -> Forecaster:
    """4 days: of 3 daily calibration windows the oldest leaves under 2 days of training, so 2 remain."""
    return make(fast_lgbm).fit(multi_frame)


@pytest.fixture
def fresh_copy(fitted: Forecaster) -> Forecaster:
    """A private copy for tests that change the forecaster's state."""
    copy: Forecaster = pickle.loads(pickle.dumps(fitted))
    return copy


def last_ds(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["ds"], utc=True).groupby(frame["unique_id"]).max()


# --- the Forecast contract ----------------------------------------------------------------------------------
def test_predict_columns_rows_and_grid(fitted: Forecaster, multi_frame: pd.DataFrame) -> None:
    out = fitted.predict()
    assert list(out.columns) == ["unique_id", "ds", *forecast_columns(LEVELS)]
    assert out.groupby("unique_id").size().to_dict() == {"a": H, "b": H}
    last = last_ds(multi_frame)
    for uid, g in out.groupby("unique_id"):
        assert g["ds"].tolist() == [last[uid] + k * STEP for k in range(1, H + 1)]
    assert not out.isna().any().any()
    chain = [lo("ensemble", 95), lo("ensemble", 80), "ensemble", hi("ensemble", 80), hi("ensemble", 95)]
    for inner, outer in itertools.pairwise(chain):
        assert (out[inner] <= out[outer] + 1e-9).all(), (inner, outer)
    assert (out[lo("ensemble", 95)] >= 0).all()  # non-negative history: bands clipped at 0


def test_member_bands_on_request(fitted: Forecaster) -> None:
    out = fitted.predict(4, member_bands=True)
    assert list(out.columns) == ["unique_id", "ds", *band_columns("ensemble", LEVELS)] + [
        c for m in MEMBERS for c in band_columns(m, LEVELS)
    ]
    plain = fitted.predict(4)
    pd.testing.assert_frame_equal(out[list(plain.columns)], plain)


@pytest.mark.parametrize("h", [0, H + 1, -3], ids=["zero", "past-horizon", "negative"])
def test_h_outside_the_horizon_is_an_input_error(fitted: Forecaster, h: int) -> None:
    with pytest.raises(InputError, match=f"h={h}"):
        fitted.predict(h)


@pytest.mark.parametrize(
    "call",
    [
        lambda f: f.predict(),
        lambda f: f.weights_,
        lambda f: f.explain("a"),
        lambda f: f.update(pd.DataFrame()),
        lambda f: f.save("never.zip"),
    ],
    ids=["predict", "weights", "explain", "update", "save"],
)
def test_use_before_fit_is_not_fitted_error(call: Any) -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        call(Forecaster())


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"levels": (80, 100)}, ValueError, "100"),
        ({"horizon": 0}, InputError, "horizon"),
        ({"freq": "MS"}, FrequencyError, "freq"),
    ],
    ids=["level-100", "horizon-0", "monthly"],
)
def test_constructor_validation(kw: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Forecaster(**kw)


def test_default_horizon_is_one_day() -> None:
    assert Forecaster().horizon == 288 and Forecaster(freq="1h").horizon == 24


# --- weights and calibration --------------------------------------------------------------------------------
def test_weights_learned_per_series_sum_to_one(fitted: Forecaster) -> None:
    w = fitted.weights_
    assert list(w.columns) == ["unique_id", *MEMBERS, "source", "method", "lead_to", "dropped", "event_adjust"]
    assert set(w["method"]) <= {"combination", "best-member"}
    assert w["unique_id"].tolist() == ["a", "b"]
    np.testing.assert_allclose(w[list(MEMBERS)].sum(axis=1), 1.0)
    assert (w[list(MEMBERS)] >= 0).all().all()
    assert (w["source"] == "learned").all()


def test_ensemble_point_is_the_weighted_members(fitted: Forecaster) -> None:
    out = fitted.predict().merge(fitted.weights_, on="unique_id", suffixes=("", "_w"))
    combined = sum(out[m] * out[f"{m}_w"] for m in MEMBERS)
    np.testing.assert_allclose(out["ensemble"], np.clip(combined, 0, None), rtol=1e-9)


def test_calibration_factors(fitted: Forecaster) -> None:
    cal = fitted.calibration_
    assert cal.levels == LEVELS and cal.factors.shape == (H, 2)
    assert np.isfinite(cal.factors).all() and (cal.factors > 0).all()
    assert cal.n_obs == 2 * 2 * H  # 2 windows x 2 series x h rows (refresh origins are off by default)


def test_refresh_origins_add_refreshed_forecasts_to_the_calibration(
    multi_frame: pd.DataFrame, fast_lgbm: dict[str, Any]
) -> None:
    fc = make(fast_lgbm, refresh_every="3h").fit(multi_frame)
    cv = fc.calibration_cv_
    assert cv is not None
    fresh = cv[cv["cutoff"] == cv["refit_at"]]
    assert len(fresh) == 2 * 2 * H and fc.calibration_.n_obs == len(cv) > len(fresh)
    # the members' points and the ensemble with its raw bands, not the members' bands (gigabytes at fleet scale)
    assert {*fc.members, "y", "ensemble", "ensemble-lo-80", "ensemble-hi-95"} <= set(cv.columns)
    assert not [c for c in cv.columns if any(c.startswith(f"{m}-") for m in fc.members)]


def test_no_calibration_window_gives_the_default_weights(make_series: Any, fast_lgbm: dict[str, Any]) -> None:
    """2 days: no window leaves 2 days of training before it (a short history, naive fallbacks too)."""
    with pytest.warns(DefaultWeightsWarning, match="default weights"):
        fc = make(fast_lgbm).fit(make_series(2))
    w = fc.weights_
    # no backtest at all, so nothing says which members are duplicates: the seed's 0.4 / 0.3 / 0.2 / 0.1
    np.testing.assert_allclose(w[list(MEMBERS)].to_numpy()[0], [0.4, 0.3, 0.2, 0.1])
    assert w["source"].tolist() == ["default"]
    assert not fc.predict().isna().any().any()


@pytest.mark.parametrize(
    ("days", "kw"),
    [(2.5, {}), (4, {"min_windows": 3})],
    ids=["one-window", "fewer-windows-than-min"],
)
def test_fewer_windows_than_min_weigh_members_by_inverse_mae(
    days: float, kw: dict[str, Any], make_series: Any, fast_lgbm: dict[str, Any]
) -> None:
    """One or two calibration windows (< min_windows): too few to choose a combination, enough to weigh the
    members by 1 / MAE (``forecaster.ensemble.weights``, "Few windows"); no default-weights warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DefaultWeightsWarning)
        fc = make(fast_lgbm, **kw).fit(make_series(days))
    w = fc.weights_
    assert w["source"].tolist() == ["learned"] and w["method"].tolist() == ["inverse-mae"]
    assert w["dropped"].iloc[0] == "seasonal=events; signals=events"
    row = w[list(MEMBERS)].to_numpy()[0]
    assert row[0] == row[2] == 0.0 and row[1] > 0 and row[3] > 0
    np.testing.assert_allclose(row.sum(), 1.0)
    assert not fc.predict().isna().any().any()


def test_fit_reports_progress(make_series: Any, fast_lgbm: dict[str, Any]) -> None:
    seen: list[tuple[int, int]] = []
    make(fast_lgbm, members=("seasonal",)).fit(make_series(3.5), progress=lambda i, n: seen.append((i, n)))
    assert seen[-1] == (seen[-1][1], seen[-1][1]) and seen[-1][1] == len(seen)


# --- backtest ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backtests(multi_frame: pd.DataFrame, fast_lgbm: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, Forecaster]:
    """Backtest on the data and on the data with everything after the first cutoff perturbed."""
    fc = make(fast_lgbm, n_windows=2)
    plain = fc.backtest(multi_frame, h=H, n_windows=2)
    first = plain["cutoff"].min()
    ds = pd.to_datetime(multi_frame["ds"], utc=True)
    perturbed = multi_frame.assign(y=np.where(ds > first, multi_frame["y"] * 1.6 + 3.0, multi_frame["y"]))
    other = make(fast_lgbm, n_windows=2)
    return plain, other.backtest(perturbed, h=H, n_windows=2), fc


def test_backtest_frame(backtests: tuple[pd.DataFrame, pd.DataFrame, Forecaster], multi_frame: pd.DataFrame) -> None:
    plain, _, fc = backtests
    members = [c for m in MEMBERS for c in band_columns(m, LEVELS)]
    assert list(plain.columns) == [
        "unique_id",
        "ds",
        "cutoff",
        "y",
        "is_outage",
        *band_columns("ensemble", LEVELS),
        *members,
    ]
    cutoffs = sorted(plain["cutoff"].unique())
    end = last_ds(multi_frame).max()
    assert cutoffs == [end - H * STEP - pd.Timedelta("1D"), end - H * STEP]  # the last window ends at the end
    assert plain.groupby(["cutoff", "unique_id"]).size().tolist() == [H] * 4
    assert not plain.isna().any().any()
    np.testing.assert_allclose(
        plain["y"].to_numpy(),
        plain[["unique_id", "ds"]].merge(multi_frame.assign(ds=pd.to_datetime(multi_frame["ds"], utc=True)))["y"],
    )
    bw = fc.backtest_weights_
    assert bw is not None and sorted(bw["cutoff"].unique()) == cutoffs
    # the first cutoff has one calibration window (< min_windows 2): inverse-MAE; the second has two: chosen
    # by leave-one-window-out
    assert (bw["source"] == "learned").all()
    assert bw.groupby("cutoff")["method"].first().iloc[0] == "inverse-mae"
    assert bw.groupby("cutoff")["method"].first().iloc[1] in ("combination", "best-member")
    # the members' forecasts at every fitted cutoff (scored and calibration windows) stay for replays
    mcv = fc.backtest_member_cv_
    assert mcv is not None and set(cutoffs) <= set(mcv["cutoff"].unique())
    assert mcv["cutoff"].nunique() > len(cutoffs)  # calibration windows end before the scored ones
    scored = mcv[mcv["cutoff"].isin(cutoffs)].sort_values(["cutoff", "unique_id", "ds"]).reset_index(drop=True)
    ordered = plain.sort_values(["cutoff", "unique_id", "ds"]).reset_index(drop=True)
    np.testing.assert_allclose(scored[members[0]].to_numpy(), ordered[members[0]].to_numpy())


def test_backtest_uses_only_information_up_to_each_cutoff(
    backtests: tuple[pd.DataFrame, pd.DataFrame, Forecaster],
) -> None:
    plain, perturbed, _ = backtests
    first = plain["cutoff"].min()
    forecast_cols = [
        "unique_id",
        "ds",
        *band_columns("ensemble", LEVELS),
        *[c for m in MEMBERS for c in band_columns(m, LEVELS)],
    ]
    a = plain[plain.cutoff == first][forecast_cols].reset_index(drop=True)
    b = perturbed[perturbed.cutoff == first][forecast_cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    later_a, later_b = plain[plain.cutoff > first], perturbed[perturbed.cutoff > first]
    assert not np.allclose(later_a["ensemble"], later_b["ensemble"])  # the perturbation was visible later


def test_backtest_with_too_little_history_is_an_input_error(make_series: Any, fast_lgbm: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="backtest"):
        make(fast_lgbm, members=("seasonal",)).backtest(make_series(1), h=H, n_windows=30)


# --- explain ----------------------------------------------------------------------------------------------
def test_explain(fitted: Forecaster) -> None:
    ex = fitted.explain("b")
    row = fitted.weights_.set_index("unique_id").loc["b"]
    assert ex.unique_id == "b" and ex.weight_source == "learned"
    assert ex.weights == {m: pytest.approx(row[m]) for m in MEMBERS}
    c = ex.contributions
    assert list(c.columns) == ["ds", "ensemble", *MEMBERS] and len(c) == H
    pred = fitted.predict()
    pred = pred[pred.unique_id == "b"].reset_index(drop=True)
    expected = sum(ex.weights[m] * pred[m] for m in MEMBERS)
    np.testing.assert_allclose(c[list(MEMBERS)].sum(axis=1), expected, rtol=1e-12)
    np.testing.assert_allclose(c[list(MEMBERS)].sum(axis=1), c["ensemble"], rtol=1e-9)  # no clipping here
    assert ex.fallbacks == {} and ex.member_errors == {}
    assert ex.seasonal_periods == (288,)
    assert ex.calibration.shape == (H * 2, 3) and list(ex.calibration.columns) == ["step", "level", "factor"]
    assert ex.training_span == (T0, T0 + pd.Timedelta("4D") - STEP)
    assert "b: weights (learned)" in ex.summary()


def test_explain_unknown_series(fitted: Forecaster) -> None:
    with pytest.raises(InputError, match="unknown unique_id 'zz'"):
        fitted.explain("zz")


# --- update -----------------------------------------------------------------------------------------------
def continuation(make_series: Any, hours: float) -> pd.DataFrame:
    """The next ``hours`` of both series of ``multi_frame`` (same seeds, so a true continuation)."""
    days = 4 + hours / 24
    parts = [make_series(days, "a", seed=1), make_series(days, "b", seed=2, level=40.0)]
    return pd.concat([p[p["ds"] >= T0 + pd.Timedelta("4D")] for p in parts], ignore_index=True)


def test_update_moves_the_forecast_start(fresh_copy: Forecaster, make_series: Any) -> None:
    new = continuation(make_series, 1)
    before = fresh_copy.predict()
    fresh_copy.update(new)
    after = fresh_copy.predict()
    last = last_ds(new)
    for uid, g in after.groupby("unique_id"):
        assert g["ds"].iloc[0] == last[uid] + STEP and len(g) == H
    assert not after.isna().any().any()
    assert after["ds"].min() == before["ds"].min() + pd.Timedelta("1h")
    assert fresh_copy.explain("a").training_span == (T0, last["a"])
    pd.testing.assert_frame_equal(fresh_copy.weights_, pickle.loads(pickle.dumps(fresh_copy)).weights_)


def test_update_validates_new_rows(fresh_copy: Forecaster, make_series: Any) -> None:
    new = continuation(make_series, 1)
    new.loc[3, "y"] = np.nan
    with pytest.raises(SeriesError, match="NaN"):
        fresh_copy.update(new)


def test_update_across_a_gap_fills_it(fresh_copy: Forecaster, make_series: Any) -> None:
    new = continuation(make_series, 2)
    new = new[new["ds"] >= T0 + pd.Timedelta("4D1h")]  # the first hour after the fit is missing
    fresh_copy.update(new)
    out = fresh_copy.predict()
    assert out["ds"].min() == T0 + pd.Timedelta("4D2h")
    assert not out.isna().any().any()


# --- events -----------------------------------------------------------------------------------------------
def july(make_series: Any, holiday_factor: float) -> pd.DataFrame:
    """Mon 1 .. Sat 6 July 2024 at 5 minutes; demand on 4 July (UTC) times ``holiday_factor``."""
    df = make_series(5.5, start=pd.Timestamp("2024-07-01T00:00Z"))
    on_holiday = df["ds"].dt.strftime("%m-%d") == "07-04"
    return df.assign(y=np.where(on_holiday, df["y"] * holiday_factor, df["y"]))


def test_country_holidays_become_events_and_are_learned(make_series: Any) -> None:
    fc = Forecaster(FREQ, LEVELS, H, members=("seasonal", "events"), country="US", n_windows=0)
    fc.fit(july(make_series, 0.5))
    ev = fc.state.events
    assert ev is not None
    day = ev[ev["name"].str.contains("Independence Day")]
    assert day["kind"].tolist() == ["holiday"]
    assert day["start"].tolist() == [pd.Timestamp("2024-07-04T00:00Z")]
    uplifts = fc.explain("a").event_uplifts
    during = uplifts[(uplifts["kind"] == "holiday") & (uplifts["phase"] == "event")]
    assert len(during) == 24  # one-hour bins over the day
    assert during["factor"].median() == pytest.approx(0.5, abs=0.1)  # demand halved on the day


def launch_at(start: pd.Timestamp) -> pd.DataFrame:
    """A planned 30-minute launch from ``start`` with an expected uplift of +50 % (a kind never seen in history)."""
    return pd.DataFrame(
        {
            "name": ["v2"],
            "kind": ["launch"],
            "start": [start],
            "end": [start + pd.Timedelta("30min")],
            "expected_uplift": [0.5],
        }
    )


def test_events_at_predict_time_apply_their_expected_uplift(fresh_copy: Forecaster) -> None:
    start = T0 + pd.Timedelta("4D15min")  # steps 4 .. 9 of the forecast
    launch = launch_at(start)
    out = fresh_copy.predict(events=launch)
    inside = (out["ds"] >= start) & (out["ds"] < start + pd.Timedelta("30min"))
    assert inside.sum() == 2 * 6
    np.testing.assert_allclose(out.loc[inside, "events"], 1.5 * out.loc[inside, "seasonal"])  # unseen kind
    np.testing.assert_allclose(out.loc[~inside, "events"], out.loc[~inside, "seasonal"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "party"}, "field 'kind'"),
        ({"end": T0}, "field 'end'"),
        ({"start": pd.Timestamp("2024-03-05 10:00")}, "field 'start'"),
        ({"expected_upflit": 0.2}, "unknown column"),
    ],
    ids=["kind", "end-before-start", "naive-start", "typo-column"],
)
def test_bad_events_are_input_errors_naming_the_field(change: dict[str, Any], field: str, make_series: Any) -> None:
    event = {"name": "promo", "kind": "campaign", "start": T0 + pd.Timedelta("1D"), "end": T0 + pd.Timedelta("1D2h")}
    with pytest.raises(InputError, match=field):
        Forecaster(FREQ, LEVELS, H).fit(make_series(3), events=pd.DataFrame([event | change]))


def test_bad_signals_are_input_errors(make_series: Any) -> None:
    signals = pd.DataFrame({"ds": [T0], "signal": ["temp"], "value": [np.nan], "known_in_advance": [True]})
    with pytest.raises(InputError, match="field 'value'"):
        Forecaster(FREQ, LEVELS, H).fit(make_series(3), signals=signals)


def test_bad_history_is_a_series_error(make_series: Any) -> None:
    naive = make_series(3).assign(ds=lambda d: d["ds"].dt.tz_localize(None))
    with pytest.raises(SeriesError, match="tz_localize"):
        Forecaster(FREQ, LEVELS, H).fit(naive)


# --- outages ----------------------------------------------------------------------------------------------
def test_outage_window_is_excluded_from_training_and_scoring(
    make_series: Any, pattern: Any, fast_lgbm: dict[str, Any]
) -> None:
    """Zeros from day 3 00:00 to 02:00 (an outage, not demand) sit in the last daily cycle at the time of
    day the forecast covers (day 4 00:00-01:00). Marked, they are imputed from the day before and the
    forecast is right; unmarked, they drag it down."""
    df = make_series(4, noise=0.02)
    start, end = T0 + pd.Timedelta("3D"), T0 + pd.Timedelta("3D2h")
    window = (df["ds"] >= start) & (df["ds"] < end)
    df.loc[window, "y"] = 0.0
    outages = pd.DataFrame({"start": [start], "end": [end]})
    marked = make(fast_lgbm, n_windows=2).fit(df, outages=outages)
    unmarked = make(fast_lgbm, n_windows=2).fit(df)
    assert marked.report_.outage_rows == {"a": 24}
    tail = marked.state.history_tail
    inside = tail[(tail["ds"] >= start) & (tail["ds"] < end)]
    assert inside["is_outage"].all() and (inside["y"] > 40).all()  # imputed, not zeros
    truth = pattern(pd.DatetimeIndex(marked.predict()["ds"]))
    err_marked = np.abs(marked.predict()["ensemble"] - truth).mean()
    err_unmarked = np.abs(unmarked.predict()["ensemble"] - truth).mean()
    assert err_marked < 5.0 < err_unmarked  # 5 % of the level
    bt = make(fast_lgbm, n_windows=1, members=("seasonal",)).backtest(df, h=H, n_windows=2, step="23h", outages=outages)
    scored = bt[(bt["ds"] >= start) & (bt["ds"] < end)]
    assert len(scored) and scored["is_outage"].all()  # outage rows are flagged for scoring
    assert not bt.loc[~bt["ds"].between(start, end, inclusive="left"), "is_outage"].any()


# --- known bugs (strict xfail: they start passing when fixed) ------------------------------------------------
def test_a_series_too_short_for_calibration_gets_default_weights(make_series: Any, fast_lgbm: dict[str, Any]) -> None:
    late = make_series(1, "new", start=T0 + pd.Timedelta("3D"))  # onboarded a day ago
    fc = make(fast_lgbm).fit(pd.concat([make_series(4, "old"), late], ignore_index=True))
    w = fc.weights_.set_index("unique_id")
    assert w.loc["old", "source"] == "learned" and w.loc["new", "source"] == "default"
    assert fc.predict().groupby("unique_id").size().to_dict() == {"new": H, "old": H}


@pytest.fixture
def with_calendar(make_series: Any) -> tuple[Forecaster, pd.DataFrame]:
    calendar = pd.DataFrame(
        {
            "name": ["promo", "next promo"],
            "kind": ["campaign", "campaign"],
            "start": [T0 + pd.Timedelta("1D"), T0 + pd.Timedelta("3D30min")],
            "end": [T0 + pd.Timedelta("1D2h"), T0 + pd.Timedelta("3D1h")],
        }
    )
    fc = Forecaster(FREQ, LEVELS, H, members=("seasonal", "events"), n_windows=0)
    return fc.fit(make_series(3), events=calendar), calendar


def test_predict_accepts_the_calendar_it_was_fitted_with(with_calendar: tuple[Forecaster, pd.DataFrame]) -> None:
    fc, calendar = with_calendar
    pd.testing.assert_frame_equal(fc.predict(events=calendar), fc.predict())


def test_predict_time_events_with_country_holidays(make_series: Any) -> None:
    df = make_series(3, start=pd.Timestamp("2024-07-02T00:00Z"))  # ends 4 July 23:55 UTC
    fc = Forecaster(FREQ, LEVELS, H, members=("seasonal", "events"), n_windows=0, country="US").fit(df)
    start = pd.Timestamp("2024-07-05T00:15Z")
    launch = launch_at(start)
    out = fc.predict(events=launch)
    inside = (out["ds"] >= start) & (out["ds"] < start + pd.Timedelta("30min"))
    np.testing.assert_allclose(out.loc[inside, "events"], 1.5 * out.loc[inside, "seasonal"])


def test_update_with_an_unknown_series_keeps_the_forecaster_usable(make_series: Any) -> None:
    fc = Forecaster(FREQ, LEVELS, H, members=("seasonal", "events"), n_windows=0).fit(make_series(3))
    stranger = make_series(3, "zz").tail(12)
    try:
        fc.update(stranger)
    except InputError as exc:
        assert "zz" in str(exc)
    assert fc.predict()["unique_id"].unique().tolist() == ["a"]


def test_a_holiday_also_given_as_an_event_is_kept_once() -> None:
    from forecaster.datasets import nasa_events

    fc = Forecaster(freq="5min", country="US", holiday_tz="America/New_York")
    events = fc._events(nasa_events(), pd.Timestamp("1995-07-01T04:00Z"), pd.Timestamp("1995-07-22T04:00Z"))
    assert events is not None
    assert events["id"].is_unique
    assert (events["name"] == "Independence Day").sum() == 1
    assert "STS-70 launch" in set(events["name"])


def test_no_negative_forecast_or_band_for_a_non_negative_series(fast_lgbm: dict[str, Any]) -> None:
    """A demand series that sits at 0 half of every day: the members' own forecasts and bands dip below 0
    there, the forecaster's output (ensemble, bands, members and member bands) never does."""
    from forecaster.forecasting.members import predict_members

    ds = pd.date_range("2024-01-01", periods=6 * 288, freq="5min", tz="UTC")
    phase = 2 * np.pi * np.arange(len(ds)) / 288
    rng = np.random.default_rng(0)
    y = np.clip(100 * np.sin(phase) + rng.normal(0, 8, len(ds)), 0, None)
    fc = make(fast_lgbm, n_windows=3).fit(pd.DataFrame({"unique_id": "z", "ds": ds, "y": y}))
    raw = predict_members(fc.state.members, H)
    assert (raw.select_dtypes("number") < 0).any().any()  # the members alone do go negative
    pred = fc.predict(member_bands=True)
    assert (pred.select_dtypes("number") >= 0).all().all()


def test_a_future_event_lifts_every_member_not_only_the_events_member(
    make_series: Any, fast_lgbm: dict[str, Any]
) -> None:
    """A planned launch with an expected uplift of +50 %: with the events factor applied to every member, the
    ensemble on the launch rows is the weighted sum of the members times 1.5, not only the events member's share."""
    df = make_series(5)
    fc = make(fast_lgbm).fit(df)
    assert fc.weights_["event_adjust"].all()  # no event in the calibration windows: nothing vetoes the factor
    start = df["ds"].max() + pd.Timedelta("15min")
    launch = launch_at(start)
    out = fc.predict(events=launch)
    w = fc.weights_.iloc[0]
    inside = ((out["ds"] >= start) & (out["ds"] < start + pd.Timedelta("30min"))).to_numpy()
    np.testing.assert_allclose(out.loc[inside, "events"], 1.5 * out.loc[inside, "seasonal"])
    expected = (
        sum(w[m] * out.loc[inside, m] for m in MEMBERS if m != "events") * 1.5 + w["events"] * out.loc[inside, "events"]
    )
    np.testing.assert_allclose(out.loc[inside, "ensemble"], expected, rtol=1e-9)
    plain = sum(w[m] * out.loc[inside, m] for m in MEMBERS)
    assert (out.loc[inside, "ensemble"] > plain + 1e-6).all()  # more than the events member's share alone
