"""What only the real databases can show: durability across reopen, the schema-version guard, SQLite pragmas,
``latest_forecast`` as one indexed statement, rollback of a write that fails half-way, concurrent writers,
and outages reported as ``TemporaryError``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event, text, update
from support.postgres import PostgresServer, free_port
from test_store_contract import T0, frame, run

from forecaster.adapters import store as store_module
from forecaster.adapters import store_schema
from forecaster.adapters.store import SqlStore
from forecaster.contracts.errors import InputError, PermanentError, TemporaryError
from forecaster.contracts.ports import DecisionRecord


def count(store: SqlStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_store_sql_data_survives_reopening_and_create_all_is_idempotent(
        sql_store: SqlStore, open_store: Callable[[str], SqlStore]) -> None:
    sql_store.save_forecast(run("r1", T0))
    sql_store.record_decision(DecisionRecord("d", "shop/web", T0, "replicas", "Recommend", False, {}, "r"))
    sql_store.close()
    again = open_store(sql_store.url)
    again.create_all()
    latest = again.latest_forecast("shop/web")
    assert latest is not None and latest.id == "r1" and len(latest.frame) == 12
    assert again.list_decisions().total == 1
    assert count(again, "schema_version") == store_schema.SCHEMA_VERSION  # one row per version applied


def test_store_sql_refuses_a_database_of_another_schema_version(
        sql_store: SqlStore, open_store: Callable[[str], SqlStore]) -> None:
    with sql_store.engine.begin() as conn:
        conn.execute(update(store_schema.schema_version).where(
            store_schema.schema_version.c.version == store_schema.SCHEMA_VERSION).values(
            version=store_schema.SCHEMA_VERSION + 1))
    with pytest.raises(PermanentError, match="schema version"):
        open_store(sql_store.url)


def test_store_sql_failed_write_half_way_rolls_back_points_already_inserted(
        sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bad value sits in the third batch: two batches of points and the run row were already sent."""
    monkeypatch.setattr(store_module, "POINTS_PER_INSERT", 100)
    sent: list[str] = []
    event.listen(sql_store.engine, "before_cursor_execute", lambda *args: sent.append(" ".join(args[2].split()[:3])))
    sql_store.save_forecast(run("good", T0))
    sent.clear()
    bad = run("bad", T0 + pd.Timedelta("1h"), n=300)
    bad.frame["ensemble"] = bad.frame["ensemble"].astype(object)
    bad.frame.loc[250, "ensemble"] = "oops"
    with pytest.raises(InputError, match="row 250"):
        sql_store.save_forecast(bad)
    assert sent.count("INSERT INTO forecast_points") == 2 and "INSERT INTO forecasts" in sent
    latest = sql_store.latest_forecast("shop/web")
    assert latest is not None and latest.id == "good"
    assert count(sql_store, "forecast_points") == 12 and count(sql_store, "forecasts") == 1


def test_store_sql_latest_forecast_is_one_statement(sql_store: SqlStore) -> None:
    for i in range(5):
        sql_store.save_forecast(run(f"r{i}", T0 + pd.Timedelta(minutes=5 * i), n=288))
    statements: list[str] = []
    event.listen(sql_store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    latest = sql_store.latest_forecast("shop/web")
    assert latest is not None and latest.id == "r4" and len(latest.frame) == 288
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == [statements[-1]]


def test_store_sqlite_latest_forecast_uses_the_workload_index(tmp_path: Path,
                                                              open_store: Callable[[str], SqlStore]) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    for i in range(3):
        store.save_forecast(run(f"r{i}", T0 + pd.Timedelta(minutes=5 * i)))
    statements: list[tuple[str, object]] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append((args[2], args[3])))
    store.latest_forecast("shop/web")
    sql, params = next(s for s in statements if s[0].lstrip().upper().startswith("SELECT"))
    with store.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))  # type: ignore[arg-type]
    assert "ix_forecasts_workload_issued" in plan, plan
    assert "SCAN forecast_points" not in plan, plan


def test_store_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path,
                                                         open_store: Callable[[str], SqlStore]) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_store_sqlite_in_memory_url_works() -> None:
    store = SqlStore("sqlite://")
    store.save_forecast(run("r", T0))
    assert store.latest_forecast("shop/web") is not None
    store.close()


def test_store_sql_concurrent_writers_queue_instead_of_failing(
        sql_store: SqlStore, open_store: Callable[[str], SqlStore]) -> None:
    other = open_store(sql_store.url)
    errors: list[BaseException] = []

    def write(store: SqlStore, name: str) -> None:
        try:
            for i in range(15):
                store.save_forecast(run(f"{name}/{i}", T0 + pd.Timedelta(minutes=i), workload=name, n=100))
                store.save_actuals(name, frame(name, T0, 20).rename(columns={"ensemble": "y"})[["ds", "y"]])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, n)) for s, n in ((sql_store, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(sql_store, "forecasts") == 30 and count(sql_store, "forecast_points") == 3000


def test_store_sql_unreachable_postgres_is_a_temporary_error() -> None:
    with pytest.raises(TemporaryError):
        SqlStore(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=2")


def test_store_sql_refuses_other_databases() -> None:
    with pytest.raises(PermanentError, match="only sqlite and postgresql"):
        SqlStore("mysql+pymysql://u@localhost/x")


def test_store_postgres_dropped_connection_is_temporary_and_recovers(
        pg_server: PostgresServer, open_store: Callable[[str], SqlStore]) -> None:
    import psycopg

    url = pg_server.create_database()
    store = open_store(url)
    store.save_forecast(run("r1", T0))
    assert store.latest_forecast("shop/web") is not None  # the pool now holds an idle connection
    with psycopg.connect(host="127.0.0.1", port=pg_server.port, user="postgres", dbname=url.rsplit("/", 1)[1],
                         autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert killed == (1,)
    with pytest.raises(TemporaryError, match="retry"):
        store.latest_forecast("shop/web")  # the dropped connection fails this one call ...
    again = store.latest_forecast("shop/web")  # ... and the pool replaced it
    assert again is not None and again.id == "r1"
