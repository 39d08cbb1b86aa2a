"""The forecast refresh job (every ``refresh_interval_s``, default 5 min), as a flat list of named steps:

1. per workload: fetch ``history_days`` of demand from the metrics source; save the last ``actuals_days`` as
   actuals;
2. per frequency: the fitted model (cached; after a restart the newest stored artefact when it covers the
   workloads; else fitted now and saved), given the new observations (``Forecaster.update``), predicts once;
3. per workload: when its accuracy is drifting, the most reliable member's values replace the ensemble (the run's
   model version says ``+fallback-<member>``); the run is stored atomically (id ``<workload>@<issue slot>``), then
   the Recommend-mode replica and resources decisions are recorded and the gauges set.

The issue time is ``now`` floored to the refresh interval (the issue slot): ids are deterministic, so a refresh
re-run in the same slot (a retry, a restarted worker) replaces the same run and records no decision twice.
A workload's failure at any step is isolated (``Service.isolated``); the job raises ``WorkloadError`` at the end
when some failed, so the job's outcome counter says so.

Not pure (source, store, models, gauges). Called by ``Service.refresh`` (scheduled through
``forecaster.service.jobs.refresh_job``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID, Y
from forecaster.contracts.ports import ForecastRun
from forecaster.service import decide
from forecaster.service.fetch import demand_history, events_frame
from forecaster.service.gauges import set_forecast
from forecaster.service.models import (
    FittedModel,
    fit_model,
    load_latest,
    member_as_ensemble,
    most_reliable_member,
    save_model,
)
from forecaster.service.registry import WorkloadSpec
from forecaster.service.service import Service, WorkloadError

log = logging.getLogger("forecaster.service")


def issue_slot(now: pd.Timestamp, interval_s: float) -> pd.Timestamp:
    """``now`` floored to a multiple of ``interval_s`` since the Unix epoch (UTC)."""
    step = round(interval_s * 1e9)
    return pd.Timestamp((int(now.as_unit("ns").value) // step) * step, tz="UTC")


def run_id(workload_id: str, slot: pd.Timestamp) -> str:
    return f"{workload_id}@{slot.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def drift_reason(service: Service, workload_id: str) -> str | None:
    """Why the workload is drifting, from its newest accuracy record (None when it is not)."""
    page = service.store.list_accuracy(workload_id, limit=1)
    if not page.items or not page.items[0].drift:
        return None
    rec = page.items[0]
    return (f"drift: realised MAE {rec.mae:.4g} over {rec.n_points} points > {service.settings.drift_multiple:g} x "
            f"backtest MAE {rec.backtest_mae if rec.backtest_mae is not None else float('nan'):.4g}")


def model_for(service: Service, freq: str, histories: dict[str, pd.DataFrame],
              events: pd.DataFrame | None) -> FittedModel:
    """The model covering every workload in ``histories``: cached, else the newest stored one, else a new fit."""
    ids = sorted(histories)
    cached = {id(service.models.get(i)) for i in ids}
    model = service.models.get(ids[0])
    if model is not None and len(cached) == 1 and model.freq == freq and all(model.last_seen(i) for i in ids):
        return model
    loaded = load_latest(service.store)
    if loaded is not None and loaded.freq == freq and set(ids) <= set(loaded.workload_ids):
        log.info("refresh: using stored model %s for %d workload(s)", loaded.version, len(ids))
        model = loaded
    else:
        log.info("refresh: fitting a %s model for %d workload(s)", freq, len(ids))
        model = fit_model(histories, freq, service.settings, events)
        save_model(model, service.store, service.settings.artefact_dir)
    for i in model.workload_ids:
        service.models[i] = model
    return model


def predict(model: FittedModel, histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Give the model the observations newer than it has seen, then forecast its horizon for every series."""
    newer = []
    for wid, history in histories.items():
        last = model.last_seen(wid)
        part = history if last is None else history[history[DS] > last]
        if len(part):
            newer.append(part)
    if newer:
        model.forecaster.update(pd.concat(newer, ignore_index=True))
    return model.forecaster.predict()


def publish(service: Service, spec: WorkloadSpec, model: FittedModel, frame: pd.DataFrame, history: pd.DataFrame,
            now: pd.Timestamp, slot: pd.Timestamp) -> ForecastRun:
    """Store one workload's run (with the drift fallback), record its replica decision, set its gauges."""
    levels = tuple(model.forecaster.levels)
    drift = drift_reason(service, spec.id)
    version = model.version
    frame = frame.reset_index(drop=True)
    if drift is not None:
        member = most_reliable_member(model.member_mae.get(spec.id, {}), tuple(model.forecaster.members))
        if member not in frame.columns or not np.isfinite(frame[member].to_numpy(dtype=float)).all():
            member = "seasonal"
        frame = member_as_ensemble(frame, member, levels)
        version = f"{version}+fallback-{member}"
        drift = f"{drift}; forecast falls back to its most reliable member {member!r} (lowest backtest MAE)"
        log.warning("refresh %s: %s", spec.id, drift)
    run = ForecastRun(run_id(spec.id, slot), spec.id, slot, version, levels, frame, model.backtest_mae(spec.id))
    service.store.save_forecast(run)
    actual = float(history[Y].iloc[-1]) if len(history) else None
    set_forecast(service.telemetry, run, now, actual)
    decide.replicas(service, spec, run, history, now, slot, drift)
    return run


def refresh(service: Service, now: pd.Timestamp | None = None) -> dict[str, str]:
    """The job (module docstring); the stored run id per workload."""
    st = service.settings
    now = service.now(now)
    slot = issue_slot(now, st.refresh_interval_s)
    errors: dict[str, str] = {}
    try:
        events = events_frame(service.store)
    except Exception:
        log.exception("refresh: cannot read events; forecasting without them")
        events = None

    histories: dict[str, pd.DataFrame] = {}
    for spec in service.registry:
        with service.isolated("refresh", spec.id, errors):
            history = demand_history(service.source, spec, now - pd.Timedelta(days=st.history_days), now)
            if len(history) == 0:
                raise LookupError(f"no history for query {spec.query!r} up to {now}")
            service.store.save_actuals(spec.id, history.loc[history[DS] > now - pd.Timedelta(days=st.actuals_days),
                                                            [DS, Y]])
            histories[spec.id] = history
        service.pause()

    frames: dict[str, tuple[FittedModel, pd.DataFrame]] = {}
    for freq in sorted({service.registry[w].freq for w in histories}):
        group = {w: h for w, h in histories.items() if service.registry[w].freq == freq}
        group_errors: dict[str, str] = {}
        with service.isolated("refresh", f"model {freq}", group_errors, counted=tuple(group)):
            model = model_for(service, freq, group, events)
            pred = predict(model, group)
            for wid, part in pred[pred[ID].isin(list(group))].groupby(ID, sort=False):
                frames[str(wid)] = (model, part)
        for wid in group:
            if group_errors:
                errors[wid] = next(iter(group_errors.values()))

    results: dict[str, str] = {}
    for wid, (model, frame) in frames.items():
        spec = service.registry[wid]
        with service.isolated("refresh", wid, errors):
            results[wid] = publish(service, spec, model, frame, histories[wid], now, slot).id
        if wid in results:
            with service.isolated("refresh", f"{wid}/resources", errors):
                decide.resources(service, spec, now, slot)
        service.pause()
    if errors:
        raise WorkloadError("refresh", errors, results)
    return results
