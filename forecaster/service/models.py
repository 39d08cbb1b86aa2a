"""The service's fitted models: one ``Forecaster`` per frequency over all workloads of that frequency (the global
LightGBM member learns from their union), its per-workload backtest errors, and its artefact.

    model = fit_model(histories, freq, settings, events, now)    # backtest-learned weights + calibration
    meta = save_model(model, store, settings.artefact_dir)        # Forecaster.save + ArtefactMeta in the store
    model = load_latest(store)                                    # after a restart (None when absent/unreadable)

``member_mae`` (per workload: MAE of every member and of the ensemble over the calibration backtest that learned the
weights) is what drift falls back on: ``most_reliable_member`` picks the member with the lowest error and
``member_as_ensemble`` stores its values as the ensemble, its bands the ensemble's widths moved onto it.

Not pure (fits models, writes artefact files). Called by ``forecaster.service.refresh`` and ``.refit``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.contracts.errors import ArtefactError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, OUTAGE, Y, hi, lo
from forecaster.contracts.ports import ArtefactMeta, Store
from forecaster.forecasting.artefact import library_versions
from forecaster.forecasting.forecaster import Forecaster
from forecaster.forecasting.history import freq_to_timedelta
from forecaster.runtime.settings import ServiceSettings

log = logging.getLogger("forecaster.service")


@dataclass
class FittedModel:
    """A fitted ``Forecaster`` and what the service needs to know about it."""

    forecaster: Forecaster
    version: str
    workload_ids: tuple[str, ...]
    member_mae: dict[str, dict[str, float]]
    """Workload -> {member or ``ensemble``: MAE over the calibration backtest}; empty without backtest windows."""
    train_start: pd.Timestamp
    train_end: pd.Timestamp

    @property
    def freq(self) -> str:
        return self.forecaster.freq

    def backtest_mae(self, workload_id: str) -> float | None:
        value = self.member_mae.get(workload_id, {}).get(ENSEMBLE)
        return value if value is not None and math.isfinite(value) else None

    def last_seen(self, workload_id: str) -> pd.Timestamp | None:
        """Last observation the model has of ``workload_id`` (None when it does not know it)."""
        span = self.forecaster.state.span.get(workload_id)
        return None if span is None else span[1]


def horizon_steps(settings: ServiceSettings, freq: str) -> int:
    """Forecast steps covering ``settings.horizon_s`` at ``freq`` (at least 1)."""
    return max(1, math.ceil(settings.horizon_s / freq_to_timedelta(freq).total_seconds()))


def new_forecaster(settings: ServiceSettings, freq: str) -> Forecaster:
    """A ``Forecaster`` with the service's levels and horizon; ``settings.model_options`` override the rest."""
    options = {"freq": freq, "levels": settings.levels, "horizon": horizon_steps(settings, freq),
               "bad_values": "outage", **dict(settings.model_options)}
    return Forecaster(**options)


def member_errors(cv: pd.DataFrame | None, members: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per workload, the MAE of each member and of the ensemble in a calibration backtest frame (outages out)."""
    if cv is None or len(cv) == 0:
        return {}
    frame = cv[~cv[OUTAGE].astype(bool)] if OUTAGE in cv.columns else cv
    out: dict[str, dict[str, float]] = {}
    for uid, group in frame.groupby(ID, sort=False):
        y = group[Y].to_numpy(dtype=float)
        scores = {}
        for col in (*members, ENSEMBLE):
            if col in group.columns:
                err = np.abs(group[col].to_numpy(dtype=float) - y)
                err = err[np.isfinite(err)]
                if len(err):
                    scores[col] = float(err.mean())
        out[str(uid)] = scores
    return out


def model_version(freq: str, ids: tuple[str, ...], train_end: pd.Timestamp) -> str:
    """Deterministic version: frequency, training end and a short hash of the workload ids."""
    digest = hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:8]
    return f"ens-{freq}-{train_end.strftime('%Y%m%dT%H%MZ')}-{digest}"


def fit_model(histories: dict[str, pd.DataFrame], freq: str, settings: ServiceSettings,
              events: pd.DataFrame | None) -> FittedModel:
    """Fit one ``Forecaster`` on the histories (``unique_id, ds, y``) of the workloads of one frequency."""
    history = pd.concat(list(histories.values()), ignore_index=True)
    fc = new_forecaster(settings, freq).fit(history, events=events)
    ids = tuple(sorted(histories))
    start, end = history[DS].min(), history[DS].max()
    return FittedModel(fc, model_version(freq, ids, end), ids, member_errors(fc.calibration_cv_, fc.members),
                       start, end)


def save_model(model: FittedModel, store: Store, folder: Path) -> ArtefactMeta:
    """Write the artefact file (``<folder>/<version>.zip``) then its metadata row; the metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    path = model.forecaster.save(folder / f"{model.version}.zip")
    meta = ArtefactMeta(id=model.version, created_at=pd.Timestamp.now(tz="UTC"), model_version=model.version,
                        path=str(path.resolve()), workload_ids=model.workload_ids, train_start=model.train_start,
                        train_end=model.train_end, library_versions=library_versions())
    store.save_artefact(meta)
    return meta


def load_latest(store: Store) -> FittedModel | None:
    """The newest stored model, or None when there is none or its file cannot be loaded (logged)."""
    meta = store.latest_artefact()
    if meta is None:
        return None
    try:
        fc = Forecaster.load(meta.path)
    except (ArtefactError, OSError, ValueError) as exc:
        log.warning("artefact %s at %s cannot be loaded (%s); the next refresh fits a new model", meta.id,
                    meta.path, exc)
        return None
    return FittedModel(fc, meta.model_version, tuple(meta.workload_ids), member_errors(fc.calibration_cv_, fc.members),
                       meta.train_start, meta.train_end)


def most_reliable_member(errors: dict[str, float], members: tuple[str, ...]) -> str:
    """The member with the lowest backtest MAE (``seasonal`` when no member was scored)."""
    scored = {m: errors[m] for m in members if m in errors and math.isfinite(errors[m])}
    return min(scored, key=lambda m: (scored[m], m)) if scored else "seasonal"


def member_as_ensemble(frame: pd.DataFrame, member: str, levels: tuple[int, ...]) -> pd.DataFrame:
    """``frame`` with ``member``'s values as the ensemble; each band keeps its width around the new centre (lower
    bands clipped at 0 when the ensemble was non-negative), so bands stay nested and ordered."""
    out = frame.copy()
    centre = out[member].to_numpy(dtype=float)
    old = out[ENSEMBLE].to_numpy(dtype=float)
    nonneg = bool((out[[c for c in out.columns if c.startswith(ENSEMBLE)]].to_numpy(dtype=float) >= 0).all())
    for level in levels:
        low, high = lo(ENSEMBLE, level), hi(ENSEMBLE, level)
        if low in out.columns and high in out.columns:
            lower = centre - (old - out[low].to_numpy(dtype=float))
            out[low] = np.clip(lower, 0.0, None) if nonneg else lower
            out[high] = centre + (out[high].to_numpy(dtype=float) - old)
    out[ENSEMBLE] = centre
    return out
