"""The service's models: the cycle's rollout provider (``forecaster.cycle.forecast.RolloutProvider``) keyed by
frequency group, with the service's persistence (``forecaster.runtime.rollout.RolloutStore``).

One model per frequency covers every workload of that frequency (the global LightGBM member learns from their union);
its key is ``freq/<frequency>`` (``group_key``); a workload a newer champion does not cover keeps its previous model
under a shard key (``forecaster.runtime.service.serving``). The refit job fits the models, with no lock held
(``forecaster.runtime.service.refit``, run again at once when it was missed: ``forecaster.runtime.scheduler``); the
refresh refreshes them with the newest buckets on the cycle's schedule (``forecaster.cycle.schedule``) and never
refits one for its age (``refit_every`` is ``NEVER``: a fit inside a refresh made overlapping refreshes skip). With
``settings.rollout`` (the default) a refit is a **challenger** in shadow beside the serving champion until the rule of
``forecaster.cycle.rollout`` promotes it or keeps it out (``settings.rollout_*``); without, every refit serves at once.
Persistence, through the provider's hooks (``RolloutStore``):

- ``on_fit``: every fit is saved as an artefact file (``<artefact_dir>/<version>.zip``, ``Forecaster.save``) and its
  metadata row in the store, before the model serves or shadows any forecast;
- ``restore``: a provider without a model for a group (a restarted process) starts from the group's champion in the
  model history, else (a store from before rollout) from the newest stored artefact when it has the group's frequency
  and levels and covers its workloads (``restore_latest``); its age counts from its creation (an old one is
  refreshed until the refit job, run at once when it is due, replaces it; a partial one is the serving table's:
  ``forecaster.runtime.service.serving.restore``);
- ``on_event``/``rollback``: the model history in the store and rollbacks asked for by ``forecaster model rollback``
  or ``POST /v1/models/rollback``, applied at the next refresh.

Version: ``ens-<freq>-<training end>-<hash of the workload ids>`` (``model_version``), deterministic. The feedback-loop
guard (``rollout.per_pod_demand``) logs a warning per workload whose query is per-pod load when the provider is made.

Not pure (fits models, writes artefact files). Called by ``forecaster.runtime.service.service`` (the provider),
``.refresh`` and ``.refit``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import ID
from forecaster.cycle.forecast import EngineForecastProvider, Model
from forecaster.cycle.rollout import per_pod_demand
from forecaster.cycle.spec import ForecastSpec
from forecaster.forecasting.executor import Lent
from forecaster.runtime.rollout import (
    RolloutStore,
    model_ids,  # re-exported (__all__): refresh reads it here
    rollout_policy,
)
from forecaster.runtime.service.registry import Registry, WorkloadSpec
from forecaster.runtime.service.shards import members
from forecaster.runtime.settings import ServiceSettings

if TYPE_CHECKING:  # the service holds the provider these hooks serve
    from forecaster.runtime.service.service import Service

log = logging.getLogger("forecaster.runtime.service")
GROUP = "freq/"


def group_key(freq: str) -> str:
    """The provider key of the model of every workload of frequency ``freq``: ``freq/5min``."""
    return f"{GROUP}{freq}"


def groups(registry: Registry) -> Iterator[tuple[str, list[WorkloadSpec]]]:
    """``(frequency, its workloads)`` in frequency order."""
    for freq in sorted({spec.freq for spec in registry}):
        yield freq, [spec for spec in registry if spec.freq == freq]


def forecast_spec(settings: ServiceSettings, freq: str) -> ForecastSpec:
    """The cycle's ``ForecastSpec`` of a frequency group: the service's history, horizon and levels."""
    step_s = freq_to_timedelta(freq).total_seconds()
    return ForecastSpec(frequency=freq, frequency_s=step_s, history_s=settings.history_days * 86_400.0,
                        horizon_s=max(settings.horizon_s, step_s), levels=tuple(settings.levels))


def covered(service: Service, key: str) -> set[str]:
    """The workloads of the group or part ``key`` (a restored or rolled-back model must cover them;
    ``forecaster.runtime.service.shards``)."""
    group = key.split("~", 1)[0]
    return members(group, key, [s.id for s in service.registry if group_key(s.freq) == group],
                   service.settings.shard_size)


def restore_latest(service: Service, hooks: RolloutStore, key: str, spec: ForecastSpec, now: pd.Timestamp
                   ) -> Model | None:
    """The newest stored artefact as the group's model when it fits (module docstring), else None."""
    meta = service.store.latest_artefact()
    if meta is None or not covered(service, key) <= set(meta.workload_ids):
        return None
    model = hooks.load(key, meta.id, spec)
    if model is not None:
        log.info("refresh: using stored model %s for %d workload(s)", meta.model_version, len(covered(service, key)))
    return model


def demand_warnings(registry: Registry) -> dict[str, str]:
    """Workload id -> the feedback-loop warning of its demand query (``rollout.per_pod_demand``), for those that have
    one."""
    found = {spec.id: per_pod_demand(spec.query) for spec in registry}
    return {wid: why for wid, why in found.items() if why}


NEVER = pd.Timedelta.max
"""The service provider's ``refit_every``: the refit job refits (module docstring), a refresh only refreshes."""


def provider_for(service: Service) -> EngineForecastProvider:
    """The service's provider: refitted by the refit job only (``NEVER``), with rollout unless ``settings.rollout`` is
    off, the service's persistence (module docstring), fitting on ``service.executor`` when it has one."""
    st = service.settings
    hooks = RolloutStore(service.store, st.artefact_dir, service.telemetry, actor="service",
                         covers=lambda key: covered(service, key))
    hooks.fallback = lambda key, spec, now: restore_latest(service, hooks, key, spec, now)
    for wid, why in demand_warnings(service.registry).items():
        log.warning("workload %s: %s", wid, why)
    options: dict[str, Any] = {"bad_values": "outage", **dict(st.model_options)}
    if service.executor is not None:  # the service's Dask cluster, lent (an artefact does not keep it)
        options["executor"] = Lent(service.executor)
    common: dict[str, Any] = {"refit_every": NEVER, "options": options}
    if not st.rollout:
        return EngineForecastProvider(on_fit=hooks.save, restore=hooks.restore, **common)
    return hooks.provider(rollout=rollout_policy(st.rollout_margin, st.rollout_min_points, st.rollout_max_points,
                                                 st.rollout_stale_after_s), **common)


def concat(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The histories of a group as one long frame, ordered by workload id."""
    return pd.concat([histories[k] for k in sorted(histories)], ignore_index=True).sort_values(
        [ID], kind="stable").reset_index(drop=True)


__all__ = ["GROUP", "NEVER", "concat", "covered", "demand_warnings", "forecast_spec", "group_key", "groups",
           "model_ids", "provider_for", "restore_latest"]
