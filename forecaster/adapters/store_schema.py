"""Tables of the durable store, and the pure codec between ``ports`` records/frames and their stored rows.

One ``MetaData`` for SQLite and PostgreSQL (SQLAlchemy Core). Layout and why:

- ``workloads``                 one row per forecast subject.
- ``forecasts``                 one row per run (id, workload, issue time, model version, levels, backtest MAE, the
                                frame's column names). Index ``(workload_id, issued_at)`` makes "latest run of a
                                workload" one index probe.
- ``forecast_points``           one row per forecast step ``(run_id, ds)`` with the step's values as a JSON array in
                                the run's column order (NaN stored as ``null``). ``latest_forecast`` reads the run and
                                its points in ONE statement (a join on the primary key), ~300 short rows.
- ``actuals``                   observed values, primary key ``(workload_id, ds)`` (upserted).
- ``decisions``, ``events``     idempotent by id (primary key); ``accuracy`` append-only; ``artefacts`` by id.
- ``schema_version``            one row per layout version applied (the newest is ``SCHEMA_VERSION``); kept next to
                                Alembic's ``alembic_version``. Tables are created and changed only by the migrations
                                in ``forecaster/adapters/migrations`` (``forecaster.adapters.migrate``); this
                                ``metadata`` is what they produce (``tests/store`` compares the two).
- time-only indexes on ``forecasts.issued_at``, ``actuals.ds``, ``accuracy.evaluated_at`` serve retention
                                (``Store.prune``), migration ``v0002``.
- ``model_history``             one row per model event (``ports.ModelEvent``: a challenger fitted, promoted, kept
                                out, superseded, rolled back to), insert-once by ``id``, read in the order written
                                (``seq``); index ``(key, at)`` serves a key's history.
                                ``model_history_workloads`` lists the workloads each event's model covers (the
                                history of one workload, on SQLite and PostgreSQL alike). Migration ``v0003``; never
                                pruned (the audit trail of what served).
- ``scheduler_leases``          one row per named lease (``Store.lease``: who runs the scheduled jobs of this store,
                                acquired and renewed when, until when); migration ``v0004``. On PostgreSQL the lease
                                itself is a session-level advisory lock and the row only says who holds it.

Every timestamp column is ``UtcDateTime``: tz-aware UTC in, tz-aware UTC out (SQLite keeps naive UTC text,
PostgreSQL ``timestamptz``); microsecond precision.

Not pure (SQLAlchemy types). Called by ``forecaster.adapters.store``; the codec half (``encode_points``,
``decode_points``, ``check_page``, ``utc``) is also used by ``forecaster.testing.store`` so the fake validates
exactly like the real store.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from forecaster.contracts.clock import as_utc
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID
from forecaster.contracts.ports import MODEL_EVENT_KINDS, EventRecord, ForecastRun, ModelEvent

SCHEMA_VERSION = 4
"""Layout version written to ``schema_version``; bump it with every change of the tables below, in the same change
as the Alembic migration that makes it (``forecaster/adapters/migrations/versions``)."""


# -- types ------------------------------------------------------------------------------------------------------
def utc(value: object, field: str = "timestamp") -> pd.Timestamp:
    """``value`` as a tz-aware UTC ``pd.Timestamp``; ``InputError`` naming ``field`` when naive or unparseable."""
    return as_utc(value, field)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and returned as tz-aware UTC ``datetime`` (naive input is refused)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stamp = utc(value).to_pydatetime()
        return stamp.replace(tzinfo=None) if dialect.name == "sqlite" else stamp

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def raw_ts(value: object) -> pd.Timestamp:
    """A timestamp read without ``UtcDateTime`` (SQLite text is naive UTC, PostgreSQL gives aware datetimes)."""
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.as_unit("ns")


def ts(value: dt.datetime) -> pd.Timestamp:
    """A stored ``datetime`` as a ns-unit UTC ``pd.Timestamp`` (what records carry)."""
    return pd.Timestamp(value).tz_convert("UTC").as_unit("ns")


# -- tables -----------------------------------------------------------------------------------------------------
metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UtcDateTime, nullable=False),
)

workloads = Table(
    "workloads",
    metadata,
    Column("id", String(253), primary_key=True),
    Column("namespace", String(253), nullable=False, default=""),
    Column("kind", String(32), nullable=False, default="demand"),
    Column("freq", String(16), nullable=False, default="5min"),
    Column("query", Text, nullable=False, default=""),
    Column("labels", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("workload_id", String(253), ForeignKey("workloads.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("levels", JSON, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("backtest_mae", Float, nullable=True),
    Index("ix_forecasts_workload_issued", "workload_id", "issued_at"),
    Index("ix_forecasts_issued", "issued_at"),
)

forecast_points = Table(
    "forecast_points",
    metadata,
    Column("run_id", String(400), ForeignKey("forecasts.id", ondelete="CASCADE"), primary_key=True),
    Column("ds", UtcDateTime, primary_key=True),
    Column("values", JSON, nullable=False),
)

actuals = Table(
    "actuals",
    metadata,
    Column("workload_id", String(253), ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True),
    Column("ds", UtcDateTime, primary_key=True),
    Column("y", Float, nullable=False),
    Index("ix_actuals_ds", "ds"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String(500), primary_key=True),
    Column("workload_id", String(253), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("value", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_decisions_workload_time", "workload_id", "time"),
    Index("ix_decisions_time", "time"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    Column("scope", JSON, nullable=False),
    Column("expected_uplift", Float, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_events_start", "start"),
)

accuracy = Table(
    "accuracy",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("workload_id", String(253), nullable=False),
    Column("evaluated_at", UtcDateTime, nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("n_points", Integer, nullable=False),
    Column("mae", Float, nullable=True),
    Column("coverage", JSON, nullable=False),
    Column("backtest_mae", Float, nullable=True),
    Column("drift", Boolean, nullable=False),
    Index("ix_accuracy_workload_evaluated", "workload_id", "evaluated_at"),
    Index("ix_accuracy_evaluated", "evaluated_at"),
)

artefacts = Table(
    "artefacts",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("workload_ids", JSON, nullable=False),
    Column("train_start", UtcDateTime, nullable=False),
    Column("train_end", UtcDateTime, nullable=False),
    Column("library_versions", JSON, nullable=False),
    Index("ix_artefacts_created", "created_at"),
)

leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(253), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("renewed_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

model_history = Table(
    "model_history",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(600), nullable=False),
    Column("key", String(253), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("version", String(200), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("workload_ids", JSON, nullable=False),
    Column("train_start", UtcDateTime, nullable=True),
    Column("train_end", UtcDateTime, nullable=True),
    Column("previous", String(200), nullable=False),
    Column("scores", JSON, nullable=False),
    Column("actor", String(64), nullable=False),
    UniqueConstraint("id", name="uq_model_history_id"),
    Index("ix_model_history_key_at", "key", "at"),
)

model_history_workloads = Table(
    "model_history_workloads",
    metadata,
    Column("event_id", String(600), ForeignKey("model_history.id", ondelete="CASCADE"), primary_key=True),
    Column("workload_id", String(253), primary_key=True),
    Index("ix_model_history_workloads_workload", "workload_id"),
)


# -- codec ------------------------------------------------------------------------------------------------------
def check_page(limit: int, offset: int) -> None:
    """``InputError`` unless ``limit >= 0`` and ``offset >= 0`` (integers)."""
    if int(limit) != limit or limit < 0:
        raise InputError(f"limit: {limit!r} must be an integer >= 0")
    if int(offset) != offset or offset < 0:
        raise InputError(f"offset: {offset!r} must be an integer >= 0")


def value_columns(frame: pd.DataFrame) -> list[str]:
    """The stored value columns of a Forecast frame: every column except ``unique_id`` and ``ds``."""
    if DS not in frame.columns:
        raise InputError(f"forecast frame: no {DS!r} column (columns: {list(frame.columns)})")
    return [str(c) for c in frame.columns if c not in (ID, DS)]


def _number(value: object, row: int, column: str) -> float | None:
    """One stored value: a finite float, or ``None`` for NaN; ``InputError`` naming row and column otherwise."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"forecast frame: row {row}, column {column!r}: {value!r} is not a number (nothing written)")
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise InputError(f"forecast frame: row {row}, column {column!r}: {number} is not finite (nothing written)")
    return number


def encode_points(frame: pd.DataFrame, columns: Sequence[str], chunk: int) -> Iterator[list[dict[str, Any]]]:
    """Rows ``{"ds": Timestamp, "values": [float | None, ...]}`` of ``frame``, ``chunk`` at a time.

    Rows are converted and checked lazily, so a bad value (non-numeric, infinite, missing/naive ``ds``) raises
    ``InputError`` only when its chunk is reached: the SQL store has by then written earlier chunks of the same
    transaction, which the error rolls back (tested: the previous forecast stays the latest).
    """
    ds_values = frame[DS].tolist()
    data = [frame[c].tolist() for c in columns]
    for start in range(0, len(ds_values), chunk):
        rows = []
        for i in range(start, min(start + chunk, len(ds_values))):
            stamp = utc(ds_values[i], f"forecast frame: row {i}, column {DS!r}")
            rows.append({"ds": stamp, "values": [_number(col[i], i, c) for col, c in zip(data, columns, strict=True)]})
        yield rows


def decode_points(workload_id: str, columns: Sequence[str], ds: Sequence[object],
                  values: Sequence[Sequence[float | None]]) -> pd.DataFrame:
    """The Forecast frame ``unique_id, ds, <columns...>`` of stored points (``None`` back to NaN), sorted by ds."""
    cols = list(columns)
    matrix = np.array(values, dtype=float).reshape(len(ds), len(cols)) if len(ds) else np.empty((0, len(cols)))
    frame = pd.DataFrame(matrix, columns=cols)
    frame.insert(0, DS, _utc_index(ds))
    frame.insert(0, ID, workload_id)
    return frame.sort_values(DS, kind="stable").reset_index(drop=True)


def _utc_index(ds: Sequence[object]) -> pd.DatetimeIndex:
    """UTC ns index of stored timestamps: ISO text (naive = UTC, SQLite) or datetimes (PostgreSQL)."""
    if len(ds) and isinstance(ds[0], str):
        return pd.DatetimeIndex(pd.to_datetime(list(ds), utc=True, format="ISO8601")).as_unit("ns")  # type: ignore[arg-type]
    return pd.DatetimeIndex(pd.to_datetime(list(ds), utc=True)).as_unit("ns")  # type: ignore[arg-type]


def actuals_frame(ds: Sequence[object], y: Sequence[float]) -> pd.DataFrame:
    """Frame ``ds`` (UTC, ns), ``y`` (float), sorted by ``ds``."""
    frame = pd.DataFrame({DS: _utc_index(ds),
                          "y": np.asarray(list(y), dtype=float)})
    return frame.sort_values(DS, kind="stable").reset_index(drop=True)


def encode_actuals(frame: pd.DataFrame) -> list[tuple[pd.Timestamp, float]]:
    """``(ds, y)`` pairs of an actuals frame; ``InputError`` on missing columns, naive/missing ``ds``, non-finite
    ``y`` or a duplicate ``ds`` (naming the first)."""
    for col in (DS, "y"):
        if col not in frame.columns:
            raise InputError(f"actuals: no {col!r} column (columns: {list(frame.columns)})")
    out: list[tuple[pd.Timestamp, float]] = []
    seen: set[pd.Timestamp] = set()
    for i, (stamp, value) in enumerate(zip(frame[DS].tolist(), frame["y"].tolist(), strict=True)):
        when = utc(stamp, f"actuals: row {i}, column {DS!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"actuals: row {i}, column 'y': {value!r} is not a number") from None
        if not math.isfinite(number):
            raise InputError(f"actuals: row {i}, column 'y': {number} is not finite (nothing written)")
        if when in seen:
            raise InputError(f"actuals: duplicate ds {when} (row {i}); nothing written")
        seen.add(when)
        out.append((when, number))
    return out


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: numpy numbers -> Python numbers, NaN/inf -> ``None``, timestamps -> ISO 8601
    strings, tuples/sets -> lists, dict keys -> str. What the store keeps of ``value``/``details``/``labels``."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return pd.Timedelta(value).total_seconds()
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{type(value).__name__} value {value!r} cannot be stored as JSON")


def finite_or_none(value: float | None) -> float | None:
    """A float column value: NaN/inf and ``None`` are stored as NULL (and read back as ``None``/NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


EVENT_KINDS: tuple[str, ...] = ("campaign", "launch", "sale", "holiday", "custom")
"""Allowed ``EventRecord.kind`` values (DESIGN.md "Events")."""


def check_id(value: str, field: str) -> str:
    """A non-empty id string."""
    if not isinstance(value, str) or not value:
        raise InputError(f"{field}: {value!r} must be a non-empty string")
    return value


def check_forecast(run: ForecastRun) -> list[str]:
    """Validate a run's metadata and frame layout (values are checked while inserting); its value columns."""
    check_id(run.id, "forecast id")
    check_id(run.workload_id, "forecast workload_id")
    check_id(run.model_version, "forecast model_version")
    utc(run.issued_at, "forecast issued_at")
    for level in run.levels:
        if int(level) != level or not 0 < int(level) < 100:
            raise InputError(f"forecast levels: {level!r} is not an integer percentage in 1..99")
    if ID in run.frame.columns:
        other = set(run.frame[ID].astype(str)) - {run.workload_id}
        if other:
            raise InputError(f"forecast frame: unique_id {sorted(other)[:3]} differs from workload_id "
                             f"{run.workload_id!r}; store one workload per run")
    return value_columns(run.frame)


def artefact_version(model_version: str) -> str:
    """The model version of the artefact that made a run: the run's ``model_version`` up to its first ``+``. A run
    annotated by the service (``<version>+fallback-<member>``, a drifting model's most reliable member) was still made
    by the model ``<version>``."""
    return model_version.split("+", 1)[0]


def check_issued_after_training(run: ForecastRun, train_end: pd.Timestamp | None) -> None:
    """``InputError`` when ``run`` was issued before ``train_end``, the training end of the model that made it
    (``None``: the store holds no artefact of that model, nothing to check). A model trained up to July 15 cannot have
    forecast from July 9: such a run would sit a week before its own points (a flat week in every chart)."""
    if train_end is None:
        return
    issued = utc(run.issued_at, "forecast issued_at")
    end = utc(train_end, "train_end")
    if issued < end:
        raise InputError(
            f"forecast {run.id}: issued at {_iso(issued)}, earlier than the training end {_iso(end)} of its model "
            f"{artefact_version(run.model_version)!r}; a forecast is issued at or after the last data its model saw "
            "(is the clock behind the stored model?); nothing written"
        )


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_model_event(event: ModelEvent) -> None:
    """``InputError`` unless the event has an id, a key, a version, a known kind and a tz-aware time."""
    check_id(event.id, "model event id")
    check_id(event.key, "model event key")
    check_id(event.version, "model event version")
    if event.kind not in MODEL_EVENT_KINDS:
        raise InputError(f"model event kind: {event.kind!r} is not one of {', '.join(MODEL_EVENT_KINDS)}")
    utc(event.at, "model event at")
    for stamp, name in ((event.train_start, "train_start"), (event.train_end, "train_end")):
        if stamp is not None:
            utc(stamp, f"model event {name}")


def check_event(event: EventRecord) -> None:
    """``InputError`` unless the event has an id, a name, a known kind and ``end > start`` (both tz-aware; the end
    is exclusive, as in ``signals.events``)."""
    check_id(event.id, "event id")
    check_id(event.name, "event name")
    if event.kind not in EVENT_KINDS:
        raise InputError(f"event kind: {event.kind!r} is not one of {', '.join(EVENT_KINDS)}")
    if utc(event.end, "event end") <= utc(event.start, "event start"):
        raise InputError(f"event {event.id}: end {event.end} is not after start {event.start} (end is exclusive)")
