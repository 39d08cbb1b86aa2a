"""The PromQL tokeniser of the dashboard tests (``dash_promql``) on tricky queries: functions, aggregations with
``by`` before or after, vector matching with label lists, label matchers, ranges and subqueries, offsets and ``@``,
numbers and durations, Grafana variables, ``__name__`` matchers, comments; and the errors it must raise."""

from __future__ import annotations

import re

import pytest
from dash_promql import PromQLError, metric_names, split_arguments, tokenize, unknown_metrics, variable_query_metrics

from forecaster.contracts.metric_names import allowed_series

CASES = [
    ("up", {"up"}),
    ('sum by (le, job) (rate(forecaster_job_duration_seconds_bucket{job=~"$job"}[$__rate_interval]))',
     {"forecaster_job_duration_seconds_bucket"}),
    ("sum(rate(http_requests_total[5m])) by (instance, code)", {"http_requests_total"}),
    ("SUM BY (le) (x_bucket)", {"x_bucket"}),
    ("sum without (instance) (x)", {"x"}),
    ("a and on (workload) group_left (band, level) b", {"a", "b"}),
    ("a * on (x) group_left b", {"a", "b"}),
    ("a / ignoring (code) group_right c", {"a", "c"}),
    ('(label_join(kube_deployment_status_replicas{namespace=~"$namespace"}, "workload", "/", "namespace", '
     '"deployment") and on (workload) forecaster_replicas_forecast{workload=~"$workload"}) - on (workload) '
     'forecaster_replicas_reactive{workload=~"$workload"}',
     {"kube_deployment_status_replicas", "forecaster_replicas_forecast", "forecaster_replicas_reactive"}),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
    ("label_replace(x, `dst`, `$1`, `src`, `(.*)`)", {"x"}),
    ('x{rate="1", sum="2", on="3", by="4"}', {"x"}),
    (r'x{path="a\"b}c", code!~"5.."}', {"x"}),
    ("x offset 1d", {"x"}),
    ("x offset -5m + y offset 1h30m", {"x", "y"}),
    ("max_over_time(rate(x[5m])[1h:1m])", {"x"}),
    ("rate(x[$__rate_interval]) + increase(y[${__range}]) + rate(z[[[interval]]])", {"x", "y", "z"}),
    ("x @ start() - y @ 1609746000", {"x", "y"}),
    ('{__name__="forecaster_forecast", band="hi-95"}', {"forecaster_forecast"}),
    ('{"my.dotted.metric", job="a"}', {"my.dotted.metric"}),
    ("x * 1e3 + 0x1f - .5 / 2.5e-3 > Inf", {"x"}),
    ("x > bool 0 or vector(0) unless NaN", {"x"}),
    ("job:http_requests:rate5m", {"job:http_requests:rate5m"}),
    ("topk(5, x) or count_values(\"version\", build_info)", {"x", "build_info"}),
    ("histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))", {"x_bucket"}),
    ("time() - forecaster_forecast_issued_timestamp_seconds{workload=~\"$workload\"}",
     {"forecaster_forecast_issued_timestamp_seconds"}),
    ("x # the total\n+ y", {"x", "y"}),
    ("atan2(x, y)", {"x", "y"}),
    ("x atan2 y", {"x", "y"}),
    ("-x ^ 2 % 3", {"x"}),
    ("sort_desc(sum by (policy, step) (increase(e_total[$__range])) > 0)", {"e_total"}),
    ("time()", set()),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[f"case{i:02d}" for i in range(len(CASES))])
def test_metric_names(query: str, expected: set[str]) -> None:
    assert metric_names(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ratee(x[5m])", "unknown function 'ratee'"),
        ("Rate(x[5m])", "unknown function 'Rate'"),  # function names are case-sensitive
        ("sum(x", "unclosed '('"),
        ("x}", "unbalanced '}'"),
        ("rate(x[5m)]", "unbalanced ')'"),
        ('{__name__=~"forecaster_.*"}', "cannot be verified"),
        ("x ; y", "unexpected character ';'"),
        ("   ", "empty query"),
    ],
    ids=["typo-function", "capitalised-function", "unclosed", "stray-brace", "crossed", "regex-name", "bad-char",
         "empty"],
)  # fmt: skip
def test_metric_names_rejects(query: str, message: str) -> None:
    with pytest.raises(PromQLError, match=re.escape(message)):
        metric_names(query)


def test_an_unknown_metric_is_caught_against_the_exported_names() -> None:
    allowed = allowed_series()
    good = 'sum by (workload) (increase(forecaster_decisions_total{kind="replicas"}[5m]))'
    assert unknown_metrics(good, allowed) == set()
    typo = 'forecaster_forcast{band="hi-95"} - on (workload) forecaster_demand_actual'
    assert unknown_metrics(typo, allowed) == {"forecaster_forcast"}
    counter_without_total = "rate(forecaster_fallbacks[5m])"  # counters are exported as *_total
    assert unknown_metrics(counter_without_total, allowed) == {"forecaster_fallbacks"}
    assert unknown_metrics("rate(node_cpu_seconds_total[5m])", allowed) == {"node_cpu_seconds_total"}


def test_tokens_keep_strings_durations_and_variables_whole() -> None:
    kinds = [(t.kind, t.text) for t in tokenize('rate(x{a="1,2"}[1h30m]) offset 5m * $var')]
    assert ("string", '"1,2"') in kinds and ("duration", "1h30m") in kinds and ("duration", "5m") in kinds
    assert ("variable", "$var") in kinds


def test_split_arguments_ignores_commas_in_brackets_and_strings() -> None:
    assert split_arguments('x{a="1,2", b="3"}, label') == ['x{a="1,2", b="3"}', "label"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label_values(forecaster_forecast, workload)", {"forecaster_forecast"}),
        ('label_values(forecaster_predicted_cpu_cores{namespace=~"$namespace"}, pod)',
         {"forecaster_predicted_cpu_cores"}),
        ("label_values(namespace)", set()),
        ("label_names()", set()),
        ("query_result(topk(3, x))", {"x"}),
    ],
)  # fmt: skip
def test_variable_queries(query: str, expected: set[str]) -> None:
    assert variable_query_metrics(query) == expected


def test_variable_query_that_cannot_be_verified() -> None:
    with pytest.raises(PromQLError, match="cannot verify"):
        variable_query_metrics("metrics(forecaster_.*)")
    with pytest.raises(PromQLError, match="not a Grafana variable query"):
        variable_query_metrics("forecaster_forecast")
