"""``k8s/prometheusrule.yaml``: the alerts the issue lists exist, read only metrics and labels forecaster exports
(``contracts.metric_names``), pass ``promtool check rules``, and ``promtool test rules`` shows each one firing on
the failure it names (rendered annotations included) and none on a healthy system (``tests/k8s/alerts_test.yaml``).

By hand: ``python -c "import yaml,sys; yaml.safe_dump(yaml.safe_load(open('k8s/prometheusrule.yaml'))['spec'],
open('tests/k8s/rules.yaml','w'))" && promtool test rules tests/k8s/alerts_test.yaml``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.binaries import require_binary
from support.crd_subsets import PROMETHEUS_RULE_CRD
from support.k8s_schemas import K8S_DIR, kustomize_resources, validate_custom

from forecaster.contracts.metric_names import EXPORTED, series_names

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboards"))
from dash_promql import metric_names

RULE_FILE = K8S_DIR / "prometheusrule.yaml"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
RULE = yaml.safe_load(RULE_FILE.read_text())
ALERTS = {r["alert"]: r for g in RULE["spec"]["groups"] for r in g["rules"]}
REQUIRED = ("ForecasterForecastStale", "ForecasterBreakerOpen", "ForecasterAccuracyBelowTarget",
            "ForecasterControllerNotLeading", "ForecasterDecisionsFailing")
LABELS = {n: set(spec.labels) for spec in EXPORTED for n in series_names(spec)}
"""Series name -> the labels forecaster puts on it."""


def test_the_alerts_the_issue_asks_for_exist_and_are_installed() -> None:
    assert set(REQUIRED) <= set(ALERTS)
    assert RULE in kustomize_resources(), "kubectl apply -k k8s/ installs it"
    validate_custom(RULE, PROMETHEUS_RULE_CRD)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_is_routable_and_explained(name: str) -> None:
    rule = ALERTS[name]
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40
    assert re.fullmatch(r"\d+[mh]", rule["for"]), "a for: so one scrape never pages"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alerts_read_only_exported_metrics_and_their_labels(name: str) -> None:
    expr = ALERTS[name]["expr"]
    used = metric_names(expr)
    assert used, f"{name} reads no metric"
    assert used <= set(LABELS), f"{name}: {used - set(LABELS)} is not exported (forecaster/contracts/metric_names.py)"
    known = set().union(*(LABELS[m] for m in used)) | {"le"}
    for clause in re.findall(r"\bby \(([^)]*)\)", expr):
        assert {label.strip() for label in clause.split(",")} <= known, f"{name}: by ({clause})"
    for label in re.findall(r"([a-z_]+)=~?\"", expr):
        assert label in known, f"{name}: matcher on {label!r}"
    templated = set(re.findall(r"\$labels\.([a-z_]+)", yaml.safe_dump(ALERTS[name]["annotations"])))
    assert templated <= known | {"workload"}, f"{name}: annotation uses {templated - known}"


def _rules_next_to_the_unit_tests(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(RULE["spec"]))
    return Path(shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name))


def test_promtool_check_rules(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    _rules_next_to_the_unit_tests(tmp_path)
    result = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_fire_each_alert_on_its_failure_only(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    tests = _rules_next_to_the_unit_tests(tmp_path)
    result = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    cases: list[dict[str, Any]] = [c for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
                                   for c in t["alert_rule_test"]]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert fired == set(ALERTS), "every alert has a test that makes it fire"
    assert quiet == set(ALERTS), "and one where it stays quiet"


def test_the_unit_tests_would_notice_a_broken_alert(tmp_path: Path) -> None:
    """Raise the stale limit from 30 to 90 minutes: the test that expects the alert at 40 minutes fails."""
    promtool = require_binary("promtool")
    tests = _rules_next_to_the_unit_tests(tmp_path)
    broken = yaml.safe_load(yaml.safe_dump(RULE["spec"]))
    for group in broken["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == "ForecasterForecastStale":
                rule["expr"] = rule["expr"].replace("> 1800", "> 5400")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(broken))
    result = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode != 0 and "ForecasterForecastStale" in result.stdout + result.stderr
