"""The forecast and accuracy gauges, one implementation for whoever sets them: the service's jobs right after writing
a run or an accuracy record, and the API from the store at scrape time (``forecaster.api.gauges``); the labels are
the same either way.

    forecaster_forecast{workload, band}             value at the step holding ``now`` (the first step before the
                                                    forecast starts); removed once now is past its last step
    forecaster_forecast_peak{workload, band}        largest value over the horizon
    forecaster_forecast_issued_timestamp_seconds    issue time of the run
    forecaster_demand_actual{workload}              newest observation
    forecaster_accuracy_mae / _backtest_mae / _coverage_ratio{level} / forecaster_drift   the newest accuracy record

``band`` is ``ensemble``, ``lo-80``, ``hi-80``, ... or a member name (``band_label``).

Not pure (``prometheus_client`` gauges through ``Telemetry``). Called by ``forecaster.runtime.service.refresh`` and
``.accuracy``, and by ``forecaster.api.gauges``.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ENSEMBLE, ID
from forecaster.contracts.ports import AccuracyRecord, ForecastRun
from forecaster.runtime.telemetry import Telemetry


def band_label(column: str) -> str:
    """Forecast column -> ``band`` label: ``ensemble-hi-80`` -> ``hi-80``; members and ``ensemble`` unchanged."""
    prefix = f"{ENSEMBLE}-"
    return column[len(prefix):] if column.startswith(prefix) else column


def current_row(frame: pd.DataFrame, now: pd.Timestamp, step: pd.Timedelta) -> int | None:
    """Index (position) of the step holding ``now``: 0 before the forecast starts, None after its last step."""
    ds = pd.DatetimeIndex(frame[DS]).as_unit("ns").asi8
    if not len(ds):
        return None
    t = int(now.as_unit("ns").value)
    if t >= ds[-1] + int(step.value):
        return None
    return max(0, int(np.searchsorted(ds, t, side="right")) - 1)


def _remove(gauge: object, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)  # type: ignore[attr-defined]


def set_forecast(t: Telemetry, workload_id: str, run: ForecastRun, now: pd.Timestamp, step: pd.Timedelta,
                 actual: float | None = None) -> None:
    """The forecast gauges of one workload from its latest run (``step``: the forecast's bucket length), and its
    newest observation when given."""
    frame = run.frame.sort_values(DS)
    columns = [c for c in frame.columns if c not in (DS, ID) and pd.api.types.is_numeric_dtype(frame[c])]
    values = frame[columns].to_numpy(dtype=float)
    forecast, peak = t.gauge("forecaster_forecast"), t.gauge("forecaster_forecast_peak")
    row = current_row(frame, now, step)
    for j, col in enumerate(columns):
        label = band_label(str(col))
        column = values[:, j]
        finite = column[np.isfinite(column)]
        if len(finite):
            peak.labels(workload=workload_id, band=label).set(float(finite.max()))
        if row is not None and math.isfinite(column[row]):
            forecast.labels(workload=workload_id, band=label).set(float(column[row]))
        else:
            _remove(forecast, workload_id, label)
    t.gauge("forecaster_forecast_issued_timestamp_seconds").labels(workload=workload_id).set(
        pd.Timestamp(run.issued_at).timestamp())
    if actual is not None and math.isfinite(actual):
        t.gauge("forecaster_demand_actual").labels(workload=workload_id).set(actual)


def set_accuracy(t: Telemetry, workload_id: str, record: AccuracyRecord) -> None:
    """The accuracy gauges of one workload."""
    if math.isfinite(record.mae):
        t.gauge("forecaster_accuracy_mae").labels(workload=workload_id).set(record.mae)
    if record.backtest_mae is not None and math.isfinite(record.backtest_mae):
        t.gauge("forecaster_accuracy_backtest_mae").labels(workload=workload_id).set(record.backtest_mae)
    for level, share in record.coverage.items():
        if share is not None and math.isfinite(share):
            t.gauge("forecaster_accuracy_coverage_ratio").labels(workload=workload_id, level=str(level)).set(share)
    t.gauge("forecaster_drift").labels(workload=workload_id).set(1.0 if record.drift else 0.0)
