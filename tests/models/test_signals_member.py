"""The ``signals`` member on synthetic data: coefficient recovery, leakage guard, fallbacks, band contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError, NotFittedError
from forecaster.contracts.frames import future_index, hi, lo
from forecaster.models.base import FitData, PredictData
from forecaster.models.signals import SignalsMember, choose_penalty, ridge
from signals.errors import LeakageError
from signals.testing import synthetic_signal

T0 = pd.Timestamp("2024-03-04T00:00Z")
H = 288  # one day of 5-minute steps
LEVELS = (80, 95)
DAYS = 14
END = T0 + pd.Timedelta(days=DAYS)  # first forecast step


def daily(ds: pd.DatetimeIndex) -> np.ndarray:
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440, dtype=float)
    return 100 * (1 + 0.5 * np.sin(2 * np.pi * tod))


def temperature() -> pd.DataFrame:
    """Hourly, known in advance (a weather forecast), over history and the forecast day: a 3-day cycle."""
    return synthetic_signal(
        "temp", T0, END + pd.Timedelta("1D"), "1h", level=15, amplitude=8, period="3D", noise=1.0, seed=3
    )


def on_grid(signal: pd.DataFrame, ds: pd.DatetimeIndex) -> np.ndarray:
    """The hourly signal forward-filled onto 5-minute timestamps (what the member sees)."""
    return signal.set_index("ds")["value"].reindex(ds, method="ffill").to_numpy()


def make(
    signals: pd.DataFrame, y_of: dict[str, float], noise: float = 1.0, uids: tuple[str, ...] = ("a",)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History ``y = daily + sum(coef * (signal - 15))`` (+ noise) and the seasonal in-sample fit."""
    ds = pd.date_range(T0, END, freq="5min", inclusive="left")
    rng = np.random.default_rng(11)
    hist, base = [], []
    for uid in uids:
        y = daily(ds) + noise * rng.standard_normal(len(ds))
        for name, coef in y_of.items():
            y = y + coef * (on_grid(signals[signals["signal"] == name], ds) - 15)
        hist.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y, "is_outage": False}))
        base.append(pd.DataFrame({"unique_id": uid, "ds": ds, "seasonal": daily(ds)}))
    return pd.concat(hist, ignore_index=True), pd.concat(base, ignore_index=True)


def seasonal_forecast(hist: pd.DataFrame, h: int = H) -> pd.DataFrame:
    out = future_index(hist, h, "5min")
    point = daily(pd.DatetimeIndex(out["ds"]))
    out["seasonal"] = point
    for level, width in ((80, 5.0), (95, 10.0)):
        out[lo("seasonal", level)] = point - width
        out[hi("seasonal", level)] = point + width
    return out


def fit(
    hist: pd.DataFrame, base: pd.DataFrame | None, signals: pd.DataFrame | None, **kw: object
) -> SignalsMember:
    kw.setdefault("relative", False)  # the worked numbers below are the additive model's
    return SignalsMember(**kw).fit(FitData(hist, "5min", LEVELS, H, signals=signals, baseline=base))  # type: ignore[arg-type]


def past(signals: pd.DataFrame) -> pd.DataFrame:
    return signals[signals["ds"] < END]


def future(signals: pd.DataFrame) -> pd.DataFrame:
    return signals[signals["ds"] >= END]


def test_recovers_the_coefficient_of_a_known_signal_and_beats_the_baseline() -> None:
    temp = temperature()
    hist, base = make(temp, {"temp": 3.0})
    member = fit(hist, base, past(temp))
    coef = member.coef_.set_index("feature")
    assert coef.loc["temp", "coef"] == pytest.approx(3.0, abs=0.05)
    assert coef.loc["temp", "lag_steps"] == 0 and coef.loc["temp", "signal"] == "temp"
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(future_signals=future(temp), baseline=pb))
    ds = pd.DatetimeIndex(out["ds"])
    truth = daily(ds) + 3.0 * (on_grid(temp, ds) - 15)
    mae_member = np.abs(out["signals"] - truth).mean()
    mae_baseline = np.abs(pb["seasonal"] - truth).mean()
    assert mae_baseline > 5.0  # the signal matters
    assert mae_member < 0.1 * mae_baseline


def test_observed_only_signal_enters_lagged_by_the_horizon() -> None:
    # y depends on sentiment one day earlier: usable, and only through the lag
    sent = synthetic_signal(
        "sentiment", T0, END, "1h", known_in_advance=False, level=15, amplitude=4, period="2D"
    )
    sent["value"] += np.random.default_rng(5).normal(0, 2, len(sent))
    lagged = sent.assign(ds=sent["ds"] + pd.Timedelta("1D"))
    hist, base = make(pd.concat([lagged.assign(signal="lagged")]), {"lagged": 2.0})
    hist = hist[hist["ds"] >= T0 + pd.Timedelta("1D")].reset_index(drop=True)
    base = base[base["ds"] >= T0 + pd.Timedelta("1D")].reset_index(drop=True)
    member = fit(hist, base, sent)
    coef = member.coef_.set_index("feature")
    assert list(coef.index) == [f"sentiment_lag{H}"]
    assert coef.loc[f"sentiment_lag{H}", "lag_steps"] == H
    assert coef.loc[f"sentiment_lag{H}", "coef"] == pytest.approx(2.0, abs=0.05)
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(baseline=pb))  # no future values needed: the lag reaches back
    ds = pd.DatetimeIndex(out["ds"])
    truth = daily(ds) + 2.0 * (on_grid(sent, ds - pd.Timedelta("1D")) - 15)
    assert np.abs(out["signals"] - truth).mean() < 0.5


def test_a_leaking_signal_is_lagged_and_learns_nothing() -> None:
    # y depends on the *same-time* value of an observed-only white-noise signal: only a leak could use it
    leak = synthetic_signal(
        "leak", T0, END, "5min", known_in_advance=False, shape="noise", amplitude=5, seed=9
    )
    hist, base = make(leak.assign(value=leak["value"] + 15), {"leak": 1.0})
    member = fit(hist, base, leak.assign(value=leak["value"] + 15))
    assert list(member.coef_["feature"]) == [f"leak_lag{H}"]
    assert abs(member.coef_["coef"].iloc[0]) < 0.05
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(baseline=pb))
    assert np.abs(out["signals"] - pb["seasonal"]).max() < 1.0


def test_future_values_of_an_observed_signal_are_refused() -> None:
    sent = synthetic_signal("sentiment", T0, END + pd.Timedelta("1D"), "1h", known_in_advance=False)
    hist, base = make(sent, {})
    member = fit(hist, base, past(sent))
    pb = seasonal_forecast(hist)
    with pytest.raises(LeakageError, match="signal 'sentiment' is observed-only but has 24 value"):
        member.predict(H, PredictData(future_signals=future(sent), baseline=pb))


def test_horizon_longer_than_the_lag_is_refused() -> None:
    sent = synthetic_signal("sentiment", T0, END, "1h", known_in_advance=False)
    hist, base = make(sent, {})
    member = fit(hist, base, sent)
    with pytest.raises(LeakageError, match=f"h={H + 1} exceeds the fitted horizon {H}"):
        member.predict(H + 1, PredictData(baseline=seasonal_forecast(hist, H + 1)))


@pytest.mark.parametrize("signals", [None, "empty"], ids=["none", "empty"])
def test_no_signals_returns_the_baseline_unchanged(signals: str | None) -> None:
    hist, _ = make(temperature(), {})
    frame = None if signals is None else temperature().iloc[:0]
    member = fit(hist, None, frame)  # the in-sample baseline is not even needed
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(baseline=pb))
    np.testing.assert_array_equal(out["signals"], pb["seasonal"])
    np.testing.assert_array_equal(out["signals-lo-95"], pb["seasonal-lo-95"])
    assert len(member.coef_) == 0


def test_useless_signal_leaves_the_baseline_nearly_unchanged() -> None:
    noise = synthetic_signal("noise", T0, END + pd.Timedelta("1D"), "5min", shape="noise", seed=4)
    hist, base = make(noise, {}, noise=2.0)
    member = fit(hist, base, past(noise))
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(future_signals=future(noise), baseline=pb))
    assert np.abs(out["signals"] - pb["seasonal"]).mean() < 0.1


def test_outage_rows_are_never_targets() -> None:
    temp = temperature()
    hist, base = make(temp, {"temp": 3.0})
    hist.loc[hist.index[::7], "y"] = 1e6  # absurd values, marked as outages
    hist.loc[hist.index[::7], "is_outage"] = True
    member = fit(hist, base, past(temp))
    assert member.coef_["coef"].iloc[0] == pytest.approx(3.0, abs=0.05)


def test_too_few_rows_falls_back_to_the_baseline() -> None:
    temp = temperature()
    hist, base = make(temp, {"temp": 3.0})
    member = fit(hist, base, past(temp), min_rows=10_000)
    assert "usable rows (< min_rows=10000)" in member.fallbacks_["a"]
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(future_signals=future(temp), baseline=pb))
    np.testing.assert_array_equal(out["signals"], pb["seasonal"])


def test_bands_shift_with_the_point_nested_ordered_no_nan_deterministic() -> None:
    temp = temperature()
    hist, base = make(temp, {"temp": 3.0}, uids=("a", "b"))
    pb = seasonal_forecast(hist)
    outs = [
        fit(hist, base, past(temp)).predict(H, PredictData(future_signals=future(temp), baseline=pb))
        for _ in "xy"
    ]
    pd.testing.assert_frame_equal(outs[0], outs[1])
    out = outs[0]
    assert not out.isna().any().any()
    assert list(out["unique_id"].unique()) == ["a", "b"]
    cols = ["signals-lo-95", "signals-lo-80", "signals", "signals-hi-80", "signals-hi-95"]
    assert (np.diff(out[cols].to_numpy(), axis=1) >= 0).all()
    np.testing.assert_allclose(out["signals-hi-95"] - out["signals"], 10.0)
    np.testing.assert_allclose(out["signals"] - out["signals-lo-80"], 5.0)


def test_update_takes_new_observations_without_refitting() -> None:
    sent = synthetic_signal("sentiment", T0, END + pd.Timedelta("1D"), "1h", known_in_advance=False, seed=2)
    hist, base = make(sent, {}, noise=0.5)
    first_hist = hist[hist["ds"] < END - pd.Timedelta("1D")]
    member = fit(first_hist, base, sent[sent["ds"] < END - pd.Timedelta("1D")])
    coef = member.coef_.copy()
    member.update(FitData(hist, "5min", LEVELS, H, signals=past(sent)))
    pd.testing.assert_frame_equal(member.coef_, coef)
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(baseline=pb))
    assert out["ds"].iloc[0] == END
    with pytest.raises(LeakageError):  # the updated origin still refuses values after it
        member.predict(H, PredictData(future_signals=future(sent), baseline=pb))


def test_ridge_and_penalty_choice_worked_numbers() -> None:
    Z = np.array([[1.0], [-1.0]])
    r = np.array([2.0, -2.0])
    assert ridge(Z, r, 0.0)[0] == pytest.approx(2.0)  # (Z'Z/n)^-1 Z'r/n = 1^-1 * 2
    assert ridge(Z, r, 1.0)[0] == pytest.approx(1.0)  # (1 + 1)^-1 * 2
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 1))
    assert choose_penalty(X, 4 * X[:, 0] + 0.1 * rng.standard_normal(200), (0.0, 100.0), 0.2) == 0.0
    assert choose_penalty(X, rng.standard_normal(200), (0.0,), 0.2) == float("inf")  # noise never beats r = 0


def test_errors() -> None:
    temp = temperature()
    hist, base = make(temp, {})
    pb = seasonal_forecast(hist)
    with pytest.raises(NotFittedError):
        SignalsMember().predict(H, PredictData(baseline=pb))
    with pytest.raises(NotFittedError):
        SignalsMember().update(FitData(hist, "5min", LEVELS, H))
    with pytest.raises(InputError, match=r"FitData\.baseline .* is required"):
        fit(hist, None, past(temp))
    member = fit(hist, base, past(temp))
    with pytest.raises(InputError, match=r"PredictData\.baseline .* is required"):
        member.predict(H, PredictData())


def test_relative_model_recovers_a_multiplicative_effect_at_every_level_of_demand() -> None:
    """``y = daily * exp(-0.05 (temp - 15))``: an additive model cannot fit an effect proportional to the level,
    the relative one (the default) recovers the coefficient and the forecast within 2 %."""
    temp = temperature()
    ds = pd.date_range(T0, END, freq="5min", inclusive="left")
    y = daily(ds) * np.exp(-0.05 * (on_grid(temp, ds) - 15))
    hist = pd.DataFrame({"unique_id": "a", "ds": ds, "y": y, "is_outage": False})
    base = pd.DataFrame({"unique_id": "a", "ds": ds, "seasonal": daily(ds)})
    member = SignalsMember().fit(FitData(hist, "5min", LEVELS, H, signals=past(temp), baseline=base))
    assert member.coef_["coef"].iloc[0] == pytest.approx(-0.05, rel=0.05)
    pb = seasonal_forecast(hist)
    out = member.predict(H, PredictData(future_signals=future(temp), baseline=pb))
    fds = pd.DatetimeIndex(out["ds"])
    truth = daily(fds) * np.exp(-0.05 * (on_grid(temp, fds) - 15))
    np.testing.assert_allclose(out["signals"], truth, rtol=0.02)
    additive = fit(hist, base, past(temp)).predict(H, PredictData(future_signals=future(temp), baseline=pb))
    assert np.abs(out["signals"] - truth).mean() < 0.5 * np.abs(additive["signals"] - truth).mean()
