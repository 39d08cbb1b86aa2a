"""Reading what the jobs need from the metrics source and the store, in the frames the pure code wants.

- ``demand_history``: one workload's demand as a Series frame ``unique_id, ds, y`` (several answered series are
  summed per time: a workload's demand is its total);
- ``container_usage``: the right-sizing usage frame of a workload's containers (``forecaster.rightsizing.frames``);
- ``events_frame``: every stored business event as the Events frame the ``Forecaster`` takes.

Not pure (queries the source and the store). Called by ``runtime.service.refresh``, ``.refit`` and ``.decide``.
"""

from __future__ import annotations

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import DS, ID, Y
from forecaster.contracts.ports import MetricsSource, Store
from forecaster.rightsizing.frames import CPU, CPU_REQUEST, MEMORY, MEMORY_REQUEST, NAMESPACE
from forecaster.runtime.service.registry import WorkloadSpec

EVENTS_PAGE = 500


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
