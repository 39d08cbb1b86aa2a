"""``PrometheusSource.query_range`` against a real Prometheus holding the NASA requests and Bitbrains containers
(``conftest.py``): round trips, chunking past the 11,000-point limit, gaps, ids, bad queries."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from support.promserver import NASA_BUCKET, USAGE_BUCKET, PromData, PromServer

from forecaster.adapters.prometheus import PrometheusSource, regularise
from forecaster.adapters.promql import fetch_demand
from forecaster.contracts.errors import PermanentError

pytestmark = pytest.mark.integration

NASA = 'http_requests_total{namespace="nasa"}'


def test_raw_counter_round_trip_equals_the_source(prom: PrometheusSource, prom_data: PromData) -> None:
    expected = prom_data.nasa_counter()
    frame = prom.query_range(NASA, expected.index[0], expected.index[-1], NASA_BUCKET)
    assert frame.columns.tolist() == ["unique_id", "ds", "y", "namespace", "service"]
    assert (frame["unique_id"] == "nasa/ksc").all()  # all labels, sorted by name, __name__ left out
    assert str(frame["ds"].dtype) == "datetime64[ns, UTC]" and frame["y"].dtype == float
    assert frame["ds"].tolist() == expected.index.tolist()
    np.testing.assert_array_equal(frame["y"], expected.to_numpy())  # integers: exact


def test_server_side_rate_gives_back_requests_per_bucket(prom: PrometheusSource, prom_data: PromData) -> None:
    nasa = prom_data.nasa
    query = f"sum(rate({NASA}[6m])) * 300"  # one 5-minute interval per window: requests per bucket
    demand = fetch_demand(prom, "nasa/ksc", query, nasa["ds"].iloc[0], nasa["ds"].iloc[-1] + NASA_BUCKET,
                          NASA_BUCKET)
    assert demand["ds"].tolist() == (nasa["ds"] + NASA_BUCKET).tolist()
    assert (demand["unique_id"] == "nasa/ksc").all()
    np.testing.assert_allclose(demand["y"], nasa["y"], rtol=1e-9)


def test_id_labels_choose_the_unique_id(prom: PrometheusSource, prom_data: PromData) -> None:
    start = prom_data.nasa["ds"].iloc[0]
    frame = prom.query_range(NASA, start, start + pd.Timedelta("1h"), NASA_BUCKET, id_labels=("service", "pod"))
    assert set(frame["unique_id"]) == {"ksc/"}  # a missing label counts as ""


def test_more_than_11000_points_are_fetched_in_chunks(prom: PrometheusSource, prom_data: PromData) -> None:
    """9 days at a 1-minute step: 12,961 points, more than one request may carry."""
    expected = prom_data.nasa_counter()
    start, end, step = expected.index[0], expected.index[-1], pd.Timedelta("1min")
    assert len(prom.chunks(start, end, step)) == 2
    frame = prom.query_range(NASA, start, end, step)
    grid = pd.date_range(start, end, freq=step)
    assert len(grid) == 12_961 and frame["ds"].tolist() == grid.tolist()
    assert not frame.duplicated(["unique_id", "ds"]).any()
    # a gauge-style read returns the latest sample at or before each minute (samples every 5 minutes)
    np.testing.assert_array_equal(frame["y"], expected.reindex(grid, method="ffill").to_numpy())


def test_many_small_chunks_equal_one_big_query(prom_server: PromServer, prom: PrometheusSource,
                                               prom_data: PromData) -> None:
    start = prom_data.nasa["ds"].iloc[0] + pd.Timedelta("7min30s")  # off the grid: aligned up to 04:08
    end = start + pd.Timedelta(days=7)  # 10,080 points: one request at max_points=11,000
    step = pd.Timedelta("1min")
    with PrometheusSource(prom_server.url, max_points=997) as small:
        chunks = small.chunks(start, end, step)
        assert len(chunks) == 11
        assert all(b[0] - a[1] == 60_000 for a, b in itertools.pairwise(chunks))  # next minute
        many = small.query_range(f"rate({NASA}[10m])", start, end, step)
    one = prom.query_range(f"rate({NASA}[10m])", start, end, step)
    assert len(prom.chunks(start, end, step)) == 1
    assert many["ds"].iloc[0] == start.ceil("1min") and len(many) == 10_080
    pd.testing.assert_frame_equal(many, one)


def test_gaps_stay_gaps_and_regularise_marks_them(prom: PrometheusSource, prom_data: PromData) -> None:
    expected = prom_data.expected_usage()
    vm1 = expected.loc[expected["pod"] == "vm001"].reset_index(drop=True)
    query = 'container_memory_working_set_bytes{namespace="rnd",pod="vm001",container="main"}'
    frame = prom.query_range(query, vm1["ds"].iloc[0], vm1["ds"].iloc[-1], USAGE_BUCKET, id_labels=("pod",))
    gap = vm1["ds"].iloc[int(np.flatnonzero(vm1["ds"].diff() > USAGE_BUCKET)[0])] - USAGE_BUCKET
    assert gap not in set(frame["ds"]) and not frame["y"].isna().any()
    assert frame["ds"].tolist() == vm1["ds"].tolist()
    np.testing.assert_array_equal(frame["y"], vm1["memory"])
    clean, report = regularise(frame, "15min")
    assert report.gaps_filled == {"vm001": 1}
    assert clean.loc[clean["is_outage"], "ds"].tolist() == [gap]
    np.testing.assert_array_equal(clean.loc[~clean["is_outage"], "y"], vm1["memory"])


def test_a_fractional_timeout_is_sent_in_a_form_prometheus_accepts(prom_server: PromServer,
                                                                   prom_data: PromData) -> None:
    start = prom_data.nasa["ds"].iloc[0]
    with PrometheusSource(prom_server.url, timeout_s=2.5) as source:
        frame = source.query_range(NASA, start, start + pd.Timedelta("1h"), NASA_BUCKET)
    assert len(frame) == 13


def test_unknown_metric_gives_an_empty_frame(prom: PrometheusSource, prom_data: PromData) -> None:
    start = prom_data.nasa["ds"].iloc[0]
    frame = prom.query_range("no_such_metric", start, start + pd.Timedelta("1h"), NASA_BUCKET)
    assert frame.empty and frame.columns.tolist() == ["unique_id", "ds", "y"]
    assert str(frame["ds"].dtype) == "datetime64[ns, UTC]"


def test_bad_promql_is_permanent_and_names_the_query(prom: PrometheusSource, prom_data: PromData) -> None:
    start = prom_data.nasa["ds"].iloc[0]
    query = "sum(rate(http_requests_total[5m]"
    with pytest.raises(PermanentError) as info:
        prom.query_range(query, start, start + pd.Timedelta("1h"), NASA_BUCKET)
    message = str(info.value)
    assert query in message and prom.url in message and "bad_data" in message and "parse error" in message


def test_series_that_share_a_unique_id_are_permanent(prom: PrometheusSource, prom_data: PromData) -> None:
    start = prom_data.usage["ds"].iloc[0] + USAGE_BUCKET
    query = 'container_memory_working_set_bytes{namespace="rnd"}'
    with pytest.raises(PermanentError, match="both have unique_id 'rnd'"):
        prom.query_range(query, start, start + pd.Timedelta("1h"), USAGE_BUCKET, id_labels=("namespace",))
