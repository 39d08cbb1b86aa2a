"""The forecast a policy's floor is planned from: which history to fetch, the engine that forecasts it, and the
last good forecast kept through outages.

``ForecastProvider`` is the seam unit tests replace with something fast: ``history_window`` says which range of the
demand query to fetch this cycle, ``forecast`` turns the fetched history (and the business events in the policy's
scope, an Events frame, when the controller has a store) into a Forecast frame (DESIGN.md "Contracts"),
``backtest_mae`` says how wrong the model was in its own backtest (``accuracy.backtest_mae``; the circuit breaker's
reference). The default, ``EngineForecastProvider``, runs the real ``forecaster.Forecaster``:

- refit or refresh on the schedule of ``forecaster.cycle.schedule`` (``needs_refit``, ``history_window``): a refit
  on the whole ``forecast.history`` window, else ``Forecaster.update`` with the buckets since the model's last
  observation and ``predict`` the horizon again. A failed refresh drops the model, so the next cycle refits;
- events: ``fit`` learns uplifts from the events that started by the end of the history (an event that has not
  started teaches nothing about its kind, and its lead-in alone would pass for a profile of that kind without an
  event part); every event given goes to ``predict``, so an event added after the fit (or changed: same id) moves
  the next forecast at once, while what history says about its kind waits for the next refit.

``LastGood`` keeps each policy's latest successful forecast and its issue time. When fetching or forecasting fails,
the controller decides from it; ``ScalingPolicy`` treats it as stale once it is older than ``staleAfter``. With a
store it is also kept there (``forecaster.runtime.controller.stored``), so a restarted controller finds it again.

Pure except for the models it caches; imports the engine and pandas. Called by ``forecaster.runtime.controller.run``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID, Y
from forecaster.cycle.accuracy import backtest_mae
from forecaster.cycle.rollout import (
    CHALLENGER,
    PROMOTED,
    REJECTED,
    ROLLED_BACK,
    SUPERSEDED,
    Evidence,
    RolloutEvent,
    RolloutPolicy,
    ShadowLog,
    judge,
)
from forecaster.cycle.schedule import ModelAge, grid_end, history_window, needs_refit
from forecaster.cycle.spec import ForecastSpec
from forecaster.forecasting.forecaster import Forecaster
from forecaster.scaling.band import ForecastBand
from signals.frames import START

log = logging.getLogger(__name__)


class ForecastProvider(Protocol):
    """Forecasts one policy's demand; keyed by the policy's ``namespace/name``."""

    def history_window(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(start, end)`` of the history to fetch this cycle, both on the ``spec.frequency`` grid."""
        ...

    def forecast(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
        """A Forecast frame (``ds``, ``ensemble``, bands of ``spec.levels``) for the steps after ``history``;
        ``events`` (an Events frame, scope already applied: every row concerns this policy) when there are any."""
        ...

    def backtest_mae(self, key: str) -> float | None:
        """Ensemble MAE of the model behind the last forecast of ``key`` in its backtest; ``None`` when unknown."""
        ...

    def low_confidence(self, key: str) -> str:
        """Why the model behind ``key``'s last forecast is low-confidence (too little history), or ``""``.
        Optional: a provider without it is never low-confidence (``steps.forecast`` reads it with a default)."""
        ...


def demand_history(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """The fetched query result as one Series (``unique_id=key, ds, y``). ``InputError`` when it holds no sample
    or more than one series (the query must aggregate, e.g. ``sum(rate(...))``)."""
    if frame is None or len(frame) == 0:
        raise InputError("spec.demand.query: returned no samples in the history window")
    ids = frame[ID].astype(str).unique() if ID in frame.columns else [""]
    if len(ids) > 1:
        raise InputError(f"spec.demand.query: returned {len(ids)} series ({', '.join(map(str, ids[:3]))}, ...); "
                         "aggregate it to one, e.g. sum(rate(...))")
    out = pd.DataFrame({ID: key, DS: pd.to_datetime(frame[DS], utc=True), Y: pd.to_numeric(frame[Y])})
    return out.sort_values(DS, kind="stable").reset_index(drop=True)


@dataclass
class Model:
    """A fitted engine kept by the provider, and what the schedule and the records need to know of it."""

    forecaster: Forecaster
    spec: ForecastSpec
    fitted_at: pd.Timestamp
    last_ds: pd.Timestamp
    backtest_mae: float | None = None
    version: str = ""
    """The model's version for the records (the artefact's, when ``on_fit`` saved one)."""
    pinned_at: pd.Timestamp | None = None
    """When an operator's rollback made it champion (``forecaster.cycle.rollout``: its age counts from then)."""


FitHook = Callable[[str, Model], str | None]
"""``on_fit(key, model)``: called after every refit (e.g. save the artefact); returns the model version, or None."""
RestoreHook = Callable[[str, ForecastSpec, pd.Timestamp], Model | None]
"""``restore(key, spec, now)``: a model to start from when the provider has none (e.g. the newest stored artefact
after a restart), or None."""


@dataclass
class EngineForecastProvider:
    """``ForecastProvider`` over the real engine (module docstring). ``options`` go to ``Forecaster`` (members,
    n_windows, member_params, seed, ...). A key may cover several series (the service keys one model per frequency
    group); ``on_fit`` and ``restore`` persist models across restarts (``FitHook``, ``RestoreHook``)."""

    refit_every: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("1D"))
    options: Mapping[str, Any] = field(default_factory=dict)
    on_fit: FitHook | None = None
    restore: RestoreHook | None = None
    _models: dict[str, Model] = field(default_factory=dict)
    _refit: dict[str, bool] = field(default_factory=dict)

    def model(self, key: str) -> Model | None:
        """The model behind ``key``'s forecasts (None before the first fit)."""
        return self._models.get(key)

    def _age(self, key: str) -> ModelAge | None:
        model = self._models.get(key)
        return None if model is None else ModelAge(model.fitted_at, model.last_ds)

    def _needs_refit(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> bool:
        if key not in self._models and self.restore is not None:
            restored = self.restore(key, spec, now)
            if restored is not None:
                self._models[key] = restored
        model = self._models.get(key)
        same = model is not None and model.spec == spec
        return needs_refit(self._age(key), same, now, spec.frequency_s, self.refit_every)

    def history_window(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        refit = self._needs_refit(key, spec, now)
        self._refit[key] = refit
        return history_window(self._age(key), refit, now, spec.frequency_s, spec.history_s)

    def fit_model(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                  events: pd.DataFrame | None = None) -> Model:
        """Fit a new model on ``history`` (the whole training window) and run ``on_fit``; not kept (``refit`` keeps
        it). Events learn only from occurrences that started by the end of the history (module docstring)."""
        fc = Forecaster(**{"freq": spec.frequency, "levels": spec.levels, "horizon": spec.horizon_steps,
                           **dict(self.options)})
        last = pd.Timestamp(history[DS].max())
        started = None if events is None else events.loc[pd.to_datetime(events[START], utc=True) <= last]
        fc.fit(history, events=started if started is not None and len(started) else None)
        model = Model(fc, spec, pd.Timestamp(now), last, backtest_mae(fc.calibration_cv_))
        if self.on_fit is not None:
            model.version = self.on_fit(key, model) or ""
        log.info("%s: fitted on %d points up to %s", key, len(history), last)
        return model

    def refit(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
              events: pd.DataFrame | None = None) -> Model:
        """Fit a new model on ``history`` (``fit_model``) and ``install`` it for ``key``."""
        model = self.fit_model(key, spec, history, now, events)
        self.install(key, spec, model, now)
        return model

    def install(self, key: str, spec: ForecastSpec, model: Model, now: pd.Timestamp) -> None:
        """Take a model ``fit_model`` made (in ``refit``, or outside the cycle: the service's refit job fits with no
        lock held and installs afterwards): it serves ``key`` from now on."""
        self.put(key, model)

    def put(self, key: str, model: Model) -> None:
        """Serve ``model`` for ``key`` as it is, with no rollout (e.g. a model kept for the series a newer one of
        another key does not cover)."""
        self._models[key] = model
        self._refit.pop(key, None)

    def forecast(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
        refit = self._refit.pop(key, True) or key not in self._models
        events = events if events is not None and len(events) else None
        try:
            model = self._models.get(key)
            if refit:
                model = self.refit(key, spec, history, now, events)
            else:
                assert model is not None
                model.forecaster.update(history)
                model.last_ds = max(model.last_ds, pd.Timestamp(history[DS].max()))
            return model.forecaster.predict(spec.horizon_steps, events=events)
        except Exception:
            self._models.pop(key, None)
            raise

    def backtest_mae(self, key: str, series: str | None = None) -> float | None:
        """Ensemble MAE of ``key``'s model in its calibration backtest; of one of its series with ``series``."""
        model = self._models.get(key)
        if model is None:
            return None
        if series is None:
            return model.backtest_mae
        cv = model.forecaster.calibration_cv_
        return None if cv is None or ID not in cv.columns else backtest_mae(cv[cv[ID].astype(str) == series])

    def low_confidence(self, key: str) -> str:
        model = self._models.get(key)
        reasons = {} if model is None else model.forecaster.report_.low_confidence
        return "; ".join(f"{uid}: {why}" for uid, why in reasons.items())

    def forget(self, key: str) -> None:
        """Drop a policy's model (policy deleted or switched Off)."""
        self._models.pop(key, None)
        self._refit.pop(key, None)

    def keys(self) -> list[str]:
        return sorted(self._models)


OnEvent = Callable[[RolloutEvent, Model], None]
"""``on_event(event, model)``: a model was fitted into shadow, promoted, kept out, superseded or rolled back to (e.g.
record the model history)."""
OnScores = Callable[[str, Evidence, Model, Model], None]
"""``on_scores(key, evidence, champion, challenger)``: the paired scores after each cycle's scoring (e.g. metrics)."""
RollbackHook = Callable[[str, ForecastSpec, pd.Timestamp, Model | None], Model | None]
"""``rollback(key, spec, now, champion)``: the model an operator rolled ``key`` back to since, to serve from now on,
or None (nothing new)."""
JOURNAL = 50
"""Rollout events kept per key until ``drain`` (the controller announces them as Kubernetes Events)."""


@dataclass
class RolloutProvider(EngineForecastProvider):
    """``EngineForecastProvider`` with a champion and a shadow challenger per key (``forecaster.cycle.rollout``).

    A refit makes a **challenger**, unless the key has no champion or its forecast settings changed (then the new
    model serves at once) or the champion is stale (promoted at once). Each cycle both models are updated with the
    same history and forecast; the champion's forecast is returned (it alone drives decisions), the challenger's is
    logged; the history scores the pairs issued before it (``ShadowLog``), and ``rollout.judge`` promotes the
    challenger, keeps it out (it is dropped, with the reason) or lets it wait. The schedule's model age is that of the
    newest fit, kept or not, so a rejected refit is not retried every cycle. ``rollback`` (read at the start of each
    cycle) installs the model an operator rolled back to; the challenger is dropped then.

    Everything that happens is passed to ``on_event`` and kept in ``journal`` (``drain``); a hook's failure is logged
    and never stops a forecast. A challenger that fails to update or forecast is kept out; a champion that fails is
    dropped with its challenger, so the next cycle refits (as ``EngineForecastProvider``)."""

    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    on_event: OnEvent | None = None
    on_scores: OnScores | None = None
    rollback: RollbackHook | None = None
    journal: dict[str, list[RolloutEvent]] = field(default_factory=dict)
    _challengers: dict[str, Model] = field(default_factory=dict)
    _shadow: dict[str, ShadowLog] = field(default_factory=dict)
    _fitted: dict[str, pd.Timestamp] = field(default_factory=dict)

    def challenger(self, key: str) -> Model | None:
        """The model in shadow for ``key``, if any."""
        return self._challengers.get(key)

    def evidence(self, key: str) -> Evidence | None:
        """The paired scores of ``key``'s challenger so far (None without a challenger or a scored point)."""
        shadow = self._shadow.get(key)
        return None if shadow is None or not shadow.n_points else shadow.evidence(self.rollout)

    def drain(self, key: str) -> list[RolloutEvent]:
        """The events of ``key`` since the last call (oldest first), forgotten once returned."""
        return self.journal.pop(key, [])

    def _emit(self, event: RolloutEvent, model: Model) -> None:
        events = self.journal.setdefault(event.key, [])
        events.append(event)
        del events[:-JOURNAL]
        log.info("%s: model %s %s: %s", event.key, event.version, event.kind, event.reason)
        if self.on_event is not None:
            try:
                self.on_event(event, model)
            except Exception:  # a record of the rollout; its failure never stops the forecast
                log.exception("%s: recording the %s of model %s failed", event.key, event.kind, event.version)

    def _age(self, key: str) -> ModelAge | None:
        champion = self._models.get(key)
        if champion is None:
            return None
        challenger = self._challengers.get(key)
        fitted = max([champion.fitted_at, self._fitted.get(key, champion.fitted_at)]
                     + ([challenger.fitted_at] if challenger is not None else []))
        last = champion.last_ds if challenger is None else min(champion.last_ds, challenger.last_ds)
        return ModelAge(fitted, last)

    def history_window(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        if key not in self._models and self.restore is not None:
            restored = self.restore(key, spec, now)
            if restored is not None:
                self._models[key] = restored
        if self.rollback is not None:
            current = self._models.get(key)
            try:
                target = self.rollback(key, spec, now, current)
            except Exception:  # a store outage never stops the forecast: the rollback is read again next cycle
                log.exception("%s: reading rollbacks failed", key)
                target = None
            if target is not None and (current is None or target.version != current.version):
                self._drop_challenger(key, now, SUPERSEDED, f"rollback to {target.version}")
                self._models[key] = target
                self._emit(RolloutEvent(ROLLED_BACK, key, target.version, now, "an operator rolled back to it",
                                        "" if current is None else current.version), target)
        return super().history_window(key, spec, now)

    def _champion_age(self, key: str, now: pd.Timestamp) -> pd.Timedelta | None:
        champion = self._models.get(key)
        if champion is None:
            return None
        return pd.Timestamp(now) - (champion.pinned_at if champion.pinned_at is not None else champion.fitted_at)

    def install(self, key: str, spec: ForecastSpec, model: Model, now: pd.Timestamp) -> None:
        """A new fit (``refit``, or one made outside the cycle): the challenger, or the champion at once (class
        docstring)."""
        champion = self._models.get(key)
        self._refit.pop(key, None)
        self._fitted[key] = pd.Timestamp(now)
        if champion is not None and champion.spec != spec:
            self._promote(key, model, now, "the forecast settings changed: the old champion answered another question")
            return
        if champion is not None and grid_end(now, spec.frequency_s) < champion.last_ds:
            self._promote(key, model, now, f"the champion saw data up to {champion.last_ds}, after now (the clock "
                                           "went back): it cannot forecast from here")
            return
        verdict = judge(None, self.rollout, self._champion_age(key, now))
        if verdict.action == "promote":
            self._promote(key, model, now, verdict.reason)
            return
        self._drop_challenger(key, now, SUPERSEDED, f"a newer challenger {model.version} was fitted")
        self._challengers[key] = model
        self._shadow[key] = ShadowLog(tuple(spec.levels), self.rollout.score_lead)
        self._emit(RolloutEvent(CHALLENGER, key, model.version, now, f"fitted on data up to {model.last_ds}; in "
                                f"shadow beside the champion {champion.version if champion else ''}",
                                champion.version if champion else ""), model)

    def _promote(self, key: str, model: Model, now: pd.Timestamp, reason: str,
                 evidence: Evidence | None = None) -> None:
        previous = self._models.get(key)
        self._challengers.pop(key, None)
        self._shadow.pop(key, None)
        self._models[key] = model
        self._emit(RolloutEvent(PROMOTED, key, model.version, now, reason,
                                "" if previous is None else previous.version, evidence), model)

    def _drop_challenger(self, key: str, now: pd.Timestamp, kind: str, reason: str,
                         evidence: Evidence | None = None) -> None:
        model = self._challengers.pop(key, None)
        shadow = self._shadow.pop(key, None)
        if model is None:
            return
        if evidence is None and shadow is not None and shadow.n_points:
            evidence = shadow.evidence(self.rollout)
        champion = self._models.get(key)
        self._emit(RolloutEvent(kind, key, model.version, now, reason, "" if champion is None else champion.version,
                                evidence), model)

    def _update(self, model: Model, history: pd.DataFrame) -> None:
        """``model`` with the rows of ``history`` since its last observation, of the series it was fitted on (a
        challenger fitted while some series could not be read shadows the others)."""
        rows = history[pd.to_datetime(history[DS], utc=True) >= model.last_ds]
        if ID in rows.columns:
            rows = rows[rows[ID].astype(str).isin(model.forecaster.state.span)]
        if len(rows):
            model.forecaster.update(rows)
            model.last_ds = max(model.last_ds, pd.Timestamp(rows[DS].max()))

    def forecast(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
        refit = self._refit.pop(key, True) or key not in self._models
        events = events if events is not None and len(events) else None
        fitted: Model | None = None
        try:
            if refit:
                try:
                    fitted = self.refit(key, spec, history, now, events)
                except Exception:
                    kept = self._models.get(key)
                    if kept is None or kept.spec != spec:
                        raise
                    log.exception("%s: refit failed; the champion %s keeps serving (retried next cycle)", key,
                                  kept.version)
            champion = self._models[key]
            if champion is not fitted:
                self._update(champion, history)
        except Exception:
            self.forget(key)
            raise
        self._shadow_step(key, history, now)
        champion = self._models[key]
        try:
            frame = champion.forecaster.predict(spec.horizon_steps, events=events)
        except Exception:
            self.forget(key)
            raise
        challenger, shadow = self._challengers.get(key), self._shadow.get(key)
        if challenger is not None and shadow is not None:
            try:
                shadow.add(now, frame, challenger.forecaster.predict(spec.horizon_steps, events=events))
            except Exception as exc:  # the shadow never stops the champion
                self._drop_challenger(key, now, REJECTED, f"failed to forecast: {type(exc).__name__}: {exc}")
        return frame

    def _shadow_step(self, key: str, history: pd.DataFrame, now: pd.Timestamp) -> None:
        """Update the challenger, score the pairs on ``history`` and apply the rule."""
        challenger, shadow = self._challengers.get(key), self._shadow.get(key)
        if challenger is None or shadow is None:
            return
        try:
            if challenger.fitted_at != pd.Timestamp(now):
                self._update(challenger, history)
            shadow.score(history)
        except Exception as exc:  # the shadow never stops the champion
            self._drop_challenger(key, now, REJECTED, f"failed to update: {type(exc).__name__}: {exc}")
            return
        evidence = shadow.evidence(self.rollout) if shadow.n_points else None
        if evidence is not None and self.on_scores is not None:
            try:
                self.on_scores(key, evidence, self._models[key], challenger)
            except Exception:  # metrics only
                log.exception("%s: reporting the rollout scores failed", key)
        verdict = judge(evidence, self.rollout, self._champion_age(key, now))
        if verdict.action == "promote":
            self._promote(key, challenger, now, verdict.reason, evidence)
        elif verdict.action == "reject":
            self._drop_challenger(key, now, REJECTED, verdict.reason, evidence)

    def forget(self, key: str) -> None:
        super().forget(key)
        for state in (self._challengers, self._shadow, self._fitted):
            state.pop(key, None)


@dataclass(frozen=True)
class IssuedForecast:
    """A Forecast frame and when it was issued, for one policy and the settings that produced it."""

    frame: pd.DataFrame
    issued_at: pd.Timestamp
    fingerprint: tuple[Any, ...]
    backtest_mae: float | None = None
    """Backtest MAE of the model that made it (``accuracy.backtest_mae``), the circuit breaker's reference."""
    low_confidence: str = ""
    """Why the model that made it had too little history (``ForecastProvider.low_confidence``); never actuated."""

    @cached_property
    def band(self) -> ForecastBand:
        """The frame as the floor policy reads it (converted once per issued forecast, however many decisions)."""
        return ForecastBand.from_frame(self.frame)


@dataclass
class LastGood:
    """Each policy's latest successful forecast (module docstring)."""

    forecasts: dict[str, IssuedForecast] = field(default_factory=dict)
    _looked_up: set[tuple[str, tuple[Any, ...]]] = field(default_factory=set)

    def put(self, key: str, forecast: IssuedForecast) -> None:
        self.forecasts[key] = forecast

    def looked_up(self, key: str, fingerprint: tuple[Any, ...]) -> bool:
        """Whether the store was already asked for this policy's forecast under these settings (a cold miss is
        looked up once per process, ``mark_looked_up``)."""
        return (key, fingerprint) in self._looked_up

    def mark_looked_up(self, key: str, fingerprint: tuple[Any, ...]) -> None:
        self._looked_up.add((key, fingerprint))

    def get(self, key: str, fingerprint: tuple[Any, ...]) -> IssuedForecast | None:
        """The last good forecast, unless the policy's forecast settings changed since (then none)."""
        found = self.forecasts.get(key)
        return found if found is not None and found.fingerprint == fingerprint else None

    def drop_except(self, keys: set[str]) -> None:
        for key in set(self.forecasts) - keys:
            del self.forecasts[key]
        self._looked_up = {item for item in self._looked_up if item[0] in keys}
