"""The forecast refresh job (every ``refresh_interval_s``, default 5 min): the decision cycle for the workloads file.

Per frequency group (one model, ``forecaster.runtime.service.models``), as named steps:

1. fetch: the history window the cycle's schedule asks for (``EngineForecastProvider.history_window``: the whole
   training window when the model is due a refit, else the buckets since its last observation) of every workload of
   the group; the fetched buckets are saved as actuals;
2. forecast: the provider refits or refreshes the group's model on that history (``forecaster.cycle.forecast``)
   and predicts its horizon for every workload;
3. per workload: the run is stored atomically (id ``<workload>@<issue slot>``, ``cycle.schedule.slot_id``), then
   the Recommend-mode replica and resources decisions are recorded (``forecaster.runtime.service.decide``: the cycle's
   ``decide_floor`` with the circuit breaker fed by the cycle's error log) and the gauges set.

The issue time is ``now`` floored to the refresh interval (the issue slot): ids are deterministic, so a refresh
re-run in the same slot (a retry, a restarted worker) replaces the same run and records no decision twice.
A workload's failure at any step is isolated (``Service.isolated``); the job raises ``WorkloadError`` at the end
when some failed, so the job's outcome counter says so.

Not pure (source, store, models, gauges). Called by ``Service.refresh`` (scheduled through
``forecaster.runtime.jobs.refresh_job``).
"""

from __future__ import annotations

import logging

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import DS, ID, Y
from forecaster.contracts.ports import ForecastRun
from forecaster.cycle.schedule import issue_slot, slot_id
from forecaster.runtime.gauges import set_forecast
from forecaster.runtime.service import decide
from forecaster.runtime.service.fetch import demand_history, events_frame
from forecaster.runtime.service.models import concat, forecast_spec, group_key, groups, model_ids
from forecaster.runtime.service.registry import WorkloadSpec
from forecaster.runtime.service.service import Service, WorkloadError

log = logging.getLogger("forecaster.runtime.service")


def run_id(workload_id: str, slot: pd.Timestamp) -> str:
    """``<workload>@<issue slot>``: the id of a workload's forecast run (``cycle.schedule.slot_id``)."""
    return slot_id(workload_id, slot)


def publish(service: Service, spec: WorkloadSpec, version: str, frame: pd.DataFrame, history: pd.DataFrame,
            now: pd.Timestamp, slot: pd.Timestamp) -> ForecastRun:
    """Store one workload's run, record its replica decision, set its gauges."""
    levels = tuple(service.settings.levels)
    backtest = service.provider.backtest_mae(group_key(spec.freq), spec.id)
    run = ForecastRun(run_id(spec.id, slot), spec.id, slot, version, levels, frame.reset_index(drop=True), backtest)
    service.store.save_forecast(run)
    actual = float(history[Y].iloc[-1]) if len(history) else None
    set_forecast(service.telemetry, spec.id, run, now, freq_to_timedelta(spec.freq), actual)
    decide.replicas(service, spec, run, history, now, slot)
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

    results: dict[str, str] = {}
    provider = service.provider
    for freq, specs in groups(service.registry):
        key, fspec = group_key(freq), forecast_spec(st, freq)
        model = provider.model(key)
        if model is not None and {s.id for s in specs} - set(model_ids(model)):
            provider.forget(key)  # a workload added since the fit: refit the group on its whole training window
        start, end = provider.history_window(key, fspec, now)
        histories: dict[str, pd.DataFrame] = {}
        for spec in specs:  # 1. fetch
            with service.isolated("refresh", spec.id, errors):
                history = demand_history(service.source, spec, start, end)
                if len(history) == 0:
                    raise LookupError(f"no history for query {spec.query!r} in [{start}, {end}]")
                service.store.save_actuals(spec.id, history.loc[
                    history[DS] > now - pd.Timedelta(days=st.actuals_days), [DS, Y]])
                histories[spec.id] = history
            service.pause()
        if not histories:
            continue
        frames: dict[str, pd.DataFrame] = {}
        group_errors: dict[str, str] = {}
        with service.isolated("refresh", f"model {freq}", group_errors, counted=tuple(histories)):  # 2. forecast
            pred = provider.forecast(key, fspec, concat(histories), now, events=events)
            frames = {str(wid): part for wid, part in pred.groupby(ID, sort=False) if str(wid) in histories}
        for wid in histories:
            if group_errors:
                errors[wid] = next(iter(group_errors.values()))
        model = provider.model(key)
        version = "" if model is None else model.version
        for spec in specs:  # 3. publish and decide
            if spec.id not in frames:
                continue
            with service.isolated("refresh", spec.id, errors):
                results[spec.id] = publish(service, spec, version, frames[spec.id], histories[spec.id], now,
                                           slot).id
            if spec.id in results:
                with service.isolated("refresh", f"{spec.id}/resources", errors):
                    decide.resources(service, spec, now, slot)
            service.pause()
    if errors:
        raise WorkloadError("refresh", errors, results)
    return results
