"""Rollout fixtures: ``store`` runs a test against a SQLite file, a real PostgreSQL server and ``InMemoryStore``,
``sql_store`` against the two real databases only (as ``tests/store``); small engine options for the real models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``store_url(backend)``: a fresh database URL on ``sqlite`` or ``postgresql``."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / 'forecaster.db'}"
        server: PostgresServer = request.getfixturevalue("pg_server")
        return server.create_database()

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, store_url: Callable[[str], str]) -> str:
    """A fresh database URL on each real back end."""
    return store_url(request.param)


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request: pytest.FixtureRequest, store_url: Callable[[str], str], open_store: Callable[[str], SqlStore]
          ) -> SqlStore | InMemoryStore:
    if request.param == "memory":
        return InMemoryStore()
    return open_store(store_url(request.param))


@pytest.fixture(scope="session")
def engine_options(fast_lgbm: dict[str, Any]) -> dict[str, Any]:
    """Two members, small LightGBM, two calibration windows: a fit takes about a second."""
    return {"members": ("seasonal", "lgbm"), "member_params": {"lgbm": fast_lgbm}, "n_windows": 2}
