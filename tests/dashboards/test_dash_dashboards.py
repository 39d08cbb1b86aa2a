"""The Grafana dashboards in ``dashboards/``: generated from ``dashboards/generate.py`` (committed files up to
date), structurally valid (required keys, schema 39, unique panel ids, non-overlapping grid, a datasource and a
query on every panel, variables defined and used), querying only metrics the service exports or standard
kube-state-metrics/cAdvisor names, and syntactically valid PromQL for a real ``promtool``. Every check is also
shown to catch a broken dashboard."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dash_checks import (
    DASHBOARDS,
    all_panels,
    all_problems,
    committed,
    grid_problems,
    load_generator,
    metric_problems,
    queries,
    structure_problems,
    variable_problems,
)
from support.binaries import require_binary

from forecaster.contracts.metric_names import allowed_series

ALLOWED = allowed_series()
NAMES = ("forecaster-demand.json", "forecaster-scaling.json", "forecaster-resources.json", "forecaster-operations.json")


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return committed()


def test_the_four_dashboards_are_committed(docs: dict[str, dict[str, Any]]) -> None:
    assert sorted(docs) == sorted(NAMES)


def test_committed_files_are_what_generate_py_writes(tmp_path: Path) -> None:
    gen = load_generator()
    for name, build in gen.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text(encoding="utf-8") == gen.render(build()), f"{name}: run generate.py"
    assert gen.main(["--check"]) == 0
    assert gen.main(["--out", str(tmp_path)]) == 0
    (tmp_path / NAMES[0]).write_text("{}\n", encoding="utf-8")
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1  # a stale file is caught


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_has_no_problems(docs: dict[str, dict[str, Any]], name: str) -> None:
    assert all_problems(docs[name], ALLOWED) == []


def test_uids_and_titles_are_unique_and_cover_the_issue(docs: dict[str, dict[str, Any]]) -> None:
    assert len({d["uid"] for d in docs.values()}) == len(docs)
    assert len({d["title"] for d in docs.values()}) == len(docs)
    exprs = " ".join(e for d in docs.values() for _, e in queries(d))
    for needle in ('forecaster_forecast{', "forecaster_demand_actual", "forecaster_replicas_forecast",
                   "forecaster_replicas_reactive", "kube_deployment_status_replicas",
                   "kube_horizontalpodautoscaler_status_desired_replicas", "forecaster_predicted_cpu_cores",
                   "forecaster_recommendation_memory_bytes", "kube_pod_container_resource_requests",
                   "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                   "forecaster_accuracy_coverage_ratio", "increase(forecaster_decisions_total",
                   "forecaster_fallbacks_total",
                   "forecaster_job_duration_seconds_bucket", "forecaster_controller_leader",
                   "forecaster_controller_step_duration_seconds", "forecaster_controller_policy_errors_total"):
        assert needle in exprs, needle  # fmt: skip
    variables = {v["name"] for d in docs.values() for v in d["templating"]["list"]}
    assert {"datasource", "workload", "namespace"} <= variables


def test_every_metric_the_service_exports_has_a_panel(docs: dict[str, dict[str, Any]]) -> None:
    from forecaster.contracts.metric_names import EXPORTED

    exprs = " ".join(e for d in docs.values() for _, e in queries(d))
    missing = [spec.name for spec in EXPORTED if spec.name not in exprs]
    assert missing == []


# -- every check catches what it is for ------------------------------------------------------------------------
def broken(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)


def test_structure_problems_are_caught(docs: dict[str, dict[str, Any]]) -> None:
    doc = broken(docs["forecaster-demand.json"])
    panels = [p for p in all_panels(doc) if p["type"] != "row"]
    panels[1]["id"] = panels[0]["id"]
    del panels[2]["datasource"]
    panels[3]["targets"] = []
    panels[4]["type"] = "graph"  # the old, removed panel type
    doc["schemaVersion"] = 16
    del doc["__inputs"]
    found = "\n".join(structure_problems(doc))
    for needle in ("duplicates", "datasource None", "no target", "type 'graph'", "schemaVersion is 16", "__inputs"):
        assert needle in found, needle


def test_grid_problems_are_caught(docs: dict[str, dict[str, Any]]) -> None:
    doc = broken(docs["forecaster-scaling.json"])
    first, second = doc["panels"][1], doc["panels"][2]
    second["gridPos"] = dict(first["gridPos"], x=first["gridPos"]["x"] + 1)
    doc["panels"][3]["gridPos"]["x"] = 20  # 20 + its width > 24
    found = grid_problems(doc)
    assert any("overlaps" in p for p in found) and any("outside the 24-column grid" in p for p in found)


def test_variable_problems_are_caught(docs: dict[str, dict[str, Any]]) -> None:
    doc = broken(docs["forecaster-resources.json"])
    doc["panels"][1]["targets"][0]["expr"] += ' * on () group_left max(up{cluster="$cluster"})'
    doc["templating"]["list"].append(dict(doc["templating"]["list"][1], name="unused"))
    found = variable_problems(doc)
    assert "variable $cluster is referenced but not defined" in found
    assert "variable $unused is defined but never used" in found


def test_unknown_metrics_are_caught(docs: dict[str, dict[str, Any]]) -> None:
    doc = broken(docs["forecaster-operations.json"])
    panel = next(p for p in doc["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = 'rate(node_cpu_seconds_total{mode="idle"}[5m]) + forecaster_job_runs'
    doc["templating"]["list"][1]["query"] = "label_values(forecaster_jobs_total, job)"
    found = "\n".join(metric_problems(doc, ALLOWED))
    assert "['forecaster_job_runs', 'node_cpu_seconds_total']" in found
    assert "['forecaster_jobs_total']" in found


# -- the queries are valid PromQL for a real Prometheus --------------------------------------------------------
def as_promql(expr: str) -> str:
    """A panel query with Grafana's variables replaced by values Prometheus accepts."""
    expr = re.sub(r"\$\{?__(rate_interval|interval)\}?", "5m", expr)
    expr = re.sub(r"\$\{?__range\}?", "1h", expr)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[^}]*)?\}?", ".*", expr)


def test_promtool_accepts_every_query(docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = [{"record": f"dashboard:query{i}", "expr": as_promql(expr)}
             for i, (_, expr) in enumerate(q for d in docs.values() for q in queries(d))]  # fmt: skip
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    path = tmp_path / "bad.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [
        {"record": "bad:query", "expr": "sum by (le) rate(x[5m])"}]}]}), encoding="utf-8")  # fmt: skip
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode != 0
