"""Reading what the jobs need from the metrics source and the store, in the frames the pure code wants.

- ``demand_history``: one workload's demand as a Series frame ``unique_id, ds, y`` (several answered series are
  summed per time: a workload's demand is its total);
- ``demand_histories``: many workloads' ``demand_history`` at once, in ``ceil(N / batch)`` range queries when the
  source batches (``BatchSource``: Prometheus' ``query_batches``; each query the union of a batch's own queries,
  every series tagged with its workload, ``promql.tagged_union_query``), ``concurrency`` queries in flight; a batch
  whose query fails is fetched again one workload at a time, so a bad workload fails alone, named (its own error),
  and the others of its batch are read. A source that does not batch is read one workload at a time;
- ``container_usage``: the right-sizing usage frame of a workload's containers (``forecaster.rightsizing.frames``);
- ``events_frame``: every stored business event as the Events frame the ``Forecaster`` takes.

Not pure (queries the source and the store). Called by ``runtime.service.refresh``, ``.refit`` and ``.decide``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from forecaster.adapters.promql import tagged_union_query
from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import DS, ID, Y
from forecaster.contracts.ports import MetricsSource, Store
from forecaster.rightsizing.frames import CPU, CPU_REQUEST, MEMORY, MEMORY_REQUEST, NAMESPACE
from forecaster.runtime.service.registry import WorkloadSpec

EVENTS_PAGE = 500
BATCH_LABEL = "forecaster_workload"
"""The label a batched query tags each workload's series with (its workload id)."""
log = logging.getLogger("forecaster.runtime.service")
Fetched = dict[str, pd.DataFrame | Exception]
"""Workload id -> its history frame, or the error reading it."""


@runtime_checkable
class BatchSource(Protocol):
    """A ``MetricsSource`` that also reads many workloads per range query (``PrometheusSource.query_batches``)."""

    def query_batches(
        self, build: Callable[[Sequence[Mapping[str, str]]], str], workloads: Sequence[Mapping[str, str]],
        start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta, *, by: Sequence[str],
        batch_size: int = ..., max_concurrency: int = ...,
        on_error: Callable[[Sequence[Mapping[str, str]], Exception], None] | None = None,
    ) -> pd.DataFrame: ...


def _one_series(frame: pd.DataFrame, name: str) -> pd.Series:
    """The answer of one query as a series by ``ds`` (several series summed)."""
    if len(frame) == 0:
        return pd.Series(dtype=float, name=name, index=pd.DatetimeIndex([], tz="UTC"))
    return frame.groupby(DS, sort=True)[Y].sum().rename(name)


def demand_history(source: MetricsSource, spec: WorkloadSpec, start: pd.Timestamp, end: pd.Timestamp
                   ) -> pd.DataFrame:
    """``unique_id, ds, y`` of ``spec``'s query on ``[start, end]`` at its frequency (empty when no data); ``start``
    is rounded up to the frequency's grid so the answer's times are on it."""
    step = freq_to_timedelta(spec.freq)
    series = _one_series(source.query_range(spec.query, start.ceil(step), end, step, id_labels=[]), Y)
    return pd.DataFrame({ID: spec.id, DS: pd.DatetimeIndex(series.index).as_unit("ns"),
                         Y: series.to_numpy(dtype=float)})


def _batch_query(batch: Sequence[Mapping[str, str]]) -> str:
    return tagged_union_query({w[BATCH_LABEL]: w["query"] for w in batch}, BATCH_LABEL)


def demand_histories(source: MetricsSource, specs: Sequence[WorkloadSpec], start: pd.Timestamp, end: pd.Timestamp,
                     *, batch_size: int, concurrency: int) -> Fetched | None:
    """Every workload's ``demand_history`` (or its error) read in batches (module docstring); None when ``source`` does
    not batch (the caller reads each with ``demand_history``). The workloads share one frequency."""
    if not isinstance(source, BatchSource) or not specs:
        return None
    step = freq_to_timedelta(specs[0].freq)
    by_id = {spec.id: spec for spec in specs}
    failed: list[tuple[Sequence[Mapping[str, str]], Exception]] = []
    frame = source.query_batches(
        _batch_query, [{BATCH_LABEL: spec.id, "query": spec.query} for spec in specs], start.ceil(step), end, step,
        by=[BATCH_LABEL], batch_size=batch_size, max_concurrency=concurrency,
        on_error=lambda batch, exc: failed.append((batch, exc)))
    out: Fetched = {}
    for wid, part in frame.groupby(ID, sort=False):
        series = _one_series(part, Y)
        out[str(wid)] = pd.DataFrame({ID: str(wid), DS: pd.DatetimeIndex(series.index).as_unit("ns"),
                                      Y: series.to_numpy(dtype=float)})
    for batch, exc in failed:  # one bad workload must not sink its batch: read them one by one, each its own error
        log.warning("batched query of %d workload(s) failed (%s); reading them one by one", len(batch), exc)
        for w in batch:
            try:
                out[w[BATCH_LABEL]] = demand_history(source, by_id[w[BATCH_LABEL]], start, end)
            except Exception as one:
                out[w[BATCH_LABEL]] = one
    for spec in specs:
        out.setdefault(spec.id, pd.DataFrame({ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns, UTC]"),
                                              Y: pd.Series(dtype=float)}))
    return out


def history_of(fetched: Fetched | None, source: MetricsSource, spec: WorkloadSpec, start: pd.Timestamp,
               end: pd.Timestamp) -> pd.DataFrame:
    """``spec``'s history from ``fetched`` (its error raised), else read alone (``demand_history``)."""
    if fetched is None:
        return demand_history(source, spec, start, end)
    got = fetched[spec.id]
    if isinstance(got, Exception):
        raise got
    return got


def container_usage(source: MetricsSource, spec: WorkloadSpec, start: pd.Timestamp, end: pd.Timestamp
                    ) -> pd.DataFrame:
    """Usage frame (``unique_id`` = container name, ``ds``, cpu, memory, requests, namespace) of ``spec``'s
    containers on ``[start, end]``; times where any of the four columns is missing are dropped."""
    step = freq_to_timedelta(spec.freq)
    parts = []
    for c in spec.containers:
        columns = {col: _one_series(source.query_range(query, start.ceil(step), end, step, id_labels=[]), col)
                   for col, query in ((CPU, c.cpu), (MEMORY, c.memory), (CPU_REQUEST, c.cpu_request),
                                      (MEMORY_REQUEST, c.memory_request))}
        joined = pd.concat(list(columns.values()), axis=1, join="inner").dropna()
        if len(joined):
            frame = joined.rename_axis(DS).reset_index()
            frame.insert(0, ID, c.name)
            frame[NAMESPACE] = spec.namespace or "default"
            parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=[ID, DS, CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST, NAMESPACE])
    return pd.concat(parts, ignore_index=True)


def events_frame(store: Store) -> pd.DataFrame | None:
    """Every stored event as ``id, name, kind, start, end, scope, expected_uplift`` (None when there are none)."""
    rows = []
    offset = 0
    while True:
        page = store.list_events(limit=EVENTS_PAGE, offset=offset)
        rows += [{"id": e.id, "name": e.name, "kind": e.kind, "start": e.start, "end": e.end,
                  "scope": list(e.scope) or None, "expected_uplift": e.expected_uplift} for e in page.items]
        offset += EVENTS_PAGE
        if not page.items or offset >= page.total:
            break
    return pd.DataFrame(rows) if rows else None
