"""The joint policy's selection by replay (``forecaster.simulate.tune``): outcomes per day, the coverage check,
the choice at a moment from the days before it, and the whole ``select`` on a synthetic daily cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, hi, lo
from forecaster.scaling.joint import JointSetting, RiskBudget, TargetBounds
from forecaster.simulate import ISSUED_AT, FrameProvider, replay
from forecaster.simulate.policies import PredictivePolicy
from forecaster.simulate.tune import (
    OUTCOME_COLUMNS,
    SharedBandPolicy,
    SharedBands,
    bank_outcomes,
    choose_on,
    floor_policy,
    forecast_coverage,
    select,
)

T0 = pd.Timestamp("2024-03-04T00:00Z")
CAP = 50.0
BANK = (JointSetting("hi-80", 0.0, 0.9, "confident"), JointSetting("hi-80", 0.1, 0.8, "steady"),
        JointSetting("ensemble", 0.0, 0.9, "steady"))


def _demand(days: int = 3, seed: int = 1) -> pd.Series:
    n = days * 1440
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    d = 1000 + 600 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 60, n)
    return pd.Series(np.clip(d, 0, None), index=pd.date_range(T0, periods=n, freq="1min"))


def _forecasts(demand: pd.Series, until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Issued every 5 min: the true 5-minute peaks with +-7 % (80 %) and +-10 % (95 %) bands."""
    y5 = demand.resample("5min").max()
    parts = []
    for issued in pd.date_range(demand.index[0], until or demand.index[-1], freq="5min"):
        future = y5[y5.index >= issued].iloc[:6]
        v = future.to_numpy()
        parts.append(pd.DataFrame({ISSUED_AT: issued, DS: future.index, ENSEMBLE: v, lo(ENSEMBLE, 80): v * 0.93,
                                   hi(ENSEMBLE, 80): v * 1.07, lo(ENSEMBLE, 95): v * 0.9, hi(ENSEMBLE, 95): v * 1.1}))
    return pd.concat(parts, ignore_index=True)


def test_bank_outcomes_are_the_replays_per_day() -> None:
    demand = _demand(2)
    fc = _forecasts(demand)
    out = bank_outcomes(demand, fc, capacity_per_pod=CAP, bank=BANK[:1], startup_s=120)
    assert list(out.columns) == list(OUTCOME_COLUMNS)
    assert set(out["label"]) == {"reactive at 70%", BANK[0].label}
    assert out.groupby("label")["minutes"].sum().eq(2880).all()
    direct = replay(demand, "predictive", forecasts=fc, capacity_per_pod=CAP, startup_s=120, keep_decisions=False,
                    **{k: v for k, v in BANK[0].overrides().items() if k in ("quantile", "margin")},
                    target_utilisation=0.9, policy_settings=BANK[0].overrides())
    mine = out[out["label"] == BANK[0].label]
    assert mine["replica_minutes"].sum() == pytest.approx(direct.outcomes.replica_minutes)
    assert mine["under_minutes"].sum() == direct.outcomes.under_provisioned_minutes


def test_forecast_coverage_worked_example() -> None:
    """Issued every 5 min until noon, stale after 30 min: the day is covered up to 12:30 -> 750 / 1440."""
    fc = _forecasts(_demand(1), until=T0 + pd.Timedelta("12h"))
    cov = forecast_coverage(fc, T0, T0 + pd.Timedelta("1D"))
    assert cov.iloc[0] == pytest.approx(751 / 1440)  # 00:00 .. 12:30 inclusive: 751 minutes
    assert forecast_coverage(fc.iloc[:0], T0, T0 + pd.Timedelta("1D")).iloc[0] == 0.0


def _table(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"label": label, "kind": kind, "target_utilisation": 0.7, "day": pd.Timestamp(day, tz="UTC"),
                          "minutes": 1440, "replica_minutes": cost, "under_minutes": under}
                         for label, kind, day, cost, under in rows])


def test_choose_on_sums_the_days_before_the_moment() -> None:
    a, b = BANK[0], BANK[1]
    table = _table([
        ("reactive at 70%", "reactive", "2024-03-04", 1000, 10),
        ("reactive at 70%", "reactive", "2024-03-05", 1000, 10),
        (a.label, "joint", "2024-03-04", 800, 2), (a.label, "joint", "2024-03-05", 800, 20),
        (b.label, "joint", "2024-03-04", 900, 0), (b.label, "joint", "2024-03-05", 900, 4),
    ])
    one = choose_on(table, T0 + pd.Timedelta("1D"), days=1, bank=BANK)  # 4 March only: a within 5 allowed
    assert one.setting == a and one.allowed_under_minutes == 5
    two = choose_on(table, T0 + pd.Timedelta("2D"), days=2, bank=BANK)  # both days: a 22 > 10 allowed, b 4
    assert two.setting == b and "runner-up (over budget)" in two.reason
    early = choose_on(table, T0, days=3, bank=BANK, current=a)
    assert early.setting == a and not early.changed and early.stale
    cov = pd.Series([0.5, 0.5], index=pd.DatetimeIndex([T0, T0 + pd.Timedelta("1D")]))
    stale = choose_on(table, T0 + pd.Timedelta("2D"), days=2, bank=BANK, coverage=cov, current=a)
    assert stale.setting == a and "fresh for 50%" in stale.reason
    with pytest.raises(InputError, match="reactive at 60%"):
        choose_on(table, T0 + pd.Timedelta("2D"), days=2, bank=BANK, budget=RiskBudget(reference_target=0.6))


def test_select_chooses_a_hotter_target_behind_a_good_forecast() -> None:
    demand = _demand(3)
    choice = select(demand, _forecasts(demand), capacity_per_pod=CAP, now=T0 + pd.Timedelta("3D"), days=2,
                    bank=BANK, startup_s=120)
    assert not choice.stale and choice.within_budget and choice.days == 2
    assert choice.setting.target_utilisation >= 0.8
    assert choice.reference is not None and choice.chosen is not None
    assert choice.chosen.replica_minutes < choice.reference.replica_minutes
    assert choice.reason.startswith(f"chose {choice.setting.label}") and "reactive at 70%" in choice.reason


def test_select_keeps_the_setting_on_stale_forecasts() -> None:
    demand = _demand(3)
    current = JointSetting(target_utilisation=0.7)
    choice = select(demand, _forecasts(demand, until=T0 + pd.Timedelta("6h")), capacity_per_pod=CAP,
                    now=T0 + pd.Timedelta("3D"), days=2, bank=BANK, current=current, startup_s=120)
    assert choice.setting == current and not choice.changed and choice.stale
    assert "no change: forecasts were fresh for 0%" in choice.reason


def test_select_within_narrow_bounds_and_with_too_little_history() -> None:
    demand = _demand(3)
    fc = _forecasts(demand)
    narrow = select(demand, fc, capacity_per_pod=CAP, now=T0 + pd.Timedelta("3D"), days=1, bank=BANK,
                    bounds=TargetBounds(0.5, 0.8), startup_s=120)
    assert narrow.setting.target_utilisation <= 0.8
    short = select(demand.iloc[:600], fc, capacity_per_pod=CAP, bank=BANK, current=BANK[1], startup_s=120)
    assert short.setting == BANK[1] and short.stale


@pytest.mark.parametrize("scale_down", ["steady", "confident"])
def test_shared_band_policy_decides_as_the_predictive_policy(scale_down: str) -> None:
    """The bank's fast path: the same decisions, decision for decision, as ``PredictivePolicy`` (forecasts that stop
    at noon: the stale fallback included)."""
    demand = _demand(1)
    fc = _forecasts(demand, until=T0 + pd.Timedelta("12h"))
    bands = SharedBands(FrameProvider(fc))
    kw = {"capacity_per_pod": CAP, "startup_s": 120, "target_utilisation": 0.9, "quantile": "hi-80",
          "policy_settings": {"confident_scale_down": scale_down == "confident", "stale_after_s": 1800.0}}
    fast = replay(demand, SharedBandPolicy(bands, keep_decisions=True), **kw)  # type: ignore[arg-type]
    slow = replay(demand, "predictive", forecasts=fc, **kw)  # type: ignore[arg-type]
    assert fast.outcomes == slow.outcomes
    assert fast.decisions == slow.decisions and len(fast.decisions) == 1440
    assert fast.outcomes.fallback_decisions > 0


def test_floor_policy_keeps_the_breaker_when_forecasts_carry_a_backtest_mae() -> None:
    fc = _forecasts(_demand(1))
    assert isinstance(floor_policy(fc), SharedBandPolicy)
    assert isinstance(floor_policy(FrameProvider(fc, backtest_mae=10.0)), PredictivePolicy)
    with pytest.raises(InputError, match="backtest MAE"):
        SharedBandPolicy(SharedBands(FrameProvider(fc, backtest_mae=10.0)))


def test_risk_days_judge_the_risk_on_a_longer_history() -> None:
    """``choose_on``'s worked example: ``a`` is the cheapest and clean over the last day but was short 1 minute the
    day before, when the reactive reference was never short (budget 0). ``risk_days=1`` (the default: ``days``)
    chooses ``a``; ``risk_days=2`` judges the risk on both days and passes it over for ``b``, still costing ``b`` on
    the last day only; a per-day budget is then allowed over the 2 days."""
    a, b = BANK[0], BANK[1]
    table = _table([
        ("reactive at 70%", "reactive", "2024-03-04", 1000, 0),
        ("reactive at 70%", "reactive", "2024-03-05", 1100, 0),
        (a.label, "joint", "2024-03-04", 800, 1), (a.label, "joint", "2024-03-05", 810, 0),
        (b.label, "joint", "2024-03-04", 500, 0), (b.label, "joint", "2024-03-05", 900, 0),
    ])
    until = T0 + pd.Timedelta("2D")
    short = choose_on(table, until, days=1, bank=BANK)
    assert short.setting == a and short.allowed_under_minutes == 0
    assert choose_on(table, until, days=1, risk_days=1, bank=BANK).setting == a
    long = choose_on(table, until, days=1, risk_days=2, bank=BANK)
    assert long.setting == b and long.chosen is not None and long.chosen.replica_minutes == 900
    assert long.days == 2 and "replica-min over 1 days, under-provisioned min over 2" in long.reason
    assert long.runner_up is not None and long.runner_up.label == a.label and long.runner_up.under_minutes == 1
    per_day = choose_on(table, until, days=1, risk_days=2, bank=BANK, budget=RiskBudget(under_minutes_per_day=0.5))
    assert per_day.allowed_under_minutes == 1 and per_day.setting == a
    assert choose_on(table, until, days=2, risk_days=1, bank=BANK).days == 2  # never shorter than ``days``
