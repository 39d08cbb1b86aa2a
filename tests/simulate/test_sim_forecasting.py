"""Rolling forecasts for replays (``forecaster.simulate.forecasting``): schedule checks, bucket aggregation,
issue times, and the guarantee that a forecast never saw data after its issue time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.simulate import FrameProvider, replay
from forecaster.simulate.forecasting import (
    ISSUED_AT,
    ForecastSchedule,
    aggregate_demand,
    forecast_errors,
    rolling_forecasts,
)

T0 = pd.Timestamp("2024-03-04T00:00Z")
FAST: dict[str, Any] = {"members": ("seasonal",), "n_windows": 2}


def minutes(days: float, seed: int = 0) -> pd.Series:
    """Per-minute demand with a daily cycle and noise."""
    n = int(days * 1440)
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 60 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 5, n)
    return pd.Series(np.clip(y, 0, None), index=pd.date_range(T0, periods=n, freq="1min"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"refresh_every": "7min"}, "refresh_every"),
        ({"refit_every": "7min"}, "refit_every"),
        ({"horizon": 0}, "horizon"),
        ({"history": "1D"}, "history"),
        ({"agg": "median"}, "agg"),
    ],
)
def test_schedule_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError, match=field):
        ForecastSchedule(**kwargs).check()


def test_aggregate_demand_max_mean_and_incomplete_buckets() -> None:
    s = pd.Series([1.0, 5.0, 2.0, 3.0, 4.0, 9.0, 9.0], index=pd.date_range(T0, periods=7, freq="1min"))
    mx = aggregate_demand(s, "5min", "max")
    mean = aggregate_demand(s, "5min", "mean")
    # the second bucket [00:05, 00:10) holds only 2 minutes: dropped (a partial max would understate it)
    assert mx["ds"].tolist() == [T0]
    assert mx["y"].tolist() == [5.0]
    assert mean["y"].tolist() == [3.0]


def test_forecasts_are_issued_on_schedule_and_look_ahead() -> None:
    demand = minutes(4)
    start = T0 + pd.Timedelta("3D")
    sch = ForecastSchedule(refresh_every="30min", refit_every="1D", horizon=4, history="3D", forecaster=FAST)
    out = rolling_forecasts(demand, start, start + pd.Timedelta("2h"), sch)
    issued = sorted(out[ISSUED_AT].unique())
    assert issued == list(pd.date_range(start, periods=4, freq="30min"))
    assert (out["ds"] >= out[ISSUED_AT]).all()
    assert (out.groupby(ISSUED_AT).size() == 4).all()
    cols = ["ensemble-lo-95", "ensemble-lo-80", "ensemble", "ensemble-hi-80", "ensemble-hi-95"]
    assert (np.diff(out[cols].to_numpy(float), axis=1) >= -1e-9).all()
    err = forecast_errors(out, demand, "5min", "max")
    assert len(err) == len(out) and (err["abs_error"] < 60).mean() > 0.8


def test_a_forecast_never_sees_data_after_its_issue_time() -> None:
    demand = minutes(4)
    start = T0 + pd.Timedelta("3D")
    sch = ForecastSchedule(refresh_every="30min", refit_every="1D", horizon=4, history="3D", forecaster=FAST)
    cut = start + pd.Timedelta("1h")
    changed = demand.copy()
    changed[changed.index >= cut] *= 10.0
    a = rolling_forecasts(demand, start, start + pd.Timedelta("2h"), sch)
    b = rolling_forecasts(changed, start, start + pd.Timedelta("2h"), sch)
    before = a[ISSUED_AT] <= cut
    pd.testing.assert_frame_equal(a[before].reset_index(drop=True), b[b[ISSUED_AT] <= cut].reset_index(drop=True))
    assert not np.allclose(a.loc[~before, "ensemble"], b.loc[b[ISSUED_AT] > cut, "ensemble"])


def test_a_failed_fit_leaves_no_forecast_and_is_retried_at_the_next_refresh() -> None:
    """As in the controller (the same provider): the first refresh has no history, so its fit fails and nothing is
    issued; the next refresh retries the fit; until then the replay has no forecast and falls back."""
    demand = minutes(1.5)
    start = T0  # nothing before the first issue: the fit fails (an empty history is refused)
    sch = ForecastSchedule(refresh_every="30min", refit_every="1D", horizon=4, history="2D", forecaster=FAST)
    out = rolling_forecasts(demand, start, start + pd.Timedelta("1h"), sch)
    assert ISSUED_AT in out.columns
    assert sorted(out[ISSUED_AT].unique()) == [start + pd.Timedelta("30min")]
    window = demand.loc[start : start + pd.Timedelta("1h")]
    res = replay(window, "predictive", capacity_per_pod=10.0, forecasts=FrameProvider(out))
    assert res.outcomes.minutes == len(window)
    assert all(d.fell_back and "stale" in d.rules for d in res.decisions[:30])


def test_an_issue_with_no_step_after_its_time_keeps_the_frame_typed() -> None:
    """After an outage longer than the horizon, the refreshes see history that ends before their issue time, so none
    of their steps lies ahead: they issue nothing, and the frame's ``ds`` stays a datetime column (an empty part
    once made it ``object`` and ``forecast_errors`` refused to join it with the demand)."""
    demand = minutes(4)
    start = T0 + pd.Timedelta("3D")
    demand = demand[(demand.index < start - pd.Timedelta("3h")) | (demand.index >= start + pd.Timedelta("1h"))]
    sch = ForecastSchedule(refresh_every="30min", refit_every="1D", horizon=4, history="3D", forecaster=FAST)
    out = rolling_forecasts(demand, start, start + pd.Timedelta("3h"), sch)
    issued = sorted(out[ISSUED_AT].unique())
    assert issued and issued[0] > start + pd.Timedelta("1h")  # the issues inside the outage issued nothing
    assert isinstance(out["ds"].dtype, pd.DatetimeTZDtype)
    err = forecast_errors(out, demand, "5min", "max")
    assert len(err) > 0
