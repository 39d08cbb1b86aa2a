"""Unit tests of the PromQL builders, the step/window helpers, ``counter_rate``, ``regularise``, ``oom_kills`` and
the fetches over a fake ``MetricsSource`` (no server)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from forecaster.adapters import promql
from forecaster.adapters.prometheus import counter_rate, regularise
from forecaster.contracts.errors import FrequencyError, PermanentError
from forecaster.rightsizing.frames import validate_usage

T0 = pd.Timestamp("2024-03-04T00:00Z")


def ts(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


# -- escaping and builders ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "literal"),
    [("shop", '"shop"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("a\nb", '"a\\nb"'), ("", '""'),
     ('x"} or vector(1) #', '"x\\"} or vector(1) #"')],
    ids=["plain", "quote", "backslash", "newline", "empty", "injection"],
)
def test_quote_escapes_promql_strings(value: str, literal: str) -> None:
    assert promql.quote(value) == literal


def test_matcher_and_selector_check_names_and_operators() -> None:
    assert promql.matcher("pod", "=~", "web-.*") == 'pod=~"web-.*"'
    assert promql.selector("up", promql.matcher("job", "=", "a")) == 'up{job="a"}'
    with pytest.raises(ValueError, match="label name"):
        promql.matcher("bad-label", "=", "x")
    with pytest.raises(ValueError, match="operator"):
        promql.matcher("pod", "==", "x")
    with pytest.raises(ValueError, match="metric name"):
        promql.selector("rate(x)")


def test_container_cpu_query_sums_real_containers_only() -> None:
    assert promql.container_cpu_query("shop", "web-.*", "330s") == (
        'sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{namespace="shop",'
        'pod=~"web-.*",container!="",container!="POD"}[330s]))'
    )


def test_container_memory_query_takes_the_max_working_set() -> None:
    assert promql.container_memory_query("shop", "web-.*") == (
        'max by (namespace, pod, container) (container_memory_working_set_bytes{namespace="shop",'
        'pod=~"web-.*",container!="",container!="POD"})'
    )


@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_container_requests_query(resource: str) -> None:
    assert promql.container_requests_query("shop", ".+", resource) == (
        'max by (namespace, pod, container) (kube_pod_container_resource_requests{namespace="shop",pod=~".+",'
        f'resource="{resource}"}})'
    )


def test_oom_queries_use_kube_state_metrics() -> None:
    assert promql.container_restarts_query("shop", ".+") == (
        'max by (namespace, pod, container) (kube_pod_container_status_restarts_total{namespace="shop",pod=~".+"})'
    )
    assert promql.container_oom_reason_query("shop", ".+") == (
        'max by (namespace, pod, container) (kube_pod_container_status_last_terminated_reason{namespace="shop",'
        'pod=~".+",reason="OOMKilled"})'
    )


def test_builders_escape_label_values() -> None:
    query = promql.container_memory_query('evil"}', "a|b")
    assert 'namespace="evil\\"}"' in query


@pytest.mark.parametrize(
    "call",
    [lambda: promql.container_cpu_query("", ".+", "1m"), lambda: promql.container_memory_query("ns", ""),
     lambda: promql.container_requests_query("ns", ".+", "gpu"), lambda: promql.demand_query("  ")],
    ids=["no-namespace", "no-pod-regex", "unknown-resource", "empty-demand"],
)
def test_builders_reject_bad_arguments(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_demand_query_is_passed_through() -> None:
    q = 'sum(rate(http_requests_total{namespace="shop",service="web"}[5m]))'
    assert promql.demand_query(f"  {q}\n") == q


# -- steps and windows ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("freq", "seconds"), [("5min", 300), ("1h", 3600), ("15s", 15), ("1D", 86400)])
def test_step_for_is_the_forecast_grid(freq: str, seconds: int) -> None:
    assert promql.step_for(freq) == pd.Timedelta(seconds=seconds)


def test_step_for_rejects_calendar_frequencies() -> None:
    with pytest.raises(FrequencyError):
        promql.step_for("MS")


@pytest.mark.parametrize(
    ("step", "scrape", "window"),
    [("5min", "30s", "330s"), ("15s", "30s", "2m"), ("15min", "30s", "930s"), ("1h", "1min", "61m"),
     ("5min", "5min", "20m")],
    ids=["5min-step", "short-step-4x-scrape", "15min-step", "hourly", "slow-scrape"],
)
def test_rate_window_worked_examples(step: str, scrape: str, window: str) -> None:
    assert promql.rate_window(step, scrape) == window


@pytest.mark.parametrize(("td", "text"), [("1h", "1h"), ("6min", "6m"), ("330s", "330s"), ("1500ms", "2s")])
def test_duration_literals(td: str, text: str) -> None:
    assert promql.duration(td) == text


def test_rate_window_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        promql.rate_window("0s")


# -- counter_rate ------------------------------------------------------------------------------------------------
def test_counter_rate_worked_example_with_a_reset() -> None:
    frame = pd.DataFrame({"unique_id": "a", "ds": [ts(0), ts(1), ts(2)], "y": [100.0, 160.0, 30.0]})
    out = counter_rate(frame)
    assert out["ds"].tolist() == [ts(1), ts(2)]
    assert out["y"].tolist() == [1.0, 0.5]


def test_counter_rate_per_series_unsorted_and_uneven_intervals() -> None:
    frame = pd.DataFrame({
        "unique_id": ["b", "a", "b", "a", "a"],
        "ds": [ts(5), ts(2), ts(0), ts(0), ts(1)],
        "y": [600.0, 90.0, 0.0, 0.0, 30.0],
        "pod": ["p2", "p1", "p2", "p1", "p1"],
    })
    out = counter_rate(frame)
    assert out["unique_id"].tolist() == ["a", "a", "b"]
    np.testing.assert_allclose(out["y"], [0.5, 1.0, 2.0])  # 30/60, 60/60, 600/300
    assert out["pod"].tolist() == ["p1", "p1", "p2"]


def test_naive_difference_would_go_negative_at_a_reset() -> None:
    frame = pd.DataFrame({"unique_id": "a", "ds": [ts(0), ts(1), ts(2), ts(3)], "y": [500.0, 560.0, 6.0, 66.0]})
    out = counter_rate(frame)
    assert (frame["y"].diff().dropna() < 0).any()
    np.testing.assert_allclose(out["y"], [1.0, 0.1, 1.0])
    assert (out["y"] >= 0).all()


# -- regularise -------------------------------------------------------------------------------------------------
def test_regularise_marks_the_gap_as_outage_and_keeps_observed_values() -> None:
    ds = [ts(0), ts(5), ts(15), ts(20)]
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1.0, 2.0, 4.0, np.nan], "pod": "p"})
    out, report = regularise(frame, "5min")
    assert out.columns.tolist() == ["unique_id", "ds", "y", "is_outage"]
    assert out["ds"].tolist() == [ts(m) for m in (0, 5, 10, 15, 20)]
    assert out["is_outage"].tolist() == [False, False, True, False, True]
    assert out["y"].iloc[:2].tolist() == [1.0, 2.0] and out["y"].iloc[3] == 4.0
    assert out["y"].iloc[2] == pytest.approx(3.0)  # no day/week earlier: linear interpolation
    assert report.gaps_filled == {"a": 1} and report.bad_values == {"a": 1}


def test_regularise_rejects_off_grid_stamps() -> None:
    frame = pd.DataFrame({"unique_id": "a", "ds": [ts(0), ts(1)], "y": [1.0, 2.0]})
    with pytest.raises(FrequencyError):
        regularise(frame, "5min")


# -- oom_kills ---------------------------------------------------------------------------------------------------
def test_oom_kills_needs_a_restart_and_the_oom_reason() -> None:
    restarts = pd.DataFrame({
        "unique_id": ["a"] * 5 + ["b"] * 3,
        "ds": [ts(m) for m in (0, 1, 2, 3, 4)] + [ts(m) for m in (0, 1, 2)],
        "y": [2.0, 2.0, 3.0, 3.0, 5.0, 0.0, 1.0, 1.0],
        "pod": ["pa"] * 5 + ["pb"] * 3,
    })
    # a: OOM reason from minute 2 on; the rise at 4 (by two restarts) is one kill. b: restarted, not OOM.
    reason = pd.DataFrame({"unique_id": ["a", "a", "a", "b"], "ds": [ts(2), ts(3), ts(4), ts(1)],
                           "y": [1.0, 1.0, 1.0, 0.0]})
    kills = promql.oom_kills(restarts, reason)
    assert kills["unique_id"].tolist() == ["a", "a"]
    assert kills["ds"].tolist() == [ts(2), ts(4)]
    assert kills["pod"].tolist() == ["pa", "pa"]


def test_oom_kills_before_the_range_are_not_seen() -> None:
    restarts = pd.DataFrame({"unique_id": ["a", "a"], "ds": [ts(0), ts(1)], "y": [4.0, 4.0]})
    reason = pd.DataFrame({"unique_id": ["a", "a"], "ds": [ts(0), ts(1)], "y": [1.0, 1.0]})
    assert promql.oom_kills(restarts, reason).empty


# -- fetches over a fake source -----------------------------------------------------------------------------------
class FakeSource:
    """A ``MetricsSource`` answering fixed frames by query substring; records the calls."""

    def __init__(self, answers: dict[str, pd.DataFrame]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, Sequence[str] | None]] = []

    def query_range(self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
                    *, id_labels: Sequence[str] | None = None) -> pd.DataFrame:
        self.calls.append((query, id_labels))
        for key, frame in self.answers.items():
            if key in query:
                return frame.copy()
        return pd.DataFrame({"unique_id": pd.Series([], dtype=object),
                             "ds": pd.Series([], dtype="datetime64[ns, UTC]"), "y": pd.Series([], dtype=float)})


def container(pod: str, minutes: Sequence[float], values: Sequence[float], name: str = "app") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": f"shop/{pod}/{name}", "ds": [ts(m) for m in minutes], "y": list(values),
                         "namespace": "shop", "pod": pod, "container": name})


def test_fetch_container_usage_joins_and_fills_requests() -> None:
    source = FakeSource({
        "container_cpu_usage_seconds_total": pd.concat([container("web-1", [5, 10, 15, 20], [0.1, 0.2, 0.3, 0.4]),
                                                        container("web-2", [5, 10], [1.0, 1.1])]),
        "container_memory_working_set_bytes": pd.concat([container("web-1", [5, 10, 20], [1e8, 2e8, 4e8]),
                                                         container("web-2", [5, 10], [5e8, 6e8])]),
        'resource="cpu"': container("web-1", [10, 15], [0.5, 0.5]),  # web-1 sample at 5 and 20 missing
        'resource="memory"': container("web-1", [5], [2**30]),
    })
    start, end, step = ts(0), ts(20), pd.Timedelta("5min")
    usage = promql.fetch_container_usage(source, "shop", "web-.*", start, end, step)
    assert usage.columns.tolist() == ["unique_id", "ds", "cpu", "memory", "cpu_request", "memory_request",
                                      "namespace", "pod", "container"]
    web1 = usage.loc[usage["pod"] == "web-1"]
    assert web1["ds"].tolist() == [ts(5), ts(10), ts(20)]  # 15: CPU without memory, not a usage sample
    assert web1["cpu"].tolist() == [0.1, 0.2, 0.4]
    assert web1["cpu_request"].tolist() == [0.5, 0.5, 0.5]  # previous value, else next
    assert web1["memory_request"].tolist() == [2.0**30] * 3
    web2 = usage.loc[usage["pod"] == "web-2"]
    assert web2["cpu_request"].tolist() == [0.0, 0.0]  # BestEffort: no request series at all
    assert source.calls[0] == (promql.container_cpu_query("shop", "web-.*", "330s"), promql.CONTAINER_LABELS)
    validate_usage(usage)  # the rightsizing contract accepts it


def test_fetch_container_usage_warns_without_kube_state_metrics(caplog: pytest.LogCaptureFixture) -> None:
    source = FakeSource({"container_cpu": container("w", [5], [0.1]), "container_memory": container("w", [5], [1e8])})
    with caplog.at_level(logging.WARNING):
        usage = promql.fetch_container_usage(source, "shop", ".+", ts(0), ts(5), pd.Timedelta("5min"))
    assert usage["cpu_request"].tolist() == [0.0]
    assert "kube-state-metrics" in caplog.text


def test_fetch_container_usage_of_nothing_is_an_empty_usage_frame() -> None:
    usage = promql.fetch_container_usage(FakeSource({}), "shop", ".+", ts(0), ts(5), pd.Timedelta("5min"))
    assert usage.empty
    assert list(usage.columns)[:6] == ["unique_id", "ds", "cpu", "memory", "cpu_request", "memory_request"]
    assert str(usage["ds"].dtype) == "datetime64[ns, UTC]"


def test_fetch_demand_names_the_workload() -> None:
    frame = pd.DataFrame({"unique_id": "", "ds": [ts(0), ts(5)], "y": [1.0, 2.0]})
    out = promql.fetch_demand(FakeSource({"sum": frame}), "shop/web", "sum(x)", ts(0), ts(5), pd.Timedelta("5min"))
    assert out.columns.tolist() == ["unique_id", "ds", "y"]
    assert out["unique_id"].tolist() == ["shop/web", "shop/web"]
    assert out["y"].tolist() == [1.0, 2.0]


def test_fetch_demand_with_several_series_is_permanent() -> None:
    frame = pd.DataFrame({"unique_id": ["a", "b"], "ds": [ts(0), ts(0)], "y": [1.0, 2.0]})
    with pytest.raises(PermanentError, match=r"returns 2 series.*sum"):
        promql.fetch_demand(FakeSource({"x": frame}), "shop/web", "rate(x[5m])", ts(0), ts(5), pd.Timedelta("5min"))


def test_fetch_ooms_from_fake_source() -> None:
    source = FakeSource({
        "restarts": container("web-1", [0, 5, 10], [0.0, 1.0, 1.0]),
        "last_terminated_reason": container("web-1", [5, 10], [1.0, 1.0]),
    })
    kills = promql.fetch_ooms(source, "shop", ".+", ts(0), ts(10), pd.Timedelta("5min"))
    assert kills.to_dict("records") == [
        {"unique_id": "shop/web-1/app", "ds": ts(5), "namespace": "shop", "pod": "web-1", "container": "app"}]
    empty = promql.fetch_ooms(FakeSource({}), "shop", ".+", ts(0), ts(10), pd.Timedelta("5min"))
    assert empty.empty and empty.columns.tolist() == ["unique_id", "ds", "namespace", "pod", "container"]
