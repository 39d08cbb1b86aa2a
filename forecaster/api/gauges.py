"""The forecast and accuracy gauges of ``/metrics``, refreshed from the store by the API at scrape time.

Who sets what: the scheduled jobs record job runs, durations and last-success times (``Telemetry.timed``) and the
controller its decisions; the *API* sets, per workload, from the store:

    forecaster_forecast{workload, band}                the latest forecast at the current step (the step whose
                                                       ``[ds, ds + freq)`` holds now; the first step before the
                                                       forecast starts); removed once now is past its last step
    forecaster_forecast_peak{workload, band}           the largest value over the stored horizon
    forecaster_forecast_issued_timestamp_seconds       issue time of the latest forecast
    forecaster_demand_actual{workload}                 the newest observation in the last day
    forecaster_accuracy_mae / _backtest_mae / _coverage_ratio{level} / forecaster_drift   the newest accuracy record

``band`` is ``ensemble``, ``lo-80``, ``hi-80``, ``lo-95``, ``hi-95``... or a member name. Reading the store costs
about three queries per workload, so a refresh runs at most every ``ApiSettings.metrics_refresh_s`` (15 s) however
often Prometheus or ``/readyz`` asks; API replicas without a scheduler therefore export the same values as the one
running the jobs.

Cardinality limit: at most ``ApiSettings.metrics_max_workloads`` workloads (default ``MAX_WORKLOADS``, 10,000, the
first ones by id) are exported. Each refresh counts the workloads it left out in
``forecaster_exporter_workloads_dropped_total`` and sets ``forecaster_exporter_workloads`` to the number exported, so
a fleet past the limit shows on the operations dashboard and in the ``ForecasterExporterDroppingWorkloads`` alert
instead of vanishing silently.

Not pure (reads the store, writes ``prometheus_client`` gauges). Called by ``forecaster.api.routes_ops``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

import pandas as pd

from forecaster.api.context import ApiContext
from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, Y
from forecaster.contracts.metric_names import MAX_EXPORTED_WORKLOADS
from forecaster.contracts.ports import AccuracyRecord, Store, Workload
from forecaster.runtime.gauges import set_accuracy, set_forecast
from forecaster.runtime.telemetry import Telemetry

MAX_WORKLOADS = MAX_EXPORTED_WORKLOADS
PAGE = 500
log = logging.getLogger("forecaster.api")


def iter_workloads(store: Store, limit: int = MAX_WORKLOADS, seen: list[int] | None = None) -> Iterator[Workload]:
    """Every stored workload (up to ``limit``), page by page. ``seen``, when given, receives the store's total number
    of workloads (read from the pages), so the caller can count what the limit left out."""
    offset = 0
    while True:
        if offset >= limit and (seen is None or seen):
            return
        page = store.list_workloads(limit=PAGE, offset=offset)
        if seen is not None:
            seen[:] = [page.total]
        if offset >= limit:
            return
        yield from page.items[: limit - offset]
        offset += PAGE
        if not page.items or offset >= page.total:
            return


def _step(freq: str) -> pd.Timedelta:
    """A workload's bucket length (5 minutes when its frequency is unreadable)."""
    try:
        return freq_to_timedelta(freq)
    except InputError:
        return pd.Timedelta(minutes=5)


def newest_accuracy(store: Store, workload_id: str) -> AccuracyRecord | None:
    """The newest accuracy record (the store lists them newest first)."""
    page = store.list_accuracy(workload_id, limit=1, offset=0)
    return page.items[0] if page.items else None


def refresh_workload(ctx: ApiContext, workload: Workload, now: pd.Timestamp) -> None:
    """Every gauge of one workload."""
    store, t = ctx.store, ctx.telemetry
    run = store.latest_forecast(workload.id)
    if run is not None and len(run.frame):
        set_forecast(t, workload.id, run, now, _step(workload.freq))
    actual = store.actuals(workload.id, now - pd.Timedelta(days=1), now)
    if len(actual):
        last = actual.sort_values(DS)[Y].iloc[-1]
        if math.isfinite(float(last)):
            t.gauge("forecaster_demand_actual").labels(workload=workload.id).set(float(last))
    record = newest_accuracy(store, workload.id)
    if record is not None:
        set_accuracy(t, workload.id, record)


def refresh(ctx: ApiContext, *, force: bool = False) -> bool:
    """Refresh every workload's gauges unless the last refresh is younger than ``metrics_refresh_s``; True when it
    ran. Store errors propagate (``/metrics`` logs them and serves what it has; ``/readyz`` answers 503)."""
    with ctx.gauges_lock:
        if not force and time.monotonic() - ctx.gauges_refreshed_at < ctx.settings.metrics_refresh_s:
            return False
        now = ctx.clock()
        limit = max(0, int(getattr(ctx.settings, "metrics_max_workloads", MAX_WORKLOADS)))
        total: list[int] = []
        exported = 0
        for workload in iter_workloads(ctx.store, limit, total):
            refresh_workload(ctx, workload, now)
            exported += 1
        count_dropped(ctx.telemetry, exported, (total or [exported])[0], limit)
        ctx.gauges_refreshed_at = time.monotonic()
        return True


def count_dropped(t: Telemetry, exported: int, total: int, limit: int) -> int:
    """Record one refresh's cardinality accounting: ``exported`` workloads of ``total`` under ``limit``; returns how
    many were left out (logged once per refresh as a warning)."""
    dropped = max(0, int(total) - int(exported))
    t.gauge("forecaster_exporter_workloads").set(exported)
    if dropped:
        t.counter("forecaster_exporter_workloads_dropped").inc(dropped)
        log.warning("/metrics: %d of %d workloads not exported (metrics_max_workloads=%d)", dropped, total, limit)
    return dropped


def newest_issue(t: Telemetry) -> float | None:
    """Largest ``forecaster_forecast_issued_timestamp_seconds`` over workloads (Unix seconds), None if none."""
    values = [s.value for m in t.registry.collect() if m.name == "forecaster_forecast_issued_timestamp_seconds"
              for s in m.samples]
    return max(values, default=None)
