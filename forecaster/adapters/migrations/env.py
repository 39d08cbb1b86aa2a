"""Alembic environment of the store migrations: runs them on the connection ``forecaster.adapters.migrate`` hands
over (``config.attributes["connection"]``), online only, one transaction per migration run.

Not pure (database I/O). Loaded by Alembic from ``forecaster.adapters.migrate``; never imported directly.
"""

from __future__ import annotations

from alembic import context

from forecaster.adapters.store_schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite",
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
