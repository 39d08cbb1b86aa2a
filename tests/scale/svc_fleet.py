"""A small fleet behind the ``MetricsSource`` port for the service's scale tests: ``FakeMetricsSource`` (from
``forecaster.testing``) with a batching fake of ``PrometheusSource.query_batches`` on top, and the service built on
it (``InMemoryStore``, a registry of one query per workload, tiny models)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from fleet_support import FAST_LGBM, series

from forecaster.contracts.errors import PermanentError
from forecaster.contracts.frames import DS, ID
from forecaster.forecasting.executor import Executor
from forecaster.runtime.service.fetch import BATCH_LABEL
from forecaster.runtime.service.registry import Registry, WorkloadSpec
from forecaster.runtime.service.service import Service, build_service
from forecaster.runtime.settings import ServiceSettings
from forecaster.testing.metrics import FakeMetricsSource
from forecaster.testing.store import InMemoryStore

DAYS = 4.0
NOW = series(DAYS, "x", seed=0)[DS].iloc[-1] + pd.Timedelta("2min")
"""Two minutes after the fleet's last sample."""


class BatchingSource(FakeMetricsSource):
    """``FakeMetricsSource`` that also answers ``query_batches`` as Prometheus would: one recorded call per batch
    (``batch_calls``, the workload ids of each), each workload's rows from its own query, relabelled with its
    ``BATCH_LABEL``; a batch holding a query in ``bad`` fails as a whole (Prometheus rejects the union)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_calls: list[list[str]] = []
        self.bad: set[str] = set()

    def query_batches(
        self, build: Callable[[Sequence[Mapping[str, str]]], str], workloads: Sequence[Mapping[str, str]],
        start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta, *, by: Sequence[str],
        batch_size: int = 100, max_concurrency: int = 4,
        on_error: Callable[[Sequence[Mapping[str, str]], Exception], None] | None = None,
    ) -> pd.DataFrame:
        assert list(by) == [BATCH_LABEL]
        frames = []
        for i in range(0, len(workloads), batch_size):
            batch = workloads[i:i + batch_size]
            build(batch)  # the union query must build
            self.batch_calls.append([w[BATCH_LABEL] for w in batch])
            if any(w["query"] in self.bad for w in batch):
                error = PermanentError(f"prometheus rejected the query of batch {len(self.batch_calls)}")
                if on_error is None:
                    raise error
                on_error(batch, error)
                continue
            for w in batch:
                asked = len(self.calls)
                part = FakeMetricsSource.query_range(self, w["query"], start, end, step, id_labels=[])
                del self.calls[asked:]  # ``calls`` records the one-by-one queries only
                frames.append(part.assign(**{ID: w[BATCH_LABEL], BATCH_LABEL: w[BATCH_LABEL]}))
        if not frames:
            return pd.DataFrame({ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns, UTC]"),
                                 "y": pd.Series(dtype=float)})
        return pd.concat(frames, ignore_index=True)

    def query_range(self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
                    *, id_labels: Sequence[str] | None = None) -> pd.DataFrame:
        if query in self.bad:
            self.calls.append((query, start, end, step))
            raise PermanentError(f"prometheus rejected the query {query!r}")
        return super().query_range(query, start, end, step, id_labels=id_labels)


def fleet(n: int, source: FakeMetricsSource) -> Registry:
    """``n`` workloads ``w00``... with query ``q<i>``, each a noisy daily sine of ``DAYS`` days at its own level."""
    specs = []
    for i in range(n):
        frame = series(DAYS, f"w{i:02d}", seed=i, level=50.0 + 20 * i)
        source.add(f"q{i}", frame[[DS, "y"]])
        specs.append(WorkloadSpec(id=f"w{i:02d}", query=f"q{i}", freq="5min"))
    return Registry(specs)


def settings(tmp: Path, **changes: Any) -> ServiceSettings:
    """Tiny models (two members, two calibration windows), no rollout unless asked, history of ``DAYS``."""
    options = {"n_windows": 2, "members": ["seasonal", "lgbm"], "member_params": {"lgbm": dict(FAST_LGBM)}}
    base = ServiceSettings(store_url="sqlite:///unused.db", artefact_dir=tmp / "artefacts", history_days=DAYS - 0.5,
                           model_options=options, rollout=False)
    return base.with_(**changes)


def make_service(tmp: Path, n: int, *, source: FakeMetricsSource | None = None, executor: Executor | None = None,
                 **changes: Any) -> Service:
    """A service over ``n`` workloads of ``fleet`` (``source``: a ``BatchingSource`` by default)."""
    source = BatchingSource() if source is None else source
    registry = fleet(n, source)
    return build_service(settings(tmp, **changes), store=InMemoryStore(), source=source, registry=registry,
                         clock=lambda: NOW, executor=executor)


def forecasts(service: Service) -> dict[str, pd.DataFrame]:
    """Each workload's newest stored forecast frame."""
    out = {}
    for spec in service.registry:
        run = service.store.latest_forecast(spec.id)
        assert run is not None, spec.id
        out[spec.id] = run.frame
    return out
