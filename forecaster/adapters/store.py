"""``SqlStore``: the durable ``ports.Store`` on SQLAlchemy 2 Core: SQLite file by default, PostgreSQL by URL.

    store = SqlStore("sqlite:///forecaster.db")                      # WAL, foreign keys on
    store = SqlStore("postgresql+psycopg://user:pw@host:5432/forecaster")
    store.save_forecast(run); store.latest_forecast("shop/web")

Semantics (shared with ``forecaster.testing.store.InMemoryStore``, checked by one contract test):

- every method is ONE transaction: on any error nothing is written (a forecast that fails half-way through its
  points leaves the previous one the latest);
- timestamps are stored in UTC and returned tz-aware UTC (``pd.Timestamp``, microsecond precision); naive input is
  an ``InputError``;
- writing a forecast or actuals for an unknown workload registers a bare workload row (``kind="demand"``) first;
- ``save_forecast`` replaces a run with the same id (a retried job does not duplicate it); the latest run is the one
  with the newest ``issued_at`` (ties: the larger id); a run issued before the training end of its model (the stored
  artefact whose ``model_version`` is the run's, up to a ``+`` annotation) is refused with ``InputError``;
- ``record_decision`` and ``record_model_event`` insert once per id; ``upsert_event`` says whether it created the
  event (a replaced event keeps its first ``created_at``); ``save_artefact`` replaces by id;
- ranges are inclusive: ``actuals`` and ``forecasts_issued_between`` return ``start <= t <= end``;
- lists are pages (``limit``/``offset`` with the ``total``): workloads by id, decisions newest first, events by
  start, accuracy newest first, model history in the reverse order it was written (not by ``at``: the CLI's
  clock and the service's may differ, and a rollback written last must win);
- JSON payloads (decision ``value``/``details``, labels) are stored as plain JSON (``store_schema.to_json``);
- ``lease(name, holder, ttl_s)`` is the one-scheduler-per-store lease (``forecaster.adapters.store_lease``: a row
  with an expiry on SQLite, a session-level advisory lock on PostgreSQL);
- errors: bad input -> ``InputError`` (including constraint violations), lost connection or a locked database
  -> ``TemporaryError`` (retry; the last good data is still there), anything else from the driver ->
  ``PermanentError``.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (a process crash loses nothing committed), a 30 s busy timeout,
and explicit ``BEGIN`` (reads) / ``BEGIN IMMEDIATE`` (writes) instead of the sqlite3 driver's legacy implicit
transactions, so reads see one snapshot and concurrent writers queue instead of failing.

Not pure (SQLAlchemy, database I/O). Called by the scheduled jobs (``forecaster.runtime.service``), the HTTP API and the
controller; tables and codec in ``forecaster.adapters.store_schema``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    Text,
    cast,
    create_engine,
    delete,
    event,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from forecaster.adapters import migrate
from forecaster.adapters import store_schema as s
from forecaster.adapters.store_lease import AdvisoryLease, RowLease
from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import ForecasterError, InputError, PermanentError, TemporaryError
from forecaster.contracts.ports import (
    CHAMPION_KINDS,
    AccuracyRecord,
    ArtefactMeta,
    DecisionRecord,
    EventRecord,
    ForecastRun,
    ModelEvent,
    Page,
    StoreLease,
    Workload,
)

POINTS_PER_INSERT = 200
"""Forecast points written per INSERT batch (a one-day 5-minute run is two batches)."""
ACTUALS_PER_INSERT = 1000
SQLITE_BUSY_TIMEOUT_S = 30.0
_IMMEDIATE = "forecaster_sqlite_immediate"


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the SQLite pragmas and transaction handling described in the module docstring."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise PermanentError(f"store url {parsed!r}: only sqlite and postgresql are supported")
    if parsed.get_backend_name() != "sqlite":
        # no pool_pre_ping (a round trip per request on the API's hot path): a dropped connection fails one call
        # with TemporaryError and is replaced by the pool; idle connections are recycled before servers drop them
        return create_engine(url, pool_recycle=1800)
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or every connection sees its own empty database
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")

    return engine


class SqlStore:
    """``ports.Store`` over SQLAlchemy (see the module docstring for the semantics every method keeps)."""

    def __init__(self, url: str, *, create: bool = True, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine if engine is not None else make_engine(url)
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise PermanentError(f"store url {self.engine.url!r}: only sqlite and postgresql are supported")
        if create:
            self.create_all()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- plumbing -----------------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction (committed on success, rolled back on any error), driver errors translated."""
        try:
            with self.engine.connect() as conn:
                if write and self.dialect == "sqlite":
                    conn.execution_options(**{_IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except ForecasterError:
            raise
        except sa_exc.StatementError as exc:  # DBAPI errors (IntegrityError, OperationalError, ...) and bind errors
            if isinstance(exc.orig, ForecasterError):  # raised by a bind processor (e.g. a naive timestamp)
                raise exc.orig from exc
            if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError):
                raise InputError(f"store: rejected by the database, nothing written: {exc.orig}") from exc
            if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
                raise TemporaryError(f"store: database unavailable or busy ({exc.orig}); retry", 5.0) from exc
            raise PermanentError(f"store: {exc}") from exc
        except sa_exc.DisconnectionError as exc:
            raise TemporaryError(f"store: database connection lost ({exc}); retry", 5.0) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise PermanentError(f"store: {exc}") from exc

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    def create_all(self) -> None:
        """Make an empty database current (every Alembic migration), accept a current one, and refuse one made by
        another release with a ``PermanentError`` naming ``forecaster db upgrade`` (``forecaster.adapters.migrate``;
        the ``schema_version`` row is checked too). Idempotent."""
        with self._tx(write=True) as conn:
            migrate.prepare_on(conn, self.engine.url.render_as_string(hide_password=True))
            found = conn.execute(select(func.max(s.schema_version.c.version))).scalar()
            if found != s.SCHEMA_VERSION:
                raise PermanentError(
                    f"store schema version {found} in {self.engine.url!r}, this release expects "
                    f"{s.SCHEMA_VERSION}: run `forecaster db upgrade`"
                )

    def _ensure_workload(self, conn: Connection, workload_id: str) -> None:
        stmt = self._insert(s.workloads).values(
            id=workload_id, namespace="", kind="demand", freq="5min", query="", labels={}, created_at=utc_now()
        )
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    # -- workloads ----------------------------------------------------------------------------------------------
    def upsert_workload(self, workload: Workload) -> None:
        s.check_id(workload.id, "workload id")
        row = {"namespace": workload.namespace, "kind": workload.kind, "freq": workload.freq,
               "query": workload.query, "labels": s.to_json(dict(workload.labels))}
        created = s.utc(workload.created_at, "created_at") if workload.created_at is not None else utc_now()
        with self._tx(write=True) as conn:
            stmt = self._insert(s.workloads).values(id=workload.id, created_at=created, **row)
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=row))

    def get_workload(self, workload_id: str) -> Workload | None:
        with self._tx() as conn:
            row = conn.execute(select(s.workloads).where(s.workloads.c.id == workload_id)).first()
        return None if row is None else _workload(row._mapping)

    def list_workloads(self, *, limit: int = 100, offset: int = 0) -> Page[Workload]:
        s.check_page(limit, offset)
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(s.workloads)).scalar_one()
            rows = conn.execute(select(s.workloads).order_by(s.workloads.c.id).limit(limit).offset(offset)).all()
        return Page([_workload(r._mapping) for r in rows], int(total), limit, offset)

    # -- forecasts ----------------------------------------------------------------------------------------------
    def save_forecast(self, run: ForecastRun) -> None:
        columns = s.check_forecast(run)
        f, p = s.forecasts, s.forecast_points
        with self._tx(write=True) as conn:
            s.check_issued_after_training(run, self._train_end(conn, run.model_version))
            self._ensure_workload(conn, run.workload_id)
            conn.execute(delete(p).where(p.c.run_id == run.id))
            conn.execute(delete(f).where(f.c.id == run.id))
            conn.execute(f.insert().values(
                id=run.id, workload_id=run.workload_id, issued_at=s.utc(run.issued_at), model_version=run.model_version,
                levels=[int(v) for v in run.levels], columns=columns, backtest_mae=s.finite_or_none(run.backtest_mae),
            ))
            for chunk in s.encode_points(run.frame, columns, POINTS_PER_INSERT):
                conn.execute(p.insert(), [{"run_id": run.id, **row} for row in chunk])

    def _train_end(self, conn: Connection, model_version: str) -> pd.Timestamp | None:
        """Training end of the newest stored artefact of the model that made a run (``None`` when there is none)."""
        a = s.artefacts
        stmt = (select(a.c.train_end).where(a.c.model_version == s.artefact_version(model_version))
                .order_by(a.c.created_at.desc(), a.c.id.desc()).limit(1))
        found = conn.execute(stmt).scalar_one_or_none()
        return None if found is None else s.ts(found)

    def _runs(self, conn: Connection, where: Any) -> list[ForecastRun]:
        """Runs matching ``where`` (a condition on ``forecasts``) with their points, in one statement."""
        f, p = s.forecasts, s.forecast_points
        stmt = (
            # raw values (no per-row type processing): the run's fields are decoded once per run, the points in bulk
            select(f.c.id, f.c.workload_id, type_coerce(f.c.issued_at, Text), f.c.model_version,
                   cast(f.c.levels, Text), cast(f.c.columns, Text), f.c.backtest_mae, type_coerce(p.c.ds, Text),
                   cast(p.c["values"], Text))
            .select_from(f.outerjoin(p, p.c.run_id == f.c.id))
            .where(where)
            .order_by(f.c.issued_at, f.c.id, p.c.ds)
        )
        runs: list[ForecastRun] = []
        current: list[Any] = []
        for row in conn.execute(stmt).all():  # fetchall: one driver call, not one per row
            if current and current[0][0] != row[0]:
                runs.append(_run(current))
                current = []
            current.append(row)
        if current:
            runs.append(_run(current))
        return runs

    def latest_forecast(self, workload_id: str) -> ForecastRun | None:
        f = s.forecasts
        newest = (select(f.c.id).where(f.c.workload_id == workload_id)
                  .order_by(f.c.issued_at.desc(), f.c.id.desc()).limit(1).scalar_subquery())
        with self._tx() as conn:
            runs = self._runs(conn, f.c.id == newest)
        return runs[0] if runs else None

    def forecasts_issued_between(self, workload_id: str, start: pd.Timestamp, end: pd.Timestamp
                                 ) -> list[ForecastRun]:
        f = s.forecasts
        lo, hi = s.utc(start, "start"), s.utc(end, "end")
        with self._tx() as conn:
            return self._runs(conn, (f.c.workload_id == workload_id) & f.c.issued_at.between(lo, hi))

    # -- actuals ------------------------------------------------------------------------------------------------
    def save_actuals(self, workload_id: str, frame: pd.DataFrame) -> None:
        s.check_id(workload_id, "workload_id")
        pairs = s.encode_actuals(frame)
        a = s.actuals
        stmt = self._insert(a)
        stmt = stmt.on_conflict_do_update(index_elements=["workload_id", "ds"], set_={"y": stmt.excluded.y})
        with self._tx(write=True) as conn:
            self._ensure_workload(conn, workload_id)
            for i in range(0, len(pairs), ACTUALS_PER_INSERT):
                conn.execute(stmt, [{"workload_id": workload_id, "ds": d, "y": y}
                                    for d, y in pairs[i:i + ACTUALS_PER_INSERT]])

    def actuals(self, workload_id: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        a = s.actuals
        lo, hi = s.utc(start, "start"), s.utc(end, "end")
        stmt = (select(a.c.ds, a.c.y).where((a.c.workload_id == workload_id) & a.c.ds.between(lo, hi))
                .order_by(a.c.ds))
        with self._tx() as conn:
            rows = conn.execute(stmt).all()
        return s.actuals_frame([r[0] for r in rows], [r[1] for r in rows])

    # -- decisions ----------------------------------------------------------------------------------------------
    def record_decision(self, decision: DecisionRecord) -> bool:
        s.check_id(decision.id, "decision id")
        s.check_id(decision.workload_id, "decision workload_id")
        row = {"id": decision.id, "workload_id": decision.workload_id, "time": s.utc(decision.time, "decision time"),
               "kind": decision.kind, "mode": decision.mode, "applied": bool(decision.applied),
               "value": s.to_json(decision.value), "reason": decision.reason, "details": s.to_json(decision.details)}
        with self._tx(write=True) as conn:
            stmt = self._insert(s.decisions).values(**row).on_conflict_do_nothing(index_elements=["id"])
            return conn.execute(stmt.returning(s.decisions.c.id)).first() is not None

    def list_decisions(self, *, workload_id: str | None = None, since: pd.Timestamp | None = None,
                       limit: int = 100, offset: int = 0) -> Page[DecisionRecord]:
        s.check_page(limit, offset)
        d = s.decisions
        where: Any = d.c.id.is_not(None)
        if workload_id is not None:
            where = where & (d.c.workload_id == workload_id)
        if since is not None:
            where = where & (d.c.time >= s.utc(since, "since"))
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(d).where(where)).scalar_one()
            rows = conn.execute(select(d).where(where).order_by(d.c.time.desc(), d.c.id.desc())
                                .limit(limit).offset(offset)).all()
        return Page([_decision(r._mapping) for r in rows], int(total), limit, offset)

    # -- events -------------------------------------------------------------------------------------------------
    def upsert_event(self, event: EventRecord) -> bool:
        s.check_event(event)
        row = {"name": event.name, "kind": event.kind, "start": s.utc(event.start), "end": s.utc(event.end),
               "scope": list(event.scope), "expected_uplift": s.finite_or_none(event.expected_uplift)}
        created_at = s.utc(event.created_at, "created_at") if event.created_at is not None else utc_now()
        e = s.events
        with self._tx(write=True) as conn:
            stmt = self._insert(e).values(id=event.id, created_at=created_at, **row)
            if conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]).returning(e.c.id)).first() is not None:
                return True
            conn.execute(update(e).where(e.c.id == event.id).values(**row))
            return False

    def list_events(self, *, limit: int = 100, offset: int = 0) -> Page[EventRecord]:
        s.check_page(limit, offset)
        e = s.events
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(e)).scalar_one()
            rows = conn.execute(select(e).order_by(e.c.start, e.c.id).limit(limit).offset(offset)).all()
        return Page([_event(r._mapping) for r in rows], int(total), limit, offset)

    # -- accuracy -----------------------------------------------------------------------------------------------
    def record_accuracy(self, record: AccuracyRecord) -> None:
        s.check_id(record.workload_id, "accuracy workload_id")
        row = {"workload_id": record.workload_id, "evaluated_at": s.utc(record.evaluated_at, "evaluated_at"),
               "window_start": s.utc(record.window_start, "window_start"),
               "window_end": s.utc(record.window_end, "window_end"), "n_points": int(record.n_points),
               "mae": s.finite_or_none(record.mae), "coverage": s.to_json(dict(record.coverage)),
               "backtest_mae": s.finite_or_none(record.backtest_mae), "drift": bool(record.drift)}
        with self._tx(write=True) as conn:
            conn.execute(s.accuracy.insert().values(**row))

    def list_accuracy(self, workload_id: str, *, limit: int = 100, offset: int = 0) -> Page[AccuracyRecord]:
        s.check_page(limit, offset)
        a = s.accuracy
        where = a.c.workload_id == workload_id
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(a).where(where)).scalar_one()
            rows = conn.execute(select(a).where(where).order_by(a.c.evaluated_at.desc(), a.c.seq.desc())
                                .limit(limit).offset(offset)).all()
        return Page([_accuracy(r._mapping) for r in rows], int(total), limit, offset)

    # -- artefacts ----------------------------------------------------------------------------------------------
    def save_artefact(self, meta: ArtefactMeta) -> None:
        s.check_id(meta.id, "artefact id")
        row = {"created_at": s.utc(meta.created_at, "created_at"), "model_version": meta.model_version,
               "path": meta.path, "workload_ids": list(meta.workload_ids),
               "train_start": s.utc(meta.train_start, "train_start"), "train_end": s.utc(meta.train_end, "train_end"),
               "library_versions": s.to_json(dict(meta.library_versions))}
        with self._tx(write=True) as conn:
            stmt = self._insert(s.artefacts).values(id=meta.id, **row)
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=row))

    def latest_artefact(self) -> ArtefactMeta | None:
        a = s.artefacts
        with self._tx() as conn:
            row = conn.execute(select(a).order_by(a.c.created_at.desc(), a.c.id.desc()).limit(1)).first()
        return None if row is None else _artefact(row._mapping)

    def get_artefact(self, artefact_id: str) -> ArtefactMeta | None:
        a = s.artefacts
        with self._tx() as conn:
            row = conn.execute(select(a).where(a.c.id == artefact_id)).first()
        return None if row is None else _artefact(row._mapping)

    # -- model history ------------------------------------------------------------------------------------------
    def record_model_event(self, event: ModelEvent) -> bool:
        s.check_model_event(event)
        h, w = s.model_history, s.model_history_workloads
        row = {"id": event.id, "key": event.key, "kind": event.kind, "version": event.version,
               "at": s.utc(event.at, "model event at"), "reason": event.reason,
               "workload_ids": list(event.workload_ids),
               "train_start": None if event.train_start is None else s.utc(event.train_start, "train_start"),
               "train_end": None if event.train_end is None else s.utc(event.train_end, "train_end"),
               "previous": event.previous, "scores": s.to_json(dict(event.scores)), "actor": event.actor}
        with self._tx(write=True) as conn:
            stmt = self._insert(h).values(**row).on_conflict_do_nothing(index_elements=["id"])
            if conn.execute(stmt.returning(h.c.seq)).first() is None:
                return False
            ids = sorted(set(event.workload_ids))
            if ids:
                conn.execute(w.insert(), [{"event_id": event.id, "workload_id": wid} for wid in ids])
            return True

    def list_model_events(self, *, key: str | None = None, workload_id: str | None = None,
                          limit: int = 100, offset: int = 0) -> Page[ModelEvent]:
        s.check_page(limit, offset)
        h, w = s.model_history, s.model_history_workloads
        where: Any = h.c.seq.is_not(None)
        if key is not None:
            where = where & (h.c.key == key)
        if workload_id is not None:
            covering = select(w.c.event_id).where(w.c.workload_id == workload_id)
            keys = select(h.c.key).where(h.c.id.in_(covering)).distinct()
            where = where & ((h.c.key == workload_id) | h.c.key.in_(keys))
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(h).where(where)).scalar_one()
            rows = conn.execute(select(h).where(where).order_by(h.c.seq.desc()).limit(limit).offset(offset)).all()
        return Page([_model_event(r._mapping) for r in rows], int(total), limit, offset)

    def champion(self, key: str) -> ModelEvent | None:
        h = s.model_history
        stmt = (select(h).where((h.c.key == key) & h.c.kind.in_(CHAMPION_KINDS)).order_by(h.c.seq.desc()).limit(1))
        with self._tx() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _model_event(row._mapping)


# -- rows -> records --------------------------------------------------------------------------------------------
    # -- retention ----------------------------------------------------------------------------------------------
    def prune(self, before: pd.Timestamp) -> dict[str, int]:
        cut = s.utc(before, "before")
        f, p, a, acc = s.forecasts, s.forecast_points, s.actuals, s.accuracy
        newest = select(f.c.workload_id, func.max(f.c.issued_at).label("issued_at")).group_by(f.c.workload_id)
        latest = newest.subquery()
        keep = select(f.c.id).join(latest, (f.c.workload_id == latest.c.workload_id)
                                   & (f.c.issued_at == latest.c.issued_at))
        old = select(f.c.id).where(f.c.issued_at < cut, f.c.id.not_in(keep))
        with self._tx(write=True) as conn:
            ids = [row[0] for row in conn.execute(old).all()]
            points = runs = 0
            for start in range(0, len(ids), 500):  # bounded IN lists
                chunk = ids[start:start + 500]
                points += conn.execute(delete(p).where(p.c.run_id.in_(chunk))).rowcount or 0
                runs += conn.execute(delete(f).where(f.c.id.in_(chunk))).rowcount or 0
            gone_actuals = conn.execute(delete(a).where(a.c.ds < cut)).rowcount or 0
            gone_accuracy = conn.execute(delete(acc).where(acc.c.evaluated_at < cut)).rowcount or 0
        return {"forecasts": runs, "forecast_points": points, "actuals": gone_actuals, "accuracy": gone_accuracy}

    # -- leases -------------------------------------------------------------------------------------------------
    def lease(self, name: str, holder: str, ttl_s: float) -> StoreLease:
        """The lease ``name`` for ``holder`` (``forecaster.adapters.store_lease``): a row with an expiry on SQLite, a
        session-level advisory lock on PostgreSQL."""
        if self.dialect == "postgresql":
            return AdvisoryLease(self, name, holder, ttl_s)
        return RowLease(self, name, holder, ttl_s)




def _run(rows: list[Any]) -> ForecastRun:
    """One run from its joined rows (run fields repeated on each point row; raw driver values, decoded in bulk)."""
    first = rows[0]
    points = [r for r in rows if r[7] is not None]
    values = [r[8] for r in points]
    if values and isinstance(values[0], str):  # JSON text (cast in SQL): parse all points in one call
        values = json.loads("[" + ",".join(values) + "]")
    frame = s.decode_points(first[1], json.loads(first[5]), [r[7] for r in points], values)
    return ForecastRun(id=first[0], workload_id=first[1], issued_at=s.raw_ts(first[2]), model_version=first[3],
                       levels=tuple(int(v) for v in json.loads(first[4])), frame=frame, backtest_mae=first[6])


def _workload(m: Any) -> Workload:
    return Workload(id=m["id"], namespace=m["namespace"], kind=m["kind"], freq=m["freq"], query=m["query"],
                    labels=dict(m["labels"]), created_at=s.ts(m["created_at"]))


def _decision(m: Any) -> DecisionRecord:
    return DecisionRecord(id=m["id"], workload_id=m["workload_id"], time=s.ts(m["time"]), kind=m["kind"],
                          mode=m["mode"], applied=bool(m["applied"]), value=m["value"], reason=m["reason"],
                          details=m["details"])


def _event(m: Any) -> EventRecord:
    return EventRecord(id=m["id"], name=m["name"], kind=m["kind"], start=s.ts(m["start"]), end=s.ts(m["end"]),
                       scope=tuple(m["scope"]), expected_uplift=m["expected_uplift"],
                       created_at=s.ts(m["created_at"]))


def _accuracy(m: Any) -> AccuracyRecord:
    mae = m["mae"]
    return AccuracyRecord(
        workload_id=m["workload_id"], evaluated_at=s.ts(m["evaluated_at"]), window_start=s.ts(m["window_start"]),
        window_end=s.ts(m["window_end"]), n_points=int(m["n_points"]),
        mae=float("nan") if mae is None else float(mae),
        coverage={int(k): (float("nan") if v is None else float(v)) for k, v in m["coverage"].items()},
        backtest_mae=m["backtest_mae"], drift=bool(m["drift"]),
    )


def _model_event(m: Any) -> ModelEvent:
    return ModelEvent(id=m["id"], key=m["key"], kind=m["kind"], version=m["version"], at=s.ts(m["at"]),
                      reason=m["reason"], workload_ids=tuple(m["workload_ids"]),
                      train_start=None if m["train_start"] is None else s.ts(m["train_start"]),
                      train_end=None if m["train_end"] is None else s.ts(m["train_end"]),
                      previous=m["previous"], scores=dict(m["scores"]), actor=m["actor"])


def _artefact(m: Any) -> ArtefactMeta:
    return ArtefactMeta(id=m["id"], created_at=s.ts(m["created_at"]), model_version=m["model_version"],
                        path=m["path"], workload_ids=tuple(m["workload_ids"]), train_start=s.ts(m["train_start"]),
                        train_end=s.ts(m["train_end"]), library_versions=dict(m["library_versions"]))
