"""Bearer tokens and scopes: 401 without or with an unknown token (``WWW-Authenticate: Bearer``), 403 without the
scope, anonymous reads only when allowed; token settings parsed from text and from ``ServiceSettings``."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import READ, WRITE, AppMaker, Seeded, auth
from fastapi.testclient import TestClient

from forecaster.api import ApiSettings, api_settings, parse_tokens
from forecaster.runtime.settings import ServiceSettings

EVENT = {"id": "sale-1", "name": "Summer sale", "kind": "sale", "start": "2024-06-01T00:00:00Z",
         "end": "2024-06-03T00:00:00Z", "scope": ["shop/*"], "expected_uplift": 0.4}
READS = ["/v1/workloads", "/v1/forecasts/shop/web", "/v1/actuals/shop/web", "/v1/decisions",
         "/v1/recommendations/shop/web", "/v1/accuracy/shop/web", "/v1/events"]


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["instance"]
    assert body["type"].startswith("https://forecaster.io/problems/")
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("headers", [{}, auth("not-a-token"), {"Authorization": "Basic dXNlcjpwdw=="},
                                     {"Authorization": "Bearer "}], ids=["none", "unknown", "basic", "empty"])
def test_writes_without_a_valid_token_are_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/events", json=EVENT, headers=headers)
    problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_says_invalid_token(client: TestClient) -> None:
    response = client.post("/v1/events", json=EVENT, headers=auth("guess"))
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_read_token_cannot_write(client: TestClient) -> None:
    response = client.post("/v1/events", json=EVENT, headers=auth(READ))
    body = problem(response, 403)
    assert "'write'" in body["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2"], ids=["broken", "empty", "truncated"])
def test_auth_is_checked_before_the_body(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert problem(response, 401)["type"] == "https://forecaster.io/problems/unauthorized", "auth before JSON parsing"
    response = client.post("/v1/events", content=body, headers={"Content-Type": "text/plain", **auth(READ)})
    assert problem(response, 403)["type"] == "https://forecaster.io/problems/forbidden", "scope before media type"


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_when_anonymous_reads_are_off(client: TestClient, path: str) -> None:
    problem(client.get(path), 401)
    assert client.get(path, headers=auth(READ)).status_code == 200
    assert client.get(path, headers=auth(WRITE)).status_code == 200, "write implies read"
    problem(client.get(path, headers=auth("wrong")), 401)


@pytest.mark.parametrize("path", READS)
def test_anonymous_reads_when_allowed(seeded: Seeded, make_app: AppMaker, path: str) -> None:
    with TestClient(make_app(seeded.store, anonymous_reads=True)) as c:
        assert c.get(path).status_code == 200
        problem(c.get(path, headers=auth("wrong")), 401)  # a token that is sent is still checked
        problem(c.post("/v1/events", json=EVENT), 401)  # writes still need the write scope


def test_ops_endpoints_and_the_page_need_no_token(client: TestClient) -> None:
    for path in ("/healthz", "/metrics", "/", "/explorer", "/static/explorer.js", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_what_if_needs_the_read_scope(client: TestClient) -> None:
    problem(client.post("/v1/what-if", json={"workload": "shop/web"}), 401)
    assert client.post("/v1/what-if", json={"workload": "shop/web", "demand": "forecast"},
                       headers=auth(READ)).status_code == 200


def test_no_tokens_configured_refuses_every_write(seeded: Seeded, make_app: AppMaker) -> None:
    with TestClient(make_app(seeded.store, tokens={})) as c:
        response = c.post("/v1/events", json=EVENT, headers=auth(WRITE))
    assert problem(response, 401)["type"] == "https://forecaster.io/problems/unauthorized"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_openapi_declares_bearer_auth_and_optional_reads(seeded: Seeded, make_app: AppMaker) -> None:
    with TestClient(make_app(seeded.store, anonymous_reads=True)) as c:
        doc = c.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"].lower() == "bearer"
    assert doc["paths"]["/v1/workloads"]["get"]["security"] == [{"bearerAuth": []}, {}]
    assert doc["paths"]["/v1/events"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]


@pytest.mark.parametrize(("text", "expected"), [
    ("a:read", {"a": {"read"}}),
    ("a:write, b:read", {"a": {"read", "write"}, "b": {"read"}}),
    ("a:read+write", {"a": {"read", "write"}}),
    ("tok:en:read", {"tok:en": {"read"}}),
    ("", {}),
], ids=["read", "write-implies-read", "plus", "colon-in-token", "empty"])
def test_parse_tokens(text: str, expected: dict[str, set[str]]) -> None:
    assert parse_tokens(text) == {k: frozenset(v) for k, v in expected.items()}


@pytest.mark.parametrize("text", ["a", "a:admin", ":read"], ids=["no-scope", "unknown-scope", "no-token"])
def test_parse_tokens_refuses_bad_entries(text: str) -> None:
    with pytest.raises(ValueError, match="tokens"):
        parse_tokens(text)


def test_api_settings_from_service_settings() -> None:
    service = ServiceSettings(read_tokens=("r1", "r2"), write_tokens=("w1",), anonymous_reads=True)
    api = api_settings(service)
    assert api.tokens == {"r1": frozenset({"read"}), "r2": frozenset({"read"}), "w1": frozenset({"read", "write"})}
    assert api.anonymous_reads is True
    assert api_settings(service, anonymous_reads=False, ready_max_age_s=60).ready_max_age_s == 60
    assert api_settings(None) == ApiSettings()
