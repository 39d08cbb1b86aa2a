"""Alembic migrations of the store on SQLite and a real PostgreSQL: a database made by the previous schema (the
release before migrations, ``tests/fixtures/store/v1-*.sql``) is refused at start, upgraded by ``forecaster db
upgrade`` with every row kept, and then works; a new database gets exactly the tables ``store_schema`` declares; the
migrations go down and up again; a database from a newer release is refused."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from support.postgres import PostgresServer
from typer.testing import CliRunner

from forecaster.adapters import migrate, store_schema
from forecaster.adapters.store import SqlStore, make_engine
from forecaster.cli import app
from forecaster.contracts.errors import PermanentError
from forecaster.contracts.ports import AccuracyRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "store"
T = pd.Timestamp("2024-03-04T05:00:00Z")
NEW_INDEXES = {("forecasts", "ix_forecasts_issued"), ("actuals", "ix_actuals_ds"),
               ("accuracy", "ix_accuracy_evaluated")}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database("mig")


def load_previous_schema(url: str) -> None:
    """Fill the empty database at ``url`` with the previous release's store (schema version 1 and its rows)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript((FIXTURES / "v1-sqlite.sql").read_text())
        return
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute((FIXTURES / "v1-postgresql.sql").read_text().encode())


def indexes(url: str) -> set[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            return {(t, i["name"]) for t in found.get_table_names() for i in found.get_indexes(t) if i["name"]}
    finally:
        engine.dispose()


def upgrade_cli(url: str) -> str:
    result = CliRunner().invoke(app, ["db", "upgrade", "--store-url", url])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_store_of_the_previous_schema_is_upgraded_with_every_row(db_url: str,
                                                                   open_store: Callable[[str], SqlStore]) -> None:
    load_previous_schema(db_url)
    assert migrate.state(make_engine(db_url)).kind == "legacy"
    with pytest.raises(PermanentError, match="forecaster db upgrade"):
        SqlStore(db_url)
    assert not NEW_INDEXES & indexes(db_url)
    out = upgrade_cli(db_url)
    assert (f"made before migrations (store schema version 1) -> at revision {migrate.head()} (newest)"
            in " ".join(out.split()))
    assert indexes(db_url) >= NEW_INDEXES
    store = open_store(db_url)
    run = store.latest_forecast("shop/web")
    assert run is not None and run.issued_at == T and run.model_version == "0.1.0-abc" and run.levels == (80,)
    assert run.frame["ensemble"].tolist()[:2] == [10.0, 12.0] and pd.isna(run.frame["ensemble"].iloc[2])
    assert run.backtest_mae == 1.5
    assert store.actuals("shop/web", T - pd.Timedelta("1h"), T)["y"].tolist() == [9.0, 10.5, 11.0]
    (decision,) = store.list_decisions().items
    assert decision.value == {"min_replicas": 4} and decision.applied and decision.time == T
    (event,) = store.list_events().items
    assert (event.kind, event.scope, event.expected_uplift) == ("launch", ("shop/*",), 0.3)
    (accuracy,) = store.list_accuracy("shop/web").items
    assert accuracy.coverage == {80: 0.83} and accuracy.mae == 1.2
    workload = store.get_workload("shop/web")
    assert workload is not None and workload.labels == {"team": "web"}
    artefact = store.latest_artefact()
    assert artefact is not None and artefact.library_versions == {"pandas": "3.1.1"}
    store.record_accuracy(AccuracyRecord("shop/web", T + pd.Timedelta("1h"), T, T + pd.Timedelta("1h"), 12, 1.0,
                                         {80: 0.8}, 1.5, False))  # the accuracy sequence carried over
    assert store.list_accuracy("shop/web").total == 2
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() == store_schema.SCHEMA_VERSION
    assert "nothing to do" in upgrade_cli(db_url), "upgrading again is a no-op"


def test_a_new_store_gets_exactly_the_declared_schema(db_url: str) -> None:
    """The migrations and ``store_schema.metadata`` describe the same tables, columns, types and indexes."""
    store = SqlStore(db_url)
    try:
        with store.engine.connect() as conn:
            assert migrate.state_of(conn).kind == "current"
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    store_schema.metadata)
        assert diff == []
        assert indexes(db_url) >= NEW_INDEXES
    finally:
        store.close()


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    migrate.upgrade(engine, "v0002")
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "v0001")
        assert migrate.state_of(conn) == migrate.SchemaState("behind", "v0001")
    assert not NEW_INDEXES & indexes(url)
    needs = rf"at revision v0001, this release needs {migrate.head()}: run `forecaster db"
    with pytest.raises(PermanentError, match=needs):
        SqlStore(url)
    migrate.upgrade(engine)
    assert SqlStore(url).list_workloads().total == 0
    engine.dispose()


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    SqlStore(url).close()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'v9999'"))
    with pytest.raises(PermanentError, match="newer release"):
        SqlStore(url)
    result = CliRunner().invoke(app, ["db", "upgrade", "--store-url", url])
    assert result.exit_code == 1 and "newer release" in result.output
    current = CliRunner().invoke(app, ["db", "current", "--store-url", url])
    assert current.exit_code == 1 and "v9999" in current.output
    engine.dispose()


def test_db_reads_the_store_url_from_the_service_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("FORECASTER_STORE_URL", url)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and f"empty -> at revision {migrate.head()}" in result.output
    assert f"{migrate.head()} (newest)" in CliRunner().invoke(app, ["db", "current"]).output


def test_replicas_starting_together_on_postgresql_create_the_schema_once(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("race")
    errors: list[BaseException] = []

    def start() -> None:
        try:
            SqlStore(url).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_version")).scalar() == store_schema.SCHEMA_VERSION
        assert migrate.state_of(conn).kind == "current"
    engine.dispose()


def test_the_migrations_ship_inside_the_package() -> None:
    location = migrate.script_location()
    assert (location / "env.py").is_file() and (location / "script.py.mako").is_file()
    assert sorted(p.name for p in (location / "versions").glob("v*.py"))[:3] == [
        "v0001_baseline.py", "v0002_retention_indexes.py", "v0003_model_history.py"]
    assert migrate.known()[:3] == ["v0001", "v0002", "v0003"] and migrate.head() == migrate.known()[-1]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"adapters/migrations/versions/*.py"' in pyproject and '"adapters/migrations/*.py"' in pyproject


def test_the_jobs_deployment_upgrades_the_store_before_the_service_opens_it() -> None:
    import yaml

    path = Path(__file__).resolve().parents[2] / "k8s" / "service" / "deployment-jobs.yaml"
    spec = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    (main,) = spec["containers"]
    assert init["command"] == ["forecaster"] and init["args"] == ["db", "upgrade"]
    assert init["image"] == main["image"] and init["securityContext"]["readOnlyRootFilesystem"] is True
    settings = {e["name"]: e["value"] for e in main["env"]}
    assert {e["name"]: e["value"] for e in init["env"]}["FORECASTER_SECRETS_DIR"] == settings["FORECASTER_SECRETS_DIR"]
    assert {m["mountPath"] for m in init["volumeMounts"]} <= {m["mountPath"] for m in main["volumeMounts"]}
