"""Indexes for retention: ``Store.prune`` deletes forecast runs, actuals and accuracy records older than a cut
across all workloads; these time-only indexes make each of those deletes a range scan instead of a full scan (the
existing indexes lead with ``workload_id``). Store schema version 2.

Revision v0002 (after v0001). Not pure (DDL). Run by ``forecaster db upgrade`` (``forecaster.adapters.migrate``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "v0002"
down_revision: str | None = "v0001"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = (("ix_forecasts_issued", "forecasts", "issued_at"), ("ix_actuals_ds", "actuals", "ds"),
           ("ix_accuracy_evaluated", "accuracy", "evaluated_at"))
_VERSIONS = sa.table("schema_version", sa.column("version", sa.Integer),
                     sa.column("applied_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])
    stamp = dt.datetime.now(dt.UTC)
    if op.get_bind().dialect.name == "sqlite":
        stamp = stamp.replace(tzinfo=None)
    op.bulk_insert(_VERSIONS, [{"version": 2, "applied_at": stamp}])


def downgrade() -> None:
    op.execute(_VERSIONS.delete().where(_VERSIONS.c.version == 2))
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
