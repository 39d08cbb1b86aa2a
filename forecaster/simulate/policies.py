"""The policies a replay compares: what, if anything, writes the HPA's ``minReplicas`` at each decision.

- ``ReactivePolicy``: nothing; the HPA alone at its target utilisation.
- ``PredictivePolicy``: the decision cycle's predictive floor (``forecaster.cycle.decide.decide_floor``, the call
  the controller and the service make) fed by a forecast provider, writing the floor exactly as the controller
  patches ``spec.minReplicas`` of a real HPA. It scores the forecasts it used against the demand that has already
  happened with the cycle's error log (``forecaster.cycle.accuracy.ForecastLog``: same window, same lead time), so
  the circuit breaker trips as the controller's would; it never sees demand at or after the decision minute.
- ``OraclePolicy``: the same ``ScalingPolicy`` with the true demand peak over the lead window (perfect
  foresight), through the same post-processing, so the gap to it is the cost of forecast error alone.

A policy object is bound to one replay (``bind``) and then asked ``floor(minute, now_ns, reactive_floor)``.

Pure: numpy/pandas. Called by ``forecaster.simulate.replay``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, Y
from forecaster.cycle.accuracy import ErrorSummary, ForecastLog, window_for
from forecaster.cycle.decide import decide_floor
from forecaster.cycle.forecast import IssuedForecast
from forecaster.scaling.decision import ScalingDecision
from forecaster.scaling.policy import ScalingPolicy
from forecaster.scaling.settings import PolicySettings
from forecaster.simulate.providers import ForecastProvider, FrameProvider, OracleProvider
from forecaster.simulate.trace import MINUTE_NS, MinuteTrace


@runtime_checkable
class FloorPolicy(Protocol):
    """What the replay calls at each decision."""

    name: str
    decisions: list[ScalingDecision]

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        """Prepare for a replay of ``trace`` with these policy settings (``None`` for the reactive policy)."""
        ...

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        """The ``minReplicas`` to write now, or ``None`` to leave the HPA's own."""
        ...


KEY = "demand"
FINGERPRINT: tuple[str, ...] = ("replay",)
"""The replayed workload's key and forecast-settings fingerprint in the error log (one policy per replay)."""


class ReactivePolicy:
    """The HPA alone."""

    name = "reactive"

    def __init__(self) -> None:
        self.decisions: list[ScalingDecision] = []

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        """Nothing to prepare."""

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        """Never writes a floor."""
        return None


class _Issues:
    """The forecast in force at each decision, as the cycle's ``IssuedForecast`` (converted once per issue), from a
    ``FrameProvider`` or any ``ForecastProvider``."""

    def __init__(self, provider: ForecastProvider | FrameProvider) -> None:
        self.provider = provider
        self.current: IssuedForecast | None = None
        self.last_step_ns = 0

    def at(self, now_ns: int) -> tuple[IssuedForecast | None, bool]:
        """``(forecast in force at now_ns, whether it was issued since the last call)``."""
        mae: float | None
        low = ""
        if isinstance(self.provider, FrameProvider):
            i = self.provider.issue_at(now_ns)
            if i is None:
                return None, False
            if self.current is not None and int(self.current.issued_at.value) == self.provider.issued_ns[i]:
                return self.current, False
            issued, frame = self.provider.issue(i)
            mae = self.provider.backtest_mae_of(self.provider.issued_ns[i])
            low = self.provider.low_confidence_of(i)
        else:
            got = self.provider.forecast(pd.Timestamp(now_ns, tz="UTC"))
            if got is None:
                return None, False
            if self.current is not None and self.current.issued_at == pd.Timestamp(got[0]):
                return self.current, False
            issued, frame = got
            mae = getattr(self.provider, "backtest_mae", None)
        self.current = IssuedForecast(frame, pd.Timestamp(issued), FINGERPRINT, mae, low)
        step = getattr(self.provider, "step_ns", 0) or (self.last_step_ns if self.current.band.step_ns == 0 else 0)
        if self.current.band.step_ns == 0 and step:  # a one-row forecast: the bucket length of the others
            self.current.__dict__["band"] = replace(self.current.band, step_ns=step)
        self.last_step_ns = self.current.band.step_ns or self.last_step_ns
        return self.current, True


class PredictivePolicy:
    """HPA + the cycle's predictive floor writing ``minReplicas`` from forecasts (module docstring)."""

    name = "predictive"

    def __init__(self, provider: ForecastProvider | FrameProvider | pd.DataFrame, *, keep_decisions: bool = True,
                 agg: str = "max") -> None:
        self.provider = FrameProvider(provider) if isinstance(provider, pd.DataFrame) else provider
        self.keep_decisions = keep_decisions
        self.agg = agg
        """How the forecasts' buckets aggregate minute demand (``ForecastSchedule.agg``): the error log scores
        each finished bucket's ``agg`` of demand against the forecast for it."""
        self.decisions: list[ScalingDecision] = []

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        """Fresh policy state and error log for a replay of ``trace``."""
        assert settings is not None
        self.settings = settings
        self.policy = ScalingPolicy(settings)
        self.log = ForecastLog()
        self.log.start(KEY, FINGERPRINT)
        self.demand = trace.demand
        self.start_ns = trace.start_ns
        self._issues = _Issues(self.provider)
        self._scored_to_ns: int | None = None
        self.decisions = []

    def _score(self, now_ns: int, step_ns: int) -> None:
        """Score the forecast buckets finished by ``now_ns`` that lie in the recent window (``cycle.accuracy``),
        once per finished bucket: the same error log, window and lead time as the controller's."""
        if step_ns <= 0:
            return
        done_ns = now_ns // step_ns * step_ns  # end of the last finished bucket (buckets on the epoch's grid)
        first_ns = -(-self.start_ns // step_ns) * step_ns  # the first whole bucket of the trace
        if done_ns == self._scored_to_ns or done_ns <= first_ns:
            return
        self._scored_to_ns = done_ns
        window = window_for(step_ns / 1e9, self.settings.breaker_min_points)
        n = int(min((done_ns - first_ns) // step_ns, window.value // step_ns + 1))
        per = int(step_ns // MINUTE_NS)
        first = int((done_ns - n * step_ns - self.start_ns) // MINUTE_NS)
        minutes = self.demand[first:first + n * per].reshape(n, per)
        y = minutes.max(axis=1) if self.agg == "max" else minutes.mean(axis=1)
        ds = pd.DatetimeIndex(done_ns - (n - np.arange(n)) * step_ns, tz="UTC")
        self.log.score(KEY, FINGERPRINT, pd.DataFrame({DS: ds, Y: y}), self.settings.lead_time_s, window)

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        """One decision of the cycle's predictive floor (``forecaster.cycle.decide.decide_floor``)."""
        forecast, new = self._issues.at(now_ns)
        if forecast is not None:
            self._score(now_ns, forecast.band.step_ns)
            if new:
                self.log.add(KEY, FINGERPRINT, forecast.issued_at, forecast.frame)
        recent, n = self.log.summary(KEY, FINGERPRINT)
        errors = ErrorSummary(recent, n, None if forecast is None else forecast.backtest_mae)
        out = decide_floor(self.policy, pd.Timestamp(now_ns, tz="UTC"), reactive_floor, forecast, errors,
                           own_floor=self.settings.min_replicas, auto=True)
        if self.keep_decisions:
            self.decisions.append(out.final)
        return out.value


class OraclePolicy:
    """The scaling policy fed the true demand peak over the lead window."""

    name = "oracle"

    def __init__(self, *, keep_decisions: bool = True) -> None:
        self.keep_decisions = keep_decisions
        self.decisions: list[ScalingDecision] = []

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        """Precompute the sliding maximum of true demand over the lead window."""
        assert settings is not None
        self.policy = ScalingPolicy(settings)
        lead_minutes = int(np.ceil(settings.lead_time_s / 60.0))
        self.peaks = OracleProvider(trace).peaks(lead_minutes)
        self.decisions = []

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        """One decision with perfect foresight."""
        peak = float(self.peaks[minute])
        decision = self.policy.decide_peak(now_ns, reactive_floor, now_ns, peak, {"demand": peak})
        if self.keep_decisions:
            self.decisions.append(decision)
        return decision.value
