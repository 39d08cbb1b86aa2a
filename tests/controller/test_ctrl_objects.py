"""Reading HPAs (own floor, reactive floor from metrics or status), Kubernetes quantities, status conditions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from forecaster.contracts.errors import InputError, PermanentError
from forecaster.contracts.quantity import format_cpu, format_memory, parse_quantity
from forecaster.cycle.hpa import (
    ORIGINAL_ANNOTATION,
    POLICY_ANNOTATION,
    metric_replicas,
    original_floor,
    reactive_floor,
)
from forecaster.cycle.state import fmt_time, parse_time, set_condition


def hpa(min_replicas: int | None = 2, annotations: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"maxReplicas": 20}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {"metadata": {"name": "web", "annotations": annotations or {}}, "spec": spec, "status": status}


OURS = {ORIGINAL_ANNOTATION: "2", POLICY_ANNOTATION: "shop/web"}


@pytest.mark.parametrize(
    ("obj", "status", "expected"),
    [
        (hpa(3), {}, 3),                                                       # never patched: its minReplicas
        (hpa(None), {}, 1),                                                    # unset: the API default 1
        (hpa(12, OURS), {}, 2),                                                # patched: the annotation
        (hpa(12, {POLICY_ANNOTATION: "shop/web"}), {"hpaOriginalMinReplicas": 4}, 4),  # annotation lost: status
        (hpa(5), {"hpaOriginalMinReplicas": 4}, 5),                            # not ours: the status is stale
    ],
    ids=["unpatched", "default", "annotation", "status", "stale-status"],
)
def test_original_floor(obj: dict[str, Any], status: dict[str, Any], expected: int) -> None:
    assert original_floor(obj, "shop/web", status) == expected


def test_an_hpa_of_another_policy_is_refused() -> None:
    with pytest.raises(PermanentError, match="managed by policy shop/other"):
        original_floor(hpa(5, {POLICY_ANNOTATION: "shop/other"}), "shop/web")


def _metrics_hpa(current: int, metrics: list[dict[str, Any]], currents: list[dict[str, Any]]) -> dict[str, Any]:
    obj = hpa(2, currentReplicas=current, desiredReplicas=current, currentMetrics=currents)
    obj["spec"]["metrics"] = metrics
    return obj


CPU_70 = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
RPS_50 = {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue",
                                                                         "averageValue": "50"}}}


def _cpu(pct: int) -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": pct}}}


def _rps(value: str) -> dict[str, Any]:
    return {"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": value}}}


@pytest.mark.parametrize(
    ("current", "metrics", "currents", "expected"),
    [
        (4, [CPU_70], [_cpu(105)], 6),               # the worked example: ceil(4 * 105 / 70)
        (4, [CPU_70], [_cpu(75)], 4),                # within the 10 % tolerance: unchanged
        (10, [CPU_70], [_cpu(14)], 2),               # down: ceil(10 * 0.2)
        (4, [CPU_70, RPS_50], [_cpu(70), _rps("150")], 12),   # the largest over metrics
        (4, [RPS_50], [_rps("75500m")], 7),          # quantities: 75.5 / 50 * 4 = 6.04 -> 7
        (0, [CPU_70], [_cpu(100)], None),            # no pods: not computable
        (4, [CPU_70], [_rps("10")], None),           # no current value for the target's metric
    ],
    ids=["up", "tolerance", "down", "max-over-metrics", "quantity", "no-pods", "unmatched"],
)
def test_metric_replicas_follows_the_hpa_ratio_rule(current: int, metrics: list[dict[str, Any]],
                                                     currents: list[dict[str, Any]], expected: int | None) -> None:
    assert metric_replicas(_metrics_hpa(current, metrics, currents)) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (hpa(2, desiredReplicas=7, currentReplicas=5), (7, "desiredReplicas")),
        (hpa(2, currentReplicas=5), (5, "currentReplicas")),
        (hpa(3), (3, "spec.minReplicas")),
        (hpa(12, OURS, desiredReplicas=12), (2, "pinned")),
        (hpa(12, OURS, desiredReplicas=15), (15, "desiredReplicas")),
    ],
    ids=["desired", "current", "min", "pinned-at-our-floor", "above-our-floor"],
)
def test_reactive_floor_chain(obj: dict[str, Any], expected: tuple[int, str]) -> None:
    value, source = reactive_floor(obj, "shop/web", 2)
    assert value == expected[0]
    assert expected[1] in source


def test_reactive_floor_prefers_the_metrics() -> None:
    obj = _metrics_hpa(4, [CPU_70], [_cpu(105)])
    obj["metadata"]["annotations"] = OURS
    obj["spec"]["minReplicas"] = 12
    obj["status"]["desiredReplicas"] = 12
    assert reactive_floor(obj, "shop/web", 2) == (6, "currentMetrics")


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", 0.25), ("1", 1.0), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1e3", 1000.0),
     ("2k", 2000.0), ("100M", 1e8), (3, 3.0), ("+.5", 0.5)],
)
def test_parse_quantity(text: object, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "1.5Xi", "12 Mi", True])
def test_bad_quantities(text: object) -> None:
    with pytest.raises(InputError):
        parse_quantity(text)


@pytest.mark.parametrize(("cores", "text"), [(0.25, "250m"), (0.2501, "251m"), (2.0, "2000m"), (0.0, "1m"),
                                             (0.0004, "1m")])
def test_format_cpu_rounds_up_to_millicores(cores: float, text: str) -> None:
    assert format_cpu(cores) == text


@pytest.mark.parametrize(("num_bytes", "text"), [(2**28, "256Mi"), (3e8, "287Mi"), (1.0, "1Mi"), (0.0, "1Mi")])
def test_format_memory_rounds_up_to_mebibytes(num_bytes: float, text: str) -> None:
    assert format_memory(num_bytes) == text
    assert parse_quantity(text) >= num_bytes


def test_formatted_quantities_match_the_vpa_schema_pattern() -> None:
    import re

    pattern = re.compile(r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+"
                         r"(\.[0-9]*)?)|(\.[0-9]+))))?$")
    for text in (format_cpu(0.3333), format_memory(123456789.0)):
        assert pattern.match(text), text


def test_times_round_trip_in_rfc3339() -> None:
    now = pd.Timestamp("2024-03-10T12:00:00.7Z")
    assert fmt_time(now) == "2024-03-10T12:00:00Z"
    assert fmt_time(now.value / 1e9) == "2024-03-10T12:00:00Z"
    assert parse_time("2024-03-10T12:00:00Z") == pd.Timestamp("2024-03-10T12:00:00Z")
    assert parse_time("garbage") is None and parse_time(None) is None


def test_conditions_move_their_transition_time_only_on_a_flip() -> None:
    t0, t1, t2 = (pd.Timestamp("2024-03-10T12:00:00Z") + pd.Timedelta(minutes=m) for m in (0, 1, 2))
    conds = set_condition([], "Ready", True, "Reconciled", "ok", t0, 1)
    conds = set_condition(conds, "Ready", True, "Reconciled", "still ok", t1, 2)
    assert conds == [{"type": "Ready", "status": "True", "observedGeneration": 2,
                      "lastTransitionTime": "2024-03-10T12:00:00Z", "reason": "Reconciled", "message": "still ok"}]
    conds = set_condition(conds, "Ready", False, "HPANotFound", "gone", t2, 2)
    conds = set_condition(conds, "ForecastFresh", True, "ForecastIssued", "ok", t2, 2)
    assert [(c["type"], c["status"], c["lastTransitionTime"]) for c in conds] == [
        ("ForecastFresh", "True", "2024-03-10T12:02:00Z"), ("Ready", "False", "2024-03-10T12:02:00Z")]
