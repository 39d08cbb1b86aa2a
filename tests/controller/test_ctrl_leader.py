"""Leader election on the Lease: acquire when absent or expired, renew, never take a live Lease, notice a lost one,
fail safe on API errors, and the leader gauge."""

from __future__ import annotations

import pandas as pd
from ctrl_builders import NOW, Clock

from forecaster.contracts.errors import TemporaryError
from forecaster.runtime.leader import LeaderElector, micro_time
from forecaster.runtime.telemetry import Telemetry
from forecaster.testing.cluster import FakeCluster


def elector(cluster: FakeCluster, identity: str, clock: Clock, telemetry: Telemetry | None = None) -> LeaderElector:
    return LeaderElector(cluster, identity, namespace="forecaster", name="ctl", clock=clock, telemetry=telemetry)


def lease(cluster: FakeCluster) -> dict[str, object]:
    found = cluster.get_lease("forecaster", "ctl")
    assert found is not None
    return dict(found["spec"])


def test_the_first_replica_creates_the_lease() -> None:
    cluster, clock = FakeCluster(), Clock()
    a = elector(cluster, "a", clock)
    assert a.acquire_or_renew() and a.is_leader
    assert lease(cluster) == {"holderIdentity": "a", "leaseDurationSeconds": 15,
                              "acquireTime": "2024-03-10T12:00:00.000000Z",
                              "renewTime": "2024-03-10T12:00:00.000000Z", "leaseTransitions": 0}


def test_the_holder_renews_and_keeps_its_acquire_time() -> None:
    cluster, clock = FakeCluster(), Clock()
    a = elector(cluster, "a", clock)
    a.acquire_or_renew()
    clock.advance(seconds=5)
    assert a.acquire_or_renew()
    spec = lease(cluster)
    assert spec["acquireTime"] == "2024-03-10T12:00:00.000000Z"
    assert spec["renewTime"] == "2024-03-10T12:00:05.000000Z" and spec["leaseTransitions"] == 0


def test_a_live_lease_is_never_taken_and_an_expired_one_is() -> None:
    cluster, clock = FakeCluster(), Clock()
    a, b = elector(cluster, "a", clock), elector(cluster, "b", clock)
    assert a.acquire_or_renew()
    clock.advance(seconds=15)  # renewTime + 15 s is not yet in the past
    assert not b.acquire_or_renew() and lease(cluster)["holderIdentity"] == "a"
    clock.advance(seconds=1)
    assert b.acquire_or_renew()
    spec = lease(cluster)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == micro_time(clock.now)
    # a notices at its next check, and does not take it back while b renews
    assert not a.check() and not a.is_leader
    assert not a.acquire_or_renew()


def test_check_renews_and_detects_a_stolen_lease() -> None:
    cluster, clock = FakeCluster(), Clock()
    telemetry = Telemetry()
    a = elector(cluster, "a", clock, telemetry)
    a.acquire_or_renew()
    assert telemetry.registry.get_sample_value("forecaster_controller_leader", {"identity": "a"}) == 1.0
    clock.advance(seconds=3)  # within a third of the duration: re-read, not renewed
    assert a.check() and lease(cluster)["renewTime"] == "2024-03-10T12:00:00.000000Z"
    clock.advance(seconds=3)  # 6 s > 5 s: renewed
    assert a.check() and lease(cluster)["renewTime"] == "2024-03-10T12:00:06.000000Z"
    cluster.steal_lease("forecaster", "ctl", "b", micro_time(clock.now))
    assert not a.check()
    assert telemetry.registry.get_sample_value("forecaster_controller_leader", {"identity": "a"}) == 0.0


def test_check_never_takes_over() -> None:
    cluster, clock = FakeCluster(), Clock()
    a = elector(cluster, "a", clock)
    assert not a.check()  # not leader yet: check does not acquire
    assert cluster.get_lease("forecaster", "ctl") is None


def test_two_replicas_racing_for_an_expired_lease_one_wins() -> None:
    cluster, clock = FakeCluster(), Clock()
    old = elector(cluster, "old", clock)
    old.acquire_or_renew()
    clock.advance(seconds=30)
    a, b = elector(cluster, "a", clock), elector(cluster, "b", clock)

    def b_goes_first(c: FakeCluster) -> None:
        c.clear_hooks()
        assert b.acquire_or_renew()

    cluster.before("replace_lease", b_goes_first)  # b writes between a's read and a's write
    assert not a.acquire_or_renew()  # a's stale resourceVersion: 409, so a is not leader
    assert b.is_leader and lease(cluster)["holderIdentity"] == "b"


def test_api_errors_mean_not_leader() -> None:
    cluster, clock = FakeCluster(), Clock()
    a = elector(cluster, "a", clock)
    a.acquire_or_renew()
    cluster.fail("get_lease", TemporaryError("apiserver: timeout"))
    assert not a.check() and not a.is_leader
    assert a.acquire_or_renew()  # the next attempt, once the API answers, renews its own Lease


def test_release_hands_the_lease_over_at_once() -> None:
    cluster, clock = FakeCluster(), Clock()
    a, b = elector(cluster, "a", clock), elector(cluster, "b", clock)
    a.acquire_or_renew()
    a.release()
    assert not a.is_leader and lease(cluster)["holderIdentity"] == ""
    assert b.acquire_or_renew()  # no need to wait 15 s
    assert pd.Timestamp(str(lease(cluster)["acquireTime"])) == NOW
