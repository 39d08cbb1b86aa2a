"""Container CPU, memory, requests and OOM kills from a real Prometheus holding three Bitbrains VMs as containers
(``support.promserver.real_trace_data``), through the queries the controller runs, into ``forecaster.rightsize``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.promserver import USAGE_BUCKET, PromData

from forecaster import rightsize
from forecaster.adapters.prometheus import PrometheusSource, counter_rate
from forecaster.adapters.promql import fetch_container_usage, fetch_ooms
from forecaster.rightsizing.frames import validate_ooms, validate_usage

pytestmark = pytest.mark.integration

USAGE_COLUMNS = ["cpu", "memory", "cpu_request", "memory_request"]


def span(data: PromData) -> tuple[pd.Timestamp, pd.Timestamp]:
    expected = data.expected_usage()
    return expected["ds"].min() - USAGE_BUCKET, expected["ds"].max()


def with_cpu_rate(expected: pd.DataFrame) -> pd.DataFrame:
    """Rows where ``rate`` has two samples in its window: not the first bucket after a gap (one sample)."""
    after_gap = expected.groupby("unique_id")["ds"].diff() > USAGE_BUCKET
    return expected.loc[~after_gap.to_numpy()].reset_index(drop=True)


def test_usage_of_a_namespace_matches_the_trace(prom: PrometheusSource, prom_data: PromData) -> None:
    usage = fetch_container_usage(prom, "rnd", ".+", *span(prom_data), USAGE_BUCKET)
    expected = with_cpu_rate(prom_data.expected_usage().query("namespace == 'rnd'"))
    assert usage["unique_id"].unique().tolist() == ["rnd/vm001/main", "rnd/vm004/main"]  # no "" or POD
    assert usage[["unique_id", "ds", "namespace", "pod", "container"]].equals(
        expected[["unique_id", "ds", "namespace", "pod", "container"]])
    np.testing.assert_allclose(usage["cpu"], expected["cpu"], rtol=1e-9)
    for column in ("memory", "cpu_request", "memory_request"):
        np.testing.assert_array_equal(usage[column], expected[column], err_msg=column)
    assert len(usage) == 2 * 959 - 2  # 959 buckets per VM, minus the one after each gap


def test_pod_regex_and_namespace_select_containers(prom: PrometheusSource, prom_data: PromData) -> None:
    start, end = span(prom_data)
    only_vm1 = fetch_container_usage(prom, "rnd", "vm00[17]", start, end, USAGE_BUCKET)
    assert only_vm1["unique_id"].unique().tolist() == ["rnd/vm001/main"]
    batch = fetch_container_usage(prom, "batch", ".+", start, end, USAGE_BUCKET)
    assert batch["unique_id"].unique().tolist() == ["batch/vm007/main"]
    assert batch["cpu_request"].eq(1.0).all() and batch["memory_request"].eq(2.0**31).all()
    assert fetch_container_usage(prom, "nosuchns", ".+", start, end, USAGE_BUCKET).empty


def test_cpu_counter_reset_at_the_oom_kill_is_handled_server_side(prom: PrometheusSource,
                                                                   prom_data: PromData) -> None:
    kill_end = prom_data.ooms["ds"].iloc[0] + USAGE_BUCKET  # the counter restarted from zero in this bucket
    query = 'container_cpu_usage_seconds_total{namespace="rnd",pod="vm001",container="main"}'
    raw = prom.query_range(query, kill_end - USAGE_BUCKET, kill_end, USAGE_BUCKET)
    assert raw["y"].iloc[1] < raw["y"].iloc[0]  # the raw counter drops
    usage = fetch_container_usage(prom, "rnd", "vm001", kill_end - USAGE_BUCKET, kill_end, USAGE_BUCKET)
    source = prom_data.expected_usage().set_index(["unique_id", "ds"])["cpu"]
    assert usage["cpu"].iloc[-1] == pytest.approx(source[("rnd/vm001/main", kill_end)], rel=1e-9)


def test_counter_rate_of_the_raw_counter_matches_the_trace(prom: PrometheusSource, prom_data: PromData) -> None:
    query = 'container_cpu_usage_seconds_total{namespace="rnd",pod="vm001",container="main"}'
    raw = prom.query_range(query, *span(prom_data), USAGE_BUCKET, id_labels=("namespace", "pod", "container"))
    rates = counter_rate(raw)
    expected = prom_data.expected_usage().query("pod == 'vm001'").reset_index(drop=True)
    assert rates["ds"].tolist() == expected["ds"].tolist()
    # across the 30-minute gap the counter saw one bucket of use in two buckets' time: half the rate
    after_gap = (expected["ds"].diff() > USAGE_BUCKET).to_numpy()
    want = np.where(after_gap, expected["cpu"] / 2, expected["cpu"])
    np.testing.assert_allclose(rates["y"], want, rtol=1e-9)
    assert after_gap.sum() == 1


def test_ooms_give_the_kill_time_of_the_container(prom: PrometheusSource, prom_data: PromData) -> None:
    start, end = span(prom_data)
    kills = fetch_ooms(prom, "rnd", ".+", start, end, USAGE_BUCKET)
    assert kills.to_dict("records") == [{
        "unique_id": "rnd/vm001/main", "ds": prom_data.ooms["ds"].iloc[0] + USAGE_BUCKET,
        "namespace": "rnd", "pod": "vm001", "container": "main",
    }]
    assert fetch_ooms(prom, "batch", ".+", start, end, USAGE_BUCKET).empty


def test_fetched_frames_feed_rightsizing(prom: PrometheusSource, prom_data: PromData) -> None:
    start, end = span(prom_data)
    usage = fetch_container_usage(prom, "rnd", ".+", start, end, USAGE_BUCKET)
    kills = fetch_ooms(prom, "rnd", ".+", start, end, USAGE_BUCKET)
    checked = validate_ooms(kills, validate_usage(usage))
    assert checked["memory"].iloc[0] == usage["memory"].max()  # the kill happened at vm001's memory peak
    result = rightsize(usage, kills, now=end)
    assert set(result.recommendations["unique_id"]) == {"rnd/vm001/main", "rnd/vm004/main"}
    assert result.recommendations["target"].gt(0).all()
