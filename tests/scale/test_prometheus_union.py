"""The service's batched reads against a real Prometheus (issue 21): N workloads, each with its own arbitrary demand
query, read in ceil(N / batch) range queries (``promql.tagged_union_query`` through
``PrometheusSource.query_batches``) give the frames reading each query alone gives; a batch with one rejected query
is re-read one by one and only that workload fails, with its own error.

Data: 6 workloads of request counters, the bundled NASA trace's first 2 days at 5 minutes shifted by ``i`` hours and
scaled by ``1 + i / 3``, two pods each; queries of different shapes (summed rates, one pod, a scaled sum)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
from support.promserver import PromServer, demand_family, start_prometheus, to_openmetrics

from forecaster.adapters.prometheus import PrometheusSource
from forecaster.adapters.promql import tagged_union_query
from forecaster.contracts.errors import PermanentError
from forecaster.runtime.service.fetch import demand_histories, demand_history
from forecaster.runtime.service.registry import WorkloadSpec

BUCKET = pd.Timedelta("5min")
METRIC = "http_requests_total"
NAMES = [f"app{i}" for i in range(6)]
QUERIES = [
    f'sum(rate({METRIC}{{workload="app0"}}[6m])) * 300',
    f'sum by (workload) (rate({METRIC}{{workload="app1"}}[6m]))',
    f'rate({METRIC}{{workload="app2", pod="app2-0"}}[6m])',
    f'sum(rate({METRIC}{{workload="app3"}}[6m]))',
    f'max(rate({METRIC}{{workload="app4"}}[6m]))',
    f'sum(increase({METRIC}{{workload="app5"}}[10m]))',
]


def test_tagged_union_query_worked_example() -> None:
    assert tagged_union_query({"a/b": 'sum(x{n="1"})', "c": "up"}, "forecaster_workload") == (
        'label_replace((sum(x{n="1"})), "forecaster_workload", "a/b", "", "") or '
        'label_replace((up), "forecaster_workload", "c", "", "")')
    with pytest.raises(ValueError):
        tagged_union_query({}, "w")
    with pytest.raises(ValueError):
        tagged_union_query({"a": "up"}, "not-a-label")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    from forecaster.datasets import load_nasa_5min

    nasa = load_nasa_5min()
    base = nasa.loc[nasa["ds"] < nasa["ds"].iloc[0] + pd.Timedelta(days=3), ["ds", "y"]].reset_index(drop=True)
    families = []
    for i, name in enumerate(NAMES):
        y = np.roll(base["y"].to_numpy(), 12 * i)[: 2 * 288] * (1 + i / 3)
        frame = pd.DataFrame({"ds": base["ds"].iloc[: 2 * 288], "y": y})
        for pod in (0, 1):
            share = 0.6 if pod == 0 else 0.4
            families.append(demand_family(frame.assign(y=np.round(frame["y"] * share)), METRIC,
                                          {"workload": name, "pod": f"{name}-{pod}"}, BUCKET))
    with start_prometheus(tmp_path_factory.mktemp("prom-union"), to_openmetrics(*families)) as srv:
        srv.start_ds = base["ds"].iloc[0]  # type: ignore[attr-defined]
        yield srv


@pytest.fixture
def counted(server: PromServer) -> Iterator[tuple[PrometheusSource, list[str]]]:
    sent: list[str] = []

    def record(request: httpx.Request) -> None:
        sent.append(httpx.QueryParams(request.content.decode()).get("query", ""))

    with httpx.Client(timeout=10, event_hooks={"request": [record]}) as client:
        yield PrometheusSource(server.url, client=client, sleep=lambda _s: None, retries=0), sent


def _specs(queries: list[str]) -> list[WorkloadSpec]:
    return [WorkloadSpec(id=f"shop/{n}", query=q, freq="5min") for n, q in zip(NAMES, queries, strict=True)]


@pytest.mark.integration
@pytest.mark.parametrize("batch", [4, 6, 1], ids=["4-of-6", "all", "single"])
def test_batched_reads_give_the_one_by_one_frames(server: PromServer, counted: tuple[PrometheusSource, list[str]],
                                                   batch: int) -> None:
    source, sent = counted
    start = server.start_ds + pd.Timedelta("1h")  # type: ignore[attr-defined]
    end = start + pd.Timedelta("30h")
    specs = _specs(QUERIES)
    alone = {spec.id: demand_history(source, spec, start, end) for spec in specs}
    assert len(sent) == len(specs)
    sent.clear()
    fetched = demand_histories(source, specs, start, end, batch_size=batch, concurrency=2)
    assert fetched is not None and len(sent) == math.ceil(len(specs) / batch)
    for spec in specs:
        got = fetched[spec.id]
        assert isinstance(got, pd.DataFrame) and len(got) == len(pd.date_range(start, end, freq=BUCKET))
        pd.testing.assert_frame_equal(got, alone[spec.id])


@pytest.mark.integration
def test_one_rejected_query_fails_alone(server: PromServer, counted: tuple[PrometheusSource, list[str]]) -> None:
    source, sent = counted
    start = server.start_ds + pd.Timedelta("1h")  # type: ignore[attr-defined]
    queries = list(QUERIES)
    queries[2] = f"sum(rate({METRIC}[6m]"  # unbalanced: Prometheus rejects it, and the union holding it
    fetched = demand_histories(source, _specs(queries), start, start + pd.Timedelta("2h"), batch_size=3,
                               concurrency=2)
    assert fetched is not None
    assert isinstance(fetched["shop/app2"], PermanentError)
    assert all(isinstance(fetched[f"shop/{n}"], pd.DataFrame) and len(fetched[f"shop/{n}"]) for n in NAMES
               if n != "app2")
    assert len(sent) == 2 + 3  # two batches, then the failed batch's three workloads one by one
