"""The refit job (daily): refit every model with weights learned from a fresh rolling-origin backtest, save the
artefact (``Forecaster.save``) and its metadata in the store, and swap it into the service's model cache; then apply
the store's retention (``Store.prune``: runs, actuals and accuracy older than ``settings.retention_days``).

Workloads are grouped by frequency (one global model per frequency, as the refresh uses). A workload whose history
cannot be read is left out of the fit (the others are refitted) and reported by ``WorkloadError`` at the end; it
keeps its previous model until a later refit or refresh covers it again.

Not pure (source, store, artefact files). Called by ``Service.refit`` (scheduled through
``forecaster.service.jobs.refit_job``).
"""

from __future__ import annotations

import logging

import pandas as pd

from forecaster.service.fetch import demand_history, events_frame
from forecaster.service.models import fit_model, save_model
from forecaster.service.service import Service, WorkloadError

log = logging.getLogger("forecaster.service")


def refit(service: Service, now: pd.Timestamp | None = None) -> list[str]:
    """The job (module docstring); the ids of the artefacts saved."""
    st = service.settings
    now = service.now(now)
    errors: dict[str, str] = {}
    events = events_frame(service.store)
    histories: dict[str, pd.DataFrame] = {}
    for spec in service.registry:
        with service.isolated("refit", spec.id, errors):
            history = demand_history(service.source, spec, now - pd.Timedelta(days=st.history_days), now)
            if len(history) == 0:
                raise LookupError(f"no history for query {spec.query!r} up to {now}")
            histories[spec.id] = history
        service.pause()
    saved: list[str] = []
    for freq in sorted({service.registry[w].freq for w in histories}):
        group = {w: h for w, h in histories.items() if service.registry[w].freq == freq}
        group_errors: dict[str, str] = {}
        with service.isolated("refit", f"model {freq}", group_errors, counted=tuple(group)):
            model = fit_model(group, freq, st, events)
            meta = save_model(model, service.store, st.artefact_dir)
            for wid in model.workload_ids:
                service.models[wid] = model
            saved.append(meta.id)
            log.info("refit: saved %s (%d workloads) at %s", meta.id, len(model.workload_ids), meta.path)
        errors.update({w: msg for w in group for msg in group_errors.values()})
    with service.isolated("refit", "retention", errors, counted=()):
        cut = now - pd.Timedelta(days=st.retention_days)
        deleted = service.store.prune(cut)
        log.info("refit: retention before %s deleted %s", cut, deleted)
    if errors:
        raise WorkloadError("refit", errors, saved)
    return saved
