"""Exported metric names and labels follow Prometheus conventions (``contracts.metric_names``): no label collides
with a scrape target label (so no ``exported_`` label and ``honorLabels: false``), ratios end in ``_ratio``, units
are in the names; and the API's cardinality limit counts what it leaves out instead of dropping it silently."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forecaster.api.gauges import count_dropped, iter_workloads
from forecaster.contracts.metric_names import EXPORTED, MAX_EXPORTED_WORKLOADS, TARGET_LABELS, MetricSpec
from forecaster.contracts.ports import Page, Workload
from forecaster.runtime.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[1]
UNITS = ("_seconds", "_bytes", "_cores", "_ratio", "_timestamp_seconds")
UNITLESS = {"forecaster_forecast", "forecaster_forecast_peak", "forecaster_demand_actual", "forecaster_accuracy_mae",
            "forecaster_accuracy_backtest_mae", "forecaster_drift", "forecaster_controller_leader",
            "forecaster_exporter_workloads"}
"""Gauges in the workload's own demand unit (requests/s, whatever the query returns), booleans and counts."""


@pytest.mark.parametrize("spec", EXPORTED, ids=lambda s: s.name)
def test_no_label_collides_with_a_target_label(spec: MetricSpec) -> None:
    assert not set(spec.labels) & set(TARGET_LABELS), f"{spec.name}: rename {set(spec.labels) & set(TARGET_LABELS)}"
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", label) and not label.startswith("__") for label in spec.labels)


@pytest.mark.parametrize("spec", EXPORTED, ids=lambda s: s.name)
def test_names_follow_the_conventions(spec: MetricSpec) -> None:
    assert re.fullmatch(r"forecaster_[a-z0-9_]+", spec.name)
    assert not spec.name.endswith("_total"), "counters are declared without _total (prometheus_client adds it)"
    if "fraction" in spec.help.lower() or "0..1" in spec.help:
        assert spec.name.endswith("_ratio"), f"{spec.name} is a ratio: name it ..._ratio"
    if spec.kind == "gauge" and not spec.name.startswith("forecaster_replicas"):
        assert spec.name.endswith(UNITS) or spec.name in UNITLESS, f"{spec.name}: say its unit"
    if spec.kind == "histogram":
        assert spec.name.endswith("_seconds")


def test_coverage_is_a_ratio_and_the_old_names_are_gone() -> None:
    names = {s.name for s in EXPORTED}
    assert "forecaster_accuracy_coverage_ratio" in names and "forecaster_accuracy_coverage" not in names
    labels = {label for s in EXPORTED for label in s.labels}
    assert {"workload_namespace", "workload_pod", "workload_container", "job_name"} <= labels


@pytest.mark.parametrize("path", ["k8s/servicemonitor.yaml", "k8s/service/servicemonitor.yaml"])
def test_service_monitors_do_not_honour_labels(path: str) -> None:
    monitor = yaml.safe_load((ROOT / path).read_text())
    assert [e.get("honorLabels") for e in monitor["spec"]["endpoints"]] == [False]


def test_dashboards_never_select_the_renamed_labels_on_our_series() -> None:
    """The service's series are selected by their own label names; the target-label names appear only on
    kube-state-metrics / cAdvisor series or as the target of ``label_replace``."""
    own = {s.name for s in EXPORTED}
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        for name, selector in re.findall(r"\b(forecaster_[a-z0-9_]+)\{([^}]*)\}", path.read_text()):
            base = re.sub(r"_(total|bucket|sum|count)$", "", name)
            assert base in own, f"{path.name}: {name}"
            used = set(re.findall(r"([a-z_]+)\s*[=!]~?", selector.replace('\\"', '"')))
            assert not used & set(TARGET_LABELS), f"{path.name}: {name}{{{selector}}}"


# -- cardinality limit ------------------------------------------------------------------------------------------
@dataclass
class _Workloads:
    """Just enough of ``ports.Store`` for ``iter_workloads``: ``n`` workloads, with a log of the pages asked."""

    n: int
    asked: list[tuple[int, int]] = field(default_factory=list)

    def list_workloads(self, *, limit: int = 100, offset: int = 0) -> Page[Workload]:
        self.asked.append((limit, offset))
        ids = [f"ns/w{i:05d}" for i in range(self.n)][offset:offset + limit]
        now = pd.Timestamp("2024-01-01", tz="UTC")
        return Page(items=[Workload(id=i, created_at=now) for i in ids], total=self.n, limit=limit, offset=offset)


def _sample(t: Telemetry, name: str) -> float | None:
    return t.registry.get_sample_value(name)


@pytest.mark.parametrize(("n", "limit", "exported", "dropped"), [
    (7, 10, 7, 0), (1200, 1000, 1000, 200), (1200, 1200, 1200, 0), (3, 0, 0, 3), (0, 5, 0, 0),
], ids=["under", "over", "exactly", "zero-limit", "empty"])
def test_the_limit_counts_the_workloads_it_leaves_out(n: int, limit: int, exported: int, dropped: int) -> None:
    store = _Workloads(n)
    total: list[int] = []
    got = list(iter_workloads(store, limit, total))  # type: ignore[arg-type]
    assert len(got) == exported and total == [n]
    assert len(store.asked) == max(1, -(-min(n, limit) // 500)), "no page is read twice to learn the total"
    t = Telemetry()
    assert count_dropped(t, len(got), total[0], limit) == dropped
    assert _sample(t, "forecaster_exporter_workloads") == exported
    assert (_sample(t, "forecaster_exporter_workloads_dropped_total") or 0.0) == dropped
    count_dropped(t, len(got), total[0], limit)
    assert (_sample(t, "forecaster_exporter_workloads_dropped_total") or 0.0) == 2 * dropped, "a counter: sums up"


def test_the_default_limit_is_documented() -> None:
    assert MAX_EXPORTED_WORKLOADS == 10_000
    readme = (ROOT / "README.md").read_text()
    assert "10,000 workloads" in readme and "forecaster_exporter_workloads_dropped_total" in readme
