"""The accuracy job (hourly): realised error and band coverage of the stored forecasts against the actuals, and
the drift flag that makes the next refresh fall back.

For every actual ``y`` at ``ds`` in the window ``[now - accuracy_window_s, now]`` the forecast *in force* is the
newest run issued strictly before ``ds`` that has a row at ``ds`` - what the service was saying when it had to act.
Then, over those pairs (worked example: two points with ``|y - ensemble|`` 2 and 4, one inside its 80 % band):

    mae          = mean |y - ensemble|                          = 3
    coverage[L]  = share of points with lo-L <= y <= hi-L       = 0.5 for L = 80
    drift        = n >= drift_min_points and mae > drift_multiple x backtest MAE   (backtest MAE of the newest run)

Each evaluation is one ``AccuracyRecord`` (also when nothing could be scored: ``n_points`` 0, no drift, which
clears a previous drift). The refresh reads the newest record: drift means the most reliable member replaces the
ensemble and the replica floor falls back to the reactive rule.

``score`` is pure; ``evaluate`` reads and writes the store. Called by ``Service.accuracy`` (scheduled through
``forecaster.service.jobs.accuracy_job``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.frames import DS, ENSEMBLE, Y, hi, lo
from forecaster.ports import AccuracyRecord, ForecastRun
from forecaster.service.gauges import set_accuracy
from forecaster.service.service import Service, WorkloadError

ISSUED = "issued_at"


def in_force(runs: list[ForecastRun], actuals: pd.DataFrame) -> pd.DataFrame:
    """Actuals joined with the forecast row in force at each ``ds`` (module docstring); column ``issued_at`` and
    ``backtest_mae`` say which run."""
    parts = []
    for run in runs:
        frame = run.frame.drop(columns=["unique_id"], errors="ignore")
        frame = frame[frame[DS] > run.issued_at]
        if len(frame):
            parts.append(frame.assign(**{ISSUED: run.issued_at, "backtest_mae": run.backtest_mae}))
    if not parts or len(actuals) == 0:
        return pd.DataFrame(columns=[DS, Y, ENSEMBLE, ISSUED])
    rows = pd.concat(parts, ignore_index=True).sort_values([DS, ISSUED], kind="stable")
    rows = rows.drop_duplicates(DS, keep="last")
    return actuals[[DS, Y]].merge(rows, on=DS, how="inner")


def score(pairs: pd.DataFrame, levels: tuple[int, ...]) -> tuple[int, float, dict[int, float]]:
    """``(n_points, mae, coverage by level)`` of joined pairs (rows with a non-finite ensemble are skipped)."""
    if len(pairs) == 0:
        return 0, float("nan"), {}
    y = pairs[Y].to_numpy(dtype=float)
    point = pairs[ENSEMBLE].to_numpy(dtype=float)
    ok = np.isfinite(y) & np.isfinite(point)
    if not ok.any():
        return 0, float("nan"), {}
    coverage = {}
    for level in levels:
        low, high = lo(ENSEMBLE, level), hi(ENSEMBLE, level)
        if low in pairs.columns and high in pairs.columns:
            lower = pairs[low].to_numpy(dtype=float)[ok]
            upper = pairs[high].to_numpy(dtype=float)[ok]
            coverage[int(level)] = float(((lower <= y[ok]) & (y[ok] <= upper)).mean())
    return int(ok.sum()), float(np.abs(y[ok] - point[ok]).mean()), coverage


def is_drift(n_points: int, mae: float, backtest_mae: float | None, multiple: float, min_points: int) -> bool:
    """``n_points >= min_points`` and ``mae > multiple * backtest_mae`` (False without a positive backtest MAE)."""
    if n_points < min_points or backtest_mae is None or not math.isfinite(backtest_mae) or backtest_mae <= 0:
        return False
    return bool(math.isfinite(mae) and mae > multiple * backtest_mae)


def evaluate_one(service: Service, workload_id: str, now: pd.Timestamp) -> AccuracyRecord:
    st = service.settings
    start = now - pd.Timedelta(seconds=st.accuracy_window_s)
    runs = service.store.forecasts_issued_between(workload_id, start - pd.Timedelta(seconds=st.horizon_s), now)
    actuals = service.store.actuals(workload_id, start, now)
    pairs = in_force(runs, actuals)
    levels = tuple(sorted({int(v) for r in runs for v in r.levels})) or st.levels
    n, mae, coverage = score(pairs, levels)
    backtest = None
    if len(pairs):
        newest = pairs.loc[pairs[ISSUED] == pairs[ISSUED].max(), "backtest_mae"].iloc[0]
        backtest = None if newest is None or pd.isna(newest) else float(newest)
    record = AccuracyRecord(
        workload_id=workload_id, evaluated_at=now, window_start=start, window_end=now, n_points=n, mae=mae,
        coverage=coverage, backtest_mae=backtest,
        drift=is_drift(n, mae, backtest, st.drift_multiple, st.drift_min_points),
    )
    service.store.record_accuracy(record)
    set_accuracy(service.telemetry, record)
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
