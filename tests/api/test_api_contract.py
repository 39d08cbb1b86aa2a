"""The strict API contract (issue 22, item 6): what the server refuses, with which status, and that OpenAPI says so.

- unknown query parameters are a 400 naming them (``/v1/decisions?begin=...`` used to answer every decision);
- timestamps are RFC 3339 strings only: ``"start": 0`` (stored as 1970 before) and ``?start=0`` are a 422 naming
  the field;
- ``/v1/decisions`` filters by ``start``/``end`` like ``/v1/actuals`` (``since`` still works, declared deprecated);
- ``Accept`` that admits nothing the route produces is a 406; ``Allow`` on a 405 lists every method of the path;
- a control character (NUL, tab...) in a name, id or label is a 400 on SQLite and PostgreSQL alike, and nothing is
  stored (SQLite used to store a NUL that PostgreSQL refused);
- the OpenAPI document declares the ranges and patterns the server enforces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import NOW, READ, SHOP_ISSUED, TOKENS, WRITE, AppMaker, Seeded, auth, decisions, shop_forecast
from fastapi.testclient import TestClient
from support.postgres import PostgresServer, pg_server  # noqa: F401  (fixture)

from forecaster.adapters.store import SqlStore
from forecaster.api import ApiSettings, create_app
from forecaster.api.schemas import RFC3339
from forecaster.contracts.ports import ForecastRun, Workload
from forecaster.datasets import NASA_ID
from forecaster.testing.store import InMemoryStore

R, W = auth(READ), auth(WRITE)
EVENT = {"name": "launch", "kind": "launch", "start": "2024-03-05T00:00:00Z", "end": "2024-03-06T00:00:00Z"}


# -- unknown query parameters ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    f"/v1/decisions?workload={NASA_ID}&begin=1995-07-21T02:00:00Z",
    "/v1/workloads?limit=5&page=2",
    "/v1/forecasts/shop/web?horizon=2&level=80",
    f"/v1/actuals/{NASA_ID}?from=1995-07-21T02:00:00Z",
    f"/v1/accuracy/{NASA_ID}?sort=mae",
    "/v1/recommendations/shop/web?kind=replicas",
    "/v1/events?name=launch",
    "/healthz?verbose=1",
    "/readyz?x=",
    "/metrics?name[]=up",
], ids=["decisions", "workloads", "forecasts", "actuals", "accuracy", "recommendations", "events", "healthz",
        "readyz", "metrics"])
def test_an_unknown_query_parameter_is_a_400_naming_it(client: TestClient, url: str) -> None:
    response = client.get(url, headers=R)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/unknown-parameter") and problem["status"] == 400
    unknown = url.split("?")[1].rsplit("&", maxsplit=1)[-1].split("=", maxsplit=1)[0]
    assert [e["field"] for e in problem["errors"]] == [unknown] and problem["errors"][0]["in"] == "query"


def test_a_single_valued_parameter_given_twice_is_a_400_but_lists_may_repeat(client: TestClient) -> None:
    """FastAPI keeps the last of ``?workload=a&workload=b`` silently; the contract refuses it, naming the field."""
    for url in (f"/v1/decisions?workload={NASA_ID}&workload=shop/web", "/v1/models?workload=a&workload=b",
                "/v1/workloads?limit=1&limit=2"):
        response = client.get(url, headers=R)
        assert response.status_code == 400, (url, response.text)
        problem = response.json()
        assert problem["type"].endswith("/repeated-parameter")
        assert [e["field"] for e in problem["errors"]] == [url.split("?")[1].split("=")[0]]
    assert client.get(f"/v1/forecasts/{NASA_ID}?levels=80&levels=95", headers=R).status_code == 200


def test_unknown_parameters_on_a_post_and_auth_comes_first(client: TestClient) -> None:
    assert client.post("/v1/events?dry_run=1", json=EVENT, headers=W).status_code == 400
    assert client.get("/v1/workloads?page=2").status_code == 401, "without a token: only that a token is needed"


def test_decisions_with_a_misspelt_filter_no_longer_answer_everything(client: TestClient) -> None:
    """The issue's probe: ``/v1/decisions?start=...`` returned every decision; ``start`` is now the filter."""
    everything = client.get(f"/v1/decisions?workload={NASA_ID}", headers=R).json()
    later = client.get(f"/v1/decisions?workload={NASA_ID}&start=1995-07-21T02:00:00Z", headers=R).json()
    assert everything["total"] == 4 and later["total"] == 3
    assert client.get(f"/v1/decisions?workload={NASA_ID}&begin=1995-07-21T02:00:00Z", headers=R).status_code == 400


# -- the decisions window ----------------------------------------------------------------------------------------
def floors(body: dict[str, Any]) -> list[int]:
    return [d["value"]["min_replicas"] for d in body["items"]]


@pytest.mark.parametrize(("query", "expected"), [
    ("", [6, 8, 5, 3]),
    ("&start=1995-07-21T02:00:00Z", [6, 8, 5]),
    ("&since=1995-07-21T02:00:00Z", [6, 8, 5]),
    ("&end=1995-07-21T02:00:00Z", [5, 3]),
    ("&start=1995-07-21T02:00:00Z&end=1995-07-21T03:00:00Z", [8, 5]),
    ("&start=1995-07-21T03:00:00%2B01:00&end=1995-07-21T02:30:00Z", [5]),
    ("&start=1995-07-21T01:00:00Z&end=1995-07-21T01:00:00.000001Z", [3]),
    ("&end=1995-07-20T00:00:00Z", []),
], ids=["all", "start", "since-alias", "end-inclusive", "window", "offsets", "one-instant", "before-all"])
def test_decisions_window(client: TestClient, query: str, expected: list[int]) -> None:
    """Decisions of nasa-http at 01:00, 02:00, 03:00, 04:00 UTC (floors 3, 5, 8, 6), newest first."""
    body = client.get(f"/v1/decisions?workload={NASA_ID}{query}", headers=R).json()
    assert floors(body) == expected and body["total"] == len(expected)


def test_decisions_window_pages_count_only_the_window(client: TestClient) -> None:
    base = f"/v1/decisions?workload={NASA_ID}&start=1995-07-21T01:00:00Z&end=1995-07-21T03:00:00Z&limit=2"
    first = client.get(base, headers=R).json()
    second = client.get(base + "&offset=2", headers=R).json()
    assert floors(first) == [8, 5] and floors(second) == [3] and first["total"] == second["total"] == 3
    assert first["links"]["next"] is not None and second["links"]["next"] is None
    assert client.get(base + "&offset=3", headers=R).json()["items"] == []


@pytest.mark.parametrize(("query", "field"), [
    ("start=1995-07-21T03:00:00Z&end=1995-07-21T02:00:00Z", "end"),
    ("start=1995-07-21T03:00:00Z&end=1995-07-21T03:00:00Z", "end"),
    ("start=1995-07-21T02:00:00Z&since=1995-07-21T02:00:00Z", "since"),
    ("end=0", "end"),
], ids=["reversed", "empty", "both-names", "number"])
def test_bad_decisions_windows_are_422(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/v1/decisions?{query}", headers=R)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


# -- timestamps are RFC 3339 strings -----------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "accepted"), [
    ("2024-03-05T00:00:00Z", True), ("2024-03-05T00:00:00.123456+05:30", True), ("2024-03-05T00:00:00-23:59", True),
    ("2200-12-31T23:59:58Z", True),
    ("1970-01-01T00:00:00+14:00", True),
    (0, False), (1709596800, False), (1709596800.5, False), ("0", False), ("1709596800", False),
    ("2024-03-05", False), ("2024-03-05T00:00:00", False), ("2024-03-05 00:00:00Z", False),
    ("2024-03-05t00:00:00z", False), ("2024-03-05T00:00:00.1234567Z", False), ("2024-02-30T00:00:00Z", False),
    ("2024-03-05T23:59:60Z", False), ("1969-12-31T23:59:59Z", False), ("2201-01-01T00:00:00Z", False),
    ("2024-03-05T00:00:00+24:00", False), (None, False), (True, False),
], ids=lambda v: repr(v)[:24])
def test_event_start_is_an_rfc3339_string_only(fresh_store: InMemoryStore, make_app: AppMaker, value: Any,
                                              accepted: bool) -> None:
    body = {**EVENT, "start": value, "end": "2200-12-31T23:59:59Z"}
    with TestClient(make_app(fresh_store)) as c:
        response = c.post("/v1/events", json=body, headers=W)
    if accepted:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["start"]
        assert fresh_store.list_events().total == 0, "nothing stored (a number used to be stored as 1970)"


def test_the_openapi_pattern_is_what_the_server_enforces() -> None:
    import re

    pattern = re.compile(RFC3339)
    assert pattern.match("2024-03-05T00:00:00Z") and not pattern.match("2024-03-05T00:00:00")
    assert not pattern.match("0") and not pattern.match("2201-01-01T00:00:00Z")


@pytest.mark.parametrize("url", [f"/v1/actuals/{NASA_ID}?start=0", f"/v1/actuals/{NASA_ID}?end=1709596800",
                                 "/v1/decisions?start=0"], ids=["actuals-start", "actuals-end", "decisions"])
def test_numbers_are_not_timestamps_in_queries_either(client: TestClient, url: str) -> None:
    response = client.get(url, headers=R)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == url.split("?")[1].split("=", maxsplit=1)[0]


# -- Accept and Allow --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "accept", "status"), [
    ("/v1/workloads", "image/png", 406),
    ("/v1/forecasts/shop/web", "image/png", 406),
    ("/v1/forecasts/shop/web", "text/csv", 200),
    ("/v1/forecasts/shop/web", "text/*", 200),
    ("/v1/forecasts/shop/web", "application/json;q=0, text/csv;q=0", 406),
    ("/v1/decisions", "application/xml, image/*", 406),
    ("/v1/decisions", "application/*", 200),
    ("/v1/decisions", "*/*;q=0.1, image/png", 200),
    ("/healthz", "image/png", 406),
    ("/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", 200),
    ("/metrics", "application/json", 406),
], ids=["workloads-png", "forecast-png", "forecast-csv", "forecast-text-any", "forecast-q0", "decisions-xml",
        "decisions-app-any", "decisions-any", "healthz-png", "metrics-prometheus", "metrics-json"])
def test_an_unacceptable_accept_is_a_406(client: TestClient, url: str, accept: str, status: int) -> None:
    response = client.get(url, headers={**R, "Accept": accept})
    assert response.status_code == status, response.text[:300]
    if status == 406:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/not-acceptable")


def test_a_post_with_an_unacceptable_accept_is_a_406_and_stores_nothing(fresh_store: InMemoryStore,
                                                                         make_app: AppMaker) -> None:
    with TestClient(make_app(fresh_store)) as c:
        response = c.post("/v1/events", json=EVENT, headers={**W, "Accept": "image/png"})
    assert response.status_code == 406 and fresh_store.list_events().total == 0


@pytest.mark.parametrize(("method", "url", "allow"), [
    ("DELETE", "/v1/events", "GET, POST"),
    ("OPTIONS", "/v1/events", "GET, POST"),
    ("PUT", "/v1/forecasts/shop/web", "GET"),
    ("POST", "/v1/workloads", "GET"),
    ("GET", "/v1/what-if", "POST"),
    ("PATCH", "/healthz", "GET"),
], ids=["events-delete", "events-options", "forecasts-put", "workloads-post", "what-if-get", "healthz-patch"])
def test_405_lists_every_method_of_the_path(client: TestClient, method: str, url: str, allow: str) -> None:
    response = client.request(method, url, headers=W)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.json()["type"].endswith("/method-not-allowed")


# -- control characters, the same on every store ----------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        store: Any = InMemoryStore()
    elif request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        store = SqlStore(server.create_database())
    store.upsert_workload(Workload("shop/web", namespace="shop"))
    store.save_forecast(ForecastRun("run-shop-1", "shop/web", SHOP_ISSUED, "fixture-1", (80, 95), shop_forecast()))
    for d in decisions()[4:]:
        store.record_decision(d)
    yield store
    close = getattr(store, "close", None)
    if callable(close):
        close()


CONTROL_POSTS = [
    ({**EVENT, "name": "launch\x00day"}, "name"),
    ({**EVENT, "name": "launch\tday"}, "name"),
    ({**EVENT, "name": "launch\x7f"}, "name"),
    ({**EVENT, "scope": ["shop/\x00web"]}, "scope.0"),
    ({**EVENT, "id": "evt\x00-1"}, "id"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("body", "field"), CONTROL_POSTS, ids=["nul-name", "tab-name", "del-name", "nul-scope",
                                                                 "nul-id"])
def test_a_control_character_in_an_event_is_a_400_on_every_store(any_store: Any, body: dict[str, Any],
                                                                  field: str) -> None:
    app = create_app(any_store, None, ApiSettings(tokens=TOKENS), clock=lambda: NOW)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.post("/v1/events", json=body, headers=W)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"].endswith("/control-character") and [e["field"] for e in problem["errors"]] == [field]
    assert any_store.list_events().total == 0


@pytest.mark.integration
@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/v1/forecasts/shop%00web", None),
    ("GET", "/v1/recommendations/shop/web%0A", None),
    ("GET", "/v1/decisions?workload=shop/web%00", None),
    ("POST", "/v1/what-if", {"workload": "shop/web\x00"}),
    ("POST", "/v1/what-if", {"workload": "shop/web", "events": [
        {"name": "a\x00", "start": "2024-03-04T00:00:00Z", "end": "2024-03-04T01:00:00Z", "uplift": 1}]}),
], ids=["forecast-path", "recommendations-newline", "decisions-filter", "what-if-workload", "what-if-event-name"])
def test_a_control_character_in_a_read_is_a_400_on_every_store(any_store: Any, method: str, url: str,
                                                                body: dict[str, Any] | None) -> None:
    app = create_app(any_store, None, ApiSettings(tokens=TOKENS), clock=lambda: NOW)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.request(method, url, json=body, headers=R)
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/control-character")


# -- the OpenAPI document ----------------------------------------------------------------------------------------
def op_params(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in doc["paths"][path][method].get("parameters", [])}


def schema_of(param: dict[str, Any]) -> dict[str, Any]:
    schema = param["schema"]
    return next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)


def test_openapi_declares_what_the_server_enforces(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    forecasts = op_params(doc, "/v1/forecasts/{workload}")
    levels = schema_of(forecasts["levels"])
    assert levels["items"]["minimum"] == 1 and levels["items"]["maximum"] == 99
    assert schema_of(forecasts["workload"])["pattern"] == "^[^\\x00-\\x1f\\x7f]*$"
    decisions_ = op_params(doc, "/v1/decisions")
    assert {"workload", "start", "end", "since", "limit", "offset"} == set(decisions_)
    assert decisions_["since"].get("deprecated") is True
    for name in ("start", "end", "since"):
        assert schema_of(decisions_[name]) == {"type": "string", "format": "date-time", "pattern": RFC3339}
    event = doc["components"]["schemas"]["EventIn"]["properties"]
    assert event["start"]["pattern"] == RFC3339 and event["name"]["pattern"] == "^[^\\x00-\\x1f\\x7f]*$"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert {"400", "406"} <= set(op["responses"]), f"{method} {path}"


def test_a_seeded_decision_fixture_is_what_the_window_tests_assume(seeded: Seeded) -> None:
    times = sorted(d.time.isoformat() for d in seeded.store.list_decisions(workload_id=NASA_ID).items)
    assert [t[11:16] for t in times] == ["01:00", "02:00", "03:00", "04:00"]


# -- the rules across fields, and conform ------------------------------------------------------------------------
@pytest.mark.parametrize(("operation", "query", "body", "expected_query", "expected_body"), [
    ("GET /v1/actuals/{workload}", {"start": "2024-03-05T00:00:00Z", "end": "2024-03-04T00:00:00Z"}, None,
     {"start": "2024-03-05T00:00:00Z"}, None),
    ("GET /v1/actuals/{workload}", {"start": "2024-01-01T00:00:00Z", "end": "2024-03-04T00:00:00Z"}, None,
     {"start": "2024-01-01T00:00:00Z"}, None),
    ("GET /v1/actuals/{workload}", {"start": "2024-03-04T00:00:00Z", "end": "2024-03-05T00:00:00+05:00"}, None,
     {"start": "2024-03-04T00:00:00Z", "end": "2024-03-05T00:00:00+05:00"}, None),
    ("GET /v1/actuals/{workload}", {"start": 0, "end": "2024-03-04T00:00:00Z"}, None,
     {"start": 0, "end": "2024-03-04T00:00:00Z"}, None),
    ("GET /v1/decisions", {"start": "2024-03-05T00:00:00Z", "since": "2024-03-01T00:00:00Z"}, None,
     {"start": "2024-03-05T00:00:00Z"}, None),
    ("GET /v1/decisions", {"since": "2024-03-05T00:00:00Z", "end": "2024-03-05T00:00:00Z"}, None,
     {"since": "2024-03-05T00:00:00Z"}, None),
    ("POST /v1/events", None, {"start": "2024-03-05T00:00:00Z", "end": "2024-03-05T00:00:00Z"},
     None, {"start": "2024-03-05T00:00:00Z", "end": "2024-03-05T00:00:01.000000Z"}),
    ("POST /v1/events", None, {"start": "2200-12-31T22:05:30.807-17:32", "end": "1981-11-01T21:27:15+23:42"},
     None, {"start": "2200-12-31T22:05:30.807-17:32", "end": "2200-12-31T22:05:31.807000-17:32"}),
    ("POST /v1/events", None, {"start": "2200-12-31T23:59:59Z", "end": "2024-03-05T00:00:00Z"},
     None, {"start": "2024-03-04T23:59:59.000000Z", "end": "2024-03-05T00:00:00Z"}),
    ("POST /v1/events", None, {"start": "2200-12-31T23:59:59Z", "end": "1970-01-01T00:00:00Z"},
     None, {"start": "2000-01-01T00:00:00Z", "end": "2000-01-01T00:00:01Z"}),
    ("POST /v1/events", None, {"start": "2024-03-05T00:00:00Z", "end": "not a time"},
     None, {"start": "2024-03-05T00:00:00Z", "end": "not a time"}),
    ("POST /v1/what-if", None, {"policy": {"min_replicas": 10000.0, "max_replicas": 5}},
     None, {"policy": {"min_replicas": 10000.0, "max_replicas": 10000.0}}),
    ("POST /v1/what-if", None, {"policy": {"min_replicas": True, "max_replicas": 0}},
     None, {"policy": {"min_replicas": True, "max_replicas": 0}}),
    ("POST /v1/what-if", None, {"start": "2024-03-01T00:00:00Z", "end": "2024-03-09T00:00:00Z",
                                "events": [{"start": "2024-03-02T00:00:00Z", "end": "2024-03-01T00:00:00Z"}]},
     None, {"start": "2024-03-01T00:00:00Z", "events": [{"start": "2024-03-02T00:00:00Z",
                                                         "end": "2024-03-02T00:00:01.000000Z"}]}),
    ("GET /v1/workloads", {"limit": 0}, None, {"limit": 0}, None),
], ids=["actuals-reversed", "actuals-too-long", "actuals-ok", "actuals-not-a-time", "decisions-both-names",
        "decisions-empty", "event-empty", "event-offsets-at-the-top", "event-start-at-the-top",
        "event-both-at-the-ends", "event-not-a-time", "what-if-bounds", "what-if-bool-untouched",
        "what-if-window-and-events", "no-rules"])
def test_conform_repairs_only_the_rules_across_fields(operation: str, query: Any, body: Any, expected_query: Any,
                                                      expected_body: Any) -> None:
    """``rules.conform`` changes only the fields a rule across fields names, and never a value that breaks the
    schema itself (a number for a time, a boolean for an integer): a negative case stays negative."""
    from forecaster.api.rules import conform

    assert conform(operation, query, body) == (expected_query, expected_body)


def test_every_rule_is_in_the_openapi_document(client: TestClient) -> None:
    from forecaster.api.rules import RULES

    doc = client.get("/openapi.json").json()
    for rule in RULES:
        method, path = rule.operation.split(" ", 1)
        op = doc["paths"][path][method.lower()]
        assert rule.text in op["x-rules"] and rule.text in op["description"], rule
