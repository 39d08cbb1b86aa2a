"""``POST /v1/events`` and ``GET /v1/events``: idempotency by id, validation problems naming the field, 400 for a
body that is not JSON, 415 for one that is not ``application/json``, 413 above the size limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from api_support import READ, WRITE, AppMaker, auth
from fastapi.testclient import TestClient

from forecaster.contracts.errors import ConflictError, TemporaryError
from forecaster.testing.store import InMemoryStore

W = auth(WRITE)
EVENT: dict[str, Any] = {"id": "sale-1", "name": "Summer sale", "kind": "sale", "start": "2024-06-01T00:00:00Z",
                         "end": "2024-06-03T00:00:00Z", "scope": ["shop/*"], "expected_uplift": 0.4}


@pytest.fixture
def writer(fresh_store: InMemoryStore, make_app: AppMaker) -> Iterator[TestClient]:
    with TestClient(make_app(fresh_store, max_body_bytes=2048)) as c:
        yield c


def test_create_then_repeat_is_201_then_200(writer: TestClient, fresh_store: InMemoryStore) -> None:
    first = writer.post("/v1/events", json=EVENT, headers=W)
    assert first.status_code == 201
    body = first.json()
    assert body["id"] == "sale-1" and body["kind"] == "sale" and body["scope"] == ["shop/*"]
    assert body["start"] == "2024-06-01T00:00:00Z" and body["expected_uplift"] == 0.4
    again = writer.post("/v1/events", json=EVENT, headers=W)
    assert again.status_code == 200
    assert again.json()["created_at"] == body["created_at"], "a replaced event keeps its first creation time"
    page = fresh_store.list_events()
    assert page.total == 1
    stored = page.items[0]
    assert stored.name == "Summer sale" and stored.start == pd.Timestamp("2024-06-01T00:00Z")
    assert stored.scope == ("shop/*",) and stored.expected_uplift == 0.4


def test_same_id_with_new_fields_replaces_the_event(writer: TestClient, fresh_store: InMemoryStore) -> None:
    assert writer.post("/v1/events", json=EVENT, headers=W).status_code == 201
    changed = {**EVENT, "name": "Summer sale (extended)", "end": "2024-06-05T00:00:00Z"}
    assert writer.post("/v1/events", json=changed, headers=W).status_code == 200
    (stored,) = fresh_store.list_events().items
    assert stored.name == "Summer sale (extended)" and stored.end == pd.Timestamp("2024-06-05T00:00Z")


def test_without_an_id_the_same_body_is_still_idempotent(writer: TestClient) -> None:
    body = {k: v for k, v in EVENT.items() if k != "id"}
    first = writer.post("/v1/events", json=body, headers=W)
    second = writer.post("/v1/events", json=body, headers=W)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] and first.json()["id"].startswith("evt-")
    other = writer.post("/v1/events", json={**body, "name": "Winter sale"}, headers=W)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_offsets_are_converted_to_utc(writer: TestClient) -> None:
    body = writer.post("/v1/events", json={**EVENT, "start": "2024-06-01T02:00:00+02:00"}, headers=W).json()
    assert body["start"] == "2024-06-01T00:00:00Z"


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "party"}, "kind"),
    ({"end": "2024-05-01T00:00:00Z"}, "end"),
    ({"end": EVENT["start"]}, "end"),
    ({"start": "2024-06-01T00:00:00"}, "start"),
    ({"start": "yesterday"}, "start"),
    ({"start": "0001-01-01T00:00:00Z"}, "start"),
    ({"expected_uplift": -0.1}, "expected_uplift"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"scope": ["a b"]}, "scope.0"),
    ({"id": "bad id!"}, "id"),
    ({"colour": "red"}, "colour"),
], ids=["kind", "end-before-start", "empty-window", "naive-start", "not-a-time", "year-1", "negative-uplift",
        "empty-name", "null-name", "scope-space", "id-chars", "unknown-field"])
def test_malformed_events_are_422_naming_the_field(writer: TestClient, change: dict[str, Any], field: str) -> None:
    response = writer.post("/v1/events", json={**EVENT, **change}, headers=W)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/validation") and problem["instance"] == "/v1/events"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert problem["errors"][0]["in"] == "body" and problem["errors"][0]["message"]
    assert field.split(".", maxsplit=1)[0] in problem["detail"]


def test_missing_fields_are_each_named(writer: TestClient) -> None:
    problem = writer.post("/v1/events", json={"name": "x"}, headers=W).json()
    assert sorted(e["field"] for e in problem["errors"]) == ["end", "kind", "start"]


@pytest.mark.parametrize("body", [b"{not json", b'{"name": "x",}', b"\xff\xfe"], ids=["broken", "comma", "binary"])
def test_a_body_that_is_not_json_is_400(writer: TestClient, body: bytes) -> None:
    response = writer.post("/v1/events", content=body, headers={**W, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/malformed-json")


def test_json_that_is_not_an_object_is_422(writer: TestClient) -> None:
    response = writer.post("/v1/events", json=[1, 2], headers=W)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_application_json_is_415(writer: TestClient, content_type: str) -> None:
    response = writer.post("/v1/events", content=b'{"a": 1}', headers={**W, "Content-Type": content_type})
    assert response.status_code == 415 and response.json()["type"].endswith("/unsupported-media-type")


def test_json_with_a_charset_or_a_json_suffix_is_accepted(writer: TestClient) -> None:
    import json
    for ct in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = writer.post("/v1/events", content=json.dumps(EVENT).encode(), headers={**W, "Content-Type": ct})
        assert response.status_code in (200, 201), ct


def test_a_body_above_the_limit_is_413(writer: TestClient) -> None:
    big = {**EVENT, "scope": [f"shop/workload-{i:05d}-of-the-shop" for i in range(100)]}
    response = writer.post("/v1/events", json={**big, "name": "x" * 200}, headers=W)
    assert response.status_code == 413 and response.json()["type"].endswith("/too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    streamed = writer.post("/v1/events", content=chunks(), headers={**W, "Content-Type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.parametrize(("error", "status"), [(ConflictError("changed"), 409), (TemporaryError("locked", 7), 503)],
                         ids=["conflict", "outage"])
def test_store_errors_become_409_and_503(writer: TestClient, fresh_store: InMemoryStore, error: Exception,
                                         status: int) -> None:
    fresh_store.fail_next_write = error
    response = writer.post("/v1/events", json=EVENT, headers=W)
    assert response.status_code == status and response.headers["content-type"] == "application/problem+json"
    if status == 503:
        assert response.headers["retry-after"] == "7"
    assert fresh_store.list_events().total == 0


def test_list_events_is_paginated_by_start(writer: TestClient) -> None:
    for day in (5, 1, 3):
        writer.post("/v1/events", json={**EVENT, "id": f"e{day}", "start": f"2024-06-0{day}T00:00:00Z",
                                        "end": f"2024-06-0{day + 1}T00:00:00Z"}, headers=W)
    first = writer.get("/v1/events?limit=2", headers=auth(READ)).json()
    assert [e["id"] for e in first["items"]] == ["e1", "e3"] and first["total"] == 3
    assert first["links"]["next"] == "/v1/events?limit=2&offset=2"
    second = writer.get(first["links"]["next"], headers=auth(READ)).json()
    assert [e["id"] for e in second["items"]] == ["e5"] and second["links"]["next"] is None
