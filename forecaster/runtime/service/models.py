"""The service's models: the cycle's engine provider (``forecaster.cycle.forecast.EngineForecastProvider``) keyed by
frequency group, with the service's persistence.

One model per frequency covers every workload of that frequency (the global LightGBM member learns from their union);
its key is ``freq/<frequency>`` (``group_key``). The provider refits and refreshes it on the cycle's schedule
(``forecaster.cycle.schedule``: refit when there is no model, when it is ``refit_interval_s`` old, or when the clock
went back; else refresh with the newest buckets), exactly as the controller's models. The service adds persistence
through the provider's two hooks:

- ``on_fit`` (``save_artefact``): every fit is saved as an artefact file (``<artefact_dir>/<version>.zip``,
  ``Forecaster.save``) and its metadata row in the store, before the model serves any forecast;
- ``restore`` (``restore_latest``): a provider without a model for a group (a restarted process) starts from the
  newest stored artefact when it has the group's frequency and levels and covers its workloads; its age counts from
  its creation, so a young artefact is refreshed, an old one refitted.

Version: ``ens-<freq>-<training end>-<hash of the workload ids>`` (``model_version``), deterministic.

Not pure (fits models, writes artefact files). Called by ``forecaster.runtime.service.service`` (the provider),
``.refresh`` and ``.refit``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import ArtefactError
from forecaster.contracts.frames import ID
from forecaster.contracts.ports import ArtefactMeta
from forecaster.cycle.accuracy import backtest_mae
from forecaster.cycle.forecast import EngineForecastProvider, Model
from forecaster.cycle.spec import ForecastSpec
from forecaster.forecasting.artefact import library_versions
from forecaster.forecasting.forecaster import Forecaster
from forecaster.runtime.service.registry import Registry, WorkloadSpec
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


def model_version(freq: str, ids: tuple[str, ...], train_end: pd.Timestamp) -> str:
    """Deterministic version: frequency, training end and a short hash of the workload ids."""
    digest = hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:8]
    return f"ens-{freq}-{train_end.strftime('%Y%m%dT%H%MZ')}-{digest}"


def model_ids(model: Model) -> tuple[str, ...]:
    """The workloads a model covers."""
    return tuple(sorted(model.forecaster.state.span))


def save_artefact(service: Service, key: str, model: Model) -> str:
    """``on_fit``: write the artefact file then its metadata row (module docstring); the version."""
    ids = model_ids(model)
    version = model_version(model.spec.frequency, ids, model.last_ds)
    folder = service.settings.artefact_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = model.forecaster.save(folder / f"{version}.zip")
    spans = [span for span in model.forecaster.state.span.values()]
    start = min(s for s, _ in spans) if spans else model.last_ds
    service.store.save_artefact(ArtefactMeta(
        id=version, created_at=pd.Timestamp(model.fitted_at), model_version=version, path=str(path.resolve()),
        workload_ids=ids, train_start=start, train_end=model.last_ds, library_versions=library_versions()))
    log.info("model %s (%d workloads) saved at %s", version, len(ids), path)
    return version


def restore_latest(service: Service, key: str, spec: ForecastSpec, now: pd.Timestamp) -> Model | None:
    """``restore``: the newest stored artefact as the group's model when it fits (module docstring), else None."""
    meta = service.store.latest_artefact()
    wanted = {s.id for s in service.registry if group_key(s.freq) == key}
    if meta is None or not wanted <= set(meta.workload_ids):
        return None
    try:
        fc = Forecaster.load(meta.path)
    except (ArtefactError, OSError, ValueError) as exc:
        log.warning("artefact %s at %s cannot be loaded (%s); the next refresh fits a new model", meta.id,
                    meta.path, exc)
        return None
    if fc.freq != spec.frequency or tuple(fc.levels) != tuple(spec.levels):
        return None
    log.info("refresh: using stored model %s for %d workload(s)", meta.model_version, len(wanted))
    return Model(fc, spec, pd.Timestamp(meta.created_at), pd.Timestamp(meta.train_end),
                 backtest_mae(fc.calibration_cv_), meta.model_version)


def provider_for(service: Service) -> EngineForecastProvider:
    """The service's provider: the cycle's, refit every ``refit_interval_s``, with the service's persistence."""
    st = service.settings
    return EngineForecastProvider(
        refit_every=pd.Timedelta(seconds=st.refit_interval_s),
        options={"bad_values": "outage", **dict(st.model_options)},
        on_fit=lambda key, model: save_artefact(service, key, model),
        restore=lambda key, spec, now: restore_latest(service, key, spec, now),
    )


def concat(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The histories of a group as one long frame, ordered by workload id."""
    return pd.concat([histories[k] for k in sorted(histories)], ignore_index=True).sort_values(
        [ID], kind="stable").reset_index(drop=True)
