"""The workloads file: a full entry round-trips into ``WorkloadSpec``/``PolicySettings``; every kind of mistake is an
``InputError`` naming the entry and the field; the demo registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecaster.contracts.errors import InputError
from forecaster.runtime.service.demo import demo_registry
from forecaster.runtime.service.registry import load_workloads, workload_spec

FULL = """
workloads:
  - id: shop/web
    query: sum(rate(http_requests_total{service="web"}[5m])) * 300
    freq: 5min
    capacity_per_pod: 500
    target_utilisation: 0.6
    min_replicas: 2
    max_replicas: 40
    quantile: hi-95
    labels: {team: shop}
    containers:
      - name: app
        cpu: cpu_q
        memory: mem_q
        cpu_request: cpu_req_q
        memory_request: mem_req_q
  - id: batch
    query: sum(jobs_pending)
    freq: 15min
"""


def test_svc_registry_reads_a_full_file(tmp_path: Path) -> None:
    path = tmp_path / "workloads.yaml"
    path.write_text(FULL)
    registry = load_workloads(path)
    assert registry.ids == ["shop/web", "batch"] and len(registry) == 2 and "batch" in registry
    web = registry["shop/web"]
    assert web.containers[0].name == "app" and web.containers[0].memory_request == "mem_req_q"
    policy = web.policy_settings(lead_time_s=420.0, stale_after_s=1800.0)
    assert policy is not None
    assert (policy.capacity_per_pod, policy.target_utilisation, policy.min_replicas, policy.max_replicas,
            policy.column, policy.lead_time_s) == (500.0, 0.6, 2, 40, "ensemble-hi-95", 420.0)
    record = web.workload()
    assert (record.id, record.namespace, record.freq, record.labels) == ("shop/web", "shop", "5min", {"team": "shop"})
    assert registry["batch"].policy_settings(420.0, 1800.0) is None and registry["batch"].workload().namespace == ""


@pytest.mark.parametrize(
    ("entry", "match"),
    [({"query": "q"}, "'id'"),
     ({"id": "a"}, "'query'"),
     ({"id": "a", "query": "q", "capacity": 3}, "unknown field"),
     ({"id": "a", "query": "q", "capacity_per_pod": -1}, "capacity_per_pod"),
     ({"id": "a", "query": "q", "capacity_per_pod": 5, "min_replicas": 9, "max_replicas": 3}, "max_replicas"),
     ({"id": "a", "query": "q", "freq": "monthly"}, "freq"),
     ({"id": "a", "query": "q", "containers": [{"name": "app", "cpu": "c"}]}, r"containers\[0\].*missing"),
     ({"id": "a", "query": "q", "containers": [{"name": "x", "cpu": "c", "memory": "m", "cpu_request": "r",
                                                "memory_request": "r"}] * 2}, "unique")],
    ids=["no-id", "no-query", "unknown-field", "negative-capacity", "bounds", "bad-freq", "container-fields",
         "duplicate-container"],
)
def test_svc_registry_bad_entries_name_the_field(entry: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        workload_spec(entry)


@pytest.mark.parametrize(
    ("text", "match"),
    [("workloads: {}", "'workloads:' list"), ("[1, 2", "not valid YAML"),
     ("workloads:\n  - {id: a, query: q}\n  - {id: a, query: r}", "appears twice")],
    ids=["not-a-list", "bad-yaml", "duplicate-id"],
)
def test_svc_registry_bad_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        load_workloads(path)
    with pytest.raises(InputError, match="workloads file"):
        load_workloads(tmp_path / "missing.yaml")


def test_svc_demo_registry_has_the_trace_and_its_copies() -> None:
    registry = demo_registry(3)
    assert registry.ids == ["nasa/www", "nasa/www-2", "nasa/www-3"]
    assert [c.name for c in registry["nasa/www"].containers] == ["app", "cache", "worker"]
    assert registry["nasa/www-3"].query == "nasa*0.3333" and registry["nasa/www-3"].containers == ()
    assert demo_registry(1, containers=False)["nasa/www"].containers == ()
