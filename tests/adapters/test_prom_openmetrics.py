"""The test-support side: OpenMetrics text, counter fixtures, container families, promtool and server life cycle."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from support.promserver import (
    Family,
    PromServer,
    backfill,
    container_families,
    counter_frame,
    start_prometheus,
    to_openmetrics,
)

T0 = pd.Timestamp("2013-08-01T00:00Z")
BUCKET = pd.Timedelta("15min")


def stamps(*minutes: float) -> pd.Series:
    return pd.Series([T0 + pd.Timedelta(minutes=m) for m in minutes])


def test_openmetrics_text_uses_seconds_sorts_each_series_and_ends_with_eof() -> None:
    frame = pd.DataFrame({"ds": stamps(15, 0, 0), "value": [2.0, 1.0, 7.5], "pod": ["b", "b", 'a"\\']})
    text = to_openmetrics(Family("up_total", "counter", frame, help="Line\nbreak"))
    assert text.splitlines() == [
        "# TYPE up counter",
        "# HELP up Line\\nbreak",
        'up_total{pod="a\\"\\\\"} 7.5 1375315200.000',
        'up_total{pod="b"} 1.0 1375315200.000',
        'up_total{pod="b"} 2.0 1375316100.000',
        "# EOF",
    ]


def test_openmetrics_numbers_round_trip_exactly() -> None:
    values = [0.1 + 0.2, 1e300, float("nan"), float("inf"), 3.0]
    frame = pd.DataFrame({"ds": stamps(0, 1, 2, 3, 4) + pd.Timedelta("1500ms"), "value": values})
    lines = to_openmetrics(Family("g", "gauge", frame)).splitlines()[1:-1]
    assert [line.split()[1] for line in lines] == ["0.30000000000000004", "1e+300", "NaN", "+Inf", "3.0"]
    assert lines[0].split()[2] == "1375315201.500"


@pytest.mark.parametrize(
    ("family", "message"),
    [(Family("x", "counter", pd.DataFrame({"ds": stamps(0), "value": [1.0]})), "_total"),
     (Family("x", "summary", pd.DataFrame({"ds": stamps(0), "value": [1.0]})), "kind"),
     (Family("x", "gauge", pd.DataFrame({"ds": stamps(0, 0), "value": [1.0, 2.0]})), "same time"),
     (Family("x", "gauge", pd.DataFrame({"ds": [pd.Timestamp("2013-08-01")], "value": [1.0]})), "tz-aware")],
    ids=["counter-name", "kind", "duplicate", "naive"],
)
def test_openmetrics_rejects_what_promtool_would_mangle(family: Family, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_openmetrics(family)


def test_counter_frame_starts_at_initial_resets_to_zero_and_skips_gaps() -> None:
    ds = stamps(0, 15, 45, 60)  # the bucket at 30 is missing
    out = counter_frame(ds, [1.0, 2.0, 4.0, 8.0], BUCKET, resets=[T0 + pd.Timedelta("60min")], initial=100.0)
    assert out["ds"].tolist() == stamps(0, 15, 30, 60, 75).tolist()
    assert out["value"].tolist() == [100.0, 101.0, 103.0, 107.0, 8.0]


def usage_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "unique_id": "ns/p/c", "ds": stamps(0, 15, 30), "cpu": [0.5, 1.0, 0.25], "memory": [1e8, 2e8, 3e8],
        "cpu_request": 1.0, "memory_request": 2.0**30, "namespace": "ns", "pod": "p", "container": "c",
    })


def test_container_families_write_cadvisor_and_kube_state_metrics() -> None:
    ooms = pd.DataFrame({"unique_id": ["ns/p/c"], "ds": [T0 + BUCKET]})
    fams = {f.name: f.frame for f in container_families(usage_rows(), BUCKET, ooms, cgroup_noise=False)}
    cpu = fams["container_cpu_usage_seconds_total"]
    assert cpu["value"].tolist() == [0.0, 450.0, 900.0, 1125.0]  # reset in the kill's bucket
    memory = fams["container_memory_working_set_bytes"]
    assert memory["ds"].tolist() == stamps(15, 30, 45).tolist()  # stamped at bucket ends
    requests = fams["kube_pod_container_resource_requests"]
    assert set(zip(requests["resource"], requests["unit"], requests["value"], strict=True)) == {
        ("cpu", "core", 1.0), ("memory", "byte", 2.0**30)}
    assert fams["kube_pod_container_status_restarts_total"]["value"].tolist() == [0.0, 1.0, 1.0]
    reason = fams["kube_pod_container_status_last_terminated_reason"]
    assert reason["ds"].tolist() == stamps(30, 45).tolist() and (reason["reason"] == "OOMKilled").all()


def test_container_families_add_pod_level_and_pause_noise() -> None:
    fams = {f.name: f.frame for f in container_families(usage_rows(), BUCKET)}
    memory = fams["container_memory_working_set_bytes"]
    assert sorted(memory["container"].unique()) == ["", "POD", "c"]
    pod_level = memory.loc[memory["container"] == ""]
    np.testing.assert_array_equal(pod_level["value"], [1e8, 2e8, 3e8])


def test_backfill_raises_with_promtool_stderr(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="EOF"):
        backfill('# TYPE x gauge\nx{a="b"} 1 100\n', tmp_path / "data")


@pytest.mark.integration
def test_server_starts_serves_and_stops(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ds": stamps(0, 1), "value": [1.0, 2.0], "job": "a"})
    server = start_prometheus(tmp_path, to_openmetrics(Family("g", "gauge", frame)))
    with server:
        assert isinstance(server, PromServer) and server.url.startswith("http://127.0.0.1:")
        answer = httpx.get(f"{server.url}/api/v1/query", params={"query": "g", "time": "1375315260"}).json()
        assert answer["data"]["result"][0]["value"] == [1375315260, "2"]
    assert server.process.poll() is not None
    server.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/-/ready")
