"""The ``events`` member on synthetic 5-minute data with known event effects (worked numbers)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError, NotFittedError
from forecaster.contracts.frames import future_index, hi, lo
from forecaster.models.base import FitData, PredictData
from forecaster.models.events import EventsMember, shrunk_uplift
from signals.errors import EventsError

T0 = pd.Timestamp("2024-03-04T00:00Z")  # a Monday
LEVELS = (80, 95)
DAYS = 21


def daily(ds: pd.DatetimeIndex) -> np.ndarray:
    """The no-event demand: 100 * (1 + 0.5 sin(2 pi time-of-day))."""
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440, dtype=float)
    return 100 * (1 + 0.5 * np.sin(2 * np.pi * tod))


def sale(day: float, name: str = "sale", kind: str = "sale", **extra: object) -> dict[str, object]:
    """A 12-hour event from 10:00 to 22:00 on ``T0 + day``."""
    return {
        "name": f"{name}{day}",
        "kind": kind,
        "start": T0 + pd.Timedelta(days=day, hours=10),
        "end": T0 + pd.Timedelta(days=day, hours=22),
    } | extra


Effect = Callable[[np.ndarray, pd.Timestamp, pd.Timestamp], np.ndarray]


def flat(factor: float) -> Effect:
    """Multiply demand by ``factor`` during the event."""

    def apply(t: np.ndarray, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        return np.where((t >= start.value) & (t < end.value), factor, 1.0)

    return apply


def shaped(t: np.ndarray, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """+20 % in the 2 hours before, +50 % during, +30/+20/+10 % in the 3 hours after."""
    hour = pd.Timedelta("1h").value
    out = np.ones(len(t))
    out[(t >= start.value - 2 * hour) & (t < start.value)] = 1.2
    out[(t >= start.value) & (t < end.value)] = 1.5
    for k, f in enumerate((1.3, 1.2, 1.1)):
        out[(t >= end.value + k * hour) & (t < end.value + (k + 1) * hour)] = f
    return out


def history(
    events: list[dict[str, object]],
    effect: Effect | None = None,
    uids: tuple[str, ...] = ("a",),
    noise: float = 0.03,
    days: int = DAYS,
    in_scope: Callable[[str, dict[str, object]], bool] = lambda uid, e: True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History frame with the effect (default x1.5 flat) of each past event applied, and the seasonal fit."""
    effect = effect or flat(1.5)
    ds = pd.date_range(T0, periods=days * 288, freq="5min")
    t = ds.as_unit("ns").asi8
    rng = np.random.default_rng(7)
    hist, base = [], []
    for uid in uids:
        y = daily(ds) * (1 + noise * rng.standard_normal(len(ds)))
        for e in events:
            if in_scope(uid, e):
                y = y * effect(t, pd.Timestamp(e["start"]), pd.Timestamp(e["end"]))  # type: ignore[arg-type]
        hist.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y, "is_outage": False}))
        base.append(pd.DataFrame({"unique_id": uid, "ds": ds, "seasonal": daily(ds)}))
    return pd.concat(hist, ignore_index=True), pd.concat(base, ignore_index=True)


def seasonal_forecast(hist: pd.DataFrame, h: int = 288) -> pd.DataFrame:
    """The seasonal member's forecast: the true daily shape, bands at +/-10 % and +/-20 %."""
    out = future_index(hist, h, "5min")
    point = daily(pd.DatetimeIndex(out["ds"]))
    out["seasonal"] = point
    for level, width in ((80, 0.1), (95, 0.2)):
        out[lo("seasonal", level)] = point * (1 - width)
        out[hi("seasonal", level)] = point * (1 + width)
    return out


def fit(
    hist: pd.DataFrame, base: pd.DataFrame, events: list[dict[str, object]] | None, **kw: object
) -> EventsMember:
    ev = None if events is None else pd.DataFrame(events)
    return EventsMember(**kw).fit(FitData(hist, "5min", LEVELS, 288, events=ev, baseline=base))  # type: ignore[arg-type]


def ratio(out: pd.DataFrame, pb: pd.DataFrame) -> pd.Series:
    """Events forecast / baseline forecast, indexed by ds."""
    return pd.Series(out["events"].to_numpy() / pb["seasonal"].to_numpy(), index=pd.DatetimeIndex(out["ds"]))


def window(r: pd.Series, start: str, end: str) -> pd.Series:
    return r[(r.index >= pd.Timestamp(start)) & (r.index < pd.Timestamp(end))]


@pytest.mark.parametrize("kind", ["sale", "holiday"])
def test_learns_a_50_percent_uplift_and_applies_it_to_a_future_event(kind: str) -> None:
    past = [sale(4, kind=kind), sale(11, kind=kind)]
    hist, base = history(past)
    member = fit(hist, base, [*past, sale(21, kind=kind)])
    pb = seasonal_forecast(hist)
    r = ratio(member.predict(288, PredictData(baseline=pb)), pb)  # events remembered from fit
    during = window(r, "2024-03-25T10:00Z", "2024-03-25T22:00Z")
    assert len(during) == 144
    assert abs(during.mean() - 1.5) < 0.03
    assert (during.between(1.4, 1.6)).all()
    before = window(r, "2024-03-25T00:00Z", "2024-03-25T08:00Z")  # outside the 1-day lead-in's effect
    assert abs(before.mean() - 1.0) < 0.02
    ev = member.uplifts_[(member.uplifts_["kind"] == kind) & (member.uplifts_["phase"] == "event")]
    assert list(ev["hour"]) == [float(h) for h in range(12)]
    assert np.allclose(ev["uplift"], np.log(1.5), atol=0.04)
    assert (ev["n_events"] == 2).all() and (ev["n_obs"] == 24).all()
    assert member.fallbacks_ == {}


def test_lead_in_and_decay_bins_are_learned() -> None:
    past = [sale(4), sale(11)]
    hist, base = history(past, effect=shaped, noise=0.02)
    member = fit(hist, base, [*past, sale(21)])
    u = member.uplifts_.set_index(["phase", "hour"])["uplift"]
    assert u[("lead", -1.0)] == pytest.approx(np.log(1.2), abs=0.03)
    assert u[("lead", -2.0)] == pytest.approx(np.log(1.2), abs=0.03)
    assert abs(u[("lead", -6.0)]) < 0.02
    for hour, factor in ((0.0, 1.3), (1.0, 1.2), (2.0, 1.1)):
        assert u[("decay", hour)] == pytest.approx(np.log(factor), abs=0.03)
    assert abs(u[("decay", 6.0)]) < 0.02
    pb = seasonal_forecast(hist)
    r = ratio(member.predict(288, PredictData(baseline=pb)), pb)
    assert window(r, "2024-03-25T08:00Z", "2024-03-25T10:00Z").mean() == pytest.approx(1.2, abs=0.03)
    assert window(r, "2024-03-25T22:00Z", "2024-03-25T23:00Z").mean() == pytest.approx(1.3, abs=0.03)


@pytest.mark.parametrize(
    ("expected_uplift", "factor"), [(0.3, 1.3), (None, 1.0)], ids=["expected", "unknown"]
)
def test_unseen_kind_uses_expected_uplift_flat_over_the_event(
    expected_uplift: float | None, factor: float
) -> None:
    hist, base = history([])
    launch = sale(21, kind="launch", expected_uplift=expected_uplift)
    member = fit(hist, base, [])
    pb = seasonal_forecast(hist)
    events = pd.DataFrame([launch])
    r = ratio(member.predict(288, PredictData(events=events, baseline=pb)), pb)
    assert np.allclose(window(r, "2024-03-25T10:00Z", "2024-03-25T22:00Z"), factor)
    assert np.allclose(window(r, "2024-03-25T00:00Z", "2024-03-25T10:00Z"), 1.0)  # no lead-in for a guess
    assert np.allclose(window(r, "2024-03-25T22:00Z", "2024-03-26T00:00Z"), 1.0)


@pytest.mark.parametrize("events", [None, []], ids=["none", "empty"])
def test_no_events_returns_the_baseline_unchanged(events: list[dict[str, object]] | None) -> None:
    hist, base = history([])
    member = fit(hist, base, events)
    pb = seasonal_forecast(hist)
    out = member.predict(288, PredictData(baseline=pb))
    assert list(out.columns) == [
        "unique_id",
        "ds",
        "events",
        "events-lo-80",
        "events-hi-80",
        "events-lo-95",
        "events-hi-95",
    ]
    np.testing.assert_array_equal(out["events"], pb["seasonal"])
    np.testing.assert_array_equal(out["events-hi-95"], pb["seasonal-hi-95"])
    assert len(member.uplifts_) == 0


def test_scope_limits_learning_and_prediction_to_matching_series() -> None:
    past = [sale(4, scope="checkout-*"), sale(11, scope="checkout-*")]
    uids = ("checkout-eu", "checkout-us", "batch")
    hist, base = history(past, uids=uids, in_scope=lambda uid, e: uid.startswith("checkout-"))
    member = fit(hist, base, [*past, sale(21, scope="checkout-*")])
    ev = member.uplifts_[member.uplifts_["phase"] == "event"]
    assert (ev["n_events"] == 4).all()  # 2 events x 2 series in scope, pooled
    pb = seasonal_forecast(hist)
    out = member.predict(288, PredictData(baseline=pb))
    r = pd.Series(out["events"].to_numpy() / pb["seasonal"].to_numpy())
    in_sale = pd.DatetimeIndex(out["ds"]).hour.isin(range(10, 22))
    for uid, expected in (("checkout-eu", 1.5), ("checkout-us", 1.5), ("batch", 1.0)):
        sel = (out["unique_id"] == uid).to_numpy() & in_sale
        assert r[sel].mean() == pytest.approx(expected, abs=0.03), uid


def test_outage_rows_are_never_targets() -> None:
    past = [sale(4), sale(11)]
    hist, base = history(past)
    during = np.zeros(len(hist), dtype=bool)
    t = pd.DatetimeIndex(hist["ds"])
    for e in past:
        during |= (t >= pd.Timestamp(e["start"])) & (t < pd.Timestamp(e["end"]))  # type: ignore[arg-type]
    poisoned = hist.copy()
    poisoned.loc[during, "y"] *= 10  # absurd values, but marked as outage
    poisoned.loc[during, "is_outage"] = True
    member = fit(poisoned, base, [*past, sale(21)])
    assert (member.uplifts_["phase"] != "event").all()  # nothing learned inside the events
    pb = seasonal_forecast(hist)
    r = ratio(member.predict(288, PredictData(baseline=pb)), pb)
    assert window(r, "2024-03-25T10:00Z", "2024-03-25T22:00Z").mean() == pytest.approx(1.0, abs=0.03)


def test_bands_are_scaled_nested_ordered_without_nan_and_deterministic() -> None:
    past = [sale(4), sale(11)]
    hist, base = history(past)
    pb = seasonal_forecast(hist)
    outs = [fit(hist, base, [*past, sale(21)]).predict(288, PredictData(baseline=pb)) for _ in range(2)]
    pd.testing.assert_frame_equal(outs[0], outs[1])
    out = outs[0]
    assert not out.isna().any().any()
    cols = ["events-lo-95", "events-lo-80", "events", "events-hi-80", "events-hi-95"]
    assert (np.diff(out[cols].to_numpy(), axis=1) >= 0).all()
    np.testing.assert_allclose(out["events-hi-80"] / out["events"], 1.1)  # bands scaled by the same factor


def test_shrunk_uplift_worked_numbers() -> None:
    got = shrunk_uplift(np.array([0.405, 0.405, 0.0]), np.array([0.05**2, 0.4**2, 0.1]), np.array([24, 1, 5]))
    np.testing.assert_allclose(got, [0.40474, 0.20502, 0.0], atol=1e-4)


def test_update_moves_the_origin_without_refitting() -> None:
    past = [sale(4), sale(11)]
    hist, base = history(past, days=DAYS + 1)
    first = hist[hist["ds"] < T0 + pd.Timedelta(days=DAYS - 1)]
    member = fit(first, base, [*past, sale(21)])
    before = member.uplifts_.copy()
    member.update(FitData(hist, "5min", LEVELS, 288))
    pd.testing.assert_frame_equal(member.uplifts_, before)
    pb = seasonal_forecast(hist)
    out = member.predict(288, PredictData(baseline=pb))
    assert out["ds"].iloc[0] == T0 + pd.Timedelta(days=DAYS + 1)


def test_short_history_falls_back_without_nan() -> None:
    hist, _ = history([sale(0)], days=1)
    member = fit(hist, None, [sale(0), sale(1)])  # type: ignore[arg-type]
    assert "no usable no-event reference" in member.fallbacks_["a"]
    pb = seasonal_forecast(hist)
    out = member.predict(288, PredictData(baseline=pb))
    assert not out.isna().any().any()
    np.testing.assert_allclose(out["events"], pb["seasonal"])  # nothing learned, no expected_uplift


def test_errors() -> None:
    hist, base = history([])
    pb = seasonal_forecast(hist)
    with pytest.raises(NotFittedError):
        EventsMember().predict(12, PredictData(baseline=pb))
    with pytest.raises(NotFittedError):
        EventsMember().update(FitData(hist, "5min", LEVELS, 288))
    member = fit(hist, base, None)
    with pytest.raises(InputError, match=r"PredictData\.baseline .* is required"):
        member.predict(12, PredictData())
    with pytest.raises(InputError, match=r"lacks column\(s\) \['seasonal-hi-95'\]"):
        member.predict(12, PredictData(baseline=pb.drop(columns="seasonal-hi-95")))
    with pytest.raises(InputError, match="no value for unique_id='a', ds=2024-03-25 00:10:00"):
        member.predict(12, PredictData(baseline=pb.drop(index=2)))
    with pytest.raises(EventsError, match=r"FitData.events: event #1 \('sale21'\): field 'kind'"):
        fit(hist, base, [sale(21, kind="promo")])


def test_an_event_under_way_at_the_end_of_the_history_teaches_nothing_about_itself() -> None:
    """A sale that started this morning and runs past the end of the history: its morning's x1.5 must not be
    extended to the rest of it (no completed occurrence of its kind: no uplift), unlike a completed one."""
    last_day = DAYS - 1
    running = sale(last_day, kind="launch")  # 10:00 - 22:00 on the history's last day, which ends at 23:55
    running = {**running, "end": pd.Timestamp(running["end"]) + pd.Timedelta("1D")}  # still under way
    hist, base = history([running])
    member = fit(hist, base, [running])
    assert member.uplifts_.empty
    pb = seasonal_forecast(hist)
    r = ratio(member.predict(288, PredictData(baseline=pb)), pb)
    assert np.allclose(r.to_numpy(), 1.0)
    done = sale(last_day, kind="launch")  # the same sale, ended at 22:00 before the history's end: learned
    hist2, base2 = history([done])
    assert not fit(hist2, base2, [done]).uplifts_.empty


def test_custom_events_learn_per_name_not_from_other_custom_events() -> None:
    """A marathon (custom) lifts demand; a blizzard ban (also custom) must not borrow that lift, while the next
    marathon does."""
    past = [{**sale(4, kind="custom"), "name": "marathon"}]
    hist, base = history(past)
    blizzard = {**sale(21, kind="custom"), "name": "blizzard"}
    again = {**sale(21, kind="custom"), "name": "marathon"}
    pb = seasonal_forecast(hist)
    r_blizzard = ratio(fit(hist, base, [*past, blizzard]).predict(288, PredictData(baseline=pb)), pb)
    assert np.allclose(r_blizzard.to_numpy(), 1.0)
    member = fit(hist, base, [*past, again])
    r_again = ratio(member.predict(288, PredictData(baseline=pb)), pb)
    assert r_again.max() > 1.3
    assert set(member.uplifts_["kind"]) == {"custom:marathon"}
