"""The scheduler lease: table ``scheduler_leases``, one row per named lease (who runs the scheduled jobs of this
store, acquired and renewed when, until when), so two schedulers on one store never both run the jobs
(``forecaster.adapters.store_lease``; on PostgreSQL the lease is an advisory lock and the row says who holds it).
Store schema version 4.

Revision v0004 (after v0003). Not pure (DDL). Run by ``forecaster db upgrade`` (``forecaster.adapters.migrate``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "v0004"
down_revision: str | None = "v0003"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)
_VERSIONS = sa.table("schema_version", sa.column("version", sa.Integer), sa.column("applied_at", TS))


def upgrade() -> None:
    op.create_table("scheduler_leases",
                    sa.Column("name", sa.String(100), primary_key=True),
                    sa.Column("holder", sa.String(253), nullable=False),
                    sa.Column("acquired_at", TS, nullable=False),
                    sa.Column("renewed_at", TS, nullable=False),
                    sa.Column("expires_at", TS, nullable=False))
    stamp = dt.datetime.now(dt.UTC)
    if op.get_bind().dialect.name == "sqlite":
        stamp = stamp.replace(tzinfo=None)
    op.bulk_insert(_VERSIONS, [{"version": 4, "applied_at": stamp}])


def downgrade() -> None:
    op.execute(_VERSIONS.delete().where(_VERSIONS.c.version == 4))
    op.drop_table("scheduler_leases")
