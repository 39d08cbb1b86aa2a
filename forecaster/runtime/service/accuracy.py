"""The accuracy job (hourly): realised error and band coverage of the stored forecasts against the actuals, and
the drift flag operators are alerted on.

Every stored run is scored at every lead time: a pair is an actual ``y`` at ``ds`` in the window
``[now - accuracy_window_s, now]`` and the value a run issued before ``ds`` forecast for it. Scoring all leads makes
the realised error comparable with the backtest MAE, which also averages over every step of the horizon (scoring
only the newest run - a few minutes ahead - would hide drift behind the model's quick update). At most
``MAX_RUNS`` runs are scored, evenly spaced, always including the newest. Over the pairs (worked example: two
points with ``|y - ensemble|`` 2 and 4, one inside its 80 % band):

    mae          = mean |y - ensemble|                          = 3
    coverage[L]  = share of pairs with lo-L <= y <= hi-L        = 0.5 for L = 80
    drift        = n >= drift_min_points and mae > drift_multiple x backtest MAE   (backtest MAE of the newest run)

``n_points`` counts distinct actual times scored. Each evaluation is one ``AccuracyRecord`` (also when nothing
could be scored: ``n_points`` 0, no drift, which clears a previous drift). The drift flag is a report (the API, the
``drift`` metric and its alert); it changes no decision: the one fallback rule is the circuit breaker inside the
cycle's floor decision (``forecaster.runtime.service.decide``), as in the controller and the simulator.

``pairs``/``score``/``is_drift`` are pure; ``evaluate`` reads and writes the store. Called by ``Service.accuracy``
(scheduled through ``forecaster.runtime.jobs.accuracy_job``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ENSEMBLE, Y, hi, lo
from forecaster.contracts.ports import AccuracyRecord, ForecastRun
from forecaster.runtime.gauges import set_accuracy
from forecaster.runtime.service.errors import WorkloadError

if TYPE_CHECKING:  # the job runs on a Service, which imports this module
    from forecaster.runtime.service.service import Service

ISSUED = "issued_at"


MAX_RUNS = 96
"""Most runs one evaluation scores (one every 15 minutes over a day)."""


def thin(runs: list[ForecastRun], limit: int = MAX_RUNS) -> list[ForecastRun]:
    """At most ``limit`` runs, evenly spaced by position, keeping the newest."""
    ordered = sorted(runs, key=lambda r: (r.issued_at, r.id))
    if len(ordered) <= limit:
        return ordered
    keep = {round(i) for i in np.linspace(len(ordered) - 1, 0, limit)}
    return [ordered[i] for i in sorted(keep)]


def pairs(runs: list[ForecastRun], actuals: pd.DataFrame) -> pd.DataFrame:
    """Actuals joined with every run's forecast for them (runs issued strictly before ``ds``); columns ``ds, y``,
    the forecast columns, ``issued_at`` and ``backtest_mae`` of the run."""
    parts = []
    for run in runs:
        frame = run.frame.drop(columns=["unique_id"], errors="ignore")
        frame = frame[frame[DS] > run.issued_at]
        if len(frame):
            parts.append(frame.assign(**{ISSUED: run.issued_at, "backtest_mae": run.backtest_mae}))
    if not parts or len(actuals) == 0:
        return pd.DataFrame(columns=[DS, Y, ENSEMBLE, ISSUED])
    rows = pd.concat(parts, ignore_index=True)
    return actuals[[DS, Y]].merge(rows, on=DS, how="inner").sort_values([DS, ISSUED], kind="stable")


def score(joined: pd.DataFrame, levels: tuple[int, ...]) -> tuple[int, float, dict[int, float]]:
    """``(n_points, mae, coverage by level)`` of joined pairs (pairs with a non-finite value are skipped);
    ``n_points`` counts distinct ``ds``."""
    if len(joined) == 0:
        return 0, float("nan"), {}
    y = joined[Y].to_numpy(dtype=float)
    point = joined[ENSEMBLE].to_numpy(dtype=float)
    ok = np.isfinite(y) & np.isfinite(point)
    if not ok.any():
        return 0, float("nan"), {}
    coverage = {}
    for level in levels:
        low, high = lo(ENSEMBLE, level), hi(ENSEMBLE, level)
        if low in joined.columns and high in joined.columns:
            lower = joined[low].to_numpy(dtype=float)[ok]
            upper = joined[high].to_numpy(dtype=float)[ok]
            coverage[int(level)] = float(((lower <= y[ok]) & (y[ok] <= upper)).mean())
    n_points = int(joined.loc[ok, DS].nunique())
    return n_points, float(np.abs(y[ok] - point[ok]).mean()), coverage


def is_drift(n_points: int, mae: float, backtest_mae: float | None, multiple: float, min_points: int) -> bool:
    """``n_points >= min_points`` and ``mae > multiple * backtest_mae`` (False without a positive backtest MAE)."""
    if n_points < min_points or backtest_mae is None or not math.isfinite(backtest_mae) or backtest_mae <= 0:
        return False
    return bool(math.isfinite(mae) and mae > multiple * backtest_mae)


def evaluate_one(service: Service, workload_id: str, now: pd.Timestamp) -> AccuracyRecord:
    st = service.settings
    start = now - pd.Timedelta(seconds=st.accuracy_window_s)
    runs = thin(service.store.forecasts_issued_between(workload_id, start - pd.Timedelta(seconds=st.horizon_s), now))
    actuals = service.store.actuals(workload_id, start, now)
    joined = pairs(runs, actuals)
    levels = tuple(sorted({int(v) for r in runs for v in r.levels})) or st.levels
    n, mae, coverage = score(joined, levels)
    backtest = None
    if len(joined):
        newest = joined.loc[joined[ISSUED] == joined[ISSUED].max(), "backtest_mae"].iloc[0]
        backtest = None if newest is None or pd.isna(newest) else float(newest)
    record = AccuracyRecord(
        workload_id=workload_id, evaluated_at=now, window_start=start, window_end=now, n_points=n, mae=mae,
        coverage=coverage, backtest_mae=backtest,
        drift=is_drift(n, mae, backtest, st.drift_multiple, st.drift_min_points),
    )
    service.store.record_accuracy(record)
    set_accuracy(service.telemetry, record.workload_id, record)
    return record


def evaluate(service: Service, now: pd.Timestamp | None = None) -> dict[str, bool]:
    """The job (module docstring); the drift flag per workload evaluated."""
    now = service.now(now)
    errors: dict[str, str] = {}
    drift: dict[str, bool] = {}
    for spec in service.registry:
        with service.isolated("accuracy", spec.id, errors):
            drift[spec.id] = evaluate_one(service, spec.id, now).drift
        service.pause()
    if errors:
        raise WorkloadError("accuracy", errors, drift)
    return drift
