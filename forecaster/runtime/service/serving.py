"""Which model forecasts each workload: the service's serving table, the hand-over of a refit's model, and the
start-up restore.

Models are per shard: one model (one ``Forecaster``, its global LightGBM member learning from every series in it)
covers a set of workloads of one frequency, and ``Service.serving`` maps each workload to the provider key of the
model that forecasts it:

- ``freq/<f>`` (``group_key``): the group's champion (``forecaster.cycle.forecast.RolloutProvider``), fitted by the
  refit job over every workload it could read;
- ``freq/<f>~<tag>`` (``shard_key``): a model kept for the workloads a newer champion does not cover (their history
  could not be read when it was fitted), or one a refresh fitted for workloads no model covers (new workloads, or
  after a restart that found them in no stored artefact).

Why shards and not one model per workload: the refit stays one fit per group (the fleet-scale cost, and the global
member's cross-series learning), while a workload a refit missed keeps its previous model instead of sending the
whole group back to a fit inside the refresh. The refit job runs again soon after (``refit.due``) and its model,
covering everyone, makes the shards unused; unused keys are dropped (``prune``).

Hand-over (``adopt``): the refit fits with no lock held, then hands its model to the provider (``install``: a
challenger in shadow, or the champion at once, by the rollout rule) under ``Service.lock``, for a few dictionary
writes. While a refresh runs (``Service.refreshing``) the model waits in ``Service.pending`` and the refresh installs
it when it ends: a refresh uses one model from its history window to its forecast, so a model is never replaced
under it. Whenever the group's champion changes (installed at once, or promoted during a refresh), ``follow`` moves
the workloads the new champion does not cover to a shard holding the previous champion.

A group of more than ``settings.shard_size`` workloads is fitted as parts ``freq/<f>~part-<i>``
(``forecaster.runtime.service.shards``): each part is a champion key like the group's (its own rollout, ``follow``
and restore), serving its workloads.

Start-up (``restore``): before a group's first refresh, each part's champion (a sharded group), then the provider's
own restore (the group's champion in the model
history, when it covers every workload), else the newest stored model (the champion's artefact, then the newest
artefact) for the workloads it covers; the others are fitted by that refresh as their own shard.

Not pure (provider state, store reads, artefact files). Called by ``forecaster.runtime.service.refresh``, ``.refit``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from forecaster.contracts.errors import ArtefactError
from forecaster.contracts.ports import ArtefactMeta
from forecaster.cycle.accuracy import backtest_mae
from forecaster.cycle.forecast import Model
from forecaster.cycle.spec import ForecastSpec
from forecaster.forecasting.forecaster import Forecaster
from forecaster.runtime.rollout import model_ids

if TYPE_CHECKING:  # the job runs on a Service, which imports this module
    from forecaster.runtime.service.service import Service
from forecaster.runtime.service.shards import split

log = logging.getLogger("forecaster.runtime.service")
SHARD = "~"


def shard_key(group: str, tag: str) -> str:
    """``freq/5min~<tag>``: a shard of ``group`` (a kept model's version, or ``new-<hash>`` of a refresh's fit)."""
    return f"{group}{SHARD}{tag}"


def group_of(key: str) -> str:
    """The group key of a (shard) key."""
    return key.split(SHARD, 1)[0]


def plan(service: Service, group: str, ids: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``({key: workloads its model forecasts}, workloads no model covers)`` for ``ids`` of ``group``, in order."""
    keys: dict[str, list[str]] = {}
    uncovered: list[str] = []
    with service.lock:
        for wid in ids:
            key = service.serving.get(wid)
            model = None if key is None or group_of(key) != group else service.provider.model(key)
            if key is None or model is None or wid not in model.forecaster.state.span:
                service.serving.pop(wid, None)
                uncovered.append(wid)
            else:
                keys.setdefault(key, []).append(wid)
    return keys, uncovered


def assign(service: Service, key: str, ids: Iterable[str]) -> None:
    """``ids`` are forecast by the model of ``key`` from now on."""
    with service.lock:
        for wid in ids:
            service.serving[wid] = key


def follow(service: Service, group: str, before: Model | None) -> list[str]:
    """After the group's champion may have changed (module docstring): the workloads the new champion does not cover
    move to a shard holding ``before``, those it covers are the group's; the moved workloads, in order."""
    provider = service.provider
    with service.lock:
        champion = provider.model(group)
        if champion is None or champion is before:
            return []
        covered = set(model_ids(champion))
        moved = [w for w, k in service.serving.items() if k == group and w not in covered]
        if moved and before is not None:
            kept = shard_key(group, before.version or f"{before.fitted_at:%Y%m%dT%H%M%S}")
            provider.put(kept, before)
            for wid in moved:
                service.serving[wid] = kept
            log.info("%s: the champion %s does not cover %s; they keep model %s", group, champion.version,
                     ", ".join(moved[:5]), before.version)
        for wid in covered & {s.id for s in service.registry}:
            if group_of(service.serving.get(wid, group)) == group_of(group):
                service.serving[wid] = group  # ``group`` may be a part of a sharded group (``shards``)
        prune(service)
        return moved if before is not None else []


def prune(service: Service) -> None:
    """Drop shard models no workload uses any more (the caller holds ``Service.lock``)."""
    used = set(service.serving.values())
    held = service.provider.keys()
    for key in held:
        if SHARD in key and key not in used:
            service.provider.forget(key)


def adopt(service: Service, group: str, spec: ForecastSpec, model: Model, now: pd.Timestamp) -> bool:
    """Hand a refit's model over (module docstring): installed now (True) or pending until the running refresh ends
    (False)."""
    with service.lock:
        if service.refreshing:
            service.pending[group] = (spec, model, now)
            return False
        service.pending.pop(group, None)
        _install(service, group, spec, model, now)
        return True


def _install(service: Service, group: str, spec: ForecastSpec, model: Model, now: pd.Timestamp) -> None:
    before = service.provider.model(group)
    service.provider.install(group, spec, model, now)
    follow(service, group, before)


def take_pending(service: Service) -> None:
    """Install the models refits handed over while a refresh ran (the caller holds ``Service.lock``)."""
    for group, (spec, model, now) in list(service.pending.items()):
        del service.pending[group]
        _install(service, group, spec, model, now)


def restore(service: Service, group: str, spec: ForecastSpec, ids: list[str], now: pd.Timestamp) -> None:
    """Once per process and group, before its first refresh (module docstring)."""
    if group in service.restored:
        return
    service.restored.add(group)
    provider = service.provider
    if provider.model(group) is not None:
        return
    parts = split(group, ids, service.settings.shard_size)
    if parts[0][0] != group and provider.restore is not None:  # a sharded group: each part's champion
        for key, mine in parts:
            part = provider.model(key) or provider.restore(key, spec, now)
            if part is not None:
                provider.put(key, part)
                held = set(model_ids(part))  # once per part, not per workload (quadratic at fleet scale)
                assign(service, key, [w for w in mine if w in held])
        ids = [w for w in ids if w not in service.serving]
        if not ids:
            return
    model = provider.restore(group, spec, now) if provider.restore is not None else None
    if model is None:
        model = load_partial(service, group, spec, set(ids))
    if model is None:
        return
    provider.put(group, model)
    held = set(model_ids(model))
    assign(service, group, [w for w in ids if w in held])


def load_partial(service: Service, group: str, spec: ForecastSpec, wanted: set[str]) -> Model | None:
    """The group champion's stored artefact, else the newest artefact, as a model for the workloads of ``wanted`` it
    covers (at least one), when it loads and has the spec's frequency and levels."""
    store = service.store
    candidates: list[ArtefactMeta | None] = []
    champion = store.champion(group)
    if champion is not None:
        candidates.append(store.get_artefact(champion.version))
    candidates.append(store.latest_artefact())
    for meta in candidates:
        if meta is None or not wanted & set(meta.workload_ids):
            continue
        try:
            fc = Forecaster.load(meta.path)
        except (ArtefactError, OSError, ValueError) as exc:
            log.warning("%s: artefact %s at %s cannot be loaded (%s)", group, meta.id, meta.path, exc)
            continue
        if fc.freq != spec.frequency or tuple(fc.levels) != tuple(spec.levels):
            continue
        log.info("%s: using stored model %s for the %d workload(s) it covers", group, meta.model_version,
                 len(wanted & set(meta.workload_ids)))
        return Model(fc, spec, pd.Timestamp(meta.created_at), pd.Timestamp(meta.train_end),
                     backtest_mae(fc.calibration_cv_), meta.model_version)
    return None
