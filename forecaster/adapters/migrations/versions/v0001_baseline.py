"""Baseline: the store as the last release before Alembic created it (store schema version 1).

A database made by that release (``SqlStore.create_all``: these tables and a ``schema_version`` row 1, no
``alembic_version``) is *stamped* at this revision by ``forecaster.adapters.migrate`` and upgraded from here; a new
database runs this migration. Types are those ``forecaster.adapters.store_schema`` used then (``UtcDateTime`` is a
``DateTime(timezone=True)``).

Revision v0001. Not pure (DDL). Run by ``forecaster db upgrade`` (``forecaster.adapters.migrate``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "v0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("schema_version",
                    sa.Column("version", sa.Integer, primary_key=True),
                    sa.Column("applied_at", TS, nullable=False))
    op.create_table("workloads",
                    sa.Column("id", sa.String(253), primary_key=True),
                    sa.Column("namespace", sa.String(253), nullable=False),
                    sa.Column("kind", sa.String(32), nullable=False),
                    sa.Column("freq", sa.String(16), nullable=False),
                    sa.Column("query", sa.Text, nullable=False),
                    sa.Column("labels", sa.JSON, nullable=False),
                    sa.Column("created_at", TS, nullable=False))
    op.create_table("forecasts",
                    sa.Column("id", sa.String(400), primary_key=True),
                    sa.Column("workload_id", sa.String(253), sa.ForeignKey("workloads.id", ondelete="CASCADE"),
                              nullable=False),
                    sa.Column("issued_at", TS, nullable=False),
                    sa.Column("model_version", sa.String(200), nullable=False),
                    sa.Column("levels", sa.JSON, nullable=False),
                    sa.Column("columns", sa.JSON, nullable=False),
                    sa.Column("backtest_mae", sa.Float, nullable=True))
    op.create_index("ix_forecasts_workload_issued", "forecasts", ["workload_id", "issued_at"])
    op.create_table("forecast_points",
                    sa.Column("run_id", sa.String(400), sa.ForeignKey("forecasts.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("ds", TS, primary_key=True),
                    sa.Column("values", sa.JSON, nullable=False))
    op.create_table("actuals",
                    sa.Column("workload_id", sa.String(253), sa.ForeignKey("workloads.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("ds", TS, primary_key=True),
                    sa.Column("y", sa.Float, nullable=False))
    op.create_table("decisions",
                    sa.Column("id", sa.String(500), primary_key=True),
                    sa.Column("workload_id", sa.String(253), nullable=False),
                    sa.Column("time", TS, nullable=False),
                    sa.Column("kind", sa.String(32), nullable=False),
                    sa.Column("mode", sa.String(16), nullable=False),
                    sa.Column("applied", sa.Boolean, nullable=False),
                    sa.Column("value", sa.JSON, nullable=False),
                    sa.Column("reason", sa.Text, nullable=False),
                    sa.Column("details", sa.JSON, nullable=False))
    op.create_index("ix_decisions_workload_time", "decisions", ["workload_id", "time"])
    op.create_index("ix_decisions_time", "decisions", ["time"])
    op.create_table("events",
                    sa.Column("id", sa.String(400), primary_key=True),
                    sa.Column("name", sa.Text, nullable=False),
                    sa.Column("kind", sa.String(32), nullable=False),
                    sa.Column("start", TS, nullable=False),
                    sa.Column("end", TS, nullable=False),
                    sa.Column("scope", sa.JSON, nullable=False),
                    sa.Column("expected_uplift", sa.Float, nullable=True),
                    sa.Column("created_at", TS, nullable=False))
    op.create_index("ix_events_start", "events", ["start"])
    op.create_table("accuracy",
                    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                              autoincrement=True),
                    sa.Column("workload_id", sa.String(253), nullable=False),
                    sa.Column("evaluated_at", TS, nullable=False),
                    sa.Column("window_start", TS, nullable=False),
                    sa.Column("window_end", TS, nullable=False),
                    sa.Column("n_points", sa.Integer, nullable=False),
                    sa.Column("mae", sa.Float, nullable=True),
                    sa.Column("coverage", sa.JSON, nullable=False),
                    sa.Column("backtest_mae", sa.Float, nullable=True),
                    sa.Column("drift", sa.Boolean, nullable=False))
    op.create_index("ix_accuracy_workload_evaluated", "accuracy", ["workload_id", "evaluated_at"])
    op.create_table("artefacts",
                    sa.Column("id", sa.String(400), primary_key=True),
                    sa.Column("created_at", TS, nullable=False),
                    sa.Column("model_version", sa.String(200), nullable=False),
                    sa.Column("path", sa.Text, nullable=False),
                    sa.Column("workload_ids", sa.JSON, nullable=False),
                    sa.Column("train_start", TS, nullable=False),
                    sa.Column("train_end", TS, nullable=False),
                    sa.Column("library_versions", sa.JSON, nullable=False))
    op.create_index("ix_artefacts_created", "artefacts", ["created_at"])
    stamp = dt.datetime.now(dt.UTC)
    if op.get_bind().dialect.name == "sqlite":
        stamp = stamp.replace(tzinfo=None)  # naive UTC text, as UtcDateTime stores it in SQLite
    op.bulk_insert(sa.table("schema_version", sa.column("version", sa.Integer), sa.column("applied_at", TS)),
                   [{"version": 1, "applied_at": stamp}])


def downgrade() -> None:
    for table in ("artefacts", "accuracy", "events", "decisions", "actuals", "forecast_points", "forecasts",
                  "workloads", "schema_version"):
        op.drop_table(table)
