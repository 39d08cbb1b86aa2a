"""The refit job (daily): refit every frequency group's model on its whole training window through the cycle's
provider (``EngineForecastProvider.refit``: backtest-learned weights and calibration, the artefact saved by the
service's ``on_fit`` hook before the model serves), then apply the store's retention (``Store.prune``: runs, actuals
and accuracy older than ``settings.retention_days``).

The refresh also refits a group whose model is ``refit_interval_s`` old (the cycle's schedule), so a refit that
failed or never ran (a crash, a deploy) is caught up by the next refresh. A workload whose history cannot be read is
left out of the fit (the others are refitted) and reported by ``WorkloadError`` at the end; the next refresh refits
the group again when it finds that workload missing from the model.

Not pure (source, store, artefact files). Called by ``Service.refit`` (scheduled through
``forecaster.runtime.jobs.refit_job``).
"""

from __future__ import annotations

import logging

import pandas as pd

from forecaster.cycle.schedule import history_window
from forecaster.runtime.service.fetch import demand_history, events_frame
from forecaster.runtime.service.models import concat, forecast_spec, group_key, groups
from forecaster.runtime.service.service import Service, WorkloadError

log = logging.getLogger("forecaster.runtime.service")


def refit(service: Service, now: pd.Timestamp | None = None) -> list[str]:
    """The job (module docstring); the versions of the models saved."""
    st = service.settings
    now = service.now(now)
    errors: dict[str, str] = {}
    events = events_frame(service.store)
    saved: list[str] = []
    for freq, specs in groups(service.registry):
        key, fspec = group_key(freq), forecast_spec(st, freq)
        start, end = history_window(None, True, now, fspec.frequency_s, fspec.history_s)
        histories: dict[str, pd.DataFrame] = {}
        for spec in specs:
            with service.isolated("refit", spec.id, errors):
                history = demand_history(service.source, spec, start, end)
                if len(history) == 0:
                    raise LookupError(f"no history for query {spec.query!r} up to {now}")
                histories[spec.id] = history
            service.pause()
        if not histories:
            continue
        group_errors: dict[str, str] = {}
        with service.isolated("refit", f"model {freq}", group_errors, counted=tuple(histories)):
            model = service.provider.refit(key, fspec, concat(histories), now, events)
            saved.append(model.version)
        errors.update({w: msg for w in histories for msg in group_errors.values()})
    with service.isolated("refit", "retention", errors, counted=()):
        cut = now - pd.Timedelta(days=st.retention_days)
        deleted = service.store.prune(cut)
        log.info("refit: retention before %s deleted %s", cut, deleted)
    if errors:
        raise WorkloadError("refit", errors, saved)
    return saved
