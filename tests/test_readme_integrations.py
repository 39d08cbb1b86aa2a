"""The README's operator sections stay true: the integration table names the four integrations and each row's
files exist; the GitOps section configures Argo CD by managed-fields manager with the field manager the adapter
uses; the KEDA section says when to use it; every repository path these sections name exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from forecaster.adapters.kube import FIELD_MANAGER

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    nxt = README.find("\n### ", start + len(title))
    ends = [e for e in (end, nxt) if e != -1]
    return README[start:min(ends) if ends else len(README)]


def test_the_integration_table_names_the_four_integrations() -> None:
    table = section("## Which integration to pick")
    rows = [line for line in table.splitlines() if line.startswith("| **")]
    assert [re.match(r"\| \*\*([^*]+)\*\*", r).group(1) for r in rows] == [  # type: ignore[union-attr]
        "HPA floor", "KEDA scaler", "VPA recommender", "API only"]
    for row in rows:
        assert row.count(" | ") == 4, row  # situation, what reaches the cluster, runs, limits
    for path in re.findall(r"`(k8s/[a-z/]*)`", table):
        assert (ROOT / path).exists(), path


def test_the_gitops_section_matches_what_the_adapter_writes() -> None:
    text = section("### GitOps: Argo CD and Flux")
    snippet = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))  # type: ignore[union-attr]
    (ignore,) = snippet["spec"]["ignoreDifferences"]
    assert (ignore["group"], ignore["kind"], ignore["managedFieldsManagers"]) == (
        "autoscaling", "HorizontalPodAutoscaler", [FIELD_MANAGER])
    assert "RespectIgnoreDifferences=true" in snippet["spec"]["syncPolicy"]["syncOptions"]
    assert "Flux" in text and "spec.minReplicas" in text


def test_the_keda_section_says_when_to_use_it() -> None:
    text = section("### KEDA: `forecaster keda-scaler`")
    assert "When to use which" in text and "10 % tolerance" in text
    for path in re.findall(r"`((?:k8s|forecaster|tests)/[\w./-]+)`", text):
        assert (ROOT / path).exists(), path


def test_the_store_and_alert_paragraphs_name_real_files() -> None:
    for title in ("### Store migrations: `forecaster db upgrade`", "### GitOps: Argo CD and Flux"):
        for path in re.findall(r"`((?:k8s|forecaster|tests)/[\w./*-]+)`", section(title)):
            assert list(ROOT.glob(path)), path
    assert (ROOT / "k8s" / "prometheusrule.yaml").exists() and "k8s/prometheusrule.yaml" in README
