"""The shipped fakes behave like the adapters: FakeCluster's resourceVersion/409/404 semantics, merge patches and
fault injection; FakeMetricsSource's Prometheus-like grid, lookback and faults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import ConflictError, NotFoundError, PermanentError, TemporaryError
from forecaster.contracts.frames import DS, ID, Y
from forecaster.testing.cluster import FakeCluster, merge_patch
from forecaster.testing.metrics import FakeMetricsSource

T0 = pd.Timestamp("2024-03-10T00:00Z")


def test_every_write_bumps_the_resource_version_and_a_stale_one_conflicts() -> None:
    cluster = FakeCluster()
    first = cluster.add_hpa("shop", "web", min_replicas=2)
    rv = first["metadata"]["resourceVersion"]
    patched = cluster.patch_hpa("shop", "web", min_replicas=5, annotations={"a": "1"}, resource_version=rv)
    assert patched["spec"]["minReplicas"] == 5 and int(patched["metadata"]["resourceVersion"]) > int(rv)
    with pytest.raises(ConflictError, match="has been modified"):
        cluster.patch_hpa("shop", "web", min_replicas=6, annotations={}, resource_version=rv)
    assert cluster.get_hpa("shop", "web")["spec"]["minReplicas"] == 5


def test_missing_objects_are_not_found() -> None:
    cluster = FakeCluster()
    for call in (lambda: cluster.get_hpa("shop", "x"), lambda: cluster.get_vpa("shop", "x"),
                 lambda: cluster.patch_policy_status("shop", "x", {})):
        with pytest.raises(NotFoundError):
            call()
    assert cluster.get_lease("ns", "x") is None


def test_merge_patch_removes_keys_set_to_none() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    assert merge_patch(target, {"a": None, "b": {"c": None, "x": 9}, "e": [3]}) == {"b": {"d": 3, "x": 9}, "e": [3]}


def test_hpa_annotations_are_merged_and_removed() -> None:
    cluster = FakeCluster()
    cluster.add_hpa("shop", "web", annotations={"keep": "me"})
    rv = cluster.get_hpa("shop", "web")["metadata"]["resourceVersion"]
    cluster.patch_hpa("shop", "web", min_replicas=None, annotations={"ours": "1"}, resource_version=rv)
    rv = cluster.get_hpa("shop", "web")["metadata"]["resourceVersion"]
    cluster.patch_hpa("shop", "web", min_replicas=None, annotations={"ours": None}, resource_version=rv)
    assert cluster.get_hpa("shop", "web")["metadata"]["annotations"] == {"keep": "me"}


def test_policy_status_is_a_merge_patch_and_spec_changes_bump_the_generation() -> None:
    cluster = FakeCluster()
    obj = {"metadata": {"namespace": "shop", "name": "web"}, "spec": {"mode": "Auto"}}
    assert cluster.add_policy(obj)["metadata"]["generation"] == 1
    cluster.patch_policy_status("shop", "web", {"a": 1, "b": 2})
    cluster.patch_policy_status("shop", "web", {"b": None, "c": 3})
    assert cluster.list_policies()[0]["status"] == {"a": 1, "c": 3}
    again = cluster.add_policy({**obj, "spec": {"mode": "Off"}})
    assert again["metadata"]["generation"] == 2 and again["status"] == {"a": 1, "c": 3}


def test_leases_are_created_once_and_replaced_with_their_version() -> None:
    cluster = FakeCluster()
    created = cluster.create_lease("ns", "l", {"holderIdentity": "a"})
    with pytest.raises(ConflictError, match="already exists"):
        cluster.create_lease("ns", "l", {"holderIdentity": "b"})
    rv = created["metadata"]["resourceVersion"]
    cluster.replace_lease("ns", "l", {"holderIdentity": "a", "renewTime": "x"}, rv)
    with pytest.raises(ConflictError):
        cluster.replace_lease("ns", "l", {"holderIdentity": "b"}, rv)
    lease = cluster.get_lease("ns", "l")
    assert lease is not None and lease["spec"]["holderIdentity"] == "a"


def test_fault_injection_and_hooks_and_the_write_log() -> None:
    cluster = FakeCluster()
    cluster.add_hpa("shop", "web")
    cluster.fail("get_hpa", TemporaryError("503"), times=2)
    for _ in range(2):
        with pytest.raises(TemporaryError):
            cluster.get_hpa("shop", "web")
    assert cluster.get_hpa("shop", "web")["metadata"]["name"] == "web"
    seen: list[int] = []
    cluster.before("list_hpas", lambda c: seen.append(len(c.log)))
    cluster.list_hpas()
    assert seen == [4]
    cluster.create_event("shop", {"name": "web"}, reason="R", message="m")
    assert cluster.writes() == [("create_event", "shop", "web")]
    assert cluster.events[0]["reason"] == "R"


def _demand(minutes: int, start: pd.Timestamp = T0, **labels: str) -> pd.DataFrame:
    ds = pd.date_range(start, periods=minutes, freq="1min")
    frame = pd.DataFrame({DS: ds, Y: np.arange(minutes, dtype=float)})
    for k, v in labels.items():
        frame[k] = v
    return frame


def test_query_range_evaluates_on_the_grid_with_a_lookback() -> None:
    source = FakeMetricsSource()
    source.add("q", _demand(30))
    out = source.query_range("q", T0, T0 + pd.Timedelta("1h"), pd.Timedelta("5min"))
    # samples every minute up to 00:29; grid 00:00..01:00 every 5 min; 00:30 sees 00:29 (1 min old), 00:35 sees
    # 00:29 too (6 min old > 5 min lookback: dropped)
    assert list(out[DS]) == list(pd.date_range(T0, T0 + pd.Timedelta("30min"), freq="5min"))
    assert list(out[Y]) == [0, 5, 10, 15, 20, 25, 29]


def test_query_range_ids_join_the_id_labels() -> None:
    source = FakeMetricsSource()
    source.add("q", pd.concat([_demand(10, pod="a", container="app"), _demand(10, pod="b", container="app")]))
    out = source.query_range("q", T0, T0 + pd.Timedelta("5min"), pd.Timedelta("5min"), id_labels=["pod", "container"])
    assert sorted(out[ID].unique()) == ["a/app", "b/app"]
    assert set(out.columns) >= {"pod", "container"}
    assert len(source.query_range("unknown", T0, T0, pd.Timedelta("5min"))) == 0


def test_metrics_faults() -> None:
    source = FakeMetricsSource()
    source.add("q", _demand(10))
    step = pd.Timedelta("5min")
    source.unreachable()
    with pytest.raises(TemporaryError, match="connection refused"):
        source.query_range("q", T0, T0, step)
    source.garbage()
    with pytest.raises(PermanentError, match="not valid JSON"):
        source.query_range("q", T0, T0, step)
    source.slow(0.02, timeout_s=0.01)
    with pytest.raises(TemporaryError, match="timed out"):
        source.query_range("q", T0, T0, step)
    source.slow(0.01)
    assert len(source.query_range("q", T0, T0, step)) == 1
    source.healthy()
    assert len(source.calls) == 4 and len(source.query_range("q", T0, T0, step)) == 1
