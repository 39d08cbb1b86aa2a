"""The demo's world: a ``MetricsSource`` over bundled real traces with a movable "now", and the demo registry.

``DemoSource`` answers range queries from the NASA-HTTP requests trace (``forecaster.datasets.load_nasa_5min``,
1995-07-01 .. 07-22) and, for container use, the Bitbrains usage extract (``usage_small.csv``: three VMs, 10 days
at 15 minutes, replayed cyclically and shifted onto the NASA days). Nothing after ``source.now`` exists yet, so the
demo replays days in seconds by moving ``now`` and calling the jobs (``Service.run_demo_cycle``).

Queries (the demo's PromQL):

- ``nasa`` - requests per 5 minutes; ``nasa*0.5`` the same scaled (extra demo workloads);
- ``usage/<vm>/<column>`` - column ``cpu`` (cores), ``memory`` (bytes), ``cpu_request``, ``memory_request``.

Answers follow Prometheus' ``query_range``: at each grid time ``start + k * step`` up to ``min(end, now)`` the
latest sample at or before it, at most one native step old; ``unique_id`` is the query. Unknown query: empty frame.

Not pure (reads package data; mutable ``now``). Called by ``forecaster demo`` (through ``Service``) and tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from forecaster.contracts.errors import PermanentError
from forecaster.contracts.frames import DS, ID, Y
from forecaster.contracts.ports import EventRecord
from forecaster.datasets import data_file, load_nasa_5min, nasa_events
from forecaster.runtime.service.registry import ContainerSpec, Registry, WorkloadSpec

USAGE_FILE = "usage_small.csv"
DEMO_NAMESPACE = "nasa"
_NASA = re.compile(r"^nasa(?:\*(\d+(?:\.\d+)?))?$")
_USAGE = re.compile(r"^usage/([^/]+)/(cpu|memory|cpu_request|memory_request)$")
DEMAND_UNIT = "requests per 5 min"
"""The NASA trace's unit: the demo workloads' ``unit`` label (the explorer's demand axis title)."""
USAGE_VMS: tuple[tuple[str, str], ...] = (("app", "vm001"), ("cache", "vm004"), ("worker", "vm007"))
"""Demo containers of ``nasa/www`` and the Bitbrains VM whose use each replays."""


def usage_path() -> Path | None:
    """The Bitbrains usage extract: packaged data if present, else a source checkout's test fixture, else None."""
    for path in (data_file(USAGE_FILE), Path(__file__).resolve().parents[2] / "tests" / "fixtures" / USAGE_FILE):
        if path.is_file():
            return path
    return None


def shift_usage(usage: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The usage frame replayed cyclically so that its first day starts at ``start.floor('D')``, up to ``end``."""
    frame = usage.copy()
    frame[DS] = pd.to_datetime(frame[DS], utc=True)
    first = frame[DS].min().floor("D")
    period = frame[DS].max().ceil("D") - first
    base = start.floor("D")
    copies = []
    offset = base - first
    while first + offset <= end:
        copies.append(frame.assign(**{DS: frame[DS] + offset}))
        offset += period
    return pd.concat(copies, ignore_index=True)


class DemoSource:
    """``ports.MetricsSource`` over the bundled traces (see module docstring); ``now`` hides the future."""

    def __init__(self, now: pd.Timestamp | None = None, *, usage: pd.DataFrame | None = None,
                 demand: pd.DataFrame | None = None) -> None:
        self.demand = (load_nasa_5min() if demand is None else demand)[[DS, Y]].sort_values(DS).reset_index(drop=True)
        self.start = self.demand[DS].min()
        self.end = self.demand[DS].max()
        if usage is None:
            path = usage_path()
            usage = pd.read_csv(path) if path is not None else None
        self.usage = None if usage is None else shift_usage(usage, self.start, self.end)
        self.now = pd.Timestamp(now) if now is not None else self.start + pd.Timedelta("8D")

    def advance(self, delta: str | pd.Timedelta) -> pd.Timestamp:
        """Move ``now`` forward; the new now."""
        self.now = self.now + pd.Timedelta(delta)
        return self.now

    def clock(self) -> pd.Timestamp:
        """The demo's current time (pass as ``Service(clock=source.clock)``)."""
        return self.now

    def _samples(self, query: str) -> tuple[pd.Series, pd.Timedelta] | None:
        if (m := _NASA.match(query)) is not None:
            scale = float(m.group(1)) if m.group(1) else 1.0
            return pd.Series(self.demand[Y].to_numpy() * scale, index=self.demand[DS]), pd.Timedelta("5min")
        if (m := _USAGE.match(query)) is not None and self.usage is not None:
            rows = self.usage[self.usage[ID] == m.group(1)]
            return pd.Series(rows[m.group(2)].to_numpy(dtype=float), index=rows[DS]), pd.Timedelta("15min")
        return None

    def query_range(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
        *, id_labels: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        step = pd.Timedelta(step)
        if step <= pd.Timedelta(0):
            raise PermanentError(f"demo source: step {step} must be positive")
        found = self._samples(query.strip())
        stop = min(pd.Timestamp(end), self.now)
        if found is None or pd.Timestamp(start) > stop:
            return pd.DataFrame({ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns, UTC]"),
                                 Y: pd.Series(dtype=float)})
        series, native = found
        series = series[~series.index.duplicated(keep="last")].sort_index()
        grid = pd.date_range(pd.Timestamp(start), stop, freq=step)
        values = series.reindex(grid, method="ffill", tolerance=native).dropna()
        return pd.DataFrame({ID: query, DS: pd.DatetimeIndex(values.index).as_unit("ns"),
                             Y: values.to_numpy(dtype=float)})


def demo_registry(copies: int = 1, *, containers: bool = True) -> Registry:
    """``nasa/www`` (the NASA requests, 60 requests per 5 min per pod, 2..50 replicas, three containers sized
    from the Bitbrains VMs) plus ``copies - 1`` scaled copies ``nasa/www-2`` ... (demand x 1/k, no containers);
    each labelled with its demand ``unit``."""
    unit = {"unit": DEMAND_UNIT}
    specs = [WorkloadSpec(
        id=f"{DEMO_NAMESPACE}/www", query="nasa", namespace=DEMO_NAMESPACE, capacity_per_pod=60.0, labels=unit,
        target_utilisation=0.7, min_replicas=2, max_replicas=50,
        containers=tuple(ContainerSpec(name, f"usage/{vm}/cpu", f"usage/{vm}/memory", f"usage/{vm}/cpu_request",
                                       f"usage/{vm}/memory_request", pod="www") for name, vm in USAGE_VMS)
        if containers and usage_path() is not None else (),
    )]
    for k in range(2, copies + 1):
        specs.append(WorkloadSpec(id=f"{DEMO_NAMESPACE}/www-{k}", query=f"nasa*{1.0 / k:.4f}",
                                  namespace=DEMO_NAMESPACE, capacity_per_pod=60.0, min_replicas=1, max_replicas=50,
                                  labels=unit))
    return Registry(specs)


def demo_events() -> list[EventRecord]:
    """The trace's business events (Independence Day, STS-70 launch) as store records with stable ids."""
    out = []
    for row in nasa_events().itertuples(index=False):
        slug = re.sub(r"[^a-z0-9]+", "-", str(row.name).lower()).strip("-")
        out.append(EventRecord(id=f"{DEMO_NAMESPACE}/{slug}", name=str(row.name), kind=str(row.kind),
                               start=pd.Timestamp(str(row.start)), end=pd.Timestamp(str(row.end))))
    return out
