"""Model history (issue 24, model rollout): ``model_history``, one row per model event (a challenger fitted into
shadow, promoted, kept out, superseded, rolled back to), and ``model_history_workloads``, the workloads each event's
model covers. Store schema version 3.

Revision v0003 (after v0002). Not pure (DDL). Run by ``forecaster db upgrade`` (``forecaster.adapters.migrate``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "v0003"
down_revision: str | None = "v0002"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)
_VERSIONS = sa.table("schema_version", sa.column("version", sa.Integer), sa.column("applied_at", TS))


def upgrade() -> None:
    op.create_table("model_history",
                    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                              autoincrement=True),
                    sa.Column("id", sa.String(600), nullable=False),
                    sa.Column("key", sa.String(253), nullable=False),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("version", sa.String(200), nullable=False),
                    sa.Column("at", TS, nullable=False),
                    sa.Column("reason", sa.Text, nullable=False),
                    sa.Column("workload_ids", sa.JSON, nullable=False),
                    sa.Column("train_start", TS, nullable=True),
                    sa.Column("train_end", TS, nullable=True),
                    sa.Column("previous", sa.String(200), nullable=False),
                    sa.Column("scores", sa.JSON, nullable=False),
                    sa.Column("actor", sa.String(64), nullable=False),
                    sa.UniqueConstraint("id", name="uq_model_history_id"))
    op.create_index("ix_model_history_key_at", "model_history", ["key", "at"])
    op.create_table("model_history_workloads",
                    sa.Column("event_id", sa.String(600), sa.ForeignKey("model_history.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("workload_id", sa.String(253), primary_key=True))
    op.create_index("ix_model_history_workloads_workload", "model_history_workloads", ["workload_id"])
    stamp = dt.datetime.now(dt.UTC)
    if op.get_bind().dialect.name == "sqlite":
        stamp = stamp.replace(tzinfo=None)  # naive UTC text, as UtcDateTime stores it in SQLite
    op.bulk_insert(_VERSIONS, [{"version": 3, "applied_at": stamp}])


def downgrade() -> None:
    op.execute(_VERSIONS.delete().where(_VERSIONS.c.version == 3))
    op.drop_index("ix_model_history_workloads_workload", table_name="model_history_workloads")
    op.drop_table("model_history_workloads")
    op.drop_index("ix_model_history_key_at", table_name="model_history")
    op.drop_table("model_history")
