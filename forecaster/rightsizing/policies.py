"""Recommendation policies: the ONE place where estimators and wrappers are composed.

A ``Policy`` holds, per resource, the estimator chains for the target, the lower bound and the upper bound,
plus per-policy settings applied by ``Policy.estimator``: the memory peak floor on the memory target
(``wrappers.PeakFloor``: never below the peak of the policy's ``memory_window``, unless the user plans overruns
with ``planned_memory_overruns``), the ``min_allowed``/``max_allowed`` clamp (VPA ``containerPolicy``; the value
before it is ``uncapped_target``) and CPU rounding. ``min_history`` is the history a policy needs: below it
a recommendation is marked ``low_confidence`` (``recommend.py``) and never actuated in ``Auto``.

Seven policies: ``calibrated`` (the default, ``DEFAULT_POLICY``: each container's CPU and memory targets chosen
from banks of rules by their cost on its own last four weeks, memory priced by OOM kills and never below the peak;
new containers borrow from their siblings; ``calibrated_policy``), ``vpa`` (the VPA recommender's defaults),
``moving-window`` (Autopilot-style moving-window statistics; ``autopilot`` is its former name, kept as a deprecated
alias), ``keep`` (current requests), ``forecaster`` (predicted actual use: the engine's quantile forecast of the next
window's CPU p99 and memory peak from ``predict.py``, see ``forecaster_policy``), ``forecast-scaled-vpa``
(the VPA chain with its histograms moved by the engine's forecast of next-window mean use), and
``cost-selected`` (the VPA rule with its CPU target chosen per container, from a bank of rules, by their cost on
the container's own recent days: ``selector.py``, after Autopilot's ML recommender).

``POLICIES`` maps a name to a factory returning a ``Policy``; ``register_policy("name", factory)`` (or one
more dict entry) is all a new policy needs, and ``get_policy("name", **options)`` builds one.

The VPA chain (``vertical-pod-autoscaler/pkg/recommender/logic/recommender.go``, ``CreatePodResourceRecommender``
and ``GetRecommendedPodResources``), with worked numbers for a container using a steady 0.5 cores and
600 MiB for a week of one-minute samples (request 1 core), one container per pod::

    cpu target  = RoundCPU(Clamp(MinResources(Margin(p90 histogram, 0.15), 0.025)))
                  p90 bucket end 0.5111 -> x1.15 = 0.5878 -> >= 0.025 -> rounded up 0.588 cores
    cpu lower   = ... ConfidenceMultiplier(Margin(p50), 0.001, -2) ...
                  0.5111 x1.15 x(1 + 0.001/7)^-2 = 0.5876 -> 0.588 cores
    cpu upper   = ... ConfidenceMultiplier(Margin(p95), 1.0, 1.0) ...
                  0.5111 x1.15 x(1 + 1/7) = 0.6718 -> 0.672 cores
    memory      = the same chains over DailyPeaks (8 daily peaks, 24 h half-life), with OOMBump after the
                  margin on target and upper: 600 MiB (6.29e8 B) lies in the memory bucket
                  [6.23e8, 6.64e8) B, so p90 = 6.64e8 B x1.15 = 7.64e8 B (728.7 MiB) > 250 MiB minimum.
    memory target, every policy = Clamp(PeakFloor(chain, memory_window)): had the container touched 800 MiB
                  once in the last 8 days, the target would be 800 MiB, not 728.7 MiB.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from forecaster.contracts.frames import hi
from forecaster.rightsizing.estimators import (
    HISTOGRAM_HALF_LIFE,
    MEMORY_AGGREGATION_INTERVAL,
    MEMORY_AGGREGATION_INTERVAL_COUNT,
    CurrentRequest,
    DailyPeaks,
    DecayingHistogramPercentile,
    Estimator,
    LoadAdjustedPercentile,
    MovingWindowPeak,
)
from forecaster.rightsizing.frames import CPU, MEMORY, MIB, RESOURCES, UsageError
from forecaster.rightsizing.histogram import BUCKET_GROWTH, CPU_FIRST_BUCKET, CPU_MAX, BucketScheme
from forecaster.rightsizing.predict import PEAK_WINDOWS, PREDICTED, ForecastScaled, PredictedStatistic
from forecaster.rightsizing.selector import (
    DEFAULT_BANK,
    DEFAULT_DAYS,
    DEFAULT_OVERRUN_COST,
    CostSelected,
    Rule,
    peak_bank,
)
from forecaster.rightsizing.wrappers import (
    Clamp,
    ConfidenceMultiplier,
    Margin,
    MinResources,
    OOMBump,
    PeakFloor,
    RoundCPU,
)

KINDS: tuple[str, ...] = ("target", "lower", "upper")

MEMORY_WINDOW = MEMORY_AGGREGATION_INTERVAL * MEMORY_AGGREGATION_INTERVAL_COUNT
"""8 days: the VPA's memory history (8 daily peaks); the memory window of every policy that names no other."""
MIN_HISTORY = pd.Timedelta("24h")
"""A request holds for a whole daily cycle, so a policy needs at least one day of samples to have seen one (VPA's
upper-bound multiplier ``1 + 1/d`` is x2 at one day and unbounded below it); less is ``low_confidence``."""

# VPA defaults (recommender.go flags unless stated)
VPA_SAFETY_MARGIN = 0.15
"""``--recommendation-margin-fraction``."""
VPA_POD_MIN_CPU = 0.025
"""``--pod-recommendation-min-cpu-millicores`` = 25, in cores."""
VPA_POD_MIN_MEMORY = 250 * MIB
"""``--pod-recommendation-min-memory-mb`` = 250, multiplied by 1024 * 1024 in ``GetRecommendedPodResources``."""
VPA_TARGET_PERCENTILE = 0.9
"""``--target-cpu-percentile`` and ``--target-memory-percentile``."""
VPA_LOWER_PERCENTILE = 0.5
"""``--recommendation-lower-bound-{cpu,memory}-percentile``."""
VPA_UPPER_PERCENTILE = 0.95
"""``--recommendation-upper-bound-{cpu,memory}-percentile``."""
VPA_UPPER_CONFIDENCE = (1.0, 1.0)
"""``WithCPUConfidenceMultiplier(1.0, 1.0, upperBoundCPU, ...)``: multiplier, exponent."""
VPA_LOWER_CONFIDENCE = (0.001, -2.0)
"""``WithCPUConfidenceMultiplier(0.001, -2.0, lowerBoundCPU, ...)``: multiplier, exponent."""
VPA_CPU_STEP = 0.001
"""``--round-cpu-millicores`` = 1."""

# Moving window (Autopilot-style statistics, Rzadca et al., EuroSys 2020, section 3; parameters are ours)
MOVING_WINDOW_CPU_PERCENTILE = 0.95
"""CPU target: the 95th percentile of the load-adjusted decayed histogram (Autopilot's ``S_p95``)."""
MOVING_WINDOW_CPU_HALF_LIFE = pd.Timedelta("12h")
"""CPU sample weights halve every 12 hours."""
MOVING_WINDOW_MEMORY_WINDOW = MEMORY_AGGREGATION_INTERVAL * MEMORY_AGGREGATION_INTERVAL_COUNT
"""Memory target: the peak (``S_max``) of the last 8 days, the VPA's memory history."""
MOVING_WINDOW_MARGIN = 0.10
"""Safety margin on both targets."""
MOVING_WINDOW_UPPER_WINDOW = pd.Timedelta("7D")
"""The upper bound is the peak of the last week."""

# Calibrated (the default policy)
DEFAULT_POLICY = "calibrated"
"""The policy used when none is named (``sizer.RightSizer``, ``forecaster rightsize``)."""
CALIBRATED_DAYS = 28
"""Past daily windows each cost is averaged over: four weeks, so a weekly pattern is seen four times."""
CALIBRATED_OOM_COST = 10.0
"""One OOM-kill day costs as much as ten days of a fully idle memory request: the dominant cost."""
CALIBRATED_PRIOR_DAYS = 7.0
"""The siblings' overrun rate weighs like a week of the container's own windows (``selector`` shrinkage)."""
CALIBRATED_MEMORY_LOOKBACK = pd.Timedelta("28D")
"""The memory bank's longest peak window (``selector.peak_bank``)."""


@dataclass(frozen=True)
class Policy:
    """Estimator chains per resource for the target, lower and upper bound, plus per-policy settings.

    ``min_allowed``/``max_allowed`` (cores / bytes per resource) clamp every bound; ``cpu_step`` (cores,
    None = no rounding) rounds CPU up. ``settings`` records the knobs the factory used, for reports.

    ``memory_window`` (default 8 days, the VPA's): the memory target is at least the peak of the memory used in
    this window before ``now`` (``wrappers.PeakFloor``). ``planned_memory_overruns`` (default 0): the fraction of
    that window's samples the user accepts above the memory target, each one an OOM risk; 0 = none, the target
    covers the peak. A ``max_allowed`` memory below the peak is the user's explicit cap and wins (``capped``).
    ``min_history`` (default 24 h): the history the policy needs; a container with less gets a
    ``low_confidence`` recommendation (``recommend.py``), a warning, no risk figure and no actuation in Auto.
    """

    name: str
    target: Mapping[str, Estimator]
    lower: Mapping[str, Estimator]
    upper: Mapping[str, Estimator]
    min_allowed: Mapping[str, float] = field(default_factory=dict)
    max_allowed: Mapping[str, float] = field(default_factory=dict)
    cpu_step: float | None = VPA_CPU_STEP
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    memory_window: pd.Timedelta = MEMORY_WINDOW
    planned_memory_overruns: float = 0.0
    min_history: pd.Timedelta = MIN_HISTORY

    def __post_init__(self) -> None:
        if pd.Timedelta(self.memory_window) <= pd.Timedelta(0) or pd.Timedelta(self.min_history) < pd.Timedelta(0):
            raise ValueError(f"policy {self.name!r}: memory_window must be positive and min_history >= 0")
        object.__setattr__(self, "memory_window", pd.Timedelta(self.memory_window))
        object.__setattr__(self, "min_history", pd.Timedelta(self.min_history))
        if not 0.0 <= self.planned_memory_overruns < 1.0:
            raise UsageError(f"planned_memory_overruns must be a fraction in [0, 1) of the memory window's samples "
                             f"(e.g. 0.01), got {self.planned_memory_overruns}")
        for kind in KINDS:
            missing = [r for r in RESOURCES if r not in getattr(self, kind)]
            if missing:
                raise ValueError(f"policy {self.name!r}: no {kind} estimator for {missing}")
        for bounds in (self.min_allowed, self.max_allowed):
            unknown = set(bounds) - set(RESOURCES)
            if unknown:
                raise ValueError(f"policy {self.name!r}: unknown resource(s) {sorted(unknown)} in min/max")

    def estimator(self, kind: str, resource: str) -> Estimator:
        """The full chain for ``kind`` (target/lower/upper) and ``resource``: base -> PeakFloor (memory target)
        -> Clamp -> RoundCPU (CPU)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        chain: Estimator = getattr(self, kind)[resource]
        if kind == "target" and resource == MEMORY:
            chain = PeakFloor(chain, self.memory_window, planned_overruns=self.planned_memory_overruns)
        chain = Clamp(chain, self.min_allowed.get(resource), self.max_allowed.get(resource))
        if resource == CPU and self.cpu_step:
            chain = RoundCPU(chain, self.cpu_step)
        return chain

    def with_planned_memory_overruns(self, fraction: float) -> Policy:
        """This policy with ``fraction`` of the memory window's samples accepted above the memory target (an
        OOM risk the user states; the reason of every target below the peak says so). 0 restores the default."""
        value = float(fraction)
        if not 0.0 <= value < 1.0:
            raise UsageError(f"planned_memory_overruns must be a fraction in [0, 1) of the memory window's samples "
                             f"(e.g. 0.01), got {fraction}")
        return replace(self, planned_memory_overruns=value,
                       settings={**self.settings, "planned_memory_overruns": value})


def _bounds(values: Mapping[str, float] | None) -> dict[str, float]:
    return dict(values or {})


def vpa_policy(
    *,
    containers_per_pod: int = 1,
    min_allowed: Mapping[str, float] | None = None,
    max_allowed: Mapping[str, float] | None = None,
    margin: float = VPA_SAFETY_MARGIN,
    half_life: str | pd.Timedelta = HISTOGRAM_HALF_LIFE,
    cpu_first_bucket: float = CPU_FIRST_BUCKET,
    oom_bump: bool = True,
) -> Policy:
    """The VPA recommender with its default flags (see the module docstring for the chain and numbers).

    Pod minimums (25 millicores, 250 MiB) are split evenly over ``containers_per_pod`` containers, as VPA
    does for the containers of one pod; each row of the usage frame is one container, and by default its
    own pod. CPU: decaying histogram of samples weighted by ``max(request, 0.1)``. Memory: daily peaks over
    8 days with OOM kills bumped into them, plus ``OOMBump`` (at least ``max(+100 MiB, x1.2)`` for 24 h
    after a kill) on target and upper bound. Lower bound x``(1 + 0.001/conf)^-2``, upper
    x``(1 + 1/conf)``, ``conf`` = days of history (``wrappers.confidence``).
    """
    return _vpa_chains(
        "vpa", containers_per_pod, min_allowed, max_allowed, margin, half_life, cpu_first_bucket, oom_bump, None,
        description="Kubernetes VPA recommender defaults (p90 target, 15% margin, 24h half-life)",
    )


def forecast_scaled_vpa_policy(
    prediction: pd.DataFrame | None = None,
    *,
    containers_per_pod: int = 1,
    min_allowed: Mapping[str, float] | None = None,
    max_allowed: Mapping[str, float] | None = None,
    margin: float = VPA_SAFETY_MARGIN,
    half_life: str | pd.Timedelta = HISTOGRAM_HALF_LIFE,
    level_bounds: tuple[float, float] = (0.5, 1.5),
    oom_bump: bool = True,
) -> Policy:
    """The VPA chain with the engine's level forecast in it (``predict.ForecastScaled``, before the margin)::

        cpu target    = MinResources(Margin(ForecastScaled(p90 decaying histogram), 0.15), 25m)
        memory target = MinResources(OOMBump(Margin(ForecastScaled(p90 of daily peaks), 0.15)), 250 MiB)

    and likewise for the bounds. The histogram keeps the distribution's shape from the container's own
    samples; the forecast of the next window's mean moves it (``ratio`` clipped to ``level_bounds``).
    """
    if prediction is None:
        raise UsageError("policy 'forecast-scaled-vpa' needs prediction= (a predict.UsagePredictor table)")
    return _vpa_chains(
        "forecast-scaled-vpa", containers_per_pod, min_allowed, max_allowed, margin, half_life, CPU_FIRST_BUCKET,
        oom_bump, (prediction, level_bounds),
        description="VPA histogram scaled by the engine's forecast of the next window's mean use",
    )


def _vpa_chains(
    name: str,
    containers_per_pod: int,
    min_allowed: Mapping[str, float] | None,
    max_allowed: Mapping[str, float] | None,
    margin: float,
    half_life: str | pd.Timedelta,
    cpu_first_bucket: float,
    oom_bump: bool,
    scaled: tuple[pd.DataFrame, tuple[float, float]] | None,
    description: str,
) -> Policy:
    if containers_per_pod < 1:
        raise ValueError("containers_per_pod must be >= 1")
    fraction = 1.0 / containers_per_pod
    minimum = {CPU: VPA_POD_MIN_CPU * fraction, MEMORY: VPA_POD_MIN_MEMORY * fraction}
    cpu_scheme = BucketScheme(cpu_first_bucket, 1.0 + BUCKET_GROWTH, CPU_MAX)

    def base(resource: str, percentile: float) -> Estimator:
        est: Estimator
        if resource == CPU:
            est = DecayingHistogramPercentile(percentile, half_life, scheme=cpu_scheme)
        else:
            est = DailyPeaks(
                percentile, half_life, interval=MEMORY_AGGREGATION_INTERVAL, count=MEMORY_AGGREGATION_INTERVAL_COUNT
            )
        if scaled is not None:
            est = ForecastScaled(est, scaled[0], bounds=scaled[1], half_life=half_life)
        return est

    def chain(resource: str, percentile: float, confidence: tuple[float, float] | None) -> Estimator:
        est: Estimator = Margin(base(resource, percentile), margin)
        if resource == MEMORY and oom_bump and confidence != VPA_LOWER_CONFIDENCE:
            est = OOMBump(est, MEMORY_AGGREGATION_INTERVAL)
        if confidence is not None:
            est = ConfidenceMultiplier(est, *confidence)
        return MinResources(est, minimum[resource])

    settings: dict[str, Any] = {"containers_per_pod": containers_per_pod, "margin": margin,
                                "half_life": str(half_life), "cpu_first_bucket": cpu_first_bucket,
                                "oom_bump": oom_bump}
    if scaled is not None:
        settings["level_bounds"] = list(scaled[1])
    return Policy(
        name=name,
        target={r: chain(r, VPA_TARGET_PERCENTILE, None) for r in RESOURCES},
        lower={r: chain(r, VPA_LOWER_PERCENTILE, VPA_LOWER_CONFIDENCE) for r in RESOURCES},
        upper={r: chain(r, VPA_UPPER_PERCENTILE, VPA_UPPER_CONFIDENCE) for r in RESOURCES},
        min_allowed=_bounds(min_allowed),
        max_allowed=_bounds(max_allowed),
        cpu_step=VPA_CPU_STEP,
        description=description,
        settings=settings,
    )


def cost_selected_policy(
    *,
    overrun_cost: float = DEFAULT_OVERRUN_COST,
    days: int = DEFAULT_DAYS,
    containers_per_pod: int = 1,
    min_allowed: Mapping[str, float] | None = None,
    max_allowed: Mapping[str, float] | None = None,
) -> Policy:
    """CPU target chosen per container by recent cost (``selector.CostSelected``, after Autopilot's ML
    recommender); everything else is the VPA rule::

        cpu target = MinResources(CostSelected(120 rules, overrun_cost, days, floor 25m), 25m)
        cpu lower / upper, memory target / lower / upper = the ``vpa`` policy's chains

    ``overrun_cost`` is the knob: the price of one sample above the request in units of idle request
    (10: 1 % of the time above costs as much as 10 % idle). Memory stays on the VPA's daily peaks with its OOM
    bump: a sample above a memory request is an OOM kill, not a cost to trade against slack.
    """
    vpa = _vpa_chains(
        "cost-selected", containers_per_pod, min_allowed, max_allowed, VPA_SAFETY_MARGIN, HISTOGRAM_HALF_LIFE,
        CPU_FIRST_BUCKET, True, None,
        description="CPU: per-container rule with the lowest recent cost (Autopilot-style); memory: the VPA rule",
    )
    floor = VPA_POD_MIN_CPU / containers_per_pod
    selected = CostSelected(overrun_cost=overrun_cost, days=days, floor=floor)
    return replace(
        vpa,
        target={**vpa.target, CPU: MinResources(selected, floor)},
        settings={**vpa.settings, "overrun_cost": overrun_cost, "days": days},
    )


def moving_window_policy(
    *,
    min_allowed: Mapping[str, float] | None = None,
    max_allowed: Mapping[str, float] | None = None,
    cpu_half_life: str | pd.Timedelta = MOVING_WINDOW_CPU_HALF_LIFE,
    memory_window: str | pd.Timedelta = MOVING_WINDOW_MEMORY_WINDOW,
    margin: float = MOVING_WINDOW_MARGIN,
) -> Policy:
    """A moving-window recommender built from the statistics of Autopilot's (Rzadca et al., "Autopilot: workload
    autoscaling at Google", EuroSys 2020, section 3, "Moving window recommenders")::

        cpu target    = MinResources(Margin(S_p95, 0.10), 1m)     S_p95: p95 of the load-adjusted histogram,
                                                                   sample weights halving every 12 h
        memory target = MinResources(Margin(S_max, 0.10), 1 MiB)  S_max: the peak of the last 8 days
        lower bounds  = the load-adjusted median (CPU) / the median of the memory window (memory)
        upper bounds  = the peak of the last 7 days

    What follows the paper: a peak over recent windows for memory, a percentile of an exponentially decayed
    histogram whose buckets are weighted by their load for CPU (``estimators.LoadAdjustedPercentile``), a safety
    margin on top. What does not claim to: the half-life, the memory window and the margin are our choices
    (``MOVING_WINDOW_*``), because the paper's own values could not be checked against its text here. That is why
    this policy is named ``moving-window``; the name ``autopilot`` it had is a deprecated alias (``get_policy``).
    Worked numbers: samples 1, 1, 1, 1 and 4 cores of the same age -> S_p95 = 4 cores -> target 4.4 cores; a
    memory peak of 600 MiB in the last 8 days -> 660 MiB.
    """
    cpu_target: Estimator = Margin(LoadAdjustedPercentile(MOVING_WINDOW_CPU_PERCENTILE, cpu_half_life), margin)
    mem_target: Estimator = Margin(MovingWindowPeak(memory_window), margin)
    floors = {CPU: 0.001, MEMORY: MIB}
    return Policy(
        name="moving-window",
        target={CPU: MinResources(cpu_target, floors[CPU]), MEMORY: MinResources(mem_target, floors[MEMORY])},
        lower={
            CPU: MinResources(LoadAdjustedPercentile(0.5, cpu_half_life), floors[CPU]),
            MEMORY: MinResources(MovingWindowPeak(memory_window), floors[MEMORY]),
        },
        upper={r: MinResources(MovingWindowPeak(MOVING_WINDOW_UPPER_WINDOW), floors[r]) for r in RESOURCES},
        min_allowed=_bounds(min_allowed),
        max_allowed=_bounds(max_allowed),
        cpu_step=VPA_CPU_STEP,
        description="moving window: load-adjusted p95 CPU (12h half-life), memory peak of 8 days, +10%",
        settings={"cpu_half_life": str(cpu_half_life), "memory_window": str(memory_window), "margin": margin},
        memory_window=pd.Timedelta(memory_window),
    )


def _autopilot_renamed(**options: Any) -> Policy:
    """The former name of ``moving-window`` (see ``moving_window_policy`` for why it was renamed)."""
    warnings.warn("policy 'autopilot' is now named 'moving-window' (it follows Autopilot's statistics, not its "
                  "exact parameters); the old name will be removed", DeprecationWarning, stacklevel=3)
    return moving_window_policy(**options)


def calibrated_policy(
    *,
    overrun_cost: float = DEFAULT_OVERRUN_COST,
    oom_cost: float = CALIBRATED_OOM_COST,
    days: int = CALIBRATED_DAYS,
    prior_days: float = CALIBRATED_PRIOR_DAYS,
    siblings: bool = True,
    containers_per_pod: int = 1,
    min_allowed: Mapping[str, float] | None = None,
    max_allowed: Mapping[str, float] | None = None,
) -> Policy:
    """The default policy: each container's headroom learned from its own history, its siblings' when it is new.

    Every day each container's targets are the calibrated upper quantile, of its next window's CPU and of its
    next window's memory peak, that would have cost least on its own last ``days`` windows (``selector``)::

        cpu target    = MinResources(CostSelected(120 rules m x p-th decayed percentile, fraction above,
                                                  overrun_cost 10, 28 days, siblings), 25m)
        memory target = PeakFloor(MinResources(OOMBump(CostSelected(14 rules m x peak of 8 or 28 days,
                                  any sample above = an OOM day, oom_cost 10, 28 days, prior 7 days,
                                  siblings)), 250 MiB), 8 days)
        lower / upper = the ``vpa`` policy's chains (bounds are then made consistent with the target)

    Worked numbers (memory, ``tests/rightsizing/test_rs_calibrated.py``): a container whose peak was 1 GiB every
    day for four weeks but reached 1.1 GiB on 2 of them leaves 8-day peak x1.0 above on 2 of 28 days (rate
    0.071, cost 0.71 + idle) while x1.1 of the 8-day peak is never above, so it keeps a tenth of headroom; a
    container that never rose above its 8-day peak keeps none unless its siblings' rate says otherwise. A new
    container (fewer than 3 scored windows) takes the rule its siblings' windows price lowest and says so in the
    reason; ``siblings=False`` gives it the fixed fallbacks (CPU: p90 x1.15 of 24 h-decayed samples, as the
    VPA; memory: 1.15 x its 8-day peak) instead.

    The target never plans an OOM kill: memory is at least the peak of the last 8 days (``Policy.memory_window``)
    unless ``planned_memory_overruns`` says otherwise. Knobs: ``overrun_cost`` (CPU time above the request
    against idle CPU), ``oom_cost`` (an OOM day against a day of idle memory request), ``days``, ``prior_days``.
    """
    vpa = _vpa_chains(
        "calibrated", containers_per_pod, min_allowed, max_allowed, VPA_SAFETY_MARGIN, HISTOGRAM_HALF_LIFE,
        CPU_FIRST_BUCKET, True, None,
        description="per-container headroom chosen by recent cost (CPU: throttled time, memory: OOM days); "
                    "new containers borrow from their siblings",
    )
    floor = {CPU: VPA_POD_MIN_CPU / containers_per_pod, MEMORY: VPA_POD_MIN_MEMORY / containers_per_pod}
    cpu = CostSelected(DEFAULT_BANK, overrun_cost=overrun_cost, days=days, floor=floor[CPU], siblings=siblings)
    memory = CostSelected(peak_bank(), overrun="any", overrun_cost=oom_cost, days=days,
                          lookback=CALIBRATED_MEMORY_LOOKBACK, floor=floor[MEMORY], prior_days=prior_days,
                          siblings=siblings, fallback=Rule.peak(MEMORY_WINDOW, 1.0 + VPA_SAFETY_MARGIN))
    return replace(
        vpa,
        target={CPU: MinResources(cpu, floor[CPU]), MEMORY: MinResources(OOMBump(memory), floor[MEMORY])},
        settings={**vpa.settings, "overrun_cost": overrun_cost, "oom_cost": oom_cost, "days": days,
                  "prior_days": prior_days, "siblings": siblings},
    )


def keep_current_policy() -> Policy:
    """Keep every container's current requests: target = lower = upper = the latest request.

    Like every policy, its memory target is raised to the peak of the last 8 days when the request is below it
    (``Policy.memory_window``; ``planned_memory_overruns`` to accept overruns). It needs no history
    (``min_history`` 0): keeping what is requested now is never a guess.
    """
    keep = {r: CurrentRequest() for r in RESOURCES}
    return Policy(
        name="keep", target=keep, lower=keep, upper=keep, cpu_step=None,
        description="keep the current requests (the trace's own provisioning)",
        min_history=pd.Timedelta(0),
    )


def forecaster_policy(
    prediction: pd.DataFrame | None = None,
    *,
    cpu_column: str = hi(PREDICTED, 80),
    memory_column: str = hi(PREDICTED, 95),
    margin: float = 0.0,
    cpu_statistic: str = "p99",
    memory_statistic: str = "peak",
    containers_per_pod: int = 1,
    min_allowed: Mapping[str, float] | None = None,
    max_allowed: Mapping[str, float] | None = None,
) -> Policy:
    """Requests from predicted actual use (the engine's quantile forecast of the next window's statistics).

    Chains (composition as in ``policies.py``; per-policy clamp and CPU rounding are added by ``Policy``)::

        cpu target    = MinResources(Margin(hi-80 of next-day p99, margin), 25m / containers)
        memory target = MinResources(OOMBump(Margin(hi-95 of next-day peak, margin)), 250 MiB / containers)
        lower bounds  = the median prediction of the same statistics (same minimums)
        upper bounds  = hi-95 of the same statistics (same minimums, OOM bump on memory)

    Why these columns: a request at the next day's 99th percentile is exceeded ~1 % of that day, and the
    80 % band's upper end leaves ~10 % of days above it, so throttled time stays well under 1 %; memory is
    not compressible, so its request covers the 95 % band of the whole day's peak. Short history is widened
    inside the prediction (``UsagePredictor`` histogram source). ``cpu_statistic``/``memory_statistic`` pick
    another predicted statistic (``predict.STATISTICS``: CPU ``p99``, ``p95``, ``p90``, ``mean``). The memory
    window of the peak floor is 8 days (``predict.PEAK_WINDOWS`` daily windows): a forecast below a peak the
    container reached in that week is raised to it.
    """
    if prediction is None:
        raise UsageError("policy 'forecaster' needs prediction= (a predict.UsagePredictor table); "
                         "rightsize(..., policy='forecaster') computes it for you")
    if containers_per_pod < 1:
        raise UsageError("containers_per_pod must be >= 1")
    minimum = {CPU: VPA_POD_MIN_CPU / containers_per_pod, MEMORY: VPA_POD_MIN_MEMORY / containers_per_pod}
    upper = hi(PREDICTED, 95) if hi(PREDICTED, 95) in prediction.columns else PREDICTED

    stats = {CPU: cpu_statistic, MEMORY: memory_statistic}

    def chain(resource: str, column: str, bump: bool) -> Estimator:
        est: Estimator = Margin(PredictedStatistic(prediction, column, stats[resource]), margin)
        if bump and resource == MEMORY:
            est = OOMBump(est)
        return MinResources(est, minimum[resource])

    cols = {CPU: cpu_column, MEMORY: memory_column}
    return Policy(
        name="forecaster",
        target={r: chain(r, cols[r], True) for r in (CPU, MEMORY)},
        lower={r: chain(r, PREDICTED, False) for r in (CPU, MEMORY)},
        upper={r: chain(r, upper, True) for r in (CPU, MEMORY)},
        min_allowed=dict(min_allowed or {}),
        max_allowed=dict(max_allowed or {}),
        cpu_step=VPA_CPU_STEP,
        description="predicted actual use: engine quantile forecast of next-day CPU p99 and memory peak",
        settings={"cpu_column": cpu_column, "memory_column": memory_column, "margin": margin,
                  "cpu_statistic": cpu_statistic, "memory_statistic": memory_statistic},
        memory_window=PEAK_WINDOWS * pd.Timedelta("1D"),
    )


PolicyFactory = Callable[..., Policy]
POLICIES: dict[str, PolicyFactory] = {
    "calibrated": calibrated_policy,
    "vpa": vpa_policy,
    "moving-window": moving_window_policy,
    "autopilot": _autopilot_renamed,
    "keep": keep_current_policy,
    "forecaster": forecaster_policy,
    "forecast-scaled-vpa": forecast_scaled_vpa_policy,
    "cost-selected": cost_selected_policy,
}
"""Policy name -> factory. Add an entry (or call ``register_policy``) to make a policy available by name."""


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``factory`` available as ``policy=name`` (replacing an existing entry of that name)."""
    if not name or not callable(factory):
        raise ValueError("register_policy needs a name and a callable returning a Policy")
    POLICIES[name] = factory


def get_policy(policy: Policy | str, *, planned_memory_overruns: float | None = None, **options: Any) -> Policy:
    """A ``Policy`` as is, or the registered factory ``policy`` called with ``options``.

    ``planned_memory_overruns`` (any policy; None keeps the policy's own, 0 by default) is the fraction of the
    memory window's samples the user accepts above the memory target (``Policy.with_planned_memory_overruns``).
    """
    if isinstance(policy, Policy):
        if options:
            raise ValueError("options are only accepted with a policy name")
        built = policy
    else:
        if policy not in POLICIES:
            raise UsageError(f"unknown policy {policy!r}; choose one of {sorted(POLICIES)}")
        built = POLICIES[policy](**options)
        if not isinstance(built, Policy):
            raise TypeError(f"policy factory {policy!r} returned {type(built).__name__}, not a Policy")
    if planned_memory_overruns is not None:
        built = built.with_planned_memory_overruns(planned_memory_overruns)
    return built
