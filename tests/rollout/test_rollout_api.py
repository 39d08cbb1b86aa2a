"""``GET /v1/models`` and ``POST /v1/models/rollback`` and ``forecaster model``: the problems a caller can get (no
history, several keys, an unknown version, no artefact, already the champion), read and write scopes, pages; on
``InMemoryStore`` (the real stores run the same routes in ``test_rollout_service.py``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from forecaster.adapters.store import SqlStore
from forecaster.api import ApiSettings, create_app
from forecaster.cli import app
from forecaster.contracts.ports import ArtefactMeta, ModelEvent, Store
from forecaster.runtime.rollout import event_id
from forecaster.testing.store import InMemoryStore

T = pd.Timestamp("2024-03-10T00:00Z")
READ, WRITE = {"Authorization": "Bearer r"}, {"Authorization": "Bearer w"}


def record(store: Store, key: str, kind: str, version: str, hours: float, artefact: bool = True) -> None:
    at = T + pd.Timedelta(hours=hours)
    store.record_model_event(ModelEvent(event_id(key, kind, version, at), key, kind, version, at, f"{kind} why",
                                        workload_ids=(f"{key}-a", f"{key}-b") if key.startswith("freq") else (key,),
                                        train_start=at - pd.Timedelta("4D"), train_end=at, actor="service",
                                        scores={"n_points": 48, "champion": {"pinball": 2.0, "mae": 3.0},
                                                "challenger": {"pinball": 1.0, "mae": 2.5}}))
    if artefact and store.get_artefact(version) is None:
        store.save_artefact(ArtefactMeta(version, at, version, f"/nowhere/{version}.zip", (key,),
                                         at - pd.Timedelta("4D"), at))


@pytest.fixture
def store() -> InMemoryStore:
    s = InMemoryStore()
    record(s, "freq/5min", "promoted", "v1", 0)
    record(s, "freq/5min", "challenger", "v2", 24)
    record(s, "freq/5min", "promoted", "v2", 30)
    record(s, "freq/5min", "challenger", "v3", 48, artefact=False)
    record(s, "shop/web", "promoted", "p1", 1)
    return s


@pytest.fixture
def client(store: InMemoryStore) -> TestClient:
    tokens = {"r": frozenset({"read"}), "w": frozenset({"read", "write"})}
    return TestClient(create_app(store, settings=ApiSettings(tokens=tokens), clock=lambda: T + pd.Timedelta("3D")))


def test_the_history_pages_name_each_keys_champion(client: TestClient) -> None:
    page = client.get("/v1/models", params={"workload": "freq/5min-a", "limit": 2}, headers=READ)
    assert page.status_code == 200
    body = page.json()
    assert [(i["kind"], i["version"]) for i in body["items"]] == [("challenger", "v3"), ("promoted", "v2")]
    assert body["total"] == 4 and body["champions"] == {"freq/5min": "v2"} and body["links"]["next"] is not None
    assert body["items"][1]["scores"]["challenger"]["pinball"] == 1.0 and body["items"][1]["train_end"]
    everything = client.get("/v1/models", headers=READ).json()
    assert everything["total"] == 5 and everything["champions"] == {"freq/5min": "v2", "shop/web": "p1"}
    assert client.get("/v1/models", params={"key": "x"}, headers=READ).status_code == 400  # unknown parameter
    assert client.get("/v1/models").status_code == 401


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({}, 422, "several model keys exist: freq/5min, shop/web"),
    ({"workload": "nobody"}, 404, "no model history for 'nobody'"),
    ({"workload": "freq/5min", "to": "v9"}, 404, "no model 'v9'"),
    ({"workload": "freq/5min", "to": "v3"}, 404, "no stored artefact"),
    ({"workload": "freq/5min", "to": "v2"}, 422, "already the champion"),
    ({"workload": "shop/web"}, 404, "no earlier champion"),
    ({"workload": "freq/5min", "extra": 1}, 422, ""),
], ids=["no-workload", "unknown-workload", "unknown-version", "no-artefact", "already-champion", "no-earlier",
        "extra-field"])
def test_rollback_problems(client: TestClient, store: InMemoryStore, body: dict[str, object], status: int,
                           detail: str) -> None:
    got = client.post("/v1/models/rollback", json=body, headers=WRITE)
    assert got.status_code == status, got.text
    assert detail in got.json()["detail"]
    assert store.champion("freq/5min").version == "v2"  # type: ignore[union-attr]


def test_a_rollback_needs_the_write_scope_and_defaults_to_the_previous_champion(client: TestClient,
                                                                                 store: InMemoryStore) -> None:
    assert client.post("/v1/models/rollback", json={"workload": "freq/5min"}, headers=READ).status_code == 403
    made = client.post("/v1/models/rollback", json={"workload": "freq/5min-b", "reason": "drill"}, headers=WRITE)
    assert made.status_code == 201
    out = made.json()
    assert (out["kind"], out["version"], out["previous"], out["actor"]) == ("rolled_back", "v1", "v2", "api")
    assert out["reason"] == "rollback by api: drill" and out["at"].startswith("2024-03-13T00:00:00")
    champion = store.champion("freq/5min")
    assert champion is not None and champion.version == "v1"


def test_the_cli_says_what_it_did_and_why_it_could_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    empty = runner.invoke(app, ["model", "history", "--store-url", url])
    assert empty.exit_code == 1 and "no model history" in empty.output
    store = SqlStore(url)
    record(store, "freq/5min", "promoted", "v1", 0)
    record(store, "freq/5min", "promoted", "v2", 30)
    record(store, "shop/web", "promoted", "p1", 1)
    store.close()
    table = runner.invoke(app, ["model", "history", "-w", "freq/5min", "--store-url", url], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "Model history of freq/5min (champion v2)" in table.output
    assert "48 pts: pinball 2 vs 1, MAE 3 vs 2.5" in table.output
    several = runner.invoke(app, ["model", "rollback", "--store-url", url])
    assert several.exit_code == 2 and "several model keys exist" in several.output
    done = runner.invoke(app, ["model", "rollback", "-w", "freq/5min", "--reason", "bad data", "--store-url", url])
    assert done.exit_code == 0 and "freq/5min: rolled back to v1 (was v2)" in done.output
    store = SqlStore(url)
    champion = store.champion("freq/5min")
    assert champion is not None and (champion.version, champion.actor) == ("v1", "cli")
    assert champion.reason == "rollback by cli: bad data"
    store.close()
