"""Paginated lists (workloads, decisions, accuracy): totals, limit/offset, links; decision filters; the latest
recommendations per kind."""

from __future__ import annotations

import pytest
from api_support import ISSUED, READ, Seeded, auth
from fastapi.testclient import TestClient

from forecaster.datasets import NASA_ID

H = auth(READ)
ALL_IDS = sorted([NASA_ID, "shop/web", "shop/cart", *[f"batch/w{i:02d}" for i in range(7)]])


def test_workloads_pages_walk_the_whole_list(client: TestClient) -> None:
    seen, url, pages = [], "/v1/workloads?limit=3", 0
    while url:
        body = client.get(url, headers=H).json()
        assert body["total"] == 10 and body["limit"] == 3
        seen += [w["id"] for w in body["items"]]
        url, pages = body["links"]["next"], pages + 1
    assert seen == ALL_IDS and pages == 4


def test_workload_page_links(client: TestClient) -> None:
    body = client.get("/v1/workloads?limit=3&offset=3", headers=H).json()
    assert body["offset"] == 3 and len(body["items"]) == 3
    assert body["links"] == {"self": "/v1/workloads?limit=3&offset=3", "first": "/v1/workloads?limit=3&offset=0",
                             "last": "/v1/workloads?limit=3&offset=9", "next": "/v1/workloads?limit=3&offset=6",
                             "prev": "/v1/workloads?limit=3&offset=0"}
    end = client.get("/v1/workloads?limit=3&offset=9", headers=H).json()
    assert [w["id"] for w in end["items"]] == ALL_IDS[9:] and end["links"]["next"] is None


def test_past_the_end_is_an_empty_page(client: TestClient) -> None:
    body = client.get("/v1/workloads?limit=5&offset=50", headers=H).json()
    assert body["items"] == [] and body["total"] == 10 and body["links"]["prev"] == "/v1/workloads?limit=5&offset=45"


def test_workload_items_link_to_their_resources(client: TestClient) -> None:
    (item,) = client.get("/v1/workloads?limit=1&offset=8", headers=H).json()["items"]
    assert item["id"] == "shop/cart" and item["namespace"] == "shop" and item["kind"] == "demand"
    assert item["links"]["forecast"] == "/v1/forecasts/shop/cart"
    assert item["links"]["decisions"] == "/v1/decisions?workload=shop%2Fcart"
    assert client.get(item["links"]["recommendations"], headers=H).status_code == 200


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "limit=abc"])
def test_bad_page_parameters_are_422(client: TestClient, query: str) -> None:
    response = client.get(f"/v1/workloads?{query}", headers=H)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == query.split("=", maxsplit=1)[0]


def test_decisions_newest_first_and_filtered(client: TestClient) -> None:
    body = client.get(f"/v1/decisions?workload={NASA_ID}", headers=H).json()
    assert body["total"] == 4
    times = [d["time"] for d in body["items"]]
    assert times == sorted(times, reverse=True)
    assert [d["value"]["min_replicas"] for d in body["items"]] == [6, 8, 5, 3]
    latest = body["items"][0]
    assert latest["mode"] == "Auto" and latest["applied"] is True and latest["reason"] == "hi-80 peak needs 6 pods"
    assert latest["details"] == {"reactive_floor": 4}
    since = client.get(f"/v1/decisions?workload={NASA_ID}&since=1995-07-21T02:00:00Z", headers=H).json()
    assert [d["value"]["min_replicas"] for d in since["items"]] == [6, 8, 5]
    everyone = client.get("/v1/decisions", headers=H).json()
    assert everyone["total"] == 7


def test_decisions_pages(client: TestClient) -> None:
    first = client.get(f"/v1/decisions?workload={NASA_ID}&limit=3", headers=H).json()
    assert len(first["items"]) == 3
    assert first["links"]["next"] == f"/v1/decisions?workload={NASA_ID}&limit=3&offset=3"
    rest = client.get(first["links"]["next"], headers=H).json()
    assert [d["value"]["min_replicas"] for d in rest["items"]] == [3] and rest["links"]["next"] is None


def test_decisions_since_must_carry_an_offset(client: TestClient) -> None:
    response = client.get("/v1/decisions?since=1995-07-21T02:00:00", headers=H)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "since"


def test_recommendations_are_the_latest_of_each_kind(client: TestClient) -> None:
    body = client.get("/v1/recommendations/shop/web", headers=H).json()
    assert body["replicas"]["id"] == "shop/web/replicas/1" and body["replicas"]["value"] == {"min_replicas": 4}
    resources = body["resources"]
    assert resources["kind"] == "resources" and resources["applied"] is False
    assert resources["value"]["containers"]["app"]["cpu"]["target"] == 0.5
    assert resources["details"]["containers"]["sidecar"]["memory"]["predicted"] == 50 * 2**20
    assert resources["reason"] == "p90 of 8 days of use + 15 % margin"


def test_recommendations_without_decisions_are_null_and_unknown_is_404(client: TestClient) -> None:
    assert client.get("/v1/recommendations/shop/cart", headers=H).json() == {
        "workload": "shop/cart", "replicas": None, "resources": None}
    assert client.get("/v1/recommendations/nope", headers=H).status_code == 404


def test_accuracy_pages_newest_first(client: TestClient, seeded: Seeded) -> None:
    body = client.get(f"/v1/accuracy/{NASA_ID}?limit=2", headers=H).json()
    assert body["total"] == 7 and len(body["items"]) == 2
    first = body["items"][0]
    assert first["evaluated_at"] == ISSUED.isoformat().replace("+00:00", "Z")
    assert first["mae"] == 10.0 and first["coverage"] == {"80": 0.8, "95": 0.94} and first["drift"] is False
    assert body["links"]["last"] == f"/v1/accuracy/{NASA_ID}?limit=2&offset=6"
    last = client.get(body["links"]["last"], headers=H).json()
    assert [a["mae"] for a in last["items"]] == [16.0]
    assert client.get("/v1/accuracy/nope", headers=H).status_code == 404
