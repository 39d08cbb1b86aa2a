"""The predictive scaling policy: a forecast band in, an HPA ``minReplicas`` floor out, with its reasons.

``ScalingPolicy`` is stateful only in what a controller must remember between cycles (the value in force, when
it last rose or changed, how long the forecast has been unusable, the circuit breaker); every step is a pure
function from ``rules.py``/``capacity.py``/``band.py`` composed in ``decide_peak``, the one place where the order
is fixed. Worked example (capacity 10/pod, target 0.7, margin 0, min 2, max 50, 1 pod or 10 %/min down):

    forecast hi-80 peaks at 95 in [now, now + lead]    -> ceil(95 / 7) = 14 pods wanted by the forecast
    reactive rule wants 17 now                          -> 17 (never below the reactive floor)
    clamp to [2, 50]                                    -> 17
    floor in force was 25, raised 200 s ago (< 300 s)   -> 25 written (cool-down: no decrease yet)
    10 min later: forecast still wants 14, reactive 12; the previous decision, 60 s ago, kept 25
                                                        -> 23 written (rate limit: max(1, 10 % of 25) = 2.5/min)
    same, with confident_scale_down and hi-95 peaking at 110 -> ceil(110 / 7) = 16 pods: even the upper band needs
    no more than 16                                     -> 16 written (confident: max(14, 16); the rate limit
                                                           alone would have kept 23)

Fallback: when the forecast is stale (issued more than ``stale_after_s`` ago, or absent), does not cover the lead
window, or the circuit breaker is open, nothing is changed: the last safe value is held and the reactive HPA,
which always runs, handles load. After ``release_after_s`` of continuous fallback the held floor is released
towards the reactive floor through the same rate limit.

Confident scale-down (``PolicySettings.confident_scale_down``, off by default): a decrease held back by the cool-down
or the rate limit may go straight down to ``max(value, replicas the confident band needs)``, the confident band
(``confident_quantile``, default ``hi-95``, with the same margin) being read over the same lead window. It only acts
on a usable forecast, never raises a value and never goes below the value the forecast and the reactive rule want, so
the floor stays within bounds and at or above the reactive floor.

Counters ``decisions``, ``changes`` and ``fallbacks`` tally every decision, kept or not (the simulator's outcomes).

Pure: numpy/pandas. Called by the controller (one policy object per workload) and ``forecaster.simulate``.
"""

from __future__ import annotations

import math

import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.scaling.band import ForecastBand, peak_in_window
from forecaster.scaling.breaker import CircuitBreaker
from forecaster.scaling.capacity import replicas_for_demand
from forecaster.scaling.decision import ScalingDecision
from forecaster.scaling.rules import apply_reactive_floor, clamp, in_cooldown, is_stale, scale_down_limit
from forecaster.scaling.settings import PolicySettings

NS = 1_000_000_000


def _ns(ts: pd.Timestamp) -> int:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise InputError(f"now/issued_at: {stamp} must be tz-aware (UTC)")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


class ScalingPolicy:
    """Decides the predictive floor for one workload; call ``decide`` once per refresh."""

    def __init__(self, settings: PolicySettings, *, initial: int | None = None, workload: str = "") -> None:
        self.settings = settings
        self.column = settings.column
        self.workload = workload
        self.value = clamp(settings.min_replicas if initial is None else int(initial), settings.min_replicas,
                           settings.max_replicas)
        self.breaker = CircuitBreaker(settings.breaker_open_ratio, settings.breaker_close_ratio,
                                      settings.breaker_min_points)
        self.last_increase_s: float | None = None
        self.last_change_s: float | None = None
        self.last_decision_s: float | None = None
        self.fallback_since_s: float | None = None
        self._drop_ref: tuple[int, float] | None = None
        self._issued: tuple[int, pd.Timestamp] | None = None
        self.decisions = 0
        """Decisions made so far."""
        self.changes = 0
        """Decisions that moved the floor."""
        self.fallbacks = 0
        """Decisions that did not use the forecast (stale, uncovered, breaker open)."""

    def reconfigure(self, settings: PolicySettings) -> None:
        """New settings (e.g. the joint policy's choice on a refit) without forgetting the floor in force, its
        cool-down and rate-limit references, the fallback timer or the breaker's state; the next decision applies
        them (including new bounds)."""
        self.settings = settings
        self.column = settings.column
        b = self.breaker
        b.open_ratio, b.close_ratio, b.min_points = (settings.breaker_open_ratio, settings.breaker_close_ratio,
                                                     settings.breaker_min_points)

    def _issued_ts(self, ns: int | None) -> pd.Timestamp | None:
        """UTC timestamp of ``ns``, reusing the last one (many decisions share one forecast issue time)."""
        if ns is None:
            return None
        if self._issued is None or self._issued[0] != ns:
            self._issued = (ns, pd.Timestamp(int(ns), tz="UTC"))
        return self._issued[1]

    # -- entry points -------------------------------------------------------------------------------------------
    def decide(
        self,
        now: pd.Timestamp,
        reactive_floor: int,
        forecast: pd.DataFrame | ForecastBand | None = None,
        issued_at: pd.Timestamp | None = None,
        *,
        recent_mae: float | None = None,
        backtest_mae: float | None = None,
        n_errors: int | None = None,
    ) -> ScalingDecision:
        """Decide from a Forecast frame (or a converted ``ForecastBand``) issued at ``issued_at``.
        ``recent_mae``/``backtest_mae`` feed the circuit breaker (``n_errors`` recent points; default: enough)."""
        band = ForecastBand.from_frame(forecast) if isinstance(forecast, pd.DataFrame) else forecast
        return self.decide_band(
            _ns(now), int(reactive_floor), band, None if issued_at is None else _ns(issued_at),
            recent_mae=recent_mae, backtest_mae=backtest_mae,
            n_errors=self.settings.breaker_min_points if n_errors is None else n_errors,
        )

    def decide_band(
        self,
        now_ns: int,
        reactive_floor: int,
        band: ForecastBand | None,
        issued_ns: int | None,
        *,
        recent_mae: float | None = None,
        backtest_mae: float | None = None,
        n_errors: int = 0,
    ) -> ScalingDecision:
        """``decide`` on nanosecond timestamps and a converted band (the simulator's fast path)."""
        peak: float | None = None
        confident: float | None = None
        values: dict[str, float] = {}
        st = self.settings
        if band is not None:
            lead_ns = int(st.lead_time_s * NS)
            found = peak_in_window(band, band.column_index(self.column), now_ns, lead_ns)
            if found is not None:
                peak, row = found
                values = band.row(row)
            if st.confident_scale_down and st.confident_column in band.columns:
                got = peak_in_window(band, band.columns.index(st.confident_column), now_ns, lead_ns)
                confident = None if got is None else got[0]
        open_ = self.breaker.update(recent_mae, backtest_mae, n_errors)
        return self.decide_peak(now_ns, reactive_floor, issued_ns, peak, values, breaker_open=open_,
                                has_forecast=band is not None, confident_peak=confident)

    # -- the composition ----------------------------------------------------------------------------------------
    def decide_peak(
        self,
        now_ns: int,
        reactive_floor: int,
        issued_ns: int | None,
        peak: float | None,
        band: dict[str, float] | None = None,
        *,
        breaker_open: bool = False,
        has_forecast: bool = True,
        confident_peak: float | None = None,
    ) -> ScalingDecision:
        """Decide from the peak demand of the chosen band over the lead window (``None``: not covered);
        ``confident_peak``: the peak of the confident band (used only with ``confident_scale_down``)."""
        st = self.settings
        now_s = now_ns / NS
        prev = self.value
        rules: list[str] = []
        notes: list[str] = []
        forecast_replicas: int | None = None

        # 0. Is the forecast usable? If not, hold the last safe value (no change), release after a while.
        fallback = ""
        if not has_forecast or is_stale(None if issued_ns is None else issued_ns / NS, now_s, st.stale_after_s):
            fallback = "stale"
            age = "no forecast" if issued_ns is None else f"forecast issued {now_s - issued_ns / NS:.0f} s ago"
            notes.append(f"{age} (limit {st.stale_after_s:.0f} s)")
        elif peak is None:
            fallback = "uncovered"
            notes.append(f"forecast has no row in the next {st.lead_time_s:.0f} s")
        elif breaker_open:
            fallback = "breaker_open"
            ratio = self.breaker.ratio
            notes.append("breaker open (no recent error measured yet)" if ratio is None or math.isnan(ratio)
                         else f"recent error {ratio:.1f}x backtest error")
        if fallback:
            rules.append(fallback)
            if self.fallback_since_s is None:
                self.fallback_since_s = now_s
            held_s = now_s - self.fallback_since_s
            if st.release_after_s is None or held_s < st.release_after_s:
                rules.append("hold")
                notes.append(f"holding {prev}; reactive HPA in charge")
                self._drop_ref = None
                return self._record(now_ns, issued_ns, peak, band, None, reactive_floor, prev, prev, rules, notes,
                                    fell_back=True)
            rules.append("release")
            notes.append(f"fallback for {held_s:.0f} s: releasing towards the reactive floor")
            wanted = 0
        else:
            self.fallback_since_s = None
            assert peak is not None
            forecast_replicas = replicas_for_demand(peak, st.capacity_per_pod, st.target_utilisation, st.margin)
            wanted = forecast_replicas
            notes.append(f"{self.column} peaks at {peak:.4g} -> {forecast_replicas} pods")

        # 1. Never below the reactive floor.
        value = apply_reactive_floor(wanted, reactive_floor)
        if value > wanted:
            rules.append("reactive_floor")
            notes.append(f"reactive rule wants {reactive_floor}")
        # 2. Bounds of the HPA (max wins over the reactive floor: the HPA could not go higher either).
        bounded = clamp(value, st.min_replicas, st.max_replicas)
        if bounded != value:
            rules.append("min" if bounded > value else "max")
            notes.append(f"clamped to [{st.min_replicas}, {st.max_replicas}]")
        value = bounded
        # 3. Decreases: cool-down after an increase, then the scale-down rate limit. Both only hold the value
        #    between the bounded target and the previous value, which was itself within bounds. A confident forecast
        #    (step 3b) may then lower what they held, never below the bounded target.
        target = value
        if value < prev:
            if in_cooldown(now_s, self.last_increase_s, st.cooldown_s):
                value = prev
                rules.append("cooldown")
                since = now_s - (self.last_increase_s or now_s)
                notes.append(f"raised {since:.0f} s ago (cool-down {st.cooldown_s:.0f} s)")
                self._drop_ref = None
            else:
                if self._drop_ref is None:
                    starts = [t for t in (self.last_change_s, self.last_decision_s) if t is not None]
                    if self.last_increase_s is not None:
                        starts.append(self.last_increase_s + st.cooldown_s)
                    self._drop_ref = (prev, min(now_s, max(starts)) if starts else now_s)
                ref_value, ref_s = self._drop_ref
                limit = scale_down_limit(ref_value, now_s - ref_s, st.scale_down_pods_per_min,
                                         st.scale_down_fraction_per_min)
                if value < limit:
                    value = limit
                    rules.append("rate_limit")
                    notes.append(f"scale-down limited to {limit}")
            # 3b. Confident scale-down: down to what even the confident band needs (never below the target).
            if st.confident_scale_down and not fallback and confident_peak is not None and value > target:
                need = replicas_for_demand(confident_peak, st.capacity_per_pod, st.target_utilisation, st.margin)
                confident = max(target, need)
                if confident < value:
                    value = confident
                    rules.append("confident")
                    notes.append(f"{st.confident_column} peaks at {confident_peak:.4g} -> {need} pods: "
                                 f"scale-down follows the forecast to {confident}")
        else:
            self._drop_ref = None
        return self._record(now_ns, issued_ns, peak, band, forecast_replicas, reactive_floor, prev, value, rules,
                            notes, fell_back=bool(fallback))

    def _record(
        self,
        now_ns: int,
        issued_ns: int | None,
        peak: float | None,
        band: dict[str, float] | None,
        forecast_replicas: int | None,
        reactive_floor: int,
        prev: int,
        value: int,
        rules: list[str],
        notes: list[str],
        *,
        fell_back: bool,
    ) -> ScalingDecision:
        now_s = now_ns / NS
        self.decisions += 1
        self.changes += value != prev
        self.fallbacks += fell_back
        if value != prev:
            self.last_change_s = now_s
            self._drop_ref = None
            if value > prev:
                self.last_increase_s = now_s
        self.value = value
        self.last_decision_s = now_s
        st = self.settings
        return ScalingDecision(
            time=pd.Timestamp(now_ns, tz="UTC"),
            issued_at=self._issued_ts(issued_ns),
            band_column=self.column,
            band=band or {},
            peak_demand=peak,
            capacity_per_pod=st.capacity_per_pod,
            forecast_replicas=forecast_replicas,
            reactive_floor=reactive_floor,
            bounds=(st.min_replicas, st.max_replicas),
            previous=prev,
            value=value,
            rules=tuple(rules),
            reason="; ".join([*notes, f"floor {prev} -> {value}" if value != prev else f"floor stays {value}"]),
            fell_back=fell_back,
            workload=self.workload,
        )
