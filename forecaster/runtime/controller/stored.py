"""What the controller reads from and keeps in the optional ``Store`` besides its decisions: the business events in a
policy's scope, and every forecast it issues (so a restarted controller still has its last good forecast).

**Events in scope.** ``load_events`` pages through ``Store.list_events`` once per cycle. An event applies to a policy
when its ``scope`` is empty (every workload) or one of its entries (a workload id or an fnmatch glob; an entry may
itself list several, comma-separated) matches

- one of the policy's names, taken as ids: ``<namespace>/<name>`` (the policy key, also the series id),
  ``<namespace>/<target name>`` and ``<target name>`` (the entry is the glob: ``web-*`` matches ``web-eu``), or
- one of the policy's own ``spec.events.scope`` patterns (default ``[<target name>]``), taken as globs over the
  entry (``checkout-*`` in the policy matches an event scoped to ``checkout-eu``).

Matching is case-sensitive, as in ``signals.events.scope_matches``. ``events_frame`` turns the events that apply and
overlap ``[now - history - 1 day, now + horizon + 1 day]`` (the training window and the forecast horizon, with a
day for lead-in and decay) into an Events frame with ``scope`` cleared: the scope is applied here, in the
policy's vocabulary, while the engine would match it against its series id (the policy key) instead.

**Forecast runs.** ``save_forecast`` stores each successful forecast as a ``ForecastRun``: workload id the policy
key, id ``<key>@<issued_at ISO 8601>`` (deterministic: a cycle retried at the same time overwrites its own run),
levels from the policy, the model's backtest MAE, and ``model_version`` = ``controller:<fingerprint hash>``: the
first 16 hex digits of the SHA-256 of the policy's demand query and forecast settings (``fingerprint``) as JSON.
``load_forecast`` (a cold ``LastGood`` miss) returns the stored latest forecast only when its ``model_version``
matches the policy's settings now; it is still subject to ``staleAfter``. ``recent_forecasts`` feeds the
``accuracy.ForecastLog`` after a restart.

Not pure (store reads and writes). Called by ``forecaster.runtime.controller.steps``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

import pandas as pd

from forecaster.contracts.frames import ID
from forecaster.contracts.ports import EventRecord, ForecastRun, Store
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.spec import PolicySpec
from signals.frames import END, EVENT_ID, KIND, NAME, SCOPE, START, UPLIFT

log = logging.getLogger(__name__)

PAGE = 500
"""Events read per ``list_events`` call."""
MODEL_PREFIX = "controller:"


def fingerprint(spec: PolicySpec) -> tuple[Any, ...]:
    """What a forecast depends on: a change of any of these makes the last good forecast unusable."""
    return (spec.query, spec.forecast)


def model_version(fp: tuple[Any, ...]) -> str:
    """``controller:<16 hex digits>`` naming the settings of ``fingerprint`` (module docstring)."""
    query, forecast = fp
    text = json.dumps({"query": query, "forecast": dataclasses.asdict(forecast)}, sort_keys=True, default=str)
    return MODEL_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


# -- events ------------------------------------------------------------------------------------------------------
def load_events(store: Store) -> list[EventRecord]:
    """Every stored business event, page by page."""
    events: list[EventRecord] = []
    offset = 0
    while True:
        page = store.list_events(limit=PAGE, offset=offset)
        events.extend(page.items)
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return events


def _entries(scope: Iterable[str]) -> list[str]:
    return [part.strip() for entry in scope for part in str(entry).split(",") if part.strip()]


def in_scope(scope: Sequence[str], spec: PolicySpec) -> bool:
    """Whether an event with this ``scope`` applies to the policy (module docstring)."""
    entries = _entries(scope)
    if not entries:
        return True
    names = (spec.key, f"{spec.namespace}/{spec.target_name}", spec.target_name)
    patterns = _entries(spec.event_scope)
    return any(fnmatchcase(name, entry) for entry in entries for name in names) or \
        any(fnmatchcase(entry, pattern) for entry in entries for pattern in patterns)


def events_frame(events: Sequence[EventRecord], spec: PolicySpec, now: pd.Timestamp) -> pd.DataFrame | None:
    """The Events frame of the events that apply to the policy around ``now`` (module docstring); ``None`` if none."""
    start = now - pd.Timedelta(seconds=spec.forecast.history_s) - pd.Timedelta("1D")
    end = now + pd.Timedelta(seconds=spec.forecast.horizon_s) + pd.Timedelta("1D")
    rows = [{EVENT_ID: e.id, NAME: e.name, KIND: e.kind, START: pd.Timestamp(e.start), END: pd.Timestamp(e.end),
             SCOPE: None, UPLIFT: e.expected_uplift}
            for e in events if e.start < end and e.end > start and in_scope(e.scope, spec)]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame[SCOPE] = pd.Series([None] * len(frame), dtype=object)
    frame[UPLIFT] = pd.to_numeric(frame[UPLIFT], errors="coerce").astype(float)
    return frame.sort_values([START, EVENT_ID], kind="stable").reset_index(drop=True)


# -- forecast runs -----------------------------------------------------------------------------------------------
def run_id(key: str, issued_at: pd.Timestamp) -> str:
    """``<key>@<issued_at ISO 8601 UTC>``, e.g. ``shop/web@2024-03-10T12:00:00+00:00``."""
    return f"{key}@{pd.Timestamp(issued_at).tz_convert('UTC').isoformat()}"


def save_forecast(store: Store, key: str, forecast: IssuedForecast, levels: Sequence[int]) -> None:
    """Store one issued forecast as a ``ForecastRun`` (module docstring)."""
    frame = forecast.frame.assign(**{ID: key})
    store.save_forecast(ForecastRun(
        id=run_id(key, forecast.issued_at), workload_id=key, issued_at=forecast.issued_at,
        model_version=model_version(forecast.fingerprint), levels=tuple(int(v) for v in levels), frame=frame,
        backtest_mae=forecast.backtest_mae,
    ))


def _issued(run: ForecastRun, fp: tuple[Any, ...]) -> IssuedForecast:
    return IssuedForecast(run.frame, pd.Timestamp(run.issued_at), fp, run.backtest_mae)


def load_forecast(store: Store, key: str, fp: tuple[Any, ...]) -> IssuedForecast | None:
    """The stored latest forecast of ``key`` if it was made under the settings ``fp``, else ``None``."""
    run = store.latest_forecast(key)
    if run is None:
        return None
    if run.model_version != model_version(fp):
        log.info("%s: stored forecast %s was made under other settings (%s); not used", key, run.id,
                 run.model_version)
        return None
    return _issued(run, fp)


def recent_forecasts(store: Store, key: str, fp: tuple[Any, ...], start: pd.Timestamp,
                     end: pd.Timestamp) -> list[IssuedForecast]:
    """The forecasts of ``key`` stored under the settings ``fp`` and issued in ``[start, end]``, oldest first."""
    version = model_version(fp)
    return [_issued(r, fp) for r in store.forecasts_issued_between(key, start, end) if r.model_version == version]
