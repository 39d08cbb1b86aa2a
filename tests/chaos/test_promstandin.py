"""The Prometheus stand-in answers the service's batched history reads (``fetch.demand_histories``: a tagged union of
each workload's query, issue 21) with every workload's series, as a real Prometheus would. Without it every refresh
and refit of ``benchmarks/chaos.py`` failed with "no history" (the untagged answer matched no workload)."""

from __future__ import annotations

import pandas as pd
from promstandin import PromStandIn, value

from forecaster.adapters.prometheus import PrometheusSource
from forecaster.runtime.service.fetch import demand_histories
from forecaster.runtime.service.registry import WorkloadSpec

END = pd.Timestamp("2026-12-07 12:00", tz="UTC")


def spec(name: str) -> WorkloadSpec:
    return WorkloadSpec(id=f"shop/{name}", query=f'sum(rate(http_requests_total{{service="{name}"}}[5m]))')


def test_batched_history_reads_get_every_workload_of_the_batch() -> None:
    specs = [spec(f"svc-{i}") for i in range(3)]
    with PromStandIn() as prom:
        fetched = demand_histories(PrometheusSource(prom.url), specs, END - pd.Timedelta(hours=1), END,
                                   batch_size=2, concurrency=2)
    assert fetched is not None and set(fetched) == {s.id for s in specs}
    for i, s in enumerate(specs):
        frame = fetched[s.id]
        assert isinstance(frame, pd.DataFrame) and len(frame) == 13, frame
        assert frame["y"].iloc[-1] == value(f"svc-{i}", END.timestamp())


def test_a_single_query_is_answered_as_before() -> None:
    with PromStandIn() as prom:
        body = prom.matrix('sum(rate(http_requests_total{service="svc-0"}[5m]))', 0.0, 600.0, 300.0)
    [series] = body["data"]["result"]
    assert series["metric"] == {"service": "svc-0"} and len(series["values"]) == 3
