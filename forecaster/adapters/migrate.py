"""Store schema migrations with Alembic: the one place a store's schema is created or changed.

    forecaster db upgrade --store-url postgresql+psycopg://...     # upgrade(engine): to the newest revision
    forecaster db current --store-url sqlite:///forecaster.db      # state(engine)

The migration scripts ship inside the package (``forecaster/adapters/migrations``: ``env.py`` and
``versions/v<NNNN>_*.py``, package data), so an installed release can upgrade its own database with no source tree.
A database is in one of four states (``state``):

| state | what it is | ``SqlStore`` at start | ``upgrade`` |
| --- | --- | --- | --- |
| ``empty`` | no tables | runs every migration | runs every migration |
| ``legacy`` | made before Alembic (``schema_version`` 1, no ``alembic_version``) | refuses | stamps v0001, upgrades |
| ``behind`` | at an older revision | refuses: "run forecaster db upgrade" | upgrades |
| ``current`` | at the newest revision (``HEAD``) | opens | nothing to do |

A database at a revision this release does not know (made by a newer release) is refused by both. Starting never
migrates an existing database by itself: several replicas (API, jobs, controller) open the same store, and a schema
change should be one deliberate step (an init container or a job running ``forecaster db upgrade``). On PostgreSQL
the migration runs under a transaction-scoped advisory lock, so replicas starting together never race; the whole
upgrade is one transaction on both back ends (DDL is transactional in SQLite and PostgreSQL).

Not pure (Alembic, database I/O). Called by ``forecaster.adapters.store.SqlStore`` and ``forecaster.cli.db``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, inspect, select, text

from forecaster.contracts.errors import PermanentError

BASELINE = "v0001"
"""The revision a database made before Alembic is stamped at."""
ADVISORY_LOCK_KEY = 0x466F7265
"""``pg_advisory_xact_lock`` key ("Fore") serialising schema changes of processes starting together."""


def script_location() -> Path:
    """The migrations folder inside the installed package."""
    return Path(str(resources.files("forecaster.adapters") / "migrations"))


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this release knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "no migrations found"
    return found


def known() -> list[str]:
    """Every revision this release knows, oldest first."""
    return [s.revision for s in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))]


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands (module docstring): ``kind`` and its Alembic ``revision`` (``None`` if it has none)."""

    kind: str  # "empty" | "legacy" | "behind" | "current" | "unknown"
    revision: str | None

    def describe(self) -> str:
        if self.kind == "legacy":
            return "made before migrations (store schema version 1)"
        if self.kind == "empty":
            return "empty"
        return f"at revision {self.revision}" + (" (newest)" if self.kind == "current" else "")


def state_of(conn: Connection) -> SchemaState:
    """The state of the database behind ``conn``."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        revision = MigrationContext.configure(conn).get_current_revision()
        if revision is None:
            return SchemaState("empty" if tables <= {"alembic_version"} else "unknown", None)
        if revision == head():
            return SchemaState("current", revision)
        return SchemaState("behind" if revision in known() else "unknown", revision)
    if "schema_version" in tables:
        versions = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
        return SchemaState("legacy" if versions == 1 else "unknown", None)
    return SchemaState("empty" if not tables else "unknown", None)


def state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return state_of(conn)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))


def upgrade_on(conn: Connection, revision: str = "head") -> tuple[SchemaState, SchemaState]:
    """Upgrade the database behind ``conn`` (in its transaction) to ``revision``; ``(before, after)``. A legacy
    database is stamped at ``BASELINE`` first; one at an unknown revision is a ``PermanentError``."""
    _lock(conn)
    before = state_of(conn)
    if before.kind == "unknown":
        raise PermanentError(f"store {before.describe()}: not a forecaster database this release knows "
                             f"(revisions {', '.join(known())}); is it from a newer release?")
    config = _config(conn)
    if before.kind == "legacy":
        command.stamp(config, BASELINE)
    command.upgrade(config, revision)
    return before, state_of(conn)


def upgrade(engine: Engine, revision: str = "head") -> tuple[SchemaState, SchemaState]:
    """``upgrade_on`` in one transaction of ``engine``."""
    with engine.begin() as conn:
        return upgrade_on(conn, revision)


def prepare_on(conn: Connection, url: str) -> SchemaState:
    """What ``SqlStore`` does at start (module docstring): migrate an empty database, accept a current one, refuse
    anything else with a ``PermanentError`` that says what to run."""
    _lock(conn)
    found = state_of(conn)
    if found.kind == "empty":
        return upgrade_on(conn)[1]
    if found.kind == "current":
        return found
    if found.kind == "unknown":
        raise PermanentError(f"store {url}: {found.describe()}, unknown to this release (newest {head()}); "
                             "is it from a newer release?")
    raise PermanentError(f"store {url}: {found.describe()}, this release needs {head()}: run "
                         f"`forecaster db upgrade --store-url {url}` (store schema version differs)")
