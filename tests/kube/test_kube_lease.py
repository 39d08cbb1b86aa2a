"""Leader-election races over the Lease: two KubeCluster clients (two controller replicas) against one API server.
Exactly one wins each race; the loser gets ``ConflictError`` and nothing it sent is stored."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.kube_apiserver import KubeApiServer

from forecaster.adapters.kube import KubeCluster, micro_time
from forecaster.contracts.errors import ConflictError

NS, NAME = "forecaster-system", "forecaster-controller"


def spec(holder: str, transitions: int = 0, renew: str = "2024-03-04T05:06:07.000000Z") -> dict[str, Any]:
    return {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": "2024-03-04T05:06:07.000000Z",
            "renewTime": renew, "leaseTransitions": transitions}


@pytest.fixture
def replicas(kube_server: KubeApiServer) -> Iterator[tuple[KubeCluster, KubeCluster]]:
    """Two replicas, each with its own ApiClient (its own connection pool)."""
    apis = [kube_server.api_client(), kube_server.api_client()]
    yield (KubeCluster(apis[0], reporting_instance="a"), KubeCluster(apis[1], reporting_instance="b"))
    for api in apis:
        api.close()


def race(*attempts: Callable[[], dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Exception]]:
    """Run the attempts at the same moment (a barrier) on threads; their results and errors."""
    barrier = threading.Barrier(len(attempts))
    results: list[dict[str, Any]] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def run(attempt: Callable[[], dict[str, Any]]) -> None:
        barrier.wait()
        try:
            out = attempt()
            with lock:
                results.append(out)
        except Exception as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results, errors


def test_two_replicas_creating_the_lease_at_once_one_wins(
        kube_server: KubeApiServer, replicas: tuple[KubeCluster, KubeCluster]) -> None:
    a, b = replicas
    assert a.get_lease(NS, NAME) is None and b.get_lease(NS, NAME) is None
    won, lost = race(lambda: a.create_lease(NS, NAME, spec("a")), lambda: b.create_lease(NS, NAME, spec("b")))
    assert len(won) == 1 and len(lost) == 1
    assert isinstance(lost[0], ConflictError) and "already exists" in str(lost[0])
    [stored] = kube_server.objects("leases")
    assert stored["spec"]["holderIdentity"] == won[0]["spec"]["holderIdentity"]
    assert stored == won[0]


def test_renew_by_the_holder_then_a_stale_takeover_conflicts(replicas: tuple[KubeCluster, KubeCluster]) -> None:
    a, b = replicas
    created = a.create_lease(NS, NAME, spec("a"))
    seen_by_b = b.get_lease(NS, NAME)
    assert seen_by_b is not None
    renewed = a.replace_lease(NS, NAME, spec("a", renew="2024-03-04T05:06:12.000000Z"),
                              created["metadata"]["resourceVersion"])
    assert renewed["spec"]["renewTime"] == "2024-03-04T05:06:12.000000Z"
    with pytest.raises(ConflictError):  # b read the lease before the renewal: its takeover is stale
        b.replace_lease(NS, NAME, spec("b", transitions=1), seen_by_b["metadata"]["resourceVersion"])
    assert a.get_lease(NS, NAME) == renewed


def test_takeover_of_an_expired_lease_then_the_old_holder_cannot_renew(
        replicas: tuple[KubeCluster, KubeCluster]) -> None:
    a, b = replicas
    created = a.create_lease(NS, NAME, spec("a"))
    current = b.get_lease(NS, NAME)
    assert current is not None
    taken = b.replace_lease(NS, NAME, spec("b", transitions=1, renew=micro_time()),
                            current["metadata"]["resourceVersion"])
    assert (taken["spec"]["holderIdentity"], taken["spec"]["leaseTransitions"]) == ("b", 1)
    with pytest.raises(ConflictError):
        a.replace_lease(NS, NAME, spec("a"), created["metadata"]["resourceVersion"])
    assert b.get_lease(NS, NAME) == taken


def test_two_replicas_replacing_the_same_version_at_once_one_wins(
        kube_server: KubeApiServer, replicas: tuple[KubeCluster, KubeCluster]) -> None:
    a, b = replicas
    version = a.create_lease(NS, NAME, spec("nobody"))["metadata"]["resourceVersion"]
    won, lost = race(lambda: a.replace_lease(NS, NAME, spec("a", transitions=1), version),
                     lambda: b.replace_lease(NS, NAME, spec("b", transitions=1), version))
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], ConflictError)
    [stored] = kube_server.objects("leases")
    assert stored["spec"]["holderIdentity"] == won[0]["spec"]["holderIdentity"]
    assert int(stored["metadata"]["resourceVersion"]) == int(version) + 1
