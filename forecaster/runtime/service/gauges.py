"""The forecast and accuracy gauges the jobs set right after writing (the API sets the same ones from the store at
scrape time, ``forecaster.api.gauges``; the labels are the same).

    forecaster_forecast{workload, band}             value at the step holding ``now`` (the first step before the
                                                    forecast starts)
    forecaster_forecast_peak{workload, band}        largest value over the horizon
    forecaster_forecast_issued_timestamp_seconds    issue time of the run
    forecaster_demand_actual{workload}              newest observation
    forecaster_accuracy_mae / _backtest_mae / _coverage_ratio{level} / forecaster_drift

``band`` is ``ensemble``, ``lo-80``, ``hi-80``, ... or a member name.

Not pure (``prometheus_client`` gauges through ``Telemetry``). Called by ``forecaster.runtime.service.refresh`` and
``.accuracy``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ENSEMBLE, ID
from forecaster.contracts.ports import AccuracyRecord, ForecastRun
from forecaster.runtime.telemetry import Telemetry


def band_label(column: str) -> str:
    """``ensemble-hi-80`` -> ``hi-80``; ``ensemble`` and members unchanged."""
    prefix = f"{ENSEMBLE}-"
    return column[len(prefix):] if column.startswith(prefix) else column


def set_forecast(t: Telemetry, run: ForecastRun, now: pd.Timestamp, actual: float | None) -> None:
    """Forecast gauges of one workload from the run just stored, and its newest observation."""
    frame = run.frame.sort_values(DS)
    columns = [c for c in frame.columns if c not in (ID, DS)]
    values = frame[columns].to_numpy(dtype=float)
    ds = pd.DatetimeIndex(frame[DS]).as_unit("ns").asi8
    row = max(0, int(np.searchsorted(ds, int(now.as_unit("ns").value), side="right")) - 1) if len(ds) else None
    for j, col in enumerate(columns):
        label = band_label(str(col))
        column = values[:, j]
        finite = column[np.isfinite(column)]
        if len(finite):
            t.gauge("forecaster_forecast_peak").labels(workload=run.workload_id, band=label).set(float(finite.max()))
        if row is not None and math.isfinite(column[row]):
            t.gauge("forecaster_forecast").labels(workload=run.workload_id, band=label).set(float(column[row]))
    t.gauge("forecaster_forecast_issued_timestamp_seconds").labels(workload=run.workload_id).set(
        run.issued_at.timestamp())
    if actual is not None and math.isfinite(actual):
        t.gauge("forecaster_demand_actual").labels(workload=run.workload_id).set(actual)


def set_accuracy(t: Telemetry, record: AccuracyRecord) -> None:
    """Accuracy gauges of one workload from its newest record."""
    w = record.workload_id
    if math.isfinite(record.mae):
        t.gauge("forecaster_accuracy_mae").labels(workload=w).set(record.mae)
    if record.backtest_mae is not None and math.isfinite(record.backtest_mae):
        t.gauge("forecaster_accuracy_backtest_mae").labels(workload=w).set(record.backtest_mae)
    for level, share in record.coverage.items():
        if math.isfinite(share):
            t.gauge("forecaster_accuracy_coverage_ratio").labels(workload=w, level=str(level)).set(share)
    t.gauge("forecaster_drift").labels(workload=w).set(1.0 if record.drift else 0.0)
