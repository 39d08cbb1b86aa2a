"""``/healthz``, ``/readyz`` (job gauge or stored issue time vs max age), ``/metrics`` (gauges from the store), and
problem details for unknown paths, wrong methods and crashes."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest
from api_support import ISSUED, NOW, READ, AppMaker, Seeded, auth
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from forecaster.api import ApiSettings, create_app
from forecaster.contracts.errors import TemporaryError
from forecaster.contracts.frames import ENSEMBLE, hi
from forecaster.datasets import NASA_ID
from forecaster.runtime.telemetry import Telemetry
from forecaster.testing.store import InMemoryStore


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.fixture
def nasa_only(seeded: Seeded) -> InMemoryStore:
    store = InMemoryStore()
    store.save_forecast(seeded.nasa_run)
    return store


def test_ready_from_the_newest_stored_forecast(nasa_only: InMemoryStore) -> None:
    body = TestClient(create_app(nasa_only, clock=lambda: NOW)).get("/readyz").json()
    assert body == {"status": "ready", "last_cycle": "1995-07-21T04:00:00Z", "age_s": 600.0, "max_age_s": 900.0,
                    "source": "store"}


def test_not_ready_when_the_newest_forecast_is_old(nasa_only: InMemoryStore) -> None:
    app = create_app(nasa_only, settings=ApiSettings(ready_max_age_s=300), clock=lambda: NOW)
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["age_s"] == 600.0 and body["max_age_s"] == 300 and body["source"] == "store"
    assert "600 s old" in body["detail"] and response.headers["retry-after"]


@pytest.mark.parametrize(("age_s", "status"), [(60, 200), (1000, 503)], ids=["recent", "stale"])
def test_ready_from_the_refresh_job_in_this_process(age_s: float, status: int) -> None:
    telemetry = Telemetry()
    with telemetry.timed("refresh"):
        pass
    telemetry.gauge("forecaster_job_last_success_timestamp_seconds").labels(job_name="refresh").set(
        time.time() - age_s)  # as if the job succeeded age_s ago (the job's time is wall-clock time)
    app = create_app(InMemoryStore(), telemetry, ApiSettings(), clock=lambda: NOW)  # the app clock is not used
    response = TestClient(app).get("/readyz")
    assert response.status_code == status
    assert response.json()["source"] == "job"


def test_not_ready_before_any_cycle_or_without_a_store() -> None:
    assert TestClient(create_app(InMemoryStore())).get("/readyz").status_code == 503

    class Down(InMemoryStore):
        def list_workloads(self, **_: Any) -> Any:
            raise TemporaryError("database is locked")

    response = TestClient(create_app(Down())).get("/readyz")
    assert response.status_code == 503 and "cannot be read" in response.json()["detail"]


def test_metrics_export_the_latest_forecast_at_the_current_step(client: TestClient, seeded: Seeded) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    frame = seeded.nasa_run.frame
    now_row = frame.iloc[2]  # NOW = issue + 10 min: the third 5-minute step
    forecast = samples(text, "forecaster_forecast")
    assert forecast[(("band", "ensemble"), ("workload", NASA_ID))] == now_row[ENSEMBLE]
    assert forecast[(("band", "hi-95"), ("workload", NASA_ID))] == now_row[hi(ENSEMBLE, 95)]
    assert forecast[(("band", "lgbm"), ("workload", NASA_ID))] == now_row["lgbm"]
    peak = samples(text, "forecaster_forecast_peak")
    assert peak[(("band", "hi-80"), ("workload", NASA_ID))] == frame[hi(ENSEMBLE, 80)].max()
    issued = samples(text, "forecaster_forecast_issued_timestamp_seconds")
    assert issued[(("workload", NASA_ID),)] == ISSUED.timestamp()
    actual = samples(text, "forecaster_demand_actual")
    expected = seeded.actuals.set_index("ds")["y"]
    assert actual[(("workload", NASA_ID),)] == expected[expected.index <= NOW].iloc[-1]
    assert samples(text, "forecaster_accuracy_mae")[(("workload", NASA_ID),)] == 10.0
    assert samples(text, "forecaster_accuracy_coverage_ratio")[(("level", "95"), ("workload", NASA_ID))] == 0.94
    assert samples(text, "forecaster_drift")[(("workload", NASA_ID),)] == 0.0
    # the shop forecast (2024) starts after NOW: its first step is the current one
    assert forecast[(("band", "ensemble"), ("workload", "shop/web"))] == 100.0


def test_a_forecast_that_has_ended_is_not_exported_as_current(seeded: Seeded) -> None:
    later = ISSUED + pd.Timedelta(days=2)
    text = TestClient(create_app(seeded.store, clock=lambda: later)).get("/metrics").text
    assert (("band", "ensemble"), ("workload", NASA_ID)) not in samples(text, "forecaster_forecast")
    assert (("band", "ensemble"), ("workload", NASA_ID)) in samples(text, "forecaster_forecast_peak")


def test_metrics_read_the_store_at_most_once_per_interval(seeded: Seeded) -> None:
    calls = []

    class Counting(InMemoryStore):
        def latest_forecast(self, workload_id: str) -> Any:
            calls.append(workload_id)
            return seeded.store.latest_forecast(workload_id)

        def list_workloads(self, **kw: Any) -> Any:
            return seeded.store.list_workloads(**kw)

    c = TestClient(create_app(Counting(), settings=ApiSettings(metrics_refresh_s=3600), clock=lambda: NOW))
    c.get("/metrics")
    c.get("/metrics")
    c.get("/readyz")
    assert len(calls) == 10, "one refresh: one latest_forecast per workload"


def test_metrics_still_served_when_the_store_is_down() -> None:
    class Down(InMemoryStore):
        def list_workloads(self, **_: Any) -> Any:
            raise TemporaryError("database is locked")

    response = TestClient(create_app(Down())).get("/metrics")
    assert response.status_code == 200 and "forecaster_job_runs" in response.text


def test_unknown_path_and_wrong_method_are_problems(client: TestClient) -> None:
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["instance"] == "/v2/nothing"
    wrong = client.delete("/v1/events", headers=auth(READ))
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    assert wrong.json()["type"].endswith("/method-not-allowed")


def test_a_crash_is_a_500_problem_without_internals(seeded: Seeded, make_app: AppMaker) -> None:
    class Broken(InMemoryStore):
        def list_workloads(self, **_: Any) -> Any:
            raise RuntimeError("secret connection string postgres://u:pw@db")

    with TestClient(make_app(Broken()), raise_server_exceptions=False) as c:
        response = c.get("/v1/workloads", headers=auth(READ))
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/internal") and "RuntimeError" in body["detail"]
    assert "pw@db" not in response.text


def test_docs_and_openapi_are_served(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "forecaster"
    assert "Problem" in doc["components"]["schemas"]
    expected = {"/v1/workloads", "/v1/forecasts/{workload}", "/v1/actuals/{workload}", "/v1/recommendations/{workload}",
                "/v1/decisions", "/v1/accuracy/{workload}", "/v1/events", "/v1/what-if", "/v1/models",
                "/v1/models/rollback", "/healthz", "/readyz",
                "/metrics"}
    assert set(doc["paths"]) == expected


def test_every_error_status_is_declared_as_a_problem(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
            assert "500" in errors, f"{method} {path}"
            for status, response in errors.items():
                assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {status}"
            if path.startswith("/v1"):
                assert {"401", "403", "422"} <= set(errors), f"{method} {path}"
            if method == "post":
                assert {"400", "413", "415"} <= set(errors), f"{method} {path}"
