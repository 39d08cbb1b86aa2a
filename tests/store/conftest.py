"""Store fixtures: ``store`` runs a test against a SQLite file, a real PostgreSQL server and ``InMemoryStore``;
``sql_store`` against the two real databases only. One PostgreSQL server per xdist worker, one database per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.postgres import PostgresServer, pg_server  # noqa: F401  (fixture)

from forecaster.adapters.store import SqlStore
from forecaster.testing.store import InMemoryStore


@pytest.fixture
def open_store() -> Iterator[Callable[[str], SqlStore]]:
    """Factory of ``SqlStore`` objects closed after the test (reopening a URL is how restarts are tested)."""
    opened: list[SqlStore] = []

    def make(url: str) -> SqlStore:
        opened.append(SqlStore(url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path, open_store: Callable[[str], SqlStore]) -> SqlStore:
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'forecaster.db'}")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return open_store(server.create_database())


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, open_store: Callable[[str], SqlStore]
          ) -> SqlStore | InMemoryStore:
    if request.param == "memory":
        return InMemoryStore()
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'forecaster.db'}")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return open_store(server.create_database())
