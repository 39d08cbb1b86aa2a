"""``POST /v1/what-if``: the scenario replayed through ``forecaster.simulate.replay`` (same outcomes as calling it
directly), growth and uplift windows, and the bounds that keep one request from eating the server."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from api_support import ISSUED, READ, Seeded, auth, seed
from fastapi.testclient import TestClient

from forecaster.api.whatif import thin
from forecaster.contracts.frames import DS, ENSEMBLE, Y
from forecaster.contracts.ports import DecisionRecord, ForecastRun
from forecaster.datasets import NASA_ID
from forecaster.simulate import ISSUED_AT, replay
from forecaster.testing.store import InMemoryStore

H = auth(READ)
WINDOW = {"start": "1995-07-21T04:00:00Z", "end": "1995-07-22T03:55:00Z"}


def post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/what-if", json=body, headers=H)


def test_actuals_replay_matches_a_direct_replay(client: TestClient, seeded: Seeded) -> None:
    body = post(client, {"workload": NASA_ID, **WINDOW, "policy": {"capacity_per_pod": 50.0}}).json()
    assert body["demand"] == "actuals" and body["forecast_runs"] == 1 and body["capacity_per_pod"] == 50.0
    assert [o["policy"] for o in body["outcomes"]] == ["reactive", "predictive"]
    demand = seeded.actuals[(seeded.actuals[DS] >= ISSUED)][[DS, Y]]
    forecasts = seeded.nasa_run.frame.drop(columns=["unique_id", "seasonal", "events", "signals", "lgbm"],
                                           errors="ignore").assign(**{ISSUED_AT: ISSUED})
    kw: dict[str, Any] = {"capacity_per_pod": 50.0, "bad_values": "fill", "max_replicas": 10_000}
    reactive = replay(demand, "reactive", **kw).outcomes
    predictive = replay(demand, "predictive", forecasts=forecasts, **kw).outcomes
    for got, want in zip(body["outcomes"], (reactive, predictive), strict=True):
        assert got["minutes"] == want.minutes == 1440
        assert got["under_provisioned_minutes"] == want.under_provisioned_minutes
        assert got["replica_minutes"] == pytest.approx(want.replica_minutes)
        assert got["scaling_actions"] == want.scaling_actions
    comparison = body["comparison"]
    assert comparison["under_provisioned_minutes_saved"] == (reactive.under_provisioned_minutes
                                                             - predictive.under_provisioned_minutes)
    assert comparison["replica_minutes_ratio"] == pytest.approx(predictive.replica_minutes / reactive.replica_minutes)


def test_default_window_is_the_day_before_the_latest_forecast(client: TestClient) -> None:
    body = post(client, {"workload": NASA_ID}).json()
    assert body["start"] == "1995-07-20T04:00:00Z" and body["end"] == "1995-07-21T04:00:00Z"
    assert body["minutes"] == 1440 + 5  # inclusive end: 289 samples, each held over its 5-minute bucket
    before = post(client, {"workload": NASA_ID, "start": "1995-07-20T00:00:00Z", "end": "1995-07-21T00:00:00Z"})
    assert [o["policy"] for o in before.json()["outcomes"]] == ["reactive"], "no forecast issued by then"
    assert "only the reactive HPA" in before.json()["notes"][0]


def test_growth_scales_demand_and_default_capacity(client: TestClient) -> None:
    base = post(client, {"workload": NASA_ID, **WINDOW, "policy": {"capacity_per_pod": 50.0}}).json()
    grown = post(client, {"workload": NASA_ID, **WINDOW, "growth": 2.0, "policy": {"capacity_per_pod": 50.0}}).json()
    assert grown["outcomes"][0]["replica_minutes"] > 1.8 * base["outcomes"][0]["replica_minutes"]
    default = post(client, {"workload": NASA_ID, **WINDOW, "policy": {"peak_replicas": 10}}).json()
    doubled = post(client, {"workload": NASA_ID, **WINDOW, "growth": 2.0, "policy": {"peak_replicas": 10}}).json()
    assert doubled["capacity_per_pod"] == pytest.approx(2 * default["capacity_per_pod"])


def test_an_unknown_event_hurts_the_predictive_policy_more_than_a_known_one(client: TestClient) -> None:
    event = [{"name": "flash sale", "start": "1995-07-21T14:00:00Z", "end": "1995-07-21T16:00:00Z", "uplift": 1.5}]
    body = {"workload": NASA_ID, "demand": "forecast", "events": event, "policy": {"capacity_per_pod": 50.0}}
    known = post(client, body).json()
    unknown = post(client, {**body, "events_known": False}).json()
    assert known["outcomes"][0] == unknown["outcomes"][0], "the reactive HPA does not read forecasts"
    assert (unknown["outcomes"][1]["under_provisioned_minutes"]
            > known["outcomes"][1]["under_provisioned_minutes"])
    assert known["outcomes"][1]["replica_minutes"] > unknown["outcomes"][1]["replica_minutes"]
    assert any("events_known=false" in n for n in unknown["notes"])


def test_forecast_as_demand_plays_the_plan(client: TestClient, seeded: Seeded) -> None:
    body = post(client, {"workload": NASA_ID, "demand": "forecast", "policy": {"capacity_per_pod": 50.0}}).json()
    assert body["start"] == "1995-07-21T04:00:00Z" and body["end"] == "1995-07-22T03:55:00Z"
    plan = seeded.nasa_run.frame[[DS, ENSEMBLE]].rename(columns={ENSEMBLE: Y})
    reactive = replay(plan, "reactive", capacity_per_pod=50.0, bad_values="fill", max_replicas=10_000).outcomes
    assert body["outcomes"][0]["replica_minutes"] == pytest.approx(reactive.replica_minutes)
    assert body["outcomes"][1]["fallback_decisions"] == 0, "the plan never goes stale while it is played"


@pytest.mark.parametrize(("change", "field"), [
    ({"start": "1995-07-01T00:00:00Z", "end": "1995-07-21T00:00:00Z"}, "end"),
    ({"events": [{"start": "1995-07-21T04:00:00Z", "end": "1995-07-21T05:00:00Z", "uplift": 0.1}] * 51},
     "events"),
    ({"growth": 0}, "growth"),
    ({"growth": 1e9}, "growth"),
    ({"policy": {"quantile": "hi-99"}}, "policy.quantile"),
    ({"policy": {"quantile": "p99"}}, "policy.quantile"),
    ({"policy": {"min_replicas": 5, "max_replicas": 2}}, "policy.max_replicas"),
    ({"policy": {"decision_interval_s": 90}}, "policy.decision_interval_s"),
    ({"policy": {"startup_s": 86400}}, "policy.startup_s"),
    ({"policy": {"target_utilisation": 4.3e-205}}, "policy.target_utilisation"),
    ({"end": "1995-07-20T00:00:00Z", "start": "1995-07-21T00:00:00Z"}, "end"),
], ids=["window-too-long", "too-many-events", "zero-growth", "huge-growth", "unstored-band",
        "bad-band", "max-below-min", "interval", "startup", "tiny-target", "reversed"])
def test_bad_scenarios_are_422_naming_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    response = post(client, {"workload": NASA_ID, **WINDOW, **change})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


def test_a_capacity_too_small_for_the_peak_is_replayed_capped_and_said(client: TestClient) -> None:
    """A schema-valid body is never refused for what the stored data holds (issue 22, schemathesis: capacity_per_pod
    1e-6 was a 422): both policies run capped at max_replicas, under-provisioned, and a note says why."""
    response = post(client, {"workload": NASA_ID, **WINDOW, "policy": {"capacity_per_pod": 1e-6, "max_replicas": 50}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert any("above max_replicas 50" in note for note in body["notes"]), body["notes"]
    for outcome in body["outcomes"]:
        assert outcome["minutes"] == 1440 and outcome["under_provisioned_minutes"] > 0.99 * 1440  # all but idle minutes
        assert outcome["replica_minutes"] <= 50 * 1440


def test_unknown_workload_is_404(client: TestClient) -> None:
    assert post(client, {"workload": "nope"}).status_code == 404


@pytest.mark.parametrize("change", [
    {"start": "1995-06-01T00:00:00Z", "end": "1995-06-02T00:00:00Z"},
    {"demand": "forecast", "start": "1995-06-01T00:00:00Z", "end": "1995-06-02T00:00:00Z"},
], ids=["no-actuals-in-window", "no-forecast-steps-in-window"])
def test_nothing_to_replay_is_404_naming_the_field(client: TestClient, change: dict[str, Any]) -> None:
    """A valid scenario over a window without stored data: what it asks to replay does not exist."""
    response = post(client, {"workload": NASA_ID, **WINDOW, **change})
    assert response.status_code == 404, response.text
    assert response.json()["detail"].startswith("start: ")


def test_thin_keeps_the_last_run_and_spreads_the_rest() -> None:
    runs = [ForecastRun(f"r{i}", "w", pd.Timestamp("2024-01-01T00:00Z") + pd.Timedelta(minutes=5 * i), "v", (80,),
                        pd.DataFrame()) for i in range(100)]
    kept = thin(list(reversed(runs)), 10)
    assert len(kept) == 10 and kept[-1].id == "r99" and kept[0].id == "r0"
    assert [r.issued_at for r in kept] == sorted(r.issued_at for r in kept)
    assert thin(runs[:3], 10) == runs[:3]


def test_a_window_the_actuals_barely_cover_says_so(client: TestClient) -> None:
    body = post(client, {"workload": NASA_ID, "start": "1995-07-22T03:55:00Z", "end": "1995-07-23T03:55:00Z"}).json()
    assert body["minutes"] < 1440
    note = next(n for n in body["notes"] if "cover" in n)
    assert f"{body['minutes']} of the 1440 minutes" in note and "1995-07-22T03:55:00Z" in note
    full = post(client, {"workload": NASA_ID, **WINDOW}).json()
    assert not any("cover" in n for n in full["notes"])


SERVICE_DECISION = {"capacity_per_pod": 60.0, "bounds": [4, 9], "band_column": "ensemble-hi-95",
                    "reactive_floor": 4, "value": 5}
"""What ``forecaster.runtime.service.decide`` records for a workload with ``capacity_per_pod: 60``, replicas 4..9."""


@pytest.fixture
def policy_client(nasa: tuple[pd.DataFrame, pd.DataFrame], make_app: Any) -> Any:
    seeded = seed(InMemoryStore(), nasa)
    t = ISSUED + pd.Timedelta(minutes=5)
    seeded.store.record_decision(DecisionRecord(f"{NASA_ID}/replicas/latest", NASA_ID, t, "replicas", "Recommend",
                                                False, {"min_replicas": 5}, "hi-95 peak needs 5 pods",
                                                SERVICE_DECISION))
    with TestClient(make_app(seeded.store)) as c:
        yield c, seeded


def test_whatif_uses_the_workloads_own_capacity_and_bounds(policy_client: Any) -> None:
    client, seeded = policy_client
    recommendation = client.get(f"/v1/recommendations/{NASA_ID}", headers=H).json()["replicas"]
    assert recommendation["details"]["capacity_per_pod"] == 60.0
    body = post(client, {"workload": NASA_ID, **WINDOW}).json()
    assert body["capacity_per_pod"] == 60.0
    policy = body["policy"]
    assert (policy["capacity_per_pod"], policy["min_replicas"], policy["max_replicas"], policy["quantile"]) == (
        60.0, 4, 9, "hi-95")
    assert any(f"{NASA_ID}/replicas/latest" in n for n in body["notes"])
    for outcome in body["outcomes"]:
        assert outcome["peak_replicas"] <= 9
    demand = seeded.actuals[(seeded.actuals[DS] >= pd.Timestamp(WINDOW["start"]))
                            & (seeded.actuals[DS] <= pd.Timestamp(WINDOW["end"]))][[DS, Y]]
    want = replay(demand, "reactive", capacity_per_pod=60.0, min_replicas=4, max_replicas=9, bad_values="fill")
    assert body["outcomes"][0]["replica_minutes"] == pytest.approx(want.outcomes.replica_minutes)
    # what the request says wins over the workload's own knobs
    mine = post(client, {"workload": NASA_ID, **WINDOW, "policy": {"capacity_per_pod": 50.0, "max_replicas": 30}})
    got = mine.json()["policy"]
    assert (got["capacity_per_pod"], got["min_replicas"], got["max_replicas"]) == (50.0, 4, 30)
    clash = post(client, {"workload": NASA_ID, **WINDOW, "policy": {"max_replicas": 3}})
    assert clash.status_code == 422 and clash.json()["errors"][0]["field"] == "policy.max_replicas"
