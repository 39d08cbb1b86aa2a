"""The policies a replay compares: what, if anything, writes the HPA's ``minReplicas`` at each decision.

- ``ReactivePolicy``: nothing; the HPA alone at its target utilisation.
- ``PredictivePolicy``: ``forecaster.scaling.ScalingPolicy`` fed by a forecast provider, writing the floor
  exactly as the controller will patch ``spec.minReplicas`` of a real HPA. It also scores the forecast in force
  against the demand that has already happened (``ErrorTracker``), so the circuit breaker works in the replay;
  it never sees demand at or after the decision minute.
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

from forecaster.contracts.frames import ENSEMBLE
from forecaster.scaling.band import ForecastBand
from forecaster.scaling.breaker import ErrorTracker
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


class _Bands:
    """Adapter: any ``ForecastProvider`` as ``band_at(now_ns)``, converting each issue once. A one-row forecast
    has no spacing of its own; it gets the bucket length of the last longer one."""

    def __init__(self, provider: ForecastProvider) -> None:
        self.provider = provider
        self._key: tuple[int, int] | None = None
        self._band: ForecastBand | None = None
        self._step_ns = 0

    def band_at(self, now_ns: int) -> tuple[int, ForecastBand] | None:
        got = self.provider.forecast(pd.Timestamp(now_ns, tz="UTC"))
        if got is None:
            return None
        issued, frame = got
        issued_ns = int(pd.Timestamp(issued).value)
        key = (issued_ns, id(frame))
        if key != self._key or self._band is None:
            band = ForecastBand.from_frame(frame)
            if band.step_ns:
                self._step_ns = band.step_ns
            elif self._step_ns:
                band = replace(band, step_ns=self._step_ns)
            self._key, self._band = key, band
        return issued_ns, self._band


class PredictivePolicy:
    """HPA + the scaling policy writing ``minReplicas`` from forecasts (module docstring)."""

    name = "predictive"

    def __init__(self, provider: ForecastProvider | FrameProvider | pd.DataFrame, *, keep_decisions: bool = True,
                 error_window: int = 12) -> None:
        self.provider = FrameProvider(provider) if isinstance(provider, pd.DataFrame) else provider
        self.keep_decisions = keep_decisions
        self.error_window = error_window
        self.decisions: list[ScalingDecision] = []

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        """Fresh policy state and error tracker for a replay of ``trace``."""
        assert settings is not None
        self.policy = ScalingPolicy(settings)
        self.tracker = ErrorTracker(self.error_window)
        self.demand = trace.demand
        self.start_ns = trace.start_ns
        self.backtest_mae = getattr(self.provider, "backtest_mae", None)
        self._source = self.provider if isinstance(self.provider, FrameProvider) else _Bands(self.provider)
        self._band: ForecastBand | None = None
        self._fed = 0
        self.decisions = []

    def _feed_errors(self, minute: int) -> None:
        """Score the forecast that was in force against the minutes that finished since the last decision."""
        band, fed = self._band, self._fed
        self._fed = minute
        if band is None:
            return
        ds, step, values = band.ds_ns, band.step_ns, band.values[:, band.column_index(ENSEMBLE)]
        for k in range(fed, minute):
            t = self.start_ns + k * MINUTE_NS
            i = int(np.searchsorted(ds, t, side="right")) - 1
            if i >= 0 and t < ds[i] + max(step, 1):
                self.tracker.observe(int(ds[i]), float(self.demand[k]), float(values[i]))

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        """One decision of the scaling policy."""
        self._feed_errors(minute)
        got = self._source.band_at(now_ns)
        issued_ns, band = (None, None) if got is None else got
        self._band = band
        decision = self.policy.decide_band(
            now_ns, reactive_floor, band, issued_ns, recent_mae=self.tracker.mae,
            backtest_mae=self.backtest_mae, n_errors=self.tracker.n_points,
        )
        if self.keep_decisions:
            self.decisions.append(decision)
        return decision.value


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
