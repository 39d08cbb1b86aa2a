"""The refit job (daily, and again at once when it was missed: ``due``): fit every frequency group's model on its
whole training window (``EngineForecastProvider.fit_model``: backtest-learned weights and calibration, the artefact
saved by the provider's ``on_fit`` hook), hand it to the provider (``install``: a challenger in shadow beside the
champion, or the champion at once, by the rollout rule), then apply the store's retention (``Store.prune``: runs,
actuals and accuracy older than ``settings.retention_days``).

A group of more than ``settings.shard_size`` workloads is fitted as parts (``forecaster.runtime.service.shards``),
one model and artefact each, ``settings.shard_concurrency`` at a time (threads sharing the service's executor: its
Dask cluster, or this process); histories are read in batched queries when the source batches
(``forecaster.runtime.service.fetch.demand_histories``).

The fit runs with no lock held: refreshes carry on with the current models meanwhile. The model is handed over under
the service's short lock (``forecaster.runtime.service.serving.adopt``; after the running refresh, if one runs). A
workload whose history cannot be read is left out of the fit (the others are refitted) and keeps its previous model
(``serving.follow``, should the new one become champion); the job reports it (``WorkloadError``), and ``due`` brings
the refit back after a back-off.

``due`` (``Service.refit_due``; asked by the scheduler's catch-up when it starts and after every refresh): the refit
should run now, ahead of its slot, when for some group the newest fit (by this job, or of the models serving it) is
older than the newest refit time (``now`` floored to ``refit_interval_s``: the slot whose run was missed, e.g. a refit
killed at 00:01, or a process started after it), or it did not cover every workload of the group (a refit missed some,
or, after a restart, the group's workloads are served by several models, a sharded group's parts counting as
one); before this process has a model of the
group, the newest stored artefact stands in. Never while a refit runs, nor within ``backoff_s`` of a failed one
(``refresh_interval_s``, doubling per failure in a row, at most ``refit_interval_s``). A group without any model is the
refresh's to fit, not due.

Not pure (source, store, artefact files). Called by ``Service.refit`` (scheduled through
``forecaster.runtime.jobs.refit_job``) and ``Service.refit_due``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pandas as pd

from forecaster.cycle.schedule import history_window, issue_slot
from forecaster.cycle.spec import ForecastSpec
from forecaster.runtime.service import serving
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.fetch import demand_histories, events_frame, history_of
from forecaster.runtime.service.models import concat, forecast_spec, group_key, groups
from forecaster.runtime.service.registry import WorkloadSpec
from forecaster.runtime.service.shards import is_part, split

if TYPE_CHECKING:  # the job runs on a Service, which imports this module
    from forecaster.runtime.service.service import Service

log = logging.getLogger("forecaster.runtime.service")


def refit(service: Service, now: pd.Timestamp | None = None) -> list[str]:
    """The job (module docstring); the versions of the models saved."""
    st = service.settings
    now = service.now(now)
    log.info("refit started at %s", now)
    errors: dict[str, str] = {}
    events = events_frame(service.store)
    saved: list[str] = []
    for freq, specs in groups(service.registry):
        key, fspec = group_key(freq), forecast_spec(st, freq)
        start, end = history_window(None, True, now, fspec.frequency_s, fspec.history_s)
        histories = read(service, specs, start, end, errors)
        if not histories:
            continue
        parts = split(key, histories, st.shard_size)
        fitted: list[str] = []
        with ThreadPoolExecutor(max_workers=min(st.shard_concurrency, len(parts))) as pool:
            futures = [pool.submit(fit_part, service, part, fspec, {w: histories[w] for w in ids}, now, events)
                       for part, ids in parts]
            for (_, ids), future in zip(parts, futures, strict=True):
                version, part_errors = future.result()  # fit_part isolates its own failures
                if version is not None:
                    saved.append(version)
                    fitted += ids
                errors.update({w: msg for w in ids for msg in part_errors.values()})
        if fitted:
            service.last_fit[key] = (now, tuple(sorted(fitted)))
    with service.isolated("refit", "retention", errors, counted=()):
        cut = now - pd.Timedelta(days=st.retention_days)
        deleted = service.store.prune(cut)
        log.info("refit: retention before %s deleted %s", cut, deleted)
    if errors:
        raise WorkloadError("refit", errors, saved)
    log.info("refit finished: %s", ", ".join(saved) or "nothing to fit")
    return saved


def read(service: Service, specs: list[WorkloadSpec], start: pd.Timestamp, end: pd.Timestamp,
         errors: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Each workload's training history (batched when the source batches: ``fetch.demand_histories``); a workload
    that cannot be read is kept in ``errors`` and left out."""
    st = service.settings
    fetched = None
    with service.isolated("refit", "fetch", errors, counted=()):
        fetched = demand_histories(service.source, specs, start, end, batch_size=st.fetch_batch,
                                   concurrency=st.fetch_concurrency)
    histories: dict[str, pd.DataFrame] = {}
    for spec in specs:
        with service.isolated("refit", spec.id, errors):
            history = history_of(fetched, service.source, spec, start, end)
            if len(history) == 0:
                raise LookupError(f"no history for query {spec.query!r} up to {end}")
            histories[spec.id] = history
        service.pause()
    return histories


def fit_part(service: Service, key: str, fspec: ForecastSpec, histories: dict[str, pd.DataFrame],
             now: pd.Timestamp, events: pd.DataFrame | None) -> tuple[str | None, dict[str, str]]:
    """Fit one model (the group's, or one part of a sharded group: ``shards``) with no lock held and hand it over
    (``serving.adopt``); ``(its version or None, {step: error})``."""
    part_errors: dict[str, str] = {}
    with service.isolated("refit", f"model {key}", part_errors, counted=tuple(histories)):
        model = service.provider.fit_model(key, fspec, concat(histories), now, events)
        serving.adopt(service, key, fspec, model, now)
        return model.version, part_errors
    return None, part_errors


def backoff_s(service: Service) -> float:
    """How long after a failed refit ``due`` waits (module docstring); 0 after a complete one."""
    st = service.settings
    if service.refit_failures <= 0:
        return 0.0
    return float(min(st.refresh_interval_s * 2.0 ** (service.refit_failures - 1), st.refit_interval_s))


def due(service: Service, now: pd.Timestamp | None = None) -> bool:
    """Whether the refit should run now (module docstring)."""
    if service.refit_lock.locked():
        return False
    if service.refit_ended is not None and time.monotonic() - service.refit_ended < backoff_s(service):
        return False
    now = service.now(now)
    newest_slot = issue_slot(now, service.settings.refit_interval_s)
    for freq, specs in groups(service.registry):
        group, ids = group_key(freq), {s.id for s in specs}
        fitted = service.last_fit.get(group)
        if fitted is not None:
            if fitted[0] < newest_slot or not ids <= set(fitted[1]):
                return True
            continue
        with service.lock:
            keys = {service.serving[w] for w in ids if w in service.serving}
            models = [m for m in (service.provider.model(k) for k in keys) if m is not None]
        if models:
            several = len({"parts" if is_part(k) else k for k in keys}) > 1
            if several or min(pd.Timestamp(m.fitted_at) for m in models) < newest_slot:  # any stale part
                return True
            continue
        if group in service.restored:
            continue  # looked for a stored model: none usable, the refresh fits the group
        meta = service.store.latest_artefact()
        if meta is not None and (pd.Timestamp(meta.created_at) < newest_slot or not ids <= set(meta.workload_ids)):
            return True
    return False
