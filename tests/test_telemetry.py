"""Telemetry: one collector per exported metric name, job timing records duration, outcome and last success."""

from __future__ import annotations

import pytest

from forecaster.contracts.metric_names import EXPORTED, allowed_series, series_names
from forecaster.runtime.telemetry import Telemetry


def _sample(t: Telemetry, name: str, labels: dict[str, str]) -> float | None:
    return t.registry.get_sample_value(name, labels)


def test_every_exported_metric_has_a_collector_and_appears_in_the_exposition() -> None:
    t = Telemetry()
    text = t.exposition().decode()
    for spec in EXPORTED:
        typed = {f"# TYPE {spec.name} {spec.kind}", f"# TYPE {spec.name}_total {spec.kind}"}
        assert any(line in text for line in typed), spec.name
        assert t[spec.name] is not None


def test_unknown_metric_name_is_refused_with_a_pointer() -> None:
    with pytest.raises(KeyError, match="metric_names"):
        Telemetry()["forecaster_made_up"]


def test_timed_records_success_duration_and_last_success() -> None:
    t = Telemetry()
    with t.timed("refresh"):
        pass
    assert _sample(t, "forecaster_job_runs_total", {"job_name": "refresh", "outcome": "success"}) == 1.0
    assert _sample(t, "forecaster_job_duration_seconds_count", {"job_name": "refresh"}) == 1.0
    assert (_sample(t, "forecaster_job_last_success_timestamp_seconds", {"job_name": "refresh"}) or 0) > 1.6e9


def test_timed_records_failure_and_reraises_without_touching_last_success() -> None:
    t = Telemetry()
    with pytest.raises(RuntimeError), t.timed("refit"):
        raise RuntimeError("boom")
    assert _sample(t, "forecaster_job_runs_total", {"job_name": "refit", "outcome": "failure"}) == 1.0
    assert _sample(t, "forecaster_job_last_success_timestamp_seconds", {"job_name": "refit"}) is None


def test_two_instances_do_not_share_a_registry() -> None:
    a, b = Telemetry(), Telemetry()
    a.gauge("forecaster_drift").labels(workload="w").set(1)
    assert _sample(b, "forecaster_drift", {"workload": "w"}) is None


def test_series_names_cover_counter_and_histogram_suffixes() -> None:
    names = allowed_series()
    assert "forecaster_decisions_total" in names
    assert "forecaster_job_duration_seconds_bucket" in names
    assert "forecaster_decisions" not in names  # counters are queried with _total
    assert "kube_pod_container_resource_requests" in names
    spec = next(s for s in EXPORTED if s.kind == "gauge")
    assert series_names(spec) == (spec.name,)
