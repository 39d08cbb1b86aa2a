"""What-if: replay a workload's demand, changed by a scenario, under the reactive HPA and with the predictive floor.

Steps (``run``):

1. Demand. ``actuals``: stored observations over ``[start, end]`` (default: the day before the latest forecast's
   issue time, i.e. up to the last observation it used), with the forecasts issued from a day before ``start`` to
   ``end`` (thinned evenly to ``ApiSettings.whatif_max_runs``, keeping the last). ``forecast``: the latest
   forecast's ensemble is the demand and that run the only forecast; it counts as fresh for the whole window (a
   plan does not go stale while it is being played).
2. Scenario. ``growth`` multiplies demand and forecasts; each uplift window multiplies demand by ``1 + uplift`` over
   ``[start, end)``, and the forecasts too when ``events_known``.
3. Policy knobs: each one the request sets; else the workload's own, as its replicas decisions recorded them (the
   same ones ``/v1/recommendations`` shows: ``capacity_per_pod``, ``bounds`` -> ``min_replicas``/``max_replicas``,
   ``band_column`` -> ``quantile``, and ``target_utilisation``/``margin`` when recorded; the newest decision that
   recorded each, a note names them), so the replayed replicas are comparable with the recommendations; else the
   ``PolicyKnobs`` defaults. Capacity per pod without either: ``capacity_for_peak(demand, peak_replicas)`` (the
   peak minute needs that many pods at 100 %). Worked example: peak 2,000 per minute, 10 pods -> 200 per pod.
4. ``forecaster.simulate.replay`` once with ``"reactive"`` and once with ``"predictive"`` (when forecasts with the
   chosen band exist); outcomes and the predictive-minus-reactive comparison.

When the demand covers fewer minutes than the window (actuals stored for part of it only), a note says how many
of the window's minutes the outcomes count, and from when to when.

Bounds: the window is at most ``whatif_max_minutes`` (7 days: ~0.1 s reactive, ~0.8 s predictive on one core);
a peak needing more pods than ``policy.max_replicas`` (<= 10,000) is replayed capped there, with a note (the cost of
a replay is bounded by the replica cap, not by the data). ``InputError`` messages name the field
(``start``, ``policy.capacity_per_pod``...), which the route turns into a 422; no data to replay (no forecast
stored, no actuals or forecast steps in the window) is a ``NotFoundError``, a 404.

Pure computation over the store port (no web types). Called by ``forecaster.api.routes_whatif``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from forecaster.api.config import ApiSettings
from forecaster.api.schemas_whatif import ComparisonOut, OutcomesOut, PolicyKnobs, WhatIfIn, WhatIfOut
from forecaster.contracts.errors import InputError, NotFoundError
from forecaster.contracts.frames import DS, ENSEMBLE, Y
from forecaster.contracts.ports import ForecastRun, Store
from forecaster.scaling.settings import band_column
from forecaster.simulate import ISSUED_AT, capacity_for_peak, replay
from forecaster.simulate.result import Outcomes

LOOKBACK = pd.Timedelta(days=1)
"""Forecasts issued this long before the window's start may still cover its first minutes."""


DECISIONS_SCANNED = 500
"""Most recorded decisions read (newest first) looking for the workload's own policy knobs."""


def _recorded_knobs(details: dict[str, Any]) -> dict[str, Any]:
    """The ``PolicyKnobs`` fields a replicas decision's ``details`` recorded (values a knob would refuse are left
    out): ``capacity_per_pod``, ``bounds`` (min, max), ``band_column`` (``ensemble-hi-80`` -> ``hi-80``),
    ``target_utilisation``, ``margin``."""
    found: dict[str, Any] = {}
    for key in ("capacity_per_pod", "target_utilisation", "margin"):
        if isinstance(details.get(key), int | float) and not isinstance(details.get(key), bool):
            found[key] = float(details[key])
    bounds = details.get("bounds")
    if isinstance(bounds, list | tuple) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds):
        found["min_replicas"], found["max_replicas"] = int(bounds[0]), int(bounds[1])
    band = details.get("band_column")
    if isinstance(band, str) and (band == ENSEMBLE or band.startswith(f"{ENSEMBLE}-")):
        found["quantile"] = band.removeprefix(f"{ENSEMBLE}-")
    try:
        PolicyKnobs.model_validate(found)
    except ValidationError as exc:  # keep the knobs that are valid on their own (a bad pair of bounds goes whole)
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        if bad & {"min_replicas", "max_replicas"}:
            bad |= {"min_replicas", "max_replicas"}
        found = {k: v for k, v in found.items() if k not in bad}
    return found


def workload_knobs(store: Store, workload: str) -> tuple[dict[str, Any], list[str]]:
    """The workload's own policy knobs (each from the newest replicas decision that recorded it) and the ids of the
    decisions they came from."""
    knobs: dict[str, Any] = {}
    sources: list[str] = []
    page = store.list_decisions(workload_id=workload, limit=DECISIONS_SCANNED)
    for decision in sorted(page.items, key=lambda d: (d.time, d.id), reverse=True):
        if decision.kind != "replicas":
            continue
        new = {k: v for k, v in _recorded_knobs(decision.details).items() if k not in knobs}
        if new:
            knobs.update(new)
            sources.append(decision.id)
    return knobs, sources


def effective_knobs(given: PolicyKnobs, recorded: dict[str, Any]) -> PolicyKnobs:
    """What the request set, else the workload's recorded knobs, else the defaults. A request that sets
    ``peak_replicas`` without ``capacity_per_pod`` asks for capacity from the peak: the recorded capacity is not used.
    ``InputError`` naming ``policy.<field>`` when the mix is inconsistent (e.g. a max below the workload's min)."""
    chosen = given.model_fields_set
    merged = {k: v for k, v in recorded.items() if k not in chosen}
    if "peak_replicas" in chosen and "capacity_per_pod" not in chosen:
        merged.pop("capacity_per_pod", None)
    try:
        return PolicyKnobs.model_validate({**given.model_dump(), **merged})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise InputError(f"policy.{field}: {err['msg']} (the workload's own knobs: {recorded})") from None


def _iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%dT%H:%M:%SZ")


def _band_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c == ENSEMBLE or str(c).startswith(f"{ENSEMBLE}-")]


def thin(runs: list[ForecastRun], keep: int) -> list[ForecastRun]:
    """At most ``keep`` runs, evenly spaced by index, always keeping the last (the freshest)."""
    runs = sorted(runs, key=lambda r: r.issued_at)
    if len(runs) <= keep:
        return runs
    idx = np.unique(np.linspace(len(runs) - 1, 0, keep).round().astype(int))
    return [runs[i] for i in idx]


def forecasts_frame(runs: list[ForecastRun]) -> pd.DataFrame | None:
    """The long ``issued_at, ds, ensemble, bands...`` frame of ``runs`` (band columns every run has)."""
    if not runs:
        return None
    common = set(_band_columns(runs[0].frame))
    for run in runs[1:]:
        common &= set(_band_columns(run.frame))
    cols = [c for c in _band_columns(runs[0].frame) if c in common]
    parts = [run.frame[[DS, *cols]].assign(**{ISSUED_AT: pd.Timestamp(run.issued_at)}) for run in runs]
    frame = pd.concat(parts, ignore_index=True)
    values = frame[cols].to_numpy(dtype=float)
    frame = frame[np.isfinite(values).all(axis=1)]  # a NaN band row would make the provider refuse every run
    frame[cols] = frame[cols].clip(lower=0.0)
    return frame.reset_index(drop=True)


def _window(body: WhatIfIn, latest: ForecastRun | None, now: pd.Timestamp,
            max_minutes: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = pd.Timestamp(body.end) if body.end else None
    start = pd.Timestamp(body.start) if body.start else None
    if end is None:
        end = start + pd.Timedelta(days=1) if start is not None else (
            pd.Timestamp(latest.issued_at) if latest is not None else now)
    if start is None:
        start = end - pd.Timedelta(days=1)
    if start >= end:
        raise InputError("start: must be before end")
    if (end - start) > pd.Timedelta(minutes=max_minutes):
        raise InputError(f"end: the window is longer than {max_minutes} minutes ({max_minutes / 1440:g} days)")
    return start, end


def _scenario(values: pd.DataFrame, body: WhatIfIn, columns: list[str], apply_events: bool) -> pd.DataFrame:
    """``values`` (with ``ds``) with growth and, when ``apply_events``, the uplift windows applied to ``columns``."""
    out = values.copy()
    factor = np.full(len(out), float(body.growth))
    if apply_events and body.events:
        ds = pd.DatetimeIndex(out[DS])
        for ev in body.events:
            inside = (ds >= pd.Timestamp(ev.start)) & (ds < pd.Timestamp(ev.end))
            factor[np.asarray(inside)] *= 1.0 + ev.uplift
    out[columns] = out[columns].to_numpy(dtype=float) * factor[:, None]
    return out


def _outcomes(o: Outcomes) -> OutcomesOut:
    return OutcomesOut(policy=o.policy, minutes=o.minutes, under_provisioned_minutes=o.under_provisioned_minutes,
                       unserved=float(o.unserved), replica_minutes=float(o.replica_minutes),
                       scaling_actions=o.scaling_actions, peak_replicas=o.peak_replicas,
                       floor_changes=o.floor_changes, fallback_decisions=o.fallback_decisions)


def compare(reactive: OutcomesOut, predictive: OutcomesOut) -> ComparisonOut:
    """Predictive against reactive: minutes and demand saved, replica-minutes added and their ratio."""
    ratio = predictive.replica_minutes / reactive.replica_minutes if reactive.replica_minutes > 0 else None
    return ComparisonOut(
        under_provisioned_minutes_saved=reactive.under_provisioned_minutes - predictive.under_provisioned_minutes,
        unserved_saved=reactive.unserved - predictive.unserved,
        replica_minutes_extra=predictive.replica_minutes - reactive.replica_minutes,
        replica_minutes_ratio=ratio,
    )


def _demand(store: Store, body: WhatIfIn, latest: ForecastRun | None, settings: ApiSettings, now: pd.Timestamp
            ) -> tuple[pd.DataFrame, list[ForecastRun], pd.Timestamp, pd.Timestamp]:
    if body.demand == "forecast":
        if latest is None:
            raise NotFoundError(f"demand: no forecast stored for workload {body.workload!r}; use demand=actuals")
        frame = latest.frame.sort_values(DS)
        if body.start or body.end:
            lo_t = pd.Timestamp(body.start) if body.start else frame[DS].min()
            hi_t = pd.Timestamp(body.end) if body.end else frame[DS].max()
            frame = frame[(frame[DS] >= lo_t) & (frame[DS] <= hi_t)]
        if not len(frame):
            raise NotFoundError("start: the latest forecast has no steps in [start, end]")
        start, end = frame[DS].min(), frame[DS].max()
        if (end - start) > pd.Timedelta(minutes=settings.whatif_max_minutes):
            raise InputError(f"end: the window is longer than {settings.whatif_max_minutes} minutes")
        demand = frame[[DS, ENSEMBLE]].rename(columns={ENSEMBLE: Y})
        return demand, [latest], start, end
    start, end = _window(body, latest, now, settings.whatif_max_minutes)
    demand = store.actuals(body.workload, start, end)
    if not len(demand):
        raise NotFoundError(f"start: no actuals stored for {body.workload!r} between {start} and {end}")
    runs = store.forecasts_issued_between(body.workload, start - LOOKBACK, end)
    return demand[[DS, Y]].sort_values(DS), thin(runs, settings.whatif_max_runs), start, end


def run(store: Store, body: WhatIfIn, settings: ApiSettings, now: pd.Timestamp) -> WhatIfOut:
    """The what-if of ``body`` (module docstring). ``InputError`` names the field at fault."""
    latest = store.latest_forecast(body.workload)
    demand, runs, start, end = _demand(store, body, latest, settings, now)
    demand = _scenario(demand, body, [Y], apply_events=True)
    demand = demand[np.isfinite(demand[Y].to_numpy(dtype=float))]
    notes: list[str] = []
    recorded, sources = workload_knobs(store, body.workload)
    knobs = effective_knobs(body.policy, recorded)
    used = {k: v for k, v in recorded.items() if getattr(knobs, k) == v and k not in body.policy.model_fields_set}
    if used:
        listed = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in used.items())
        notes.append(f"policy from the workload's recorded replicas decisions ({', '.join(sources)}), as in "
                     f"/v1/recommendations: {listed}")
    capacity = knobs.capacity_per_pod or capacity_for_peak(demand, knobs.peak_replicas)
    peak_pods = float(demand[Y].max()) / (capacity * knobs.target_utilisation)
    if not math.isfinite(peak_pods):
        raise InputError(f"policy.capacity_per_pod: {capacity:g} gives no finite pod count for the peak")
    if peak_pods > knobs.max_replicas:
        # not a refusal: the replay is bounded by max_replicas (<= 10,000) whatever the capacity, and a valid
        # body must not be rejected for what the stored data holds (issue 22: schemathesis, capacity_per_pod 1e-6)
        notes.append(f"the peak would need {peak_pods:.3g} pods at policy.capacity_per_pod {capacity:g}, above "
                     f"max_replicas {knobs.max_replicas}: both policies are capped there and under-provisioned")
    def simulate(policy: str, forecasts: pd.DataFrame | None = None,
                 settings_: dict[str, float] | None = None) -> Outcomes:
        return replay(demand, policy, capacity_per_pod=capacity, startup_s=knobs.startup_s,
                      target_utilisation=knobs.target_utilisation, min_replicas=knobs.min_replicas,
                      max_replicas=knobs.max_replicas, decision_interval_s=knobs.decision_interval_s,
                      forecasts=forecasts, quantile=knobs.quantile, margin=knobs.margin,
                      policy_settings=settings_, bad_values="fill", keep_decisions=False).outcomes

    outcomes = [_outcomes(simulate("reactive"))]
    forecasts = forecasts_frame(runs)
    column = band_column(knobs.quantile)
    comparison = None
    if forecasts is None or not len(forecasts):
        notes.append("no stored forecasts cover the window: only the reactive HPA was replayed")
    elif column not in forecasts.columns:
        raise InputError(f"policy.quantile: {knobs.quantile!r} needs column {column!r}; the stored forecasts have "
                         f"{_band_columns(forecasts)}")
    else:
        forecasts = _scenario(forecasts, body, _band_columns(forecasts), apply_events=body.events_known)
        fresh = {"stale_after_s": (end - start).total_seconds() + 3600.0} if body.demand == "forecast" else None
        outcomes.append(_outcomes(simulate("predictive", forecasts, fresh)))
        comparison = compare(outcomes[0], outcomes[1])
        if len(runs) == settings.whatif_max_runs:
            notes.append(f"forecast runs thinned to {settings.whatif_max_runs} (evenly, keeping the last)")
    if body.events and not body.events_known:
        notes.append("events_known=false: the forecasts do not carry the extra events' uplift")
    window_minutes = int((end - start) / pd.Timedelta(minutes=1))
    if outcomes[0].minutes < window_minutes:
        notes.append(f"the stored demand covers only {outcomes[0].minutes} of the {window_minutes} minutes in "
                     f"[{_iso(start)}, {_iso(end)}] (from {_iso(demand[DS].min())} to {_iso(demand[DS].max())}): "
                     "the outcomes count those minutes only")
    return WhatIfOut(workload=body.workload, demand=body.demand, start=start.to_pydatetime(),
                     end=end.to_pydatetime(), minutes=outcomes[0].minutes, growth=body.growth,
                     capacity_per_pod=float(capacity), forecast_runs=len(runs) if comparison else 0,
                     policy=knobs, outcomes=outcomes, comparison=comparison, notes=notes)
