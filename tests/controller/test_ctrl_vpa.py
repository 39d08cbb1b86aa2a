"""Acting as a VPA recommender on the fakes, with real usage (Bitbrains containers from tests/fixtures/usage_small.csv):
the recommendation of ``forecaster.rightsize`` on the pooled pods is written as quantities, only to VPAs naming
``forecaster``, only in Auto, once per change, with an Event; conflicts and usage faults are contained."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from ctrl_builders import QUERY, Clock, Rig, condition, constant, demand_history, make_rig, policy_object

from forecaster.contracts.errors import ConflictError, TemporaryError
from forecaster.contracts.frames import DS, ID
from forecaster.contracts.quantity import format_cpu, format_memory
from forecaster.rightsizing import rightsize
from forecaster.runtime.controller.vpa import pod_regex, pool_by_container

USAGE_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "usage_small.csv"
END = pd.Timestamp("2013-08-11T00:00Z")
PODS = {"vm001": ("web-5d9f7c-abcde", "app"), "vm004": ("web-5d9f7c-fghij", "app"),
        "vm007": ("web-5d9f7c-abcde", "sidecar")}


def container_usage() -> pd.DataFrame:
    """The fixture as the Prometheus usage fetch returns it: ``namespace/pod/container`` ids and label columns."""
    raw = pd.read_csv(USAGE_CSV)
    raw[DS] = pd.to_datetime(raw[DS], utc=True)
    raw["pod"] = raw[ID].map(lambda v: PODS[v][0])
    raw["container"] = raw[ID].map(lambda v: PODS[v][1])
    raw["namespace"] = "shop"
    raw[ID] = "shop/" + raw["pod"] + "/" + raw["container"]
    return raw


class Usage:
    """A UsageSource over a frame; records its calls; can fail."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.calls: list[tuple[str, str, tuple[str, ...], pd.Timestamp, pd.Timestamp]] = []
        self.error: Exception | None = None

    def __call__(self, namespace: str, regex: str, containers: Sequence[str], start: pd.Timestamp,
                 end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        self.calls.append((namespace, regex, tuple(containers), start, end))
        if self.error is not None:
            raise self.error
        f = self.frame
        keep = (f["namespace"] == namespace) & f["pod"].str.fullmatch(regex) & (f[DS] >= start) & (f[DS] < end)
        return f[keep].reset_index(drop=True), None


@pytest.fixture
def vrig() -> Rig:
    rig = make_rig()
    rig.clock = Clock(END)
    rig.metrics.add(QUERY, demand_history(END))
    rig.cluster.add_policy(policy_object(vpa=True))
    rig.cluster.add_vpa("shop", "web")
    rig.usage = Usage(container_usage())
    rig.forecasts.demand = constant(20.0)
    return rig


def expected_app_recommendation(start: pd.Timestamp) -> pd.Series:
    frame = container_usage()
    frame = frame[(frame["container"] == "app") & (frame[DS] >= start) & (frame[DS] < END)]
    pooled = pool_by_container(frame, "shop", "web", ["app"])
    recs = rightsize(pooled, None, policy="vpa", now=END).recommendations
    return recs.set_index("resource")


def test_auto_writes_the_pooled_recommendation_as_quantities_with_an_event(vrig: Rig) -> None:
    report = vrig.controller().run_once()
    vpa = vrig.cluster.vpas[("shop", "web")]
    items = vpa["status"]["recommendation"]["containerRecommendations"]
    assert [i["containerName"] for i in items] == ["app"]  # the sidecar is not in spec.vpa.containers
    expected = expected_app_recommendation(END - pd.Timedelta("2D"))
    for field, column in (("target", "target"), ("lowerBound", "lower_bound"), ("upperBound", "upper_bound"),
                          ("uncappedTarget", "uncapped_target")):
        assert items[0][field] == {"cpu": format_cpu(expected.loc["cpu", column]),
                                   "memory": format_memory(expected.loc["memory", column])}
    assert vpa["status"]["conditions"][0]["type"] == "RecommendationProvided"
    assert vpa["status"]["conditions"][0]["status"] == "True"
    assert [e["reason"] for e in vrig.cluster.events] == ["FloorChanged", "RecommendationChanged"]
    assert vrig.status()["vpaRecommendationTime"] == "2013-08-11T00:00:00Z"
    namespace, regex, containers, start, end = vrig.usage.calls[0]
    assert (namespace, regex, containers, start, end) == ("shop", pod_regex("Deployment", "web"), ("app",),
                                                          END - pd.Timedelta("2D"), END)
    assert report.policy("shop/web").recommendations is not None
    assert vrig.metric("forecaster_recommendation_cpu_cores", workload_namespace="shop", workload_pod="web",
                       workload_container="app", bound="target") == pytest.approx(expected.loc["cpu", "target"])
    records = vrig.store.list_decisions(workload_id="shop/web").items
    resources = [r for r in records if r.kind == "resources"]
    assert len(resources) == 1 and resources[0].applied
    assert resources[0].value["containers"]["app"]["memory"]["target"] == pytest.approx(
        expected.loc["memory", "target"])


def test_an_unchanged_recommendation_is_not_written_again(vrig: Rig) -> None:
    ctl = vrig.controller()
    ctl.run_once()
    ctl.run_once(vrig.clock.advance(minutes=1))  # the bounds drift a little (confidence), the target not
    assert len(vrig.cluster.writes("patch_vpa_status")) == 1
    assert [e["reason"] for e in vrig.cluster.events].count("RecommendationChanged") == 1


def test_a_changed_target_is_written_again(vrig: Rig) -> None:
    ctl = vrig.controller()
    ctl.run_once()
    usage = vrig.usage.frame
    # a memory surge in the samples since the last cycle (the controller fetches only those between refits)
    surge = usage[usage[DS] >= END - pd.Timedelta("1h")].copy()
    surge[DS] += pd.Timedelta("1h")
    surge["memory"] = 2 * usage["memory"].max()
    vrig.usage.frame = pd.concat([usage, surge], ignore_index=True)
    ctl.run_once(vrig.clock.advance(minutes=61))
    assert vrig.usage.calls[-1][3] < END  # from the newest sample held, not the whole window again
    assert len(vrig.cluster.writes("patch_vpa_status")) == 2
    assert [e["reason"] for e in vrig.cluster.events].count("RecommendationChanged") == 2


@pytest.mark.parametrize("others", [False, True], ids=["nothing", "only-another-container"])
def test_a_cycle_without_new_usage_keeps_the_held_recommendation(vrig: Rig, others: bool) -> None:
    ctl = vrig.controller()
    ctl.run_once()
    first = vrig.cluster.vpas[("shop", "web")]["status"]["recommendation"]
    usage = vrig.usage.frame
    keep = usage[DS] < END - pd.Timedelta("1h")  # the newest held samples are not answered again ...
    vrig.usage.frame = usage[keep | (usage["container"] == "sidecar") if others else keep]  # ... or only the sidecar's
    report = ctl.run_once(vrig.clock.advance(minutes=15))
    assert not report.policy("shop/web").errors, report.render()
    assert vrig.usage.calls[-1][3] == END - pd.Timedelta("15min")  # the newest sample held
    assert vrig.cluster.vpas[("shop", "web")]["status"]["recommendation"] == first
    assert len(vrig.cluster.writes("patch_vpa_status")) == 1


def test_a_restarted_controller_refits_and_decides_as_the_one_that_kept_its_sizer(vrig: Rig) -> None:
    """After a restart the held sizer is gone: the new process fetches the whole window, fits, and recommends what
    the running process (updating its held sizer) recommends at the same time."""
    usage = vrig.usage.frame
    later = usage[usage[DS] >= END - pd.Timedelta("2h")].copy()
    later[DS] += pd.Timedelta("2h")  # two more hours of samples arriving while the controllers run
    vrig.usage.frame = pd.concat([usage, later], ignore_index=True)
    kept = vrig.controller()
    for minutes in (0, 30, 60):
        report = kept.run_once(vrig.clock.advance(minutes=minutes) if minutes else END)
    restarted = vrig.controller()
    again = restarted.run_once(END + pd.Timedelta("60min"))
    first, second = report.policy("shop/web").recommendations, again.policy("shop/web").recommendations
    assert first is not None and second is not None
    assert [r.as_vpa() for r in first] == [r.as_vpa() for r in second]
    assert [r.bounds for r in first] == [r.bounds for r in second]  # in base units, before rounding
    assert vrig.usage.calls[-1][3] == END + pd.Timedelta("60min") - pd.Timedelta("2D")  # the whole window again
    assert vrig.usage.calls[-2][3] == END + pd.Timedelta("15min")  # the kept one: from its newest sample


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ({"target": "100m"}, {"target": "100m"}, False),
        ({"target": "100m"}, {"target": "101m"}, True),
        ({"target": "100m", "upperBound": "200m"}, {"target": "100m", "upperBound": "209m"}, False),
        ({"target": "100m", "upperBound": "200m"}, {"target": "100m", "upperBound": "211m"}, True),
        ({"target": "100m"}, {"target": "100m", "lowerBound": "50m"}, True),
    ],
    ids=["same", "target", "bound-drift", "bound-moved", "new-field"],
)
def test_recommendation_changed(old: dict[str, str], new: dict[str, str], changed: bool) -> None:
    from forecaster.runtime.controller.vpa import recommendation_changed

    def status(fields: dict[str, str]) -> dict[str, object]:
        item = {"containerName": "app", **{k: {"cpu": v, "memory": "1Gi"} for k, v in fields.items()}}
        return {"recommendation": {"containerRecommendations": [item]}}

    assert recommendation_changed({"status": status(old)}, status(new)) is changed
    assert recommendation_changed({}, status(new)) is True


def test_recommend_mode_computes_but_writes_no_vpa(vrig: Rig) -> None:
    vrig.cluster.add_policy(policy_object(mode="Recommend", vpa=True))
    report = vrig.controller().run_once()
    assert vrig.cluster.writes("patch_vpa_status") == [] and "status" not in vrig.cluster.vpas[("shop", "web")]
    assert report.policy("shop/web").recommendations
    resources = [r for r in vrig.store.list_decisions(workload_id="shop/web").items if r.kind == "resources"]
    assert resources[0].mode == "Recommend" and not resources[0].applied


def test_a_vpa_without_our_recommender_is_never_written(vrig: Rig) -> None:
    vrig.cluster.add_vpa("shop", "web", recommenders=[])
    report = vrig.controller().run_once()
    assert vrig.cluster.writes("patch_vpa_status") == []
    assert "does not name the 'forecaster' recommender" in report.policy("shop/web").errors[0]
    assert condition(vrig.status(), "Ready")["reason"] == "VPAInvalid"
    assert vrig.hpa()["spec"]["minReplicas"] == 5  # the floor is not held up by the VPA part


def test_a_vpa_conflict_is_retried(vrig: Rig) -> None:
    vrig.cluster.fail("patch_vpa_status", ConflictError("modified"))
    vrig.controller().run_once()
    assert [c[0] for c in vrig.cluster.log].count("patch_vpa_status") == 2
    assert "recommendation" in vrig.cluster.vpas[("shop", "web")]["status"]


def test_usage_faults_fail_only_the_vpa_part(vrig: Rig) -> None:
    vrig.usage.error = TemporaryError("prometheus: connection refused")
    vrig.controller().run_once()
    assert vrig.cluster.writes("patch_vpa_status") == []
    assert condition(vrig.status(), "Ready")["reason"] == "UsageUnavailable"
    assert vrig.hpa()["spec"]["minReplicas"] == 5


def test_no_usage_for_the_listed_containers_is_reported(vrig: Rig) -> None:
    obj = policy_object(vpa=True)
    obj["spec"]["vpa"]["containers"] = ["db"]
    vrig.cluster.add_policy(obj)
    report = vrig.controller().run_once()
    assert "spec.vpa.containers: none of ['db']" in report.policy("shop/web").errors[0]


@pytest.mark.parametrize(("kind", "pods", "other"), [
    ("Deployment", ["web-5d9f7c-abcde"], ["web-db-0", "webx-5d9f7c-abcde", "web-5d9f7c"]),
    ("StatefulSet", ["web-0", "web-12"], ["web-abc", "web-db-0"]),
])
def test_pod_regex(kind: str, pods: list[str], other: list[str]) -> None:
    import re

    regex = re.compile(pod_regex(kind, "web"))
    assert all(regex.fullmatch(p) for p in pods)
    assert not any(regex.fullmatch(p) for p in other)


def test_pooling_takes_the_busiest_pod_at_each_time() -> None:
    ts = pd.Timestamp("2024-01-01T00:00Z")
    usage = pd.DataFrame({ID: ["ns/a/app", "ns/b/app"], DS: [ts, ts], "cpu": [0.2, 0.5], "memory": [3e8, 1e8],
                          "cpu_request": [1.0, 1.0], "memory_request": [5e8, 5e8], "container": ["app", "app"]})
    pooled = pool_by_container(usage, "ns", "web", [])
    assert pooled[[ID, "cpu", "memory"]].to_dict("records") == [{ID: "ns/web/app", "cpu": 0.5, "memory": 3e8}]


def test_auto_never_writes_a_low_confidence_recommendation(vrig: Rig) -> None:
    """Two and a half hours of usage is less than the policy's minimum history (24 h): the recommendation is
    computed and recorded as recommend-only with the reason, and the VPA is left alone even in Auto."""
    frame = vrig.usage.frame
    vrig.usage.frame = frame[frame[DS] >= END - pd.Timedelta("2.5h")].reset_index(drop=True)
    report = vrig.controller().run_once()
    policy = report.policy("shop/web")
    assert policy.recommendations and all(r.low_confidence for r in policy.recommendations)
    assert vrig.cluster.writes("patch_vpa_status") == [] and "status" not in vrig.cluster.vpas[("shop", "web")]
    assert "RecommendationChanged" not in [e["reason"] for e in vrig.cluster.events]
    assert any("low confidence" in s and "recommend only" in s for s in policy.skipped), policy.skipped
    resources = [r for r in vrig.store.list_decisions(workload_id="shop/web").items if r.kind == "resources"]
    assert len(resources) == 1 and not resources[0].applied and resources[0].mode == "Recommend"
    assert resources[0].reason.startswith("recommend only (Auto): low confidence")
    assert "2.5 h of history" in resources[0].reason
    assert "FloorChanged" in [e["reason"] for e in vrig.cluster.events]  # the HPA part is not held up
