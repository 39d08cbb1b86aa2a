"""``GET /v1/forecasts/{workload}`` (JSON and CSV) and ``GET /v1/actuals/{workload}``: exact values of stored runs."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from api_support import ISSUED, MODEL_VERSION, READ, SHOP_ISSUED, AppMaker, Seeded, auth
from fastapi.testclient import TestClient

from forecaster.api.routes_forecasts import MemberName
from forecaster.contracts.frames import DS, ENSEMBLE, MEMBERS, hi, lo
from forecaster.contracts.ports import DecisionRecord, Workload
from forecaster.datasets import NASA_ID
from forecaster.testing.store import InMemoryStore

H = auth(READ)


def test_json_has_every_stored_value_of_the_real_run(client: TestClient, seeded: Seeded) -> None:
    run = seeded.nasa_run
    body = client.get(f"/v1/forecasts/{NASA_ID}", headers=H).json()
    assert body["workload"] == NASA_ID and body["run_id"] == "run-nasa-1"
    assert body["issued_at"] == "1995-07-21T04:00:00Z" and body["model_version"] == MODEL_VERSION
    assert body["freq"] == "5min" and body["levels"] == [80, 95]
    assert body["horizon"] == body["stored_horizon"] == 288 == len(body["ds"])
    assert body["backtest_mae"] == 12.5
    frame = run.frame.sort_values(DS)
    assert body["ds"][0] == "1995-07-21T04:00:00Z" and body["ds"][-1] == "1995-07-22T03:55:00Z"
    assert body["ensemble"] == frame[ENSEMBLE].tolist()  # exact floats, no rounding on the way
    for band in body["bands"]:
        assert band["lo"] == frame[lo(ENSEMBLE, band["level"])].tolist()
        assert band["hi"] == frame[hi(ENSEMBLE, band["level"])].tolist()
    assert [b["level"] for b in body["bands"]] == [80, 95]
    assert set(body["members"]) == set(MEMBERS)
    for member, values in body["members"].items():
        assert values == frame[member].tolist()


def test_json_of_the_fixture_run_is_exact(client: TestClient) -> None:
    body = client.get("/v1/forecasts/shop/web", headers=H).json()
    assert body["ensemble"] == [100.0 + i for i in range(12)]
    assert body["bands"][0] == {"level": 80, "lo": [90.0 + i for i in range(12)], "hi": [110.0 + i for i in range(12)]}
    assert body["members"]["lgbm"] == [98.0 + i for i in range(12)]
    assert body["issued_at"] == "2024-03-04T00:00:00Z" and body["backtest_mae"] is None


@pytest.mark.parametrize("how", ["query", "accept"])
def test_csv_round_trips_the_stored_floats(client: TestClient, seeded: Seeded, how: str) -> None:
    if how == "query":
        response = client.get(f"/v1/forecasts/{NASA_ID}?format=csv", headers=H)
    else:
        response = client.get(f"/v1/forecasts/{NASA_ID}", headers={**H, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-model-version"] == MODEL_VERSION
    assert response.headers["x-forecast-issued-at"] == "1995-07-21T04:00:00Z"
    table = pd.read_csv(io.StringIO(response.text))
    frame = seeded.nasa_run.frame.sort_values(DS).reset_index(drop=True)
    expected_cols = ["unique_id", DS, ENSEMBLE, lo(ENSEMBLE, 80), hi(ENSEMBLE, 80), lo(ENSEMBLE, 95),
                     hi(ENSEMBLE, 95), *MEMBERS, "issued_at", "model_version"]
    assert list(table.columns) == expected_cols
    assert len(table) == 288
    assert (table["unique_id"] == NASA_ID).all() and (table["model_version"] == MODEL_VERSION).all()
    assert (table["issued_at"] == "1995-07-21T04:00:00Z").all()
    assert pd.to_datetime(table[DS], utc=True).tolist() == frame[DS].tolist()
    for col in expected_cols[2:-2]:
        np.testing.assert_array_equal(table[col].to_numpy(), frame[col].to_numpy())  # bit-for-bit


def test_csv_of_the_fixture_run_reads_as_written(client: TestClient) -> None:
    text = client.get("/v1/forecasts/shop/web?format=csv&horizon=2&levels=80&members=lgbm", headers=H).text
    assert text.splitlines() == [
        "unique_id,ds,ensemble,ensemble-lo-80,ensemble-hi-80,lgbm,issued_at,model_version",
        "shop/web,2024-03-04T00:00:00Z,100.0,90.0,110.0,98.0,2024-03-04T00:00:00Z,fixture-1",
        "shop/web,2024-03-04T00:05:00Z,101.0,91.0,111.0,99.0,2024-03-04T00:00:00Z,fixture-1",
    ]


@pytest.mark.parametrize(("accept", "csv"), [
    ("text/csv", True), ("application/json", False), ("*/*", False), ("", False),
    ("text/csv;q=0.5, application/json", False), ("application/json;q=0.1, text/csv", True),
    ("text/html, */*;q=0.1", False),
], ids=["csv", "json", "any", "none", "json-preferred", "csv-preferred", "other-or-anything"])
def test_accept_header_negotiation(client: TestClient, accept: str, csv: bool) -> None:
    response = client.get("/v1/forecasts/shop/web", headers={**H, "Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv" if csv else "application/json")


def test_format_query_wins_over_accept(client: TestClient) -> None:
    response = client.get("/v1/forecasts/shop/web?format=json", headers={**H, "Accept": "text/csv"})
    assert response.headers["content-type"].startswith("application/json")


def test_horizon_levels_and_members_select_what_is_sent(client: TestClient) -> None:
    body = client.get("/v1/forecasts/shop/web?horizon=3&levels=95&members=seasonal&members=lgbm", headers=H).json()
    assert body["horizon"] == 3 and body["stored_horizon"] == 12
    assert body["ds"] == ["2024-03-04T00:00:00Z", "2024-03-04T00:05:00Z", "2024-03-04T00:10:00Z"]
    assert body["levels"] == [95] and [b["level"] for b in body["bands"]] == [95]
    assert body["bands"][0]["hi"] == [120.0, 121.0, 122.0]
    assert body["members"] == {"seasonal": [101.0, 102.0, 103.0], "lgbm": [98.0, 99.0, 100.0]}
    none = client.get("/v1/forecasts/shop/web?members=none", headers=H).json()
    assert none["members"] == {}


def test_a_horizon_beyond_the_stored_one_returns_what_is_stored(client: TestClient) -> None:
    body = client.get("/v1/forecasts/shop/web?horizon=500", headers=H).json()
    assert body["horizon"] == 12


@pytest.mark.parametrize(("query", "field"), [
    ("levels=0", "levels.0"), ("levels=100", "levels.0"), ("horizon=0", "horizon"), ("members=arima", "members.0"),
    ("format=xml", "format"),
], ids=["level-0", "level-100", "horizon-0", "unknown-member", "format"])
def test_bad_selection_is_a_422_naming_the_parameter(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/v1/forecasts/shop/web?{query}", headers=H)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["field"] == field
    assert problem["instance"] == f"/v1/forecasts/shop/web?{query}"


@pytest.mark.parametrize(("query", "field"), [("levels=90", "levels"), ("levels=80&levels=50", "levels")],
                         ids=["one", "one-of-two"])
def test_a_level_the_run_does_not_have_is_a_404_naming_it(client: TestClient, query: str, field: str) -> None:
    """The request is valid (a level 1..99); that band of this forecast does not exist."""
    response = client.get(f"/v1/forecasts/shop/web?{query}", headers=H)
    assert response.status_code == 404 and response.json()["errors"][0]["field"] == field
    assert "[80, 95]" in response.json()["detail"]


def test_nan_values_are_sent_as_null(client: TestClient, seeded: Seeded, make_app) -> None:  # type: ignore[no-untyped-def]
    from forecaster.contracts.ports import ForecastRun
    from forecaster.testing.store import InMemoryStore

    frame = seeded.shop_run.frame.drop(columns=["unique_id"], errors="ignore")
    frame.loc[2, "signals"] = math.nan
    store = InMemoryStore()
    store.save_forecast(ForecastRun("r", "w", SHOP_ISSUED, "v", (80, 95), frame))
    with TestClient(make_app(store)) as c:
        body = c.get("/v1/forecasts/w", headers=H).json()
        assert body["members"]["signals"][2] is None and body["members"]["signals"][3] == 105.0
        assert c.get("/v1/forecasts/w?format=csv&members=signals&horizon=3", headers=H).text.splitlines()[3] == (
            "w,2024-03-04T00:10:00Z,102.0,92.0,112.0,82.0,122.0,,2024-03-04T00:00:00Z,v")


def test_unknown_workload_and_missing_forecast_are_404_problems(client: TestClient) -> None:
    unknown = client.get("/v1/forecasts/nope/x", headers=H)
    assert unknown.status_code == 404 and "'nope/x' not found" in unknown.json()["detail"]
    missing = client.get("/v1/forecasts/shop/cart", headers=H)
    assert missing.status_code == 404 and "no forecast stored" in missing.json()["detail"]
    assert missing.json()["type"].endswith("/not-found")


def test_member_names_of_the_query_match_the_contract() -> None:
    assert set(MemberName.__args__) == {*MEMBERS, "none"}  # type: ignore[attr-defined]


def test_actuals_default_window_covers_history_and_the_forecast(client: TestClient, seeded: Seeded) -> None:
    body = client.get(f"/v1/actuals/{NASA_ID}", headers=H).json()
    assert body["start"] == "1995-07-20T04:00:00Z" and body["end"] == "1995-07-22T03:55:00Z"
    expected = seeded.actuals[seeded.actuals[DS] >= ISSUED - pd.Timedelta(days=1)]
    assert body["y"] == expected["y"].tolist()
    assert len(body["ds"]) == 576 and body["ds"][0] == "1995-07-20T04:00:00Z"


def test_actuals_window_by_query(client: TestClient, seeded: Seeded) -> None:
    body = client.get(f"/v1/actuals/{NASA_ID}?start=1995-07-21T04:00:00Z&end=1995-07-21T04:10:00Z", headers=H).json()
    rows = seeded.actuals[(seeded.actuals[DS] >= ISSUED) & (seeded.actuals[DS] <= ISSUED + pd.Timedelta(minutes=10))]
    assert body["ds"] == ["1995-07-21T04:00:00Z", "1995-07-21T04:05:00Z", "1995-07-21T04:10:00Z"]
    assert body["y"] == rows["y"].tolist()


@pytest.mark.parametrize(("query", "field"), [
    ("start=1995-07-21T04:00:00Z&end=1995-07-20T04:00:00Z", "end"),
    ("start=1995-01-01T00:00:00Z&end=1995-07-20T04:00:00Z", "start"),
    ("start=1995-07-21T04:00:00", "start"),
    ("start=0001-01-01T00:00:00Z", "start"),
], ids=["reversed", "too-long", "naive", "out-of-range"])
def test_bad_actuals_window_is_a_422(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/v1/actuals/{NASA_ID}?{query}", headers=H)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_actuals_end_is_never_after_the_last_observation(make_app: AppMaker, seeded: Seeded) -> None:
    store = InMemoryStore()
    store.upsert_workload(Workload(NASA_ID))
    observed = seeded.actuals[seeded.actuals[DS] <= ISSUED]  # observed up to the issue time, forecast a day ahead
    store.save_actuals(NASA_ID, observed)
    store.save_forecast(seeded.nasa_run)
    with TestClient(make_app(store)) as c:
        body = c.get(f"/v1/actuals/{NASA_ID}", headers=H).json()
        assert body["ds"][-1] == "1995-07-21T04:00:00Z" and body["end"] == body["ds"][-1]
        assert body["start"] == "1995-07-20T04:00:00Z"
        ahead = c.get(f"/v1/actuals/{NASA_ID}?start=1995-07-21T00:00:00Z&end=1995-07-22T00:00:00Z", headers=H).json()
        assert ahead["end"] == "1995-07-21T04:00:00Z" and ahead["start"] == "1995-07-21T00:00:00Z"
        empty = c.get(f"/v1/actuals/{NASA_ID}?start=1995-07-23T00:00:00Z", headers=H).json()
        assert empty["ds"] == [] and empty["end"] == "1995-07-24T00:00:00Z"


def test_memory_in_decisions_is_whole_bytes(make_app: AppMaker) -> None:
    store = InMemoryStore()
    store.upsert_workload(Workload("shop/web"))
    memory = {"target": 3861631195.855509, "lower_bound": 3000000000.2, "upper_bound": 4e9 + 0.5,
              "uncapped_target": 3861631195.855509}
    cpu = {"target": 0.255, "lower_bound": 0.2, "upper_bound": 0.4, "uncapped_target": 0.255}
    details = {"current_requests": {"app/cpu": 0.5, "app/memory": 2**32 + 0.25},
               "predicted_use": {"app/cpu": 0.21, "app/memory": 3.5e9 + 0.1},
               "containers": {"app": {"memory": {"request": 1.5, "predicted": 2.5}, "cpu": {"predicted": 0.25}}}}
    store.record_decision(DecisionRecord("shop/web/resources/1", "shop/web", SHOP_ISSUED, "resources", "Recommend",
                                         False, {"containers": {"app": {"cpu": cpu, "memory": memory}}}, "p90",
                                         details))
    with TestClient(make_app(store)) as c:
        for url in ("/v1/recommendations/shop/web", "/v1/decisions?workload=shop/web"):
            body = c.get(url, headers=H).json()
            d = body["resources"] if "resources" in body else body["items"][0]
            got = d["value"]["containers"]["app"]
            assert got["memory"] == {"target": 3861631196, "lower_bound": 3000000001, "upper_bound": 4000000001,
                                     "uncapped_target": 3861631196}
            assert all(type(v) is int for v in got["memory"].values())
            assert got["cpu"] == cpu, "cores stay fractional"
            assert d["details"]["current_requests"] == {"app/cpu": 0.5, "app/memory": 2**32 + 1}
            assert d["details"]["predicted_use"] == {"app/cpu": 0.21, "app/memory": 3500000001}
            assert d["details"]["containers"]["app"] == {"memory": {"request": 2, "predicted": 3},
                                                         "cpu": {"predicted": 0.25}}
