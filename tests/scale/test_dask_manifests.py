"""``k8s/dask/``: the scheduler and workers are wired to each other, accepted by the Dask CLI of the pinned version,
hardened like every pod of ours, and never get a Kubernetes API token. (Schema validity: ``tests/k8s``.)"""

from __future__ import annotations

from typing import Any

import pytest
from support.k8s_schemas import K8S_DIR, assert_pod_hardened, load_documents

pytest.importorskip("distributed")

from distributed.cli import dask_scheduler, dask_worker

from forecaster.adapters.dask import ENV_ADDRESS

DOCS = load_documents(K8S_DIR / "dask" / "dask.yaml")
BY_NAME = {(d["kind"], d["metadata"]["name"]): d for d in DOCS}
SCHEDULER = BY_NAME[("Deployment", "forecaster-dask-scheduler")]
WORKER = BY_NAME[("Deployment", "forecaster-dask-worker")]
SERVICE = BY_NAME[("Service", "forecaster-dask-scheduler")]
ADDRESS = "tcp://forecaster-dask-scheduler.forecaster-system.svc:8786"


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_workers_dial_the_scheduler_service() -> None:
    assert _container(WORKER)["args"][1] == ADDRESS
    (port,) = SERVICE["spec"]["ports"]
    assert port["port"] == 8786 and SERVICE["spec"]["selector"] == SCHEDULER["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize(("deployment", "command"), [(SCHEDULER, dask_scheduler.main), (WORKER, dask_worker.main)],
                         ids=["scheduler", "worker"])
def test_args_are_accepted_by_the_dask_cli(deployment: dict[str, Any], command: Any) -> None:
    container = _container(deployment)
    assert container["command"] == ["dask"]
    ctx = command.make_context("dask", list(container["args"][1:]))  # parses, raises on an unknown option
    assert ctx.params["dashboard"] is False


@pytest.mark.parametrize("deployment", [SCHEDULER, WORKER], ids=["scheduler", "worker"])
def test_pods_are_hardened_and_tokenless(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert_pod_hardened(pod, _container(deployment))
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "forecaster-dask"
    assert not [d for d in DOCS if d["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}]


def test_worker_memory_limit_is_under_the_container_limit() -> None:
    container = _container(WORKER)
    (arg,) = [a for a in container["args"] if a.startswith("--memory-limit=")]
    assert arg == "--memory-limit=3GiB" and container["resources"]["limits"]["memory"] == "4Gi"


def test_the_readme_names_the_setting_and_the_address() -> None:
    readme = (K8S_DIR / "dask" / "README.md").read_text()
    assert ENV_ADDRESS in readme and ADDRESS in readme
