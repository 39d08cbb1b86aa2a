"""Model history in the store (``Store.record_model_event``, ``list_model_events``, ``champion``, ``get_artefact``):
one contract on SQLite, a real PostgreSQL server and ``InMemoryStore``; the v0003 migration up and down."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, text

from forecaster.adapters import migrate
from forecaster.adapters import store_schema as s
from forecaster.adapters.store import SqlStore, make_engine
from forecaster.contracts.errors import InputError
from forecaster.contracts.ports import ArtefactMeta, ModelEvent, Store

T = pd.Timestamp("2024-03-10T00:00Z")


def event(kind: str, version: str, minutes: float = 0, key: str = "freq/5min", **extra: object) -> ModelEvent:
    at = T + pd.Timedelta(minutes=minutes)
    fields: dict[str, object] = {"workload_ids": ("shop/web", "shop/api"), "train_start": T - pd.Timedelta("4D"),
                                 "train_end": T, "reason": f"{kind} because", "actor": "service"}
    fields.update(extra)
    return ModelEvent(id=f"{key}/{kind}/{version}/{at.isoformat()}", key=key, kind=kind, version=version, at=at,
                      **fields)  # type: ignore[arg-type]


def test_history_is_insert_once_newest_first_and_names_the_champion(store: Store) -> None:
    assert store.champion("freq/5min") is None
    assert store.record_model_event(event("promoted", "v1", scores={"n_points": 0}))
    assert store.record_model_event(event("challenger", "v2", 60, previous="v1"))
    assert not store.record_model_event(event("challenger", "v2", 60, reason="retried")), "insert once by id"
    assert store.record_model_event(event("rejected", "v2", 300, previous="v1",
                                          scores={"n_points": 48, "champion": {"pinball": 1.5, "coverage": {"80": 0.8}},
                                                  "better_statistic": float("nan")}))
    page = store.list_model_events(key="freq/5min")
    assert [(e.kind, e.version) for e in page.items] == [("rejected", "v2"), ("challenger", "v2"), ("promoted", "v1")]
    assert page.total == 3 and page.items[1].reason == "challenger because"
    rejected = page.items[0]
    assert rejected.scores == {"n_points": 48, "champion": {"pinball": 1.5, "coverage": {"80": 0.8}},
                               "better_statistic": None}  # JSON: NaN is null
    assert rejected.workload_ids == ("shop/web", "shop/api") and rejected.train_end == T and rejected.previous == "v1"
    assert rejected.at == T + pd.Timedelta("5h") and rejected.at.tzinfo is not None
    champion = store.champion("freq/5min")
    assert champion is not None and champion.version == "v1"
    store.record_model_event(event("rolled_back", "v0", 400, previous="v1", actor="cli"))
    champion = store.champion("freq/5min")
    assert champion is not None and (champion.version, champion.kind, champion.actor) == ("v0", "rolled_back", "cli")


def test_ties_in_time_keep_the_insertion_order(store: Store) -> None:
    store.record_model_event(event("superseded", "v2", 10))
    store.record_model_event(event("challenger", "v3", 10))
    store.record_model_event(event("promoted", "v3", 10))
    assert [e.kind for e in store.list_model_events().items] == ["promoted", "challenger", "superseded"]
    champion = store.champion("freq/5min")
    assert champion is not None and champion.version == "v3"


def test_history_of_a_workload_is_that_of_every_key_covering_it_and_pages(store: Store) -> None:
    store.record_model_event(event("promoted", "g1"))
    store.record_model_event(event("promoted", "p1", 1, key="shop/db", workload_ids=("shop/db",)))
    store.record_model_event(event("promoted", "p2", 2, key="shop/cache", workload_ids=()))
    for i in range(3):
        store.record_model_event(event("challenger", f"g{i + 2}", 10 + i))
    assert [e.version for e in store.list_model_events(workload_id="shop/web").items] == ["g4", "g3", "g2", "g1"]
    assert [e.version for e in store.list_model_events(workload_id="shop/db").items] == ["p1"]
    assert [e.version for e in store.list_model_events(workload_id="shop/cache").items] == ["p2"]  # the key itself
    assert store.list_model_events(workload_id="nobody").total == 0
    page = store.list_model_events(workload_id="shop/api", limit=2, offset=1)
    assert [e.version for e in page.items] == ["g3", "g2"] and page.total == 4 and page.limit == 2
    assert store.list_model_events(key="shop/db", workload_id="shop/web").total == 0


@pytest.mark.parametrize("bad", [
    {"kind": "retired"}, {"version": ""}, {"key": ""}, {"id": ""}, {"at": pd.Timestamp("2024-03-10")},
], ids=["kind", "version", "key", "id", "naive-time"])
def test_bad_events_are_refused_and_nothing_is_written(store: Store, bad: dict[str, object]) -> None:
    good = event("promoted", "v1")
    with pytest.raises(InputError):
        store.record_model_event(ModelEvent(**{**good.__dict__, **bad}))  # type: ignore[arg-type]
    assert store.list_model_events().total == 0


def test_artefacts_are_read_by_id(store: Store) -> None:
    meta = ArtefactMeta("v1", T, "v1", "/tmp/v1.zip", ("shop/web",), T - pd.Timedelta("1D"), T, {"pandas": "x"})
    store.save_artefact(meta)
    assert store.get_artefact("v1") == meta and store.get_artefact("v2") is None


def test_model_history_survives_retention(store: Store) -> None:
    store.record_model_event(event("promoted", "v1"))
    store.prune(T + pd.Timedelta("400D"))
    assert store.list_model_events().total == 1


def test_the_v0003_migration_goes_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    SqlStore(url).close()
    engine = make_engine(url)
    assert {"model_history", "model_history_workloads"} <= set(inspect(engine).get_table_names())
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "v0002")
    assert "model_history" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() == 2
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() == s.SCHEMA_VERSION >= 3
    store = SqlStore(url)
    assert store.record_model_event(event("promoted", "v1"))
    store.close()
    engine.dispose()


def test_the_v0003_revision_follows_v0002() -> None:
    assert migrate.known()[:3] == ["v0001", "v0002", "v0003"]
