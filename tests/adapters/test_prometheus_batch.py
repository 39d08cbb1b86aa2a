"""``PrometheusSource.query_batches`` against a real Prometheus: N workloads come back in ceil(N / batch) range
queries with the same frames as fetching them one by one, other label combinations are left out, and the
existing error handling applies; plus the batch query builder's worked examples (no server).

The data: 12 workloads (3 namespaces x 4 names, 2 pods each) of request counters, every one the bundled NASA
trace's first 2 days at 5 minutes shifted by ``i`` hours and scaled by ``1 + i / 4`` (real shapes, different
levels and phases); one more workload (``shop/extra``) matches the batches' label regexes but is never asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import httpx
import numpy as np
import pandas as pd
import pytest
from support.promserver import PromServer, demand_family, start_prometheus, to_openmetrics

from forecaster.adapters.prometheus import PrometheusSource
from forecaster.adapters.promql import batch_demand_query, regex_alternation, workload_id
from forecaster.contracts.errors import InputError, PermanentError

BUCKET = pd.Timedelta("5min")
BY = ("namespace", "workload")
METRIC = "http_requests_total"
NAMESPACES = ("shop", "search", "pay")
NAMES = ("web", "api", "cart", "auth")
WORKLOADS = [{"namespace": ns, "workload": name} for ns in NAMESPACES for name in NAMES]


def _query(batch: Sequence[Mapping[str, str]]) -> str:
    return batch_demand_query(METRIC, BY, batch, window="6m")


# -- builders (no server) ------------------------------------------------------------------------------------------
def test_batch_query_worked_example() -> None:
    query = batch_demand_query(METRIC, BY, [{"namespace": "shop", "workload": "web"},
                                            {"namespace": "pay", "workload": "a.b"}], window="6m")
    assert query == ('sum by (namespace, workload) (rate(http_requests_total{namespace=~"pay|shop",'
                     'workload=~"a\\\\.b|web"}[6m]))')
    assert batch_demand_query("queue_depth", ["namespace"], [{"namespace": "x"}], aggregation="max") == (
        'max by (namespace) (queue_depth{namespace=~"x"})')


@pytest.mark.parametrize(("values", "expected"), [(["b", "a", "b"], "a|b"), (["x|y", "1+1"], "1\\+1|x\\|y")],
                         ids=["sorted-unique", "escaped"])
def test_regex_alternation(values: list[str], expected: str) -> None:
    assert regex_alternation(values) == expected


@pytest.mark.parametrize("bad", [[], [{"namespace": "shop"}]], ids=["empty", "missing-label"])
def test_batch_query_refuses_incomplete_batches(bad: list[dict[str, str]]) -> None:
    with pytest.raises(ValueError):
        batch_demand_query(METRIC, BY, bad, window="6m")


def test_workload_id_joins_the_labels() -> None:
    assert workload_id({"namespace": "shop", "workload": "web", "x": "1"}, BY) == "shop/web"


# -- a real Prometheus ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    from forecaster.datasets import load_nasa_5min

    nasa = load_nasa_5min()
    base = nasa.loc[nasa["ds"] < nasa["ds"].iloc[0] + pd.Timedelta(days=3), ["ds", "y"]].reset_index(drop=True)
    families = []
    for i, w in enumerate([*WORKLOADS, {"namespace": "shop", "workload": "extra"}]):
        y = np.roll(base["y"].to_numpy(), 12 * i)[: 2 * 288] * (1 + i / 4)
        frame = pd.DataFrame({"ds": base["ds"].iloc[: 2 * 288], "y": y})
        for pod in (0, 1):  # two pods: the batch query sums them per workload
            share = 0.6 if pod == 0 else 0.4
            families.append(demand_family(frame.assign(y=np.round(frame["y"] * share)), METRIC,
                                          {**w, "pod": f"{w['workload']}-{pod}"}, BUCKET))
    with start_prometheus(tmp_path_factory.mktemp("prom-batch"), to_openmetrics(*families)) as srv:
        srv.start_ds = base["ds"].iloc[0]  # type: ignore[attr-defined]
        yield srv


@pytest.fixture
def counted(server: PromServer) -> Iterator[tuple[PrometheusSource, list[str]]]:
    """A source whose HTTP client records every query it sends."""
    sent: list[str] = []

    def record(request: httpx.Request) -> None:
        sent.append(httpx.QueryParams(request.content.decode()).get("query", ""))

    with httpx.Client(timeout=10, event_hooks={"request": [record]}) as client:
        yield PrometheusSource(server.url, client=client, sleep=lambda _s: None), sent


@pytest.mark.integration
@pytest.mark.parametrize(("batch_size", "concurrency"), [(5, 2), (12, 1), (1, 4)], ids=["5-of-12", "all", "single"])
def test_batches_give_the_one_by_one_frames_in_fewer_queries(
    server: PromServer, counted: tuple[PrometheusSource, list[str]], batch_size: int, concurrency: int
) -> None:
    source, sent = counted
    start = server.start_ds + pd.Timedelta("1h")  # type: ignore[attr-defined]
    end = start + pd.Timedelta("36h")
    one_by_one = pd.concat(
        [source.query_range(_query([w]), start, end, BUCKET, id_labels=BY) for w in WORKLOADS], ignore_index=True
    ).sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    assert len(sent) == len(WORKLOADS)
    sent.clear()
    batched = source.query_batches(_query, WORKLOADS, start, end, BUCKET, by=BY, batch_size=batch_size,
                                   max_concurrency=concurrency)
    assert len(sent) == math.ceil(len(WORKLOADS) / batch_size)
    assert set(batched["unique_id"]) == {workload_id(w, BY) for w in WORKLOADS}  # shop/extra matched, left out
    assert len(batched) == len(WORKLOADS) * (len(pd.date_range(start, end, freq=BUCKET)))
    pd.testing.assert_frame_equal(batched, one_by_one)


@pytest.mark.integration
def test_a_bad_batch_raises_the_query_error(server: PromServer) -> None:
    start = server.start_ds  # type: ignore[attr-defined]
    with PrometheusSource(server.url, sleep=lambda _s: None) as source:
        with pytest.raises(PermanentError, match="rejected the query"):
            source.query_batches(lambda batch: "sum by (namespace) (", WORKLOADS, start, start + pd.Timedelta("1h"),
                                 BUCKET, by=BY, batch_size=6)
        with pytest.raises(InputError):
            source.query_batches(_query, WORKLOADS, start, start, BUCKET, by=BY, batch_size=0)
        empty = source.query_batches(_query, [], start, start + pd.Timedelta("1h"), BUCKET, by=BY)
        assert empty.empty and list(empty.columns[:3]) == ["unique_id", "ds", "y"]
