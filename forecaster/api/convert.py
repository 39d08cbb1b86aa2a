"""Records of ``forecaster.contracts.ports`` -> response bodies, request bodies -> records, and page links.

``forecast_columns`` picks the requested steps, levels and members of a stored run; ``forecast_json`` and
``forecast_csv`` write them (the CSV has the Forecast contract's columns plus ``issued_at`` and ``model_version``,
floats with Python's shortest round-trip repr, so parsing a cell gives back the stored float exactly).
``jsonable`` turns anything a decision may hold (numpy numbers, NaN, timestamps) into JSON values; memory in a
decision is sent as whole bytes (``memory_as_whole_bytes``).

Pure apart from Starlette's ``URL``: no I/O. Called by the ``routes_*`` modules.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from starlette.datastructures import URL

from forecaster.api.schemas import (
    AccuracyOut,
    BandOut,
    DecisionOut,
    EventIn,
    EventOut,
    ForecastOut,
    Links,
    WorkloadOut,
)
from forecaster.contracts.frames import DS, ENSEMBLE, ID, MEMBERS, hi, lo
from forecaster.contracts.ports import AccuracyRecord, DecisionRecord, EventRecord, ForecastRun, Workload


def ts(value: pd.Timestamp | datetime) -> datetime:
    """A tz-aware UTC ``datetime`` (naive input is taken as UTC)."""
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.floor("us").to_pydatetime()  # type: ignore[no-any-return]


def ts_opt(value: pd.Timestamp | datetime | None) -> datetime | None:
    """``ts`` or None (also for NaT)."""
    return None if value is None or pd.isna(value) else ts(value)


def number(value: Any) -> float | None:
    """A finite float, or None for NaN/inf/None."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def numbers(values: Any) -> list[float | None]:
    """A float array as a JSON list (NaN/inf -> None)."""
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()  # type: ignore[no-any-return]
    return [float(v) if ok else None for v, ok in zip(arr.tolist(), finite.tolist(), strict=True)]


def iso_list(values: Any) -> list[str]:
    """Timestamps as ISO 8601 UTC strings ending in ``Z`` (whole seconds unless finer is needed)."""
    idx = pd.DatetimeIndex(values)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    ns = idx.as_unit("ns").asi8
    if (ns % 1_000_000_000).any():
        text = np.datetime_as_string((ns // 1000).astype("datetime64[us]"), unit="us")
    else:
        text = np.datetime_as_string((ns // 1_000_000_000).astype("datetime64[s]"), unit="s")
    return [s + "Z" for s in text.tolist()]


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, timestamps, tuples and non-finite floats made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp | datetime):
        stamp = ts_opt(value)
        return stamp.isoformat().replace("+00:00", "Z") if stamp else None
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def whole_bytes(value: Any) -> Any:
    """Memory figures as whole bytes: every finite number in ``value`` rounded up to an integer (a request or a bound
    is never below the computed one; float noise within 1e-6 of an integer rounds to it). Other values unchanged."""
    if isinstance(value, Mapping):
        return {k: whole_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_bytes(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        nearest = round(value)
        return nearest if abs(value - nearest) < 1e-6 else math.ceil(value)
    return value


def memory_as_whole_bytes(value: Any) -> Any:
    """A JSON value with the numbers under every ``memory`` key (``containers.<name>.memory``) or ``<c>/memory`` key
    (``current_requests``, ``predicted_use``) as whole bytes (``whole_bytes``); CPU cores stay fractional."""
    if isinstance(value, Mapping):
        return {k: whole_bytes(v) if k == "memory" or str(k).endswith("/memory") else memory_as_whole_bytes(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [memory_as_whole_bytes(v) for v in value]
    return value


# -- pagination --------------------------------------------------------------------------------------------------
def _relative(url: URL, **params: Any) -> str:
    out = url.include_query_params(**params)
    return out.path + (f"?{out.query}" if out.query else "")


def page_links(url: URL, total: int, limit: int, offset: int) -> Links:
    """``self``/``first``/``last``/``next``/``prev`` for a page of ``limit`` items at ``offset`` out of ``total``."""
    last = max(0, (total - 1) // limit * limit) if total else 0
    return Links(
        self=_relative(url, limit=limit, offset=offset),
        first=_relative(url, limit=limit, offset=0),
        last=_relative(url, limit=limit, offset=last),
        next=_relative(url, limit=limit, offset=offset + limit) if offset + limit < total else None,
        prev=_relative(url, limit=limit, offset=max(0, offset - limit)) if offset > 0 else None,
    )


# -- records -> bodies -------------------------------------------------------------------------------------------
def workload_out(w: Workload) -> WorkloadOut:
    path = w.id
    links = {"forecast": f"/v1/forecasts/{path}", "actuals": f"/v1/actuals/{path}",
             "recommendations": f"/v1/recommendations/{path}", "accuracy": f"/v1/accuracy/{path}",
             "decisions": str(URL("/v1/decisions").include_query_params(workload=w.id))}
    return WorkloadOut(id=w.id, namespace=w.namespace, kind=w.kind, freq=w.freq, query=w.query,
                       labels=dict(w.labels), created_at=ts_opt(w.created_at), links=links)


def decision_out(d: DecisionRecord) -> DecisionOut:
    return DecisionOut(id=d.id, workload=d.workload_id, time=ts(d.time), kind=d.kind, mode=d.mode,
                       applied=bool(d.applied), value=memory_as_whole_bytes(jsonable(d.value)), reason=d.reason,
                       details=memory_as_whole_bytes(jsonable(d.details)))


def accuracy_out(a: AccuracyRecord) -> AccuracyOut:
    return AccuracyOut(workload=a.workload_id, evaluated_at=ts(a.evaluated_at), window_start=ts(a.window_start),
                       window_end=ts(a.window_end), n_points=int(a.n_points), mae=number(a.mae),
                       coverage={str(k): number(v) for k, v in a.coverage.items()},
                       backtest_mae=number(a.backtest_mae), drift=bool(a.drift))


def event_out(e: EventRecord) -> EventOut:
    return EventOut(id=e.id, name=e.name, kind=e.kind, start=ts(e.start), end=ts(e.end), scope=list(e.scope),
                    expected_uplift=number(e.expected_uplift), created_at=ts_opt(e.created_at))


def event_id(body: EventIn) -> str:
    """The body's ``id``, else ``evt-`` + the first 16 hex digits of a SHA-256 over its other fields, so posting
    the same event twice without an id is idempotent too."""
    if body.id:
        return body.id
    key = "|".join([body.name, body.kind, body.start.isoformat(), body.end.isoformat(), ",".join(body.scope),
                    repr(body.expected_uplift)])
    return "evt-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def event_record(body: EventIn, now: pd.Timestamp) -> EventRecord:
    return EventRecord(id=event_id(body), name=body.name, kind=body.kind, start=pd.Timestamp(body.start),
                       end=pd.Timestamp(body.end), scope=tuple(body.scope), expected_uplift=body.expected_uplift,
                       created_at=now)


# -- forecasts ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForecastView:
    """The part of a stored run a request asked for."""

    run: ForecastRun
    frame: pd.DataFrame
    levels: tuple[int, ...]
    members: tuple[str, ...]


def run_members(run: ForecastRun) -> tuple[str, ...]:
    """Members whose point column the run has, in ``frames.MEMBERS`` order."""
    return tuple(m for m in MEMBERS if m in run.frame.columns)


def forecast_view(run: ForecastRun, horizon: int | None, levels: Sequence[int] | None,
                  members: Sequence[str] | None) -> ForecastView:
    """Select steps/levels/members; ``ValueError`` names what the run does not have (the caller's 422)."""
    stored_levels = tuple(lv for lv in sorted(run.levels)
                          if lo(ENSEMBLE, lv) in run.frame.columns and hi(ENSEMBLE, lv) in run.frame.columns)
    if levels:
        missing = sorted(set(levels) - set(stored_levels))
        if missing:
            raise ValueError(f"levels: {missing} not stored; this run has {list(stored_levels)}")
        chosen = tuple(sorted(set(levels)))
    else:
        chosen = stored_levels
    have = run_members(run)
    if members is None:
        picked = have
    elif "none" in members:
        picked = ()
    else:
        missing_m = [m for m in members if m not in have]
        if missing_m:
            raise ValueError(f"members: {missing_m} not stored; this run has {list(have)}")
        picked = tuple(m for m in have if m in set(members))
    frame = run.frame
    if not frame[DS].is_monotonic_increasing:
        frame = frame.sort_values(DS)
    if horizon is not None:
        frame = frame.iloc[:horizon]
    return ForecastView(run, frame, chosen, picked)


def forecast_json(view: ForecastView, workload: Workload) -> ForecastOut:
    f, run = view.frame, view.run
    return ForecastOut(
        workload=run.workload_id, run_id=run.id, issued_at=ts(run.issued_at), model_version=run.model_version,
        freq=workload.freq, levels=list(view.levels), horizon=len(f), stored_horizon=len(run.frame),
        backtest_mae=number(run.backtest_mae), ds=iso_list(f[DS]), ensemble=numbers(f[ENSEMBLE]),
        bands=[BandOut(level=lv, lo=numbers(f[lo(ENSEMBLE, lv)]), hi=numbers(f[hi(ENSEMBLE, lv)]))
               for lv in view.levels],
        members={m: numbers(f[m]) for m in view.members},
    )


def _cell(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""


def forecast_csv(view: ForecastView) -> str:
    """CSV of the view: ``unique_id, ds, ensemble, ensemble-lo-L, ensemble-hi-L..., members..., issued_at,
    model_version`` (module docstring)."""
    f, run = view.frame, view.run
    cols = [ENSEMBLE] + [c for lv in view.levels for c in (lo(ENSEMBLE, lv), hi(ENSEMBLE, lv))] + list(view.members)
    values = f[cols].to_numpy(dtype=float).tolist()
    issued = iso_list(pd.DatetimeIndex([run.issued_at]))[0]
    tail = f"{issued},{_quote(run.model_version)}"
    head = _quote(run.workload_id)
    lines = [",".join([ID, DS, *cols, "issued_at", "model_version"])]
    lines += [f"{head},{d}," + ",".join(_cell(v) for v in row) + f",{tail}"
              for d, row in zip(iso_list(f[DS]), values, strict=True)]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A CSV field (RFC 4180 quoting when needed)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
