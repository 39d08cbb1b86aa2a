"""The default ForecastProvider runs the real engine: a full fit on the history window, then cheap refreshes
(``Forecaster.update`` + ``predict``) of the fitted model until the refit interval, a refit when the settings change,
and a refit after a failed refresh. Small LightGBM settings keep it fast."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from ctrl_builders import QUERY, Clock, daily_series, make_rig, policy_object

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, band_columns
from forecaster.cycle.spec import ForecastSpec
from forecaster.runtime.controller import EngineForecastProvider, PolicySpec

START = pd.Timestamp("2024-03-04T00:00Z")
SPEC = ForecastSpec("5min", 300.0, 4 * 86400.0, 3600.0, (80, 95))


@pytest.fixture(scope="module")
def options(fast_lgbm: dict[str, Any]) -> dict[str, Any]:
    """Two members, small LightGBM, two calibration windows."""
    return {"members": ("seasonal", "lgbm"), "member_params": {"lgbm": fast_lgbm}, "n_windows": 2}


def history(end: pd.Timestamp, start: pd.Timestamp) -> pd.DataFrame:
    frame = daily_series(6, START, "shop/web")
    return frame[(frame[DS] >= start) & (frame[DS] <= end)].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(options: dict[str, Any]) -> tuple[EngineForecastProvider, pd.Timestamp, pd.DataFrame]:
    provider = EngineForecastProvider(refit_every=pd.Timedelta("1D"), options=options)
    now = START + pd.Timedelta("4D") + pd.Timedelta("2min")
    start, end = provider.history_window("shop/web", SPEC, now)
    frame = provider.forecast("shop/web", SPEC, history(end, start), now)
    return provider, now, frame


def test_the_first_cycle_fits_on_the_whole_history_window(
    fitted: tuple[EngineForecastProvider, pd.Timestamp, pd.DataFrame]
) -> None:
    provider, now, frame = fitted
    end = now.floor("5min")
    assert provider.keys() == ["shop/web"]
    assert len(frame) == 12 and frame[DS].min() == end + pd.Timedelta("5min")
    assert set(band_columns(ENSEMBLE, (80, 95))) <= set(frame.columns)
    assert (frame[f"{ENSEMBLE}-hi-80"] >= frame[ENSEMBLE]).all()
    assert frame[ENSEMBLE].between(20, 200).all()  # the synthetic daily pattern lies in 50..150


def test_later_cycles_refresh_the_fitted_model_with_new_buckets_only(
    fitted: tuple[EngineForecastProvider, pd.Timestamp, pd.DataFrame]
) -> None:
    provider, now, _ = fitted
    model = provider._models["shop/web"]
    later = now + pd.Timedelta("20min")
    start, end = provider.history_window("shop/web", SPEC, later)
    assert start == now.floor("5min") and end == later.floor("5min")  # from the model's last bucket on
    frame = provider.forecast("shop/web", SPEC, history(end, start), later)
    assert provider._models["shop/web"] is model  # refreshed, not refitted
    assert frame[DS].min() == end + pd.Timedelta("5min")


def test_refit_when_due_or_when_the_settings_change(
    fitted: tuple[EngineForecastProvider, pd.Timestamp, pd.DataFrame]
) -> None:
    provider, now, _ = fitted
    day_later = now + pd.Timedelta("1D")
    start, end = provider.history_window("shop/web", SPEC, day_later)
    assert end - start == pd.Timedelta("4D")
    other = ForecastSpec("5min", 300.0, 4 * 86400.0, 7200.0, (80, 95))
    start, end = provider.history_window("shop/web", other, now + pd.Timedelta("5min"))
    assert end - start == pd.Timedelta("4D")


def test_a_failed_refresh_drops_the_model_so_the_next_cycle_refits(options: dict[str, Any]) -> None:
    provider = EngineForecastProvider(options={**options, "members": ("seasonal",)})
    now = START + pd.Timedelta("3D")
    start, end = provider.history_window("k", SPEC, now)
    provider.forecast("k", SPEC, history(end, start).assign(**{ID: "k"}), now)
    later = now + pd.Timedelta("5min")
    provider.history_window("k", SPEC, later)
    with pytest.raises(InputError):
        provider.forecast("k", SPEC, pd.DataFrame({ID: ["other"], DS: [later.floor("5min")], Y: [1.0]}), later)
    assert provider.keys() == []
    start, end = provider.history_window("k", SPEC, later)
    assert end - start == pd.Timedelta("4D")


def test_a_cycle_on_the_real_engine_writes_the_floor_it_forecasts(options: dict[str, Any]) -> None:
    rig = make_rig()
    now = START + pd.Timedelta("4D") + pd.Timedelta("1min")
    rig.clock = Clock(now)
    rig.metrics.add(QUERY, daily_series(4, START))
    obj = policy_object(forecast={"frequency": "5m", "history": "4d", "horizon": "1h", "levels": [80, 95]})
    rig.cluster.add_policy(obj)
    provider = EngineForecastProvider(options=options)
    report = rig.controller(forecasts=provider).run_once(now)
    plan = report.policy("shop/web").plan
    assert plan is not None and not report.policy("shop/web").errors
    spec = PolicySpec.from_object(obj)
    # demand ~100 around midnight (the daily pattern's mean): hi-80 / (10 * 0.5) -> about 20 pods, capped at 20
    assert plan.decision.forecast_replicas is not None and plan.decision.forecast_replicas >= 15
    assert rig.hpa()["spec"]["minReplicas"] == min(plan.decision.forecast_replicas, 20)
    assert plan.decision.band_column == spec.to_settings(2, 20).column
