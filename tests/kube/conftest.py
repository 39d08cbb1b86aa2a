"""Fixtures of the Kubernetes adapter tests: a fresh API test server per test (``kube_server``), a ``KubeCluster``
connected to it (``cluster``), the example objects of ``k8s/examples`` (``examples``) seeded into it (``seeded``),
and the switch for the kind end-to-end tests (``--run-kind`` or ``FORECASTER_KIND=1``).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.kube_apiserver import KubeApiServer
from support.kube_store import discover_crds

from forecaster.adapters.kube import KubeCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "examples"
CLOCK = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
"""The fixed ``eventTime`` of Events the ``cluster`` fixture creates: whole seconds, so a lost fraction shows."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--run-kind``: run the ``kind`` end-to-end tests against the current kubeconfig's cluster.

    pytest only reads this hook from conftest files it loads at start-up (the rootdir's, and those of the paths
    given on the command line), so the option exists for ``pytest tests/kube ...``; elsewhere use
    ``FORECASTER_KIND=1``. A copy of the option in ``tests/conftest.py`` takes precedence."""
    with contextlib.suppress(ValueError):  # already registered by a conftest higher up
        parser.addoption("--run-kind", action="store_true", default=False,
                         help="run the kind end-to-end tests against the current kubeconfig context")


def kind_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-kind", default=False)) or os.environ.get("FORECASTER_KIND") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``kind`` tests (before their cluster fixtures run) unless enabled."""
    if kind_enabled(config):
        return
    skip = pytest.mark.skip(reason="needs a real cluster: pytest -m kind --run-kind tests/kube (or FORECASTER_KIND=1)")
    for item in items:
        if item.get_closest_marker("kind") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def crds() -> list[dict[str, Any]]:
    """The CRDs the server serves (read once per worker)."""
    return discover_crds()


@pytest.fixture
def kube_server(crds: list[dict[str, Any]]) -> Iterator[KubeApiServer]:
    with KubeApiServer(crds=crds) as server:
        yield server


@pytest.fixture
def cluster(kube_server: KubeApiServer) -> Iterator[KubeCluster]:
    """A ``KubeCluster`` on the test server with short timeouts, a fixed reporting instance and clock."""
    api = kube_server.api_client()
    yield KubeCluster(api, connect_timeout_s=2.0, read_timeout_s=5.0, reporting_instance="forecaster-0",
                      clock=lambda: CLOCK)
    api.close()


@pytest.fixture(scope="session")
def examples() -> dict[str, dict[str, Any]]:
    """``hpa``, ``vpa`` and ``policy``: the objects of ``k8s/examples`` (namespace ``shop``, name ``web``)."""
    found = {}
    for key, filename in (("hpa", "hpa-web.yaml"), ("vpa", "vpa-web.yaml"), ("policy", "policy-web.yaml")):
        found[key] = yaml.safe_load((EXAMPLES / filename).read_text(encoding="utf-8"))
    return found


@pytest.fixture
def seeded(kube_server: KubeApiServer, examples: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The examples stored in the server (an HPA with a status, so status handling shows); returns what was stored."""
    hpa = copy.deepcopy(examples["hpa"])
    hpa["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}
    hpa["status"] = {"currentReplicas": 3, "desiredReplicas": 3}
    stored = {"hpa": kube_server.put_object(hpa), "vpa": kube_server.put_object(examples["vpa"]),
              "policy": kube_server.put_object(examples["policy"])}
    kube_server.clear_log()
    return stored
