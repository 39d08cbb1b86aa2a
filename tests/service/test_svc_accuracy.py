"""The accuracy job and drift: the forecast in force at each point, MAE and coverage (worked example), the drift
rule, evaluation against the stored runs; a drift is reported and changes no decision: the one fallback rule is the
circuit breaker inside the floor decision, which a demand shift trips."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from svc_support import DEMO_NOW, SLOT, MakeDemo, sample

from forecaster.contracts.frames import ENSEMBLE, hi, lo
from forecaster.contracts.ports import AccuracyRecord, ForecastRun
from forecaster.runtime.service.accuracy import is_drift, pairs, score, thin

T0 = pd.Timestamp("2024-03-04T00:00Z")


def run(issued_minutes: int, values: list[float], width: float = 1.0, mae: float | None = 1.0) -> ForecastRun:
    issued = T0 + pd.Timedelta(minutes=issued_minutes)
    ds = pd.date_range(issued + pd.Timedelta("5min"), periods=len(values), freq="5min")
    v = np.asarray(values, dtype=float)
    frame = pd.DataFrame({"ds": ds, ENSEMBLE: v, lo(ENSEMBLE, 80): v - width, hi(ENSEMBLE, 80): v + width})
    return ForecastRun(f"r{issued_minutes}", "w", issued, "v", (80,), frame, mae)


def test_svc_accuracy_worked_example() -> None:
    """Two points, errors 2 and 4, one inside its 80 % band: n 2, MAE 3, coverage 0.5."""
    joined = pd.DataFrame({"ds": [T0, T0 + pd.Timedelta("5min")], "y": [12.0, 6.0], ENSEMBLE: [10.0, 10.0],
                           lo(ENSEMBLE, 80): [9.0, 5.0], hi(ENSEMBLE, 80): [11.0, 11.0]})
    assert score(joined, (80,)) == (2, 3.0, {80: 0.5})
    n, mae, coverage = score(joined.iloc[:0], (80,))
    assert n == 0 and math.isnan(mae) and coverage == {}


def test_svc_accuracy_pairs_every_run_issued_before_each_point() -> None:
    runs = [run(0, [1.0, 2.0, 3.0, 4.0]), run(10, [20.0, 30.0, 40.0])]
    actuals = pd.DataFrame({"ds": pd.date_range(T0 + pd.Timedelta("5min"), periods=5, freq="5min"),
                            "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    joined = pairs(runs, actuals)
    # 00:05, 00:10 only from the 00:00 run; 00:15, 00:20 from both runs (all lead times); 00:25 from the 00:10 run
    assert joined[ENSEMBLE].tolist() == [1.0, 2.0, 3.0, 20.0, 4.0, 30.0, 40.0]
    n, mae, coverage = score(joined, (80,))
    assert n == 5 and mae == pytest.approx((0 + 0 + 0 + 17 + 0 + 26 + 35) / 7)
    assert coverage == {80: pytest.approx(4 / 7)}
    assert len(pairs([], actuals)) == 0


def test_svc_accuracy_thins_runs_evenly_keeping_the_newest() -> None:
    runs = [run(5 * i, [1.0]) for i in range(10)]
    kept = thin(runs, 4)
    assert len(kept) == 4 and kept[-1].id == "r45" and kept[0].id == "r0"
    assert thin(runs[:3], 4) == runs[:3]


@pytest.mark.parametrize(
    ("n", "mae", "backtest", "expected"),
    [(6, 3.1, 1.0, True), (6, 3.0, 1.0, False), (5, 10.0, 1.0, False), (6, 10.0, None, False),
     (6, 10.0, 0.0, False), (6, float("nan"), 1.0, False)],
    ids=["above", "equal-is-not-drift", "too-few-points", "no-backtest", "zero-backtest", "nan-mae"],
)
def test_svc_accuracy_drift_rule(n: int, mae: float, backtest: float | None, expected: bool) -> None:
    assert is_drift(n, mae, backtest, multiple=3.0, min_points=6) is expected


def test_svc_accuracy_job_scores_stored_forecasts(make_demo: MakeDemo) -> None:
    service = make_demo()
    for k in range(8):
        service.run_demo_cycle(DEMO_NOW + pd.Timedelta(minutes=5 * k))
    drift = service.accuracy(DEMO_NOW + pd.Timedelta("40min"))
    assert drift == {"nasa/www": False}
    record = service.store.list_accuracy("nasa/www").items[0]
    # runs issued 12:00 .. 12:35, actuals stored up to 12:35: the points 12:05 .. 12:35 are scored
    assert record.n_points == 7 and record.evaluated_at == DEMO_NOW + pd.Timedelta("40min")
    assert sorted(record.coverage) == [80, 95] and 0.0 <= record.coverage[80] <= record.coverage[95] <= 1.0
    assert record.backtest_mae is not None and 0 < record.mae < 3 * record.backtest_mae
    assert sample(service, "forecaster_accuracy_mae", workload="nasa/www") == record.mae
    assert sample(service, "forecaster_drift", workload="nasa/www") == 0.0
    assert sample(service, "forecaster_accuracy_coverage_ratio", workload="nasa/www", level="80") == record.coverage[80]


def test_svc_demand_shift_is_reported_as_drift_and_trips_the_breaker(make_demo: MakeDemo) -> None:
    """Demand ten times the trace from noon on: the evaluation flags drift (a report), and the refresh's floor
    decision opens the circuit breaker from its own error log, so the floor holds and the reactive rule is in
    charge, as in the controller; the stored forecast stays the ensemble's."""
    service = make_demo(drift_min_points=6)
    demand = service.source.demand  # type: ignore[attr-defined]
    shifted = demand["ds"] > SLOT
    demand.loc[shifted, "y"] = demand.loc[shifted, "y"] * 10
    for k in range(8):
        service.source.now = DEMO_NOW + pd.Timedelta(minutes=5 * k)  # type: ignore[attr-defined]
        service.refresh()
    now = DEMO_NOW + pd.Timedelta("40min")
    assert service.accuracy(now) == {"nasa/www": True}
    record = service.store.list_accuracy("nasa/www").items[0]
    assert record.drift and record.backtest_mae is not None and record.mae > 3 * record.backtest_mae
    assert sample(service, "forecaster_drift", workload="nasa/www") == 1.0

    latest = service.store.latest_forecast("nasa/www")
    assert latest is not None and "fallback" not in latest.model_version
    decisions = [d for d in service.store.list_decisions(workload_id="nasa/www").items if d.kind == "replicas"]
    latest_decision = decisions[0]  # newest first
    assert latest_decision.details["breaker_open"] is True and "breaker_open" in latest_decision.details["rules"]
    opened = [d for d in decisions if d.details["n_errors"] >= 6
              and d.details["recent_mae"] > 3 * d.details["backtest_mae"]]  # the breaker's open rule
    assert opened, "no decision saw the recent error above 3x the backtest error"
    assert sample(service, "forecaster_fallbacks_total", workload="nasa/www", reason="breaker") >= 1.0


def test_svc_a_drift_record_changes_no_decision(make_demo: MakeDemo) -> None:
    service = make_demo()
    service.refresh()
    store = service.store
    store.record_accuracy(AccuracyRecord("nasa/www", DEMO_NOW, DEMO_NOW - pd.Timedelta("1D"), DEMO_NOW, 12, 99.0,
                                         {}, 1.0, True))
    service.refresh(DEMO_NOW + pd.Timedelta("5min"))
    latest = store.latest_forecast("nasa/www")
    assert latest is not None and "fallback" not in latest.model_version
    replicas = next(d for d in store.list_decisions(workload_id="nasa/www").items if d.kind == "replicas")
    assert "drift" not in replicas.reason and replicas.details["breaker_open"] is False


def test_svc_demo_cycle_evaluates_accuracy_once_per_interval(make_demo: MakeDemo) -> None:
    service = make_demo(accuracy_interval_s=600)
    for k in range(4):  # 12:02, 12:07 (one 10-minute interval), 12:12, 12:17 (the next)
        result = service.run_demo_cycle(DEMO_NOW + pd.Timedelta(minutes=5 * k))
        assert list(result) == ["nasa/www"]
    records = service.store.list_accuracy("nasa/www")
    assert records.total == 2 and [r.evaluated_at.minute for r in records.items] == [12, 2]
    assert service.source.now == DEMO_NOW + pd.Timedelta("15min")  # type: ignore[attr-defined]
