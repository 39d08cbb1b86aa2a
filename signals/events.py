"""Business events: validation, loading, scope filtering and time-relative features.

``validate_events`` is the one gate every events frame passes (files, the HTTP API, ``holiday_events``);
``load_events`` reads a file; ``events_for`` keeps the events that apply to one workload;
``event_features`` turns events into per-kind features on a time grid. Called by ``signals.sources``,
the forecaster's events/lgbm members and the orchestrator. Pure: pandas/numpy only.
"""

from __future__ import annotations

import hashlib
import math
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signals.errors import EventsError
from signals.frames import (
    END,
    EVENT_COLUMNS,
    EVENT_ID,
    EVENT_KINDS,
    EVENT_REQUIRED,
    KIND,
    NAME,
    SCOPE,
    START,
    UPLIFT,
    empty_events,
    to_utc,
)

DEFAULT_LEAD_IN = pd.Timedelta("1D")
"""How long before an event its lead-in effect (pre-event build-up) is looked for."""
DEFAULT_DECAY = pd.Timedelta("2D")
"""How long after an event its decay (after-effect) is looked for."""


def event_id(name: str, kind: str, start: pd.Timestamp) -> str:
    """Stable default id: the first 12 hex digits of ``sha1("<name>|<kind>|<start UTC ISO>")``."""
    key = f"{name}|{kind}|{pd.Timestamp(start).tz_convert('UTC').isoformat()}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _scope(value: Any, where: str) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    else:
        raise EventsError(
            f"{where}: field 'scope' must be a string or a list of workload ids/globs, got {value!r}"
        )
    parts = [p for p in parts if p]
    return ",".join(parts) if parts else None


def _uplift(value: Any, where: str) -> float:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return float("nan")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise EventsError(
            f"{where}: field 'expected_uplift' must be a number (0.3 = +30 %), got {value!r}"
        ) from exc
    if not math.isfinite(out) or out <= -1.0:
        raise EventsError(f"{where}: field 'expected_uplift' must be a finite number above -1, got {value!r}")
    return out


def validate_events(df: pd.DataFrame, source: str = "events", tz: str | None = None) -> pd.DataFrame:
    """Check ``df`` against the Events contract and return a clean frame sorted by ``start, id``.

    Rules (each error is an ``EventsError`` naming ``source``, ``event #n`` (1-based), its name and field):
    required ``name, kind, start, end``; unknown columns are an error (a typo such as ``expected_upflit``
    must not vanish silently); ``kind`` one of ``EVENT_KINDS`` (case-insensitive); ``start``/``end``
    tz-aware or naive with ``tz`` given, converted to UTC; ``end > start``; ``scope`` a string or list of
    ids/globs (None = all); ``expected_uplift`` a number above -1; ``id`` defaults to ``event_id`` and must
    be unique.
    """
    if len(df) == 0 and len(df.columns) == 0:
        return empty_events()  # pd.DataFrame() / pd.DataFrame([]) = no events
    missing = [c for c in EVENT_REQUIRED if c not in df.columns]
    if missing:
        raise EventsError(f"{source}: missing column(s) {missing} (have {list(df.columns)})")
    unknown = [c for c in df.columns if c not in EVENT_COLUMNS]
    if unknown:
        raise EventsError(f"{source}: unknown column(s) {unknown}; allowed: {list(EVENT_COLUMNS)}")
    if len(df) == 0:
        return empty_events()
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, rec in enumerate(df.to_dict("records"), start=1):
        name = rec[NAME]
        if not isinstance(name, str) or not name.strip():
            raise EventsError(f"{source}: event #{n}: field 'name' must be a non-empty string, got {name!r}")
        name = name.strip()
        where = f"{source}: event #{n} ({name!r})"
        kind = rec[KIND]
        if _missing(kind):
            raise EventsError(f"{where}: field 'kind' is missing; use one of {list(EVENT_KINDS)}")
        kind = str(kind).strip().lower()
        if kind not in EVENT_KINDS:
            raise EventsError(f"{where}: field 'kind' is {rec[KIND]!r}; use one of {list(EVENT_KINDS)}")
        start = to_utc(rec[START], where=f"{where}: field 'start'", tz=tz, error=EventsError)
        end = to_utc(rec[END], where=f"{where}: field 'end'", tz=tz, error=EventsError)
        if end <= start:
            rel = "equals" if end == start else "is before"
            raise EventsError(
                f"{where}: field 'end' ({end}) {rel} 'start' ({start}); end is exclusive and must be later"
            )
        raw_id = rec.get(EVENT_ID)
        eid = (
            event_id(name, kind, start)
            if _missing(raw_id) or str(raw_id).strip() == ""
            else str(raw_id).strip()
        )
        if eid in seen:
            raise EventsError(f"{where}: field 'id' {eid!r} repeats event #{seen[eid]}")
        seen[eid] = n
        rows.append(
            {
                EVENT_ID: eid,
                NAME: name,
                KIND: kind,
                START: start,
                END: end,
                SCOPE: _scope(rec.get(SCOPE), where),
                UPLIFT: _uplift(rec.get(UPLIFT), where),
            }
        )
    out = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    out[START] = out[START].astype("datetime64[ns, UTC]")
    out[END] = out[END].astype("datetime64[ns, UTC]")
    out[UPLIFT] = out[UPLIFT].astype(float)
    out[SCOPE] = pd.Series([r[SCOPE] for r in rows], dtype=object)  # None (not NaN) = every workload
    return out.sort_values([START, EVENT_ID], kind="stable").reset_index(drop=True)


def load_events(path: str | Path, tz: str | None = None) -> pd.DataFrame:
    """Read and validate an events file; dispatches on the suffix (.yaml/.yml/.csv/.ics).

    See ``signals.sources.files`` for each format. ``tz`` localizes naive timestamps (else they are errors).
    """
    from signals.sources.files import load_events as _load

    return _load(path, tz=tz)


def scope_matches(scope: Any, unique_id: str) -> bool:
    """True if an event with this ``scope`` applies to ``unique_id``.

    ``None``/NaN/empty = every workload; else any comma-separated part matching ``unique_id`` as an exact
    id or an fnmatch glob (case-sensitive): ``"checkout-*,api"`` matches ``checkout-eu`` and ``api``.
    """
    if _missing(scope) or not str(scope).strip():
        return True
    return any(fnmatchcase(unique_id, part.strip()) for part in str(scope).split(",") if part.strip())


def events_for(events: pd.DataFrame | None, unique_id: str) -> pd.DataFrame:
    """The events that apply to ``unique_id`` (see ``scope_matches``), index reset."""
    if events is None or len(events) == 0:
        return empty_events()
    if SCOPE not in events.columns:
        return events.reset_index(drop=True)
    mask = [scope_matches(s, unique_id) for s in events[SCOPE].tolist()]
    return events.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True)


def overlapping(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Events whose ``[start, end)`` intersects ``[start, end)``."""
    if len(events) == 0:
        return events
    mask = (events[START] < end) & (events[END] > start)
    return events.loc[mask.to_numpy()].reset_index(drop=True)


def feature_names(kind: str) -> tuple[str, str, str, str]:
    """``(<kind>_active, <kind>_hours_since_start, <kind>_hours_to_start, <kind>_hours_since_end)``."""
    return (
        f"{kind}_active",
        f"{kind}_hours_since_start",
        f"{kind}_hours_to_start",
        f"{kind}_hours_since_end",
    )


def event_features(
    events: pd.DataFrame | None,
    ds: pd.DatetimeIndex,
    lead_in: pd.Timedelta = DEFAULT_LEAD_IN,
    decay: pd.Timedelta = DEFAULT_DECAY,
    kinds: tuple[str, ...] = EVENT_KINDS,
) -> pd.DataFrame:
    """Per-kind event features at each timestamp of ``ds`` (tz-aware), indexed by ``ds`` in UTC.

    For every kind ``k`` in ``kinds`` (all kinds by default, so train and predict frames share columns):

    ``k_active``            1.0 if ``start <= t < end`` for some event of kind k, else 0.0
    ``k_hours_since_start`` ``(t - start) / 1h`` of the latest-started active event; NaN when not active
    ``k_hours_to_start``    ``(start - t) / 1h`` when ``start - lead_in <= t < start`` (nearest); NaN else
    ``k_hours_since_end``   ``(t - end) / 1h`` when ``end <= t < end + decay`` (nearest); NaN else

    Worked example: a sale 10:00-12:00, lead_in 1h, decay 1h, at 09:30 -> hours_to_start 0.5; at 11:00 ->
    active 1, hours_since_start 1.0; at 12:15 -> hours_since_end 0.25. NaN means "not applicable"
    (LightGBM treats it natively). Scope is not applied here: pass ``events_for(events, uid)``.
    """
    if ds.tz is None:
        raise EventsError("event_features: ds must be timezone-aware")
    idx = ds.tz_convert("UTC")
    t = idx.as_unit("ns").asi8.astype(np.int64)
    hour_ns = float(pd.Timedelta("1h").value)
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        active = np.zeros(len(t))
        since_start = np.full(len(t), np.nan)
        to_start = np.full(len(t), np.nan)
        since_end = np.full(len(t), np.nan)
        if events is not None and len(events):
            sub = events.loc[(events[KIND] == kind).to_numpy()]
            starts = pd.DatetimeIndex(sub[START]).as_unit("ns").asi8
            ends = pd.DatetimeIndex(sub[END]).as_unit("ns").asi8
            for s, e in zip(starts, ends, strict=True):
                inside = (t >= s) & (t < e)
                active[inside] = 1.0
                since_start = np.where(inside, np.fmin(since_start, (t - s) / hour_ns), since_start)
                lead = (t >= s - lead_in.value) & (t < s)
                to_start = np.where(lead, np.fmin(to_start, (s - t) / hour_ns), to_start)
                after = (t >= e) & (t < e + decay.value)
                since_end = np.where(after, np.fmin(since_end, (t - e) / hour_ns), since_end)
        for col, arr in zip(feature_names(kind), (active, since_start, to_start, since_end), strict=True):
            out[col] = arr
    return pd.DataFrame(out, index=pd.DatetimeIndex(idx, name="ds"))
