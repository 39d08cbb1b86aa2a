"""The forecast refresh job (every ``refresh_interval_s``, default 5 min): the decision cycle for the workloads file.

Per model (``forecaster.runtime.service.serving``: each workload is forecast by one model, its frequency group's
champion or a shard's), as named steps:

1. fetch: the history window the cycle's schedule asks for (``EngineForecastProvider.history_window``: the buckets
   since the model's last observation) of every workload the model forecasts; the fetched buckets are saved as
   actuals;
2. forecast: the provider refreshes the model with that history (``forecaster.cycle.forecast``; with rollout the
   challenger in shadow too, which may be promoted) and predicts its horizon for every workload. A refresh never
   refits a model because it is old (the refit job does, with no lock held, and is run again when it was missed);
   it fits only workloads no model covers (the first start, a new workload), as a shard of their own, and leaves them
   to the refit when one is running. Workloads a newly promoted champion does not cover keep the previous champion
   (``serving.follow``) and are forecast by it in the same refresh;
3. per workload: a forecast whose ensemble band is not finite is that workload's failure (nothing stored: the last
   good run stays served); else the run is stored atomically (id ``<workload>@<issue slot>``,
   ``cycle.schedule.slot_id``), then the Recommend-mode replica and resources decisions are recorded
   (``forecaster.runtime.service.decide``: the cycle's ``decide_floor`` with the circuit breaker fed by the cycle's
   error log) and the gauges set, among them
   ``forecaster_model_age_seconds{workload}`` (now minus the newest fit covering the workload: the serving model, a
   challenger in shadow, or the refit job's; the alert ``ForecasterModelStale`` reads it).

The issue time is ``now`` floored to the refresh interval (the issue slot): ids are deterministic, so a refresh
re-run in the same slot (a retry, a restarted worker) replaces the same run and records no decision twice.
A workload's failure at any step is isolated (``Service.isolated``); the job raises ``WorkloadError`` at the end
when some failed, so the job's outcome counter says so. A refit that finishes while a refresh runs hands its model
over when the refresh ends (``serving.adopt``).

Not pure (source, store, models, gauges). Called by ``Service.refresh`` (scheduled through
``forecaster.runtime.jobs.refresh_job``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, bands_in
from forecaster.contracts.ports import ForecastRun
from forecaster.cycle.forecast import Model, RolloutProvider
from forecaster.cycle.schedule import history_window, issue_slot, slot_id
from forecaster.runtime.gauges import set_forecast
from forecaster.runtime.service import decide, serving
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.fetch import demand_histories, events_frame, history_of
from forecaster.runtime.service.models import concat, forecast_spec, group_key, groups
from forecaster.runtime.service.registry import WorkloadSpec
from forecaster.runtime.service.shards import is_champion_key, split

if TYPE_CHECKING:  # the job runs on a Service, which imports this module
    from forecaster.runtime.service.service import Service

log = logging.getLogger("forecaster.runtime.service")


def run_id(workload_id: str, slot: pd.Timestamp) -> str:
    """``<workload>@<issue slot>``: the id of a workload's forecast run (``cycle.schedule.slot_id``)."""
    return slot_id(workload_id, slot)


def set_model_age(service: Service, workload_id: str, key: str, model: Model, now: pd.Timestamp) -> None:
    """``forecaster_model_age_seconds{workload}``: ``now`` minus the newest fit that covers the workload: the model
    that forecasts it, a challenger in shadow beside it, or the refit job's newest fit in this process (a challenger
    it kept out still counts: the refit ran; the rollout rule, not the refit, decides what serves)."""
    fits = [pd.Timestamp(model.fitted_at)]
    provider = service.provider
    challenger = provider.challenger(key) if isinstance(provider, RolloutProvider) else None
    if challenger is not None and workload_id in challenger.forecaster.state.span:
        fits.append(pd.Timestamp(challenger.fitted_at))
    fitted = service.last_fit.get(serving.group_of(key))
    if fitted is not None and workload_id in fitted[1]:
        fits.append(pd.Timestamp(fitted[0]))
    age = max(0.0, (now - max(fits)).total_seconds())
    service.telemetry.gauge("forecaster_model_age_seconds").labels(workload=workload_id).set(age)


def check_finite(frame: pd.DataFrame) -> None:
    """``InputError`` naming the first non-finite value of the ensemble band: such a forecast is the workload's
    failure, never stored (a stored NaN run would be served and fail its replica decision: a run without one)."""
    bands = [ENSEMBLE, *bands_in(frame.columns)]
    values = frame[bands].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(f"forecast: {bands[j]} at ds {frame[DS].iloc[i]} is {float(values[i, j])!r} (need finite)")


def publish(service: Service, spec: WorkloadSpec, key: str, model: Model, frame: pd.DataFrame,
            history: pd.DataFrame, now: pd.Timestamp, slot: pd.Timestamp) -> ForecastRun:
    """Store one workload's run (made by ``model``, the one of provider key ``key``), record its replica decision,
    set its gauges (forecast and model age)."""
    check_finite(frame)
    levels = tuple(service.settings.levels)
    backtest = service.provider.backtest_mae(key, spec.id)
    run = ForecastRun(run_id(spec.id, slot), spec.id, slot, model.version, levels, frame.reset_index(drop=True),
                      backtest)
    service.store.save_forecast(run)
    actual = float(history[Y].iloc[-1]) if len(history) else None
    set_forecast(service.telemetry, spec.id, run, now, freq_to_timedelta(spec.freq), actual)
    set_model_age(service, spec.id, key, model, now)
    decide.replicas(service, spec, run, history, now, slot)
    return run


class Cycle:
    """One refresh's shared inputs and outputs: the time, issue slot and events, the run id per workload and the
    errors per workload (or step)."""

    def __init__(self, service: Service, now: pd.Timestamp, events: pd.DataFrame | None) -> None:
        self.service, self.now, self.events = service, now, events
        self.slot = issue_slot(now, service.settings.refresh_interval_s)
        self.results: dict[str, str] = {}
        self.errors: dict[str, str] = {}


def refresh(service: Service, now: pd.Timestamp | None = None) -> dict[str, str]:
    """The job (module docstring); the stored run id per workload."""
    now = service.now(now)
    try:
        events = events_frame(service.store)
    except Exception:
        log.exception("refresh: cannot read events; forecasting without them")
        events = None
    cycle = Cycle(service, now, events)
    with service.lock:
        service.refreshing = True
    try:
        for freq, specs in groups(service.registry):
            refresh_group(cycle, freq, specs)
    finally:
        with service.lock:  # a refit that finished meanwhile hands its model over now (``serving.adopt``)
            service.refreshing = False
            serving.take_pending(service)
    if cycle.errors:
        raise WorkloadError("refresh", cycle.errors, cycle.results)
    return cycle.results


def refresh_group(cycle: Cycle, freq: str, specs: list[WorkloadSpec]) -> None:
    """One frequency group: each model serving some of its workloads forecasts them (``serving.plan``); workloads no
    model covers are fitted as a shard of their own, unless a refit is running (it covers them)."""
    service = cycle.service
    group, fspec = group_key(freq), forecast_spec(service.settings, freq)
    by_id = {spec.id: spec for spec in specs}
    serving.restore(service, group, fspec, list(by_id), cycle.now)
    keys, uncovered = serving.plan(service, group, by_id)
    for key, ids in keys.items():
        moved = refresh_shard(cycle, key, [by_id[w] for w in ids])
        if moved:  # a promoted champion does not cover them: the previous champion, kept for them, forecasts them
            kept = {service.serving[w] for w in moved}
            for shard in kept:
                refresh_shard(cycle, shard, [by_id[w] for w in moved if service.serving[w] == shard])
    if uncovered and service.refit_lock.locked():
        for wid in uncovered:
            cycle.errors[wid] = "no model yet: the refit in progress fits it"
    elif uncovered:
        fit_uncovered(cycle, group, [by_id[w] for w in uncovered])


def fetch(cycle: Cycle, specs: list[WorkloadSpec], start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Step 1: each workload's history in ``[start, end]`` (saved as actuals), in batched queries when the source
    batches (``fetch.demand_histories``); a failure is that workload's."""
    service, st = cycle.service, cycle.service.settings
    histories: dict[str, pd.DataFrame] = {}
    fetched = None
    with service.isolated("refresh", "fetch", cycle.errors, counted=()):  # batched reads (when the source batches)
        fetched = demand_histories(service.source, specs, start, end, batch_size=st.fetch_batch,
                                   concurrency=st.fetch_concurrency)
    for spec in specs:
        with service.isolated("refresh", spec.id, cycle.errors):
            history = history_of(fetched, service.source, spec, start, end)
            if len(history) == 0:
                raise LookupError(f"no history for query {spec.query!r} in [{start}, {end}]")
            service.store.save_actuals(spec.id, history.loc[
                history[DS] > cycle.now - pd.Timedelta(days=st.actuals_days), [DS, Y]])
            histories[spec.id] = history
        service.pause()
    return histories


def fit_uncovered(cycle: Cycle, group: str, specs: list[WorkloadSpec]) -> None:
    """Fit the workloads no model covers on their whole training window, as the group's model (or its parts, more
    than ``shard_size`` of them: ``shards``) when it has none, else as a shard of their own (``serving``), then
    forecast them as any other model's."""
    service = cycle.service
    fspec = forecast_spec(service.settings, specs[0].freq)
    start, end = history_window(None, True, cycle.now, fspec.frequency_s, fspec.history_s)
    histories = fetch(cycle, specs, start, end)
    if not histories:
        return
    ids = sorted(histories)
    parts = split(group, ids, service.settings.shard_size)
    if any(service.provider.model(k) is not None for k in {group, *(k for k, _ in parts)}):
        parts = [(serving.shard_key(group, f"new-{digest(ids)}"), ids)]  # beside the models the group has
    by_id = {spec.id: spec for spec in specs}
    for key, mine in parts:
        failed: dict[str, str] = {}
        with service.isolated("refresh", f"model {key}", failed, counted=tuple(mine)):
            service.provider.refit(key, fspec, concat({w: histories[w] for w in mine}), cycle.now,
                                   cycle.events)  # fit_model, then install
            serving.assign(service, key, mine)
        if failed:
            cycle.errors.update({w: next(iter(failed.values())) for w in mine})
            continue
        refresh_shard(cycle, key, [by_id[w] for w in mine], {w: histories[w] for w in mine})


def digest(ids: list[str]) -> str:
    """Short hash of workload ids (the tag of a refresh's shard key)."""
    return hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:8]


def refresh_shard(cycle: Cycle, key: str, specs: list[WorkloadSpec],
                  fetched: dict[str, pd.DataFrame] | None = None) -> list[str]:
    """Steps 1 to 3 (module docstring) for the workloads the model of ``key`` forecasts (``fetched``: their history,
    already read); the workloads moved to another model by a promotion during the forecast (to forecast next)."""
    service, provider = cycle.service, cycle.service.provider
    fspec = forecast_spec(service.settings, specs[0].freq)
    start, end = provider.history_window(key, fspec, cycle.now)
    if fetched is None:
        histories = fetch(cycle, specs, start, end)
    else:
        histories = {w: h.loc[h[DS] >= start] for w, h in fetched.items()}
    if not histories:
        return []
    before = provider.model(key)
    frames: dict[str, pd.DataFrame] = {}
    failed: dict[str, str] = {}
    with service.isolated("refresh", f"model {key}", failed, counted=tuple(histories)):  # 2. forecast
        pred = provider.forecast(key, fspec, concat(histories), cycle.now, events=cycle.events)
        frames = {str(wid): part for wid, part in pred.groupby(ID, sort=False) if str(wid) in histories}
    if failed:
        cycle.errors.update({w: next(iter(failed.values())) for w in histories})
    moved = serving.follow(service, key, before) if is_champion_key(key) else []
    model = provider.model(key)
    if model is None:
        return moved
    for spec in specs:  # 3. publish and decide
        if spec.id not in frames or spec.id in moved:
            continue
        with service.isolated("refresh", spec.id, cycle.errors):
            cycle.results[spec.id] = publish(service, spec, key, model, frames[spec.id], histories[spec.id],
                                             cycle.now, cycle.slot).id
        if spec.id in cycle.results:
            with service.isolated("refresh", f"{spec.id}/resources", cycle.errors):
                decide.resources(service, spec, cycle.now, cycle.slot)
        service.pause()
    return moved
