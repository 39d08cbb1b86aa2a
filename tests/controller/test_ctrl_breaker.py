"""The circuit breaker in the controller: the errors it reads (``accuracy``: the backtest MAE of the model, the recent
MAE of the forecasts issued), a demand shift that opens it and holds the floor, the return to normal that closes
it, and its state kept in the policy status across new Controller instances."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from ctrl_builders import NOW, QUERY, Rig, check_status, condition, constant, policy_object

from forecaster.contracts.frames import DS, ENSEMBLE, Y
from forecaster.cycle.accuracy import ForecastLog, backtest_mae, window_for
from forecaster.cycle.state import restore_policy
from forecaster.runtime.controller import Controller, PolicySpec

SHIFT = NOW + pd.Timedelta("30min")
BACK = NOW + pd.Timedelta("60min")
WINDOW = pd.Timedelta("1h")


# -- the two errors ----------------------------------------------------------------------------------------------
def test_backtest_mae_worked_example() -> None:
    cv = pd.DataFrame({Y: [10.0, 12.0, 14.0, np.nan], ENSEMBLE: [11.0, 12.0, 10.0, 5.0]})
    assert backtest_mae(cv) == pytest.approx(5 / 3)  # the row without y is left out
    assert backtest_mae(None) is None and backtest_mae(cv.iloc[:0]) is None
    assert backtest_mae(cv.iloc[3:]) is None


@pytest.mark.parametrize("frequency_s,points,expected", [(300, 6, "1h"), (900, 6, "90min"), (60, 6, "1h")],
                         ids=["5min", "15min", "1min"])
def test_the_recent_window_is_an_hour_and_at_least_min_points(frequency_s: float, points: int, expected: str) -> None:
    assert window_for(frequency_s, points) == pd.Timedelta(expected)


def _forecast(issued: pd.Timestamp, value: float, steps: int = 12) -> pd.DataFrame:
    ds = pd.date_range(issued.floor("5min") + pd.Timedelta("5min"), periods=steps, freq="5min")
    return pd.DataFrame({DS: ds, ENSEMBLE: np.full(steps, value)})


def _history(start: pd.Timestamp, end: pd.Timestamp, value: float) -> pd.DataFrame:
    ds = pd.date_range(start, end, freq="5min")
    return pd.DataFrame({DS: ds, Y: np.full(len(ds), value)})


def summary(log: ForecastLog, fp: tuple[str, ...]) -> tuple[Any, int]:
    return log.summary("k", fp)


def test_each_bucket_is_scored_against_the_forecast_that_provisioned_it() -> None:
    """Forecasts every 5 min, each with its own constant value (the minute it was issued); lead time 10 min: bucket
    12:30 is scored against the forecast issued at 12:20, the newest one issued by ``ds - lead``."""
    log, fp = ForecastLog(), ("q", "settings")
    log.start("k", fp)
    for minute in range(0, 35, 5):
        log.add("k", fp, NOW + pd.Timedelta(minutes=minute), _forecast(NOW + pd.Timedelta(minutes=minute), minute))
    log.score("k", fp, _history(NOW + pd.Timedelta("30min"), NOW + pd.Timedelta("30min"), 100.0), 600, WINDOW)
    assert summary(log, fp) == (pytest.approx(100 - 20), 1)
    # 12:05 and 12:10: no forecast issued 10 minutes before; the oldest one issued before them provisioned them
    log.score("k", fp, _history(NOW + pd.Timedelta("5min"), NOW + pd.Timedelta("10min"), 100.0), 600, WINDOW)
    assert summary(log, fp) == (pytest.approx((80 + 100 + 100) / 3), 3)



def test_only_the_window_counts_and_a_re_fetched_bucket_replaces_its_error() -> None:
    log, fp = ForecastLog(), ("q",)
    log.start("k", fp)
    log.add("k", fp, NOW - pd.Timedelta("3h"), _forecast(NOW - pd.Timedelta("3h"), 10.0, steps=60))
    log.score("k", fp, _history(NOW - pd.Timedelta("2h"), NOW - pd.Timedelta("1h"), 40.0), 600, WINDOW)
    assert summary(log, fp) == (pytest.approx(30.0), 12)  # 13 buckets, the oldest is one window back
    log.score("k", fp, _history(NOW - pd.Timedelta("1h"), NOW - pd.Timedelta("1h"), 10.0), 600, WINDOW)
    assert summary(log, fp) == (pytest.approx(30.0 * 11 / 12), 12)
    log.score("k", fp, _history(NOW - pd.Timedelta("55min"), NOW - pd.Timedelta("10min"), 10.0), 600, WINDOW)
    assert summary(log, fp) == (pytest.approx(30.0 / 12), 12)  # the window slid: (1h10, 10 min] ago
    assert log.summary("k", ("other",)) == (None, 0)  # other settings: nothing known
    log.start("k", ("other",))
    assert log.summary("k", fp) == (None, 0)  # changed settings empty the log


def test_restore_policy_reads_the_breaker_state() -> None:
    settings = PolicySpec.from_object(policy_object()).to_settings(2, 20)
    assert restore_policy(settings, {"breakerOpen": True}, 5, "shop/web").breaker.is_open
    assert not restore_policy(settings, {}, 5, "shop/web").breaker.is_open


# -- in the controller -------------------------------------------------------------------------------------------
def shifted_demand(rig: Rig, shifted: float = 80.0) -> None:
    """Actual demand 20 until SHIFT, ``shifted`` (x4) until BACK, 20 again after."""
    ds = pd.date_range(NOW - pd.Timedelta("1D"), NOW + pd.Timedelta("5h"), freq="5min")
    y = np.where((ds >= SHIFT) & (ds < BACK), shifted, 20.0)
    rig.metrics.add(QUERY, pd.DataFrame({DS: ds, "y": y}))


def cycle(rig: Rig, minutes: float, ctl: Controller) -> dict[str, Any]:
    """One cycle of ``ctl`` ``minutes`` after NOW; the policy status after it."""
    now = NOW + pd.Timedelta(minutes=minutes)
    rig.clock.now = now
    ctl.run_once(now)
    return rig.status()


def test_a_demand_shift_opens_the_breaker_holds_the_floor_and_normal_demand_closes_it(rig: Rig) -> None:
    """Forecast 20 (hi-80 24 -> 5 pods at 10/pod x 0.5) and a backtest MAE of 4; at SHIFT demand quadruples, the
    reactive HPA wants 16, the model keeps forecasting 20: the recent error soon exceeds 3 x 4 = 12."""
    shifted_demand(rig)
    rig.forecasts.backtest = 4.0
    ctl = rig.controller()
    for minutes in range(0, 30, 5):
        status = cycle(rig, minutes, ctl=ctl)
        assert status["breakerOpen"] is False and rig.hpa()["spec"]["minReplicas"] == 5
    assert status["backtestError"] == 4.0 and status["recentError"] == 0.0
    assert condition(status, "ForecastAccurate")["reason"] == "BreakerClosed"

    rig.cluster.set_hpa_status("shop", "web", desiredReplicas=16, currentReplicas=16)  # the HPA sees the load
    opened_at = None
    for minutes in range(30, 60, 5):
        if minutes == 40:
            rig.forecasts.demand = constant(200.0)  # a wrong forecast: 48 pods, capped at 20
        status = cycle(rig, minutes, ctl=ctl)
        if status["breakerOpen"] and opened_at is None:
            opened_at = minutes
        assert status["recommendedFloor"] >= status["reactiveFloor"]
    assert opened_at is not None and opened_at <= 40, "opens within a few cycles of the shift"
    assert rig.hpa()["spec"]["minReplicas"] == 16  # held since it opened: not raised to 20 by the wrong forecast
    assert status["reason"] == "BreakerOpen" and "breaker open" in status["lastDecision"]
    assert status["recentError"] > 3 * status["backtestError"]
    accurate = condition(status, "ForecastAccurate")
    assert (accurate["status"], accurate["reason"]) == ("False", "BreakerOpen")
    assert "reactive HPA is in charge" in accurate["message"]
    open_cycles = (55 - opened_at) / 5 + 1
    assert rig.metric("forecaster_fallbacks_total", workload="shop/web", reason="breaker_open") == open_cycles
    assert condition(status, "Ready")["status"] == "True"  # an open breaker is a fallback, not a failure
    check_status(status)  # breakerOpen, recentError, backtestError and the condition fit the CRD

    # demand back to 20; the model first over-forecasts a little (28: recent error 8 = 2x the backtest error, between
    # the close ratio 1.5 and the open ratio 3: the breaker stays open), then forecasts 20 again and it closes
    rig.cluster.set_hpa_status("shop", "web", desiredReplicas=3, currentReplicas=3)
    rig.forecasts.demand = constant(28.0)
    for minutes in range(60, 150, 5):
        status = cycle(rig, minutes, ctl=ctl)
        assert status["breakerOpen"] is True
        assert status["recommendedFloor"] >= status["reactiveFloor"]  # a release steps down to it, never below
    assert status["recentError"] == pytest.approx(8.0)  # hysteresis: 2x is not enough to close
    rig.forecasts.demand = constant(20.0)
    closed_at = None
    for minutes in range(150, 240, 5):
        status = cycle(rig, minutes, ctl=ctl)
        if not status["breakerOpen"]:
            closed_at = minutes
            break
    assert closed_at is not None, "back to normal, the recent error falls and the breaker closes"
    assert status["recentError"] <= 1.5 * status["backtestError"]
    assert status["reason"] != "BreakerOpen" and condition(status, "ForecastAccurate")["status"] == "True"
    assert rig.hpa()["spec"]["minReplicas"] == 5  # the forecast (hi-80 24 -> 5 pods) sets the floor again


def drive_shift(rig: Rig, end: int, later_demand: float | None = None) -> dict[str, Any]:
    """The demand shift against a model with backtest error 4: cycles every 5 minutes up to ``end``, the HPA
    reaching 16 pods at minute 30 and, if given, the model forecasting ``later_demand`` from minute 40."""
    shifted_demand(rig)
    rig.forecasts.backtest = 4.0
    ctl = rig.controller()
    status: dict[str, Any] = {}
    for minutes in range(0, end, 5):
        if minutes == 30:
            rig.cluster.set_hpa_status("shop", "web", desiredReplicas=16, currentReplicas=16)
        if minutes == 40 and later_demand is not None:
            rig.forecasts.demand = constant(later_demand)
        status = cycle(rig, minutes, ctl=ctl)
    return status


def run_until_open(rig: Rig) -> None:
    assert drive_shift(rig, 45)["breakerOpen"] is True


@pytest.mark.parametrize("with_store", [False, True], ids=["status-only", "with-store"])
def test_the_open_breaker_survives_a_new_controller_instance(rig: Rig, with_store: bool) -> None:
    """The model catches up at 12:45 (it forecasts the shifted demand): no reason to close yet (hysteresis). Without
    a store the new instance has no recent errors yet and keeps the state the status records; with one it reads the
    forecasts issued before the restart back and continues the same recent error."""
    run_until_open(rig)
    before = rig.status()["recentError"]
    rig.forecasts.demand = constant(80.0)
    fresh = rig.controller(store=rig.store if with_store else None)
    status = cycle(rig, 45, ctl=fresh)
    assert status["breakerOpen"] is True and status["reason"] == "BreakerOpen"
    assert rig.hpa()["spec"]["minReplicas"] == 16
    message = condition(status, "ForecastAccurate")["message"]
    if with_store:
        assert status["recentError"] >= before and "recent points" in message and "needed" not in message
    else:
        assert "recentError" not in status and "no recent error scored yet" in message


def test_accurate_forecasts_never_open_it(rig: Rig) -> None:
    shifted_demand(rig, shifted=20.0)
    rig.forecasts.backtest = 0.5
    ctl = rig.controller()
    for minutes in range(0, 45, 5):
        status = cycle(rig, minutes, ctl=ctl)
    assert status["breakerOpen"] is False and status["recentError"] == 0.0
    assert "0.0x the backtest error 0.5" in condition(status, "ForecastAccurate")["message"]
    assert rig.metric("forecaster_fallbacks_total", workload="shop/web", reason="breaker_open") is None


def test_switching_off_forgets_the_breaker(rig: Rig) -> None:
    run_until_open(rig)
    rig.cluster.add_policy(policy_object(mode="Off"))
    status = cycle(rig, 50, ctl=rig.controller())
    assert {"breakerOpen", "recentError", "backtestError"}.isdisjoint(status)
    check_status(status)


def test_the_open_ratio_is_set_per_policy(rig: Rig) -> None:
    """The demand shift of the test above opens the default breaker (3x); ``spec.breaker.openRatio: 100`` keeps it
    closed through the same cycles, and the recent window follows ``minPoints``."""
    rig.cluster.add_policy(policy_object(breaker={"openRatio": 100, "closeRatio": 50, "minPoints": 3}))
    status = drive_shift(rig, 60, later_demand=200.0)
    assert status["breakerOpen"] is False
    assert status["recentError"] > 3 * status["backtestError"]  # the default ratio would have opened it
    assert status["reason"] != "BreakerOpen"
