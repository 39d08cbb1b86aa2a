"""``InMemoryStore``: a ``ports.Store`` in dicts, with the semantics of ``forecaster.adapters.store.SqlStore``.

Same validation (the codec in ``forecaster.adapters.store_schema``), same ordering, idempotency and pagination,
same UTC/microsecond timestamps and JSON round-trip of payloads; every method validates and builds its result
before touching the dicts, under one lock, so a failed write changes nothing (as the SQL transaction would).
The one contract test (``tests/store/test_store_contract.py``) runs against both.

For unit tests of the service, the API and the controller; not pure (holds state), no I/O.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from typing import Any

import pandas as pd

from forecaster.adapters import store_schema as s
from forecaster.adapters.store_lease import check_lease
from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import InputError
from forecaster.contracts.ports import (
    CHAMPION_KINDS,
    AccuracyRecord,
    ArtefactMeta,
    DecisionRecord,
    EventRecord,
    ForecastRun,
    ModelEvent,
    Page,
    Workload,
)


def _us(stamp: object, field: str = "timestamp") -> pd.Timestamp:
    """What the SQL store returns for a written timestamp: UTC, truncated to microseconds, ns unit."""
    return s.utc(stamp, field).floor("us").as_unit("ns")


def _page(items: list[Any], limit: int, offset: int) -> Page[Any]:
    return Page([copy.deepcopy(x) for x in items[offset:offset + limit]], len(items), limit, offset)


class InMemoryStore:
    """Dict-backed ``ports.Store``; thread-safe. ``fail_next_write`` makes the next write raise (fault tests)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._workloads: dict[str, Workload] = {}
        self._runs: dict[str, ForecastRun] = {}
        self._actuals: dict[str, dict[pd.Timestamp, float]] = {}
        self._decisions: dict[str, DecisionRecord] = {}
        self._events: dict[str, EventRecord] = {}
        self._accuracy: list[AccuracyRecord] = []
        self._artefacts: dict[str, ArtefactMeta] = {}
        self._leases: dict[str, tuple[str, pd.Timestamp]] = {}
        self._model_events: dict[str, tuple[int, ModelEvent]] = {}
        """Model history by id: (insertion sequence, event)."""
        self.fail_next_write: Exception | None = None
        """Raised (once) by the next write instead of writing: simulates an outage."""

    def _maybe_fail(self) -> None:
        if self.fail_next_write is not None:
            exc, self.fail_next_write = self.fail_next_write, None
            raise exc

    def _ensure_workload(self, workload_id: str) -> None:
        if workload_id not in self._workloads:
            self._workloads[workload_id] = Workload(id=workload_id, created_at=_us(pd.Timestamp.now(tz="UTC")))

    # -- workloads ----------------------------------------------------------------------------------------------
    def upsert_workload(self, workload: Workload) -> None:
        s.check_id(workload.id, "workload id")
        labels = s.to_json(dict(workload.labels))
        with self._lock:
            self._maybe_fail()
            old = self._workloads.get(workload.id)
            if old is not None:
                created = old.created_at
            elif workload.created_at is not None:
                created = _us(workload.created_at, "created_at")
            else:
                created = _us(pd.Timestamp.now(tz="UTC"))
            self._workloads[workload.id] = replace(workload, labels=labels, created_at=created)

    def get_workload(self, workload_id: str) -> Workload | None:
        with self._lock:
            return copy.deepcopy(self._workloads.get(workload_id))

    def list_workloads(self, *, limit: int = 100, offset: int = 0) -> Page[Workload]:
        s.check_page(limit, offset)
        with self._lock:
            return _page([self._workloads[k] for k in sorted(self._workloads)], limit, offset)

    # -- forecasts ----------------------------------------------------------------------------------------------
    def save_forecast(self, run: ForecastRun) -> None:
        columns = s.check_forecast(run)
        rows = [row for chunk in s.encode_points(run.frame, columns, 10_000) for row in chunk]
        stamps = [row["ds"] for row in rows]
        if len(set(stamps)) != len(stamps):
            raise InputError(f"forecast {run.id}: duplicate ds in the frame; nothing written")
        frame = s.decode_points(run.workload_id, columns, [_us(d) for d in stamps], [row["values"] for row in rows])
        stored = ForecastRun(run.id, run.workload_id, _us(run.issued_at), run.model_version,
                             tuple(int(v) for v in run.levels), frame, s.finite_or_none(run.backtest_mae))
        with self._lock:
            s.check_issued_after_training(run, self._train_end(run.model_version))
            self._maybe_fail()
            self._ensure_workload(run.workload_id)
            self._runs[run.id] = stored

    def _train_end(self, model_version: str) -> pd.Timestamp | None:
        version = s.artefact_version(model_version)
        mine = [a for a in self._artefacts.values() if a.model_version == version]
        return max(mine, key=lambda a: (a.created_at, a.id)).train_end if mine else None

    def _of(self, workload_id: str) -> list[ForecastRun]:
        runs = [r for r in self._runs.values() if r.workload_id == workload_id]
        return sorted(runs, key=lambda r: (r.issued_at, r.id))

    def latest_forecast(self, workload_id: str) -> ForecastRun | None:
        with self._lock:
            runs = self._of(workload_id)
            return copy.deepcopy(runs[-1]) if runs else None

    def forecasts_issued_between(self, workload_id: str, start: pd.Timestamp, end: pd.Timestamp
                                 ) -> list[ForecastRun]:
        lo, hi = s.utc(start, "start"), s.utc(end, "end")
        with self._lock:
            return [copy.deepcopy(r) for r in self._of(workload_id) if lo <= r.issued_at <= hi]

    # -- actuals ------------------------------------------------------------------------------------------------
    def save_actuals(self, workload_id: str, frame: pd.DataFrame) -> None:
        s.check_id(workload_id, "workload_id")
        pairs = [(_us(d), y) for d, y in s.encode_actuals(frame)]
        with self._lock:
            self._maybe_fail()
            self._ensure_workload(workload_id)
            self._actuals.setdefault(workload_id, {}).update(pairs)

    def actuals(self, workload_id: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        lo, hi = s.utc(start, "start"), s.utc(end, "end")
        with self._lock:
            items = sorted((d, y) for d, y in self._actuals.get(workload_id, {}).items() if lo <= d <= hi)
        return s.actuals_frame([d for d, _ in items], [y for _, y in items])

    # -- decisions ----------------------------------------------------------------------------------------------
    def record_decision(self, decision: DecisionRecord) -> bool:
        s.check_id(decision.id, "decision id")
        s.check_id(decision.workload_id, "decision workload_id")
        stored = replace(decision, time=_us(decision.time, "decision time"), applied=bool(decision.applied),
                         value=s.to_json(decision.value), details=s.to_json(decision.details))
        with self._lock:
            self._maybe_fail()
            if decision.id in self._decisions:
                return False
            self._decisions[decision.id] = stored
            return True

    def list_decisions(self, *, workload_id: str | None = None, since: pd.Timestamp | None = None,
                       limit: int = 100, offset: int = 0) -> Page[DecisionRecord]:
        s.check_page(limit, offset)
        floor = None if since is None else s.utc(since, "since")
        with self._lock:
            items = [d for d in self._decisions.values()
                     if (workload_id is None or d.workload_id == workload_id) and (floor is None or d.time >= floor)]
            items.sort(key=lambda d: (d.time, d.id), reverse=True)
            return _page(items, limit, offset)

    # -- events -------------------------------------------------------------------------------------------------
    def upsert_event(self, event: EventRecord) -> bool:
        s.check_event(event)
        uplift = s.finite_or_none(event.expected_uplift)
        with self._lock:
            self._maybe_fail()
            old = self._events.get(event.id)
            if old is not None:
                created = old.created_at
            elif event.created_at is not None:
                created = _us(event.created_at, "created_at")
            else:
                created = _us(pd.Timestamp.now(tz="UTC"))
            self._events[event.id] = replace(event, start=_us(event.start), end=_us(event.end),
                                             scope=tuple(event.scope), expected_uplift=uplift, created_at=created)
            return old is None

    def list_events(self, *, limit: int = 100, offset: int = 0) -> Page[EventRecord]:
        s.check_page(limit, offset)
        with self._lock:
            items = sorted(self._events.values(), key=lambda e: (e.start, e.id))
            return _page(items, limit, offset)

    # -- accuracy -----------------------------------------------------------------------------------------------
    def record_accuracy(self, record: AccuracyRecord) -> None:
        s.check_id(record.workload_id, "accuracy workload_id")
        mae = s.finite_or_none(record.mae)
        coverage = {int(k): (float("nan") if v is None else float(v))
                    for k, v in s.to_json(dict(record.coverage)).items()}
        stored = replace(record, evaluated_at=_us(record.evaluated_at, "evaluated_at"),
                         window_start=_us(record.window_start, "window_start"),
                         window_end=_us(record.window_end, "window_end"), n_points=int(record.n_points),
                         mae=float("nan") if mae is None else mae, coverage=coverage,
                         backtest_mae=s.finite_or_none(record.backtest_mae), drift=bool(record.drift))
        with self._lock:
            self._maybe_fail()
            self._accuracy.append(stored)

    def list_accuracy(self, workload_id: str, *, limit: int = 100, offset: int = 0) -> Page[AccuracyRecord]:
        s.check_page(limit, offset)
        with self._lock:
            items = [(i, r) for i, r in enumerate(self._accuracy) if r.workload_id == workload_id]
            items.sort(key=lambda ir: (ir[1].evaluated_at, ir[0]), reverse=True)
            return _page([r for _, r in items], limit, offset)

    # -- artefacts ----------------------------------------------------------------------------------------------
    def save_artefact(self, meta: ArtefactMeta) -> None:
        s.check_id(meta.id, "artefact id")
        stored = replace(meta, created_at=_us(meta.created_at, "created_at"), workload_ids=tuple(meta.workload_ids),
                         train_start=_us(meta.train_start, "train_start"), train_end=_us(meta.train_end, "train_end"),
                         library_versions=s.to_json(dict(meta.library_versions)))
        with self._lock:
            self._maybe_fail()
            self._artefacts[meta.id] = stored

    def latest_artefact(self) -> ArtefactMeta | None:
        with self._lock:
            if not self._artefacts:
                return None
            return copy.deepcopy(max(self._artefacts.values(), key=lambda a: (a.created_at, a.id)))

    def get_artefact(self, artefact_id: str) -> ArtefactMeta | None:
        with self._lock:
            return copy.deepcopy(self._artefacts.get(artefact_id))

    # -- model history ------------------------------------------------------------------------------------------
    def record_model_event(self, event: ModelEvent) -> bool:
        s.check_model_event(event)
        stored = replace(event, at=_us(event.at, "model event at"), workload_ids=tuple(event.workload_ids),
                         train_start=None if event.train_start is None else _us(event.train_start, "train_start"),
                         train_end=None if event.train_end is None else _us(event.train_end, "train_end"),
                         scores=s.to_json(dict(event.scores)))
        with self._lock:
            self._maybe_fail()
            if event.id in self._model_events:
                return False
            self._model_events[event.id] = (len(self._model_events), stored)
            return True

    def _history(self) -> list[ModelEvent]:
        """Every model event, the last written first."""
        items = sorted(self._model_events.values(), key=lambda se: se[0], reverse=True)
        return [e for _, e in items]

    def list_model_events(self, *, key: str | None = None, workload_id: str | None = None,
                          limit: int = 100, offset: int = 0) -> Page[ModelEvent]:
        s.check_page(limit, offset)
        with self._lock:
            items = self._history()
            if key is not None:
                items = [e for e in items if e.key == key]
            if workload_id is not None:
                keys = {e.key for e in items if workload_id in e.workload_ids} | {workload_id}
                items = [e for e in items if e.key in keys]
            return _page(items, limit, offset)

    def champion(self, key: str) -> ModelEvent | None:
        with self._lock:
            found = next((e for e in self._history() if e.key == key and e.kind in CHAMPION_KINDS), None)
            return copy.deepcopy(found)

    def prune(self, before: pd.Timestamp) -> dict[str, int]:
        cut = s.utc(before, "before")
        with self._lock:
            keep = {runs[-1].id for runs in (self._of(w) for w in {r.workload_id for r in self._runs.values()})}
            old = [rid for rid, run in self._runs.items() if run.issued_at < cut and rid not in keep]
            points = sum(len(self._runs[rid].frame) for rid in old)
            for rid in old:
                del self._runs[rid]
            gone_actuals = 0
            for series in self._actuals.values():
                stale = [ds for ds in series if ds < cut]
                gone_actuals += len(stale)
                for ds in stale:
                    del series[ds]
            before_n = len(self._accuracy)
            self._accuracy = [r for r in self._accuracy if r.evaluated_at >= cut]
        return {"forecasts": len(old), "forecast_points": points, "actuals": gone_actuals,
                "accuracy": before_n - len(self._accuracy)}

    # -- leases -------------------------------------------------------------------------------------------------
    def lease(self, name: str, holder: str, ttl_s: float) -> MemoryLease:
        """``MemoryLease``: the SQLite lease's rule (a holder and an expiry) in this store's dicts."""
        return MemoryLease(self, name, holder, ttl_s)


class MemoryLease:
    """``ports.StoreLease`` in an ``InMemoryStore``: taken when free or expired, renewed by its holder, free again
    ``ttl_s`` after the last renewal (``forecaster.adapters.store_lease.RowLease``'s rule)."""

    def __init__(self, store: InMemoryStore, name: str, holder: str, ttl_s: float) -> None:
        check_lease(name, holder, ttl_s)
        self.store, self.name, self.holder, self.ttl_s = store, name, holder, float(ttl_s)

    def acquire(self) -> bool:
        now = utc_now()
        with self.store._lock:
            self.store._maybe_fail()
            found = self.store._leases.get(self.name)
            if found is not None and found[0] != self.holder and found[1] > now:
                return False
            self.store._leases[self.name] = (self.holder, now + pd.Timedelta(seconds=self.ttl_s))
            return True

    def release(self) -> None:
        with self.store._lock:
            if self.store._leases.get(self.name, ("", None))[0] == self.holder:
                del self.store._leases[self.name]

    def current_holder(self) -> str | None:
        with self.store._lock:
            found = self.store._leases.get(self.name)
        return None if found is None or found[1] <= utc_now() else found[0]


__all__ = ["InMemoryStore", "MemoryLease"]
