"""Model rollout in the runtime: the store, artefact and metrics hooks of ``forecaster.cycle.forecast.RolloutProvider``,
one implementation for the service and the controller.

    hooks = RolloutStore(store, artefact_dir, telemetry, actor="service")
    provider = hooks.provider(refit_every=..., options=..., rollout=RolloutPolicy(...))

- ``save`` (``on_fit``): every fit, champion or challenger, is written as an artefact file
  (``<artefact_dir>/<version>.zip``, ``Forecaster.save``) and its ``ArtefactMeta`` row before it serves or shadows,
  so any model that ever ran can be rolled back to. Without an ``artefact_dir`` nothing is written (a controller
  without a volume) and such versions cannot be rolled back to.
- ``record`` (``on_event``): each rollout event (a challenger fitted, promoted, kept out, superseded) becomes a
  ``ModelEvent`` row of the model history: version, training span, workloads covered, the reason and the evidence
  (both models' scores and the paired test) and ``forecaster_model_rollouts_total{model_key, outcome}``. A rollback is
  written by whoever asks for it (``request_rollback``: the CLI or the API), so the provider's own ``rolled_back``
  event is not written again.
- ``scores`` (``on_scores``): ``forecaster_model_error_ratio{model_key, role, score}`` (the WAPE and the mean pinball
  loss over the mean actual, champion and challenger on the same points) and
  ``forecaster_model_coverage_ratio{model_key, role, level}``.
- ``restore``: a process without a model for a key (a restart) starts from the key's champion in the model history
  (``Store.champion``: the newest promotion or rollback) when its artefact loads and fits the spec; a key without
  history falls back to ``fallback`` (the service: its newest artefact, as before rollout).
- ``rollback``: each cycle, the newest rollback of the key in the store that this process has not applied yet
  installs its artefact as champion; its age for the stale rule counts from the rollback (``Model.pinned_at``).
  Because it lives in the store, a rollback survives a restart of the service, the controller or both.

``request_rollback`` validates and writes a rollback (``--to`` or, by default, the champion before the current one).

Not pure (store, artefact files, metrics). Called by ``forecaster.runtime.service.models``, the controller
(``forecaster.runtime.controller.run``), ``forecaster model`` and ``/v1/models``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from forecaster.contracts.errors import ArtefactError, InputError, NotFoundError
from forecaster.contracts.ports import CHAMPION_KINDS, ArtefactMeta, ModelEvent, Store
from forecaster.cycle.accuracy import backtest_mae
from forecaster.cycle.forecast import Model, RestoreHook, RolloutProvider
from forecaster.cycle.rollout import ROLLED_BACK, Evidence, RolloutEvent, RolloutPolicy
from forecaster.cycle.spec import ForecastSpec
from forecaster.forecasting.artefact import library_versions
from forecaster.forecasting.forecaster import Forecaster
from forecaster.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)
PAGE = 200
"""Model events read per ``list_model_events`` call when looking for a rollback target."""


def model_version(freq: str, ids: tuple[str, ...], train_end: pd.Timestamp) -> str:
    """Deterministic version: frequency, training end and a short hash of the workload ids,
    ``ens-5min-20240310T1200Z-1a2b3c4d``."""
    digest = hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:8]
    return f"ens-{freq}-{pd.Timestamp(train_end).strftime('%Y%m%dT%H%MZ')}-{digest}"


def model_ids(model: Model) -> tuple[str, ...]:
    """The workloads a model covers (its series)."""
    return tuple(sorted(model.forecaster.state.span))


def event_id(key: str, kind: str, version: str, at: pd.Timestamp) -> str:
    """``<key>/<kind>/<version>/<at ISO 8601>``: a retried write records nothing twice."""
    return f"{key}/{kind}/{version}/{pd.Timestamp(at).tz_convert('UTC').isoformat()}"


def _span(model: Model) -> tuple[pd.Timestamp, pd.Timestamp]:
    spans = list(model.forecaster.state.span.values())
    start = min(s for s, _ in spans) if spans else model.last_ds
    return pd.Timestamp(start), pd.Timestamp(model.last_ds)


@dataclass
class RolloutStore:
    """The runtime's rollout hooks over a ``Store`` (module docstring)."""

    store: Store
    artefact_dir: Path | None = None
    telemetry: Telemetry | None = None
    actor: str = "service"
    """Written into each model event: ``service`` or ``controller``."""
    fallback: RestoreHook | None = None
    """``restore`` for a key without model history (the service: its newest artefact)."""
    covers: Callable[[str], set[str]] | None = None
    """The workloads a key's model must forecast (the service's frequency group); a model that does not cover them is
    neither restored nor rolled back to. None: no check."""
    _applied: set[str] = field(default_factory=set)
    """Ids of the rollbacks this process has applied (or found already in force)."""

    def provider(self, **kwargs: Any) -> RolloutProvider:
        """A ``RolloutProvider`` with these hooks (``kwargs``: ``refit_every``, ``options``, ``rollout``)."""
        return self.attach(RolloutProvider(**kwargs))

    def attach(self, provider: RolloutProvider) -> RolloutProvider:
        """``provider`` with these hooks wherever it has none (a provider made elsewhere, e.g. by the CLI)."""
        hooks: dict[str, Any] = {"on_fit": self.save, "restore": self.restore, "rollback": self.rollback,
                                 "on_event": self.record, "on_scores": self.scores}
        for name, hook in hooks.items():
            if getattr(provider, name) is None:
                setattr(provider, name, hook)
        return provider

    # -- artefacts ----------------------------------------------------------------------------------------------
    def save(self, key: str, model: Model) -> str:
        """``on_fit``: the artefact file and its metadata row (module docstring); the version."""
        ids = model_ids(model)
        version = model_version(model.spec.frequency, ids, model.last_ds)
        if self.artefact_dir is None:
            return version
        self.artefact_dir.mkdir(parents=True, exist_ok=True)
        path = model.forecaster.save(self.artefact_dir / f"{version}.zip")
        start, end = _span(model)
        self.store.save_artefact(ArtefactMeta(
            id=version, created_at=pd.Timestamp(model.fitted_at), model_version=version, path=str(path.resolve()),
            workload_ids=ids, train_start=start, train_end=end, library_versions=library_versions()))
        log.info("model %s of %s (%d workloads) saved at %s", version, key, len(ids), path)
        return version

    def load(self, key: str, version: str, spec: ForecastSpec, pinned_at: pd.Timestamp | None = None
             ) -> Model | None:
        """The stored artefact ``version`` as a model for ``key`` when it loads, has the spec's frequency and levels
        and covers the key's workloads; None (logged) otherwise."""
        meta = self.store.get_artefact(version)
        if meta is None:
            log.warning("%s: model %s has no stored artefact", key, version)
            return None
        wanted = set() if self.covers is None else self.covers(key)
        if not wanted <= set(meta.workload_ids):
            log.warning("%s: model %s does not cover %s", key, version, sorted(wanted - set(meta.workload_ids))[:5])
            return None
        try:
            fc = Forecaster.load(meta.path)
        except (ArtefactError, OSError, ValueError) as exc:
            log.warning("%s: artefact %s at %s cannot be loaded (%s)", key, version, meta.path, exc)
            return None
        if fc.freq != spec.frequency or tuple(fc.levels) != tuple(spec.levels):
            log.warning("%s: model %s forecasts %s at levels %s, the settings ask %s at %s", key, version, fc.freq,
                        tuple(fc.levels), spec.frequency, tuple(spec.levels))
            return None
        return Model(fc, spec, pd.Timestamp(meta.created_at), pd.Timestamp(meta.train_end),
                     backtest_mae(fc.calibration_cv_), meta.model_version, pinned_at)

    # -- hooks --------------------------------------------------------------------------------------------------
    def restore(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> Model | None:
        """``restore`` (module docstring)."""
        champion = self.store.champion(key)
        if champion is None:
            return None if self.fallback is None else self.fallback(key, spec, now)
        if champion.kind == ROLLED_BACK:
            self._applied.add(champion.id)
        model = self.load(key, champion.version, spec, champion.at if champion.kind == ROLLED_BACK else None)
        if model is not None:
            log.info("%s: using stored model %s, the champion (%s at %s)", key, champion.version, champion.kind,
                     champion.at)
        return model

    def rollback(self, key: str, spec: ForecastSpec, now: pd.Timestamp, current: Model | None) -> Model | None:
        """``rollback`` (module docstring)."""
        champion = self.store.champion(key)
        if champion is None or champion.kind != ROLLED_BACK or champion.id in self._applied:
            return None
        self._applied.add(champion.id)
        if current is not None and current.version == champion.version:
            return None
        model = self.load(key, champion.version, spec, champion.at)
        if model is None:
            log.error("%s: rollback to %s requested at %s cannot be applied (see above); %s keeps serving", key,
                      champion.version, champion.at, "nothing" if current is None else current.version)
        return model

    def record(self, event: RolloutEvent, model: Model) -> None:
        """``on_event`` (module docstring)."""
        if self.telemetry is not None:
            self.telemetry.counter("forecaster_model_rollouts").labels(model_key=event.key, outcome=event.kind).inc()
        if event.kind == ROLLED_BACK:
            return  # its row was written by whoever asked for it (request_rollback)
        meta = self.store.get_artefact(event.version) if event.version else None
        start, end = (meta.train_start, meta.train_end) if meta is not None else _span(model)  # the fit's span
        self.store.record_model_event(ModelEvent(
            id=event_id(event.key, event.kind, event.version, event.at), key=event.key, kind=event.kind,
            version=event.version, at=event.at, reason=event.reason, workload_ids=model_ids(model),
            train_start=start, train_end=end, previous=event.previous,
            scores={} if event.evidence is None else event.evidence.to_dict(), actor=self.actor))

    def scores(self, key: str, evidence: Evidence, champion: Model, challenger: Model) -> None:
        """``on_scores`` (module docstring)."""
        if self.telemetry is None:
            return
        error = self.telemetry.gauge("forecaster_model_error_ratio")
        coverage = self.telemetry.gauge("forecaster_model_coverage_ratio")
        for role, s in (("champion", evidence.champion), ("challenger", evidence.challenger)):
            error.labels(model_key=key, role=role, score="wape").set(s.wape)
            error.labels(model_key=key, role=role, score="pinball").set(
                s.pinball / evidence.mean_actual if evidence.mean_actual > 0 else float("nan"))
            for level, share in s.coverage.items():
                coverage.labels(model_key=key, role=role, level=str(level)).set(share)


def rollout_policy(margin: float, min_points: int, max_points: int, stale_after_s: float) -> RolloutPolicy:
    """A ``RolloutPolicy`` from settings values."""
    return RolloutPolicy(margin=margin, min_points=min_points, max_points=max_points,
                         stale_after=pd.Timedelta(seconds=stale_after_s))


# -- rollback requests (CLI, API) -------------------------------------------------------------------------------
def history(store: Store, *, key: str | None = None, workload_id: str | None = None) -> Iterator[ModelEvent]:
    """Every model event (of ``key``, or covering ``workload_id``), newest first, page by page."""
    offset = 0
    while True:
        page = store.list_model_events(key=key, workload_id=workload_id, limit=PAGE, offset=offset)
        yield from page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return


def resolve_key(store: Store, workload: str | None) -> str:
    """The model key a rollback of ``workload`` concerns: the key itself, or the one key whose models cover that
    workload; without ``workload``, the only key with history. ``NotFoundError``/``InputError`` name the choices."""
    keys = sorted({e.key for e in history(store, workload_id=workload)}) if workload else \
        sorted({e.key for e in history(store)})
    if workload is not None and workload in keys:
        return workload
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise NotFoundError(f"no model history{'' if workload is None else f' for {workload!r}'}: nothing to roll "
                            "back (models are recorded once the service or the controller has fitted one)")
    raise InputError(f"several model keys {'cover ' + repr(workload) if workload else 'exist'}: {', '.join(keys)}; "
                     "name one with --workload")


def rollback_target(store: Store, key: str, to: str | None) -> tuple[ModelEvent, ModelEvent | None]:
    """``(the history entry of the target version, the current champion)``: ``to``, or the champion before the
    current one. ``NotFoundError``/``InputError`` say why there is none."""
    events = list(history(store, key=key))
    current = store.champion(key)
    if to is None:
        champions = [e for e in events if e.kind in CHAMPION_KINDS]
        found = next((e for e in champions if current is None or e.version != current.version), None)
        if found is None:
            raise NotFoundError(f"{key}: no earlier champion to roll back to (champion "
                                f"{'none' if current is None else current.version}); name a version with --to")
        return found, current
    found = next((e for e in events if e.version == to), None)
    if found is None:
        known = sorted({e.version for e in events})
        raise NotFoundError(f"{key}: no model {to!r} in its history (known: {', '.join(known[:8]) or 'none'})")
    return found, current


def request_rollback(store: Store, key: str, to: str | None, now: pd.Timestamp, *, actor: str,
                     reason: str = "") -> ModelEvent:
    """Write the rollback of ``key`` to ``to`` (default: the previous champion) as a ``rolled_back`` model event;
    the service and the controller apply it at their next cycle. ``NotFoundError`` when the target has no stored
    artefact (nothing could load it), ``InputError`` when it is already the champion."""
    target, current = rollback_target(store, key, to)
    if current is not None and current.version == target.version:
        raise InputError(f"{key}: {target.version} is already the champion ({current.kind} at {current.at})")
    if store.get_artefact(target.version) is None:
        raise NotFoundError(f"{key}: model {target.version} has no stored artefact (a controller without "
                            "--artefact-dir keeps none); it cannot be rolled back to")
    why = f"rollback by {actor}" + (f": {reason}" if reason else "")
    event = ModelEvent(id=event_id(key, ROLLED_BACK, target.version, now), key=key, kind=ROLLED_BACK,
                       version=target.version, at=now, reason=why, workload_ids=target.workload_ids,
                       train_start=target.train_start, train_end=target.train_end,
                       previous="" if current is None else current.version, scores={}, actor=actor)
    store.record_model_event(event)
    return event
