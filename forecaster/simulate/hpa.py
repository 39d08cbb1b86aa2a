"""The reactive Horizontal Pod Autoscaler, simulated from its source for one metric: CPU or a request rate.

Sources: ``pkg/controller/podautoscaler/horizontal.go`` (``reconcileAutoscaler``,
``stabilizeRecommendationWithBehaviors``, ``convertDesiredReplicasWithBehaviorRate``,
``calculateScaleUpLimitWithScalingRules``, ``calculateScaleDownLimitWithBehaviors``, ``getReplicasChangePerPeriod``),
``replica_calculator.go`` (``GetResourceReplicas``), ``metrics/utilization.go`` (``GetResourceUtilizationRatio``),
``pkg/apis/autoscaling/v2/defaults.go`` (default behaviour), and the docs "Horizontal Pod Autoscaling" ->
"Algorithm details" and "Configurable scaling behavior". One call of ``HPA.sync`` is one reconcile:

1. ``currentReplicas`` is the target's ``spec.replicas`` (here: pending + ready pods, which exist as soon as they
   are asked for). If it is above ``maxReplicas`` the HPA writes ``maxReplicas``; if below ``minReplicas`` it
   writes ``minReplicas`` at once - no metrics, no stabilisation, no rate limit. This is the door the predictive
   floor uses: raising ``minReplicas`` scales the workload up within one sync.
2. Otherwise the replica calculator, for the metric of ``HPAConfig.metric``:

   - ``"cpu"``, a Resource metric (``averageUtilization`` of CPU requests; ``GetResourceReplicas``): utilisation
     ``U = floor(100 * sum(usage) / sum(requests))`` (an integer percent) over pods that have metrics, ratio
     ``r = U / target``; a pod with no metric counts as ``max(100 %, target)`` on a scale-down;
   - ``"requests"``, a Pods metric (``averageValue`` of the request rate per pod, e.g. through a Prometheus
     adapter; ``GetMetricReplicas`` -> ``calcPlainMetricReplicas``): ratio ``r = mean value per pod / target
     value`` (no integer percent); a pod with no metric counts as the target value on a scale-down.

   Without unready/missing pods: ``hpa_ratio_rule`` (``forecaster.scaling.rules``): no change if
   ``|1 - r| <= tolerance`` (0.1), else ``ceil(r * readyPods)``. With unready (pending) pods on a scale-up they
   count as 0 usage; pods with no metric count as 0 on a scale-up and as above on a scale-down; the ratio is
   recomputed and no change is made if it is within tolerance or flips direction.
3. Stabilisation: recommendations of the last ``stabilizationWindowSeconds`` are kept; the result is the current
   replica count brought within ``[min of recent (scale-up window), max of recent (scale-down window)]``.
   Defaults: scale-up window 0 s, scale-down 300 s (``--horizontal-pod-autoscaler-downscale-stabilization``).
4. Rate limits from scale events of the last ``periodSeconds``: with the default ``selectPolicy: Max``, scale-up
   may reach ``max(start + 4, ceil(start * 2))`` per 15 s and scale-down ``floor(start * 0)`` per 15 s, where
   ``start = current - added + removed`` in the period; then ``[minReplicas, maxReplicas]``.

Metrics: the caller passes what the metrics pipeline delivers (``forecaster.simulate.replay``: the utilisation of the
minute that was current ``metric_delay_s`` ago, capped at 100 % per pod for CPU, uncapped for a request rate). Sync
period 15 s (``--horizontal-pod-autoscaler-sync-period``). Events and recommendations use strict "after cutoff"
comparisons, as in Go, so an event exactly one period old no longer counts: from 2 pods under a huge spike the HPA goes
2 -> 6 -> 12 -> 24 in three syncs. The CPU initialisation period and readiness delay are modelled by the caller: a pod
has a metric only once it was ready when the sample the HPA reads was taken.

Pure: stdlib and ``forecaster.scaling.rules``. Called by ``forecaster.simulate.replay``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

from forecaster.contracts.errors import InputError
from forecaster.scaling.rules import HPA_TOLERANCE, hpa_ratio_rule

Metric = Literal["cpu", "requests"]
"""What the HPA scales on: ``"cpu"`` (utilisation of CPU requests, capped at 100 % per pod by the pod's limit) or
``"requests"`` (request rate per pod, uncapped: a saturated pod still counts every request sent to it)."""
METRICS: tuple[Metric, ...] = ("cpu", "requests")
SYNC_PERIOD_S = 15
"""``--horizontal-pod-autoscaler-sync-period`` default."""
TOLERANCE = HPA_TOLERANCE
"""``--horizontal-pod-autoscaler-tolerance`` default (0.1)."""
DOWNSCALE_STABILISATION_S = 300
"""``--horizontal-pod-autoscaler-downscale-stabilization`` default (5 min)."""
EPS_PCT = 1e-9
"""Float noise tolerated before truncating a utilisation percent (Go divides integers exactly)."""


@dataclass(frozen=True)
class ScalingPolicyRule:
    """One ``HPAScalingPolicy``: ``kind`` "Pods" or "Percent", ``value``, ``period_s``."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_s: int


@dataclass(frozen=True)
class ScalingRules:
    """One direction of ``spec.behavior`` (``HPAScalingRules``)."""

    stabilization_window_s: int
    policies: tuple[ScalingPolicyRule, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"

    @property
    def longest_period_s(self) -> int:
        return max((p.period_s for p in self.policies), default=0)


DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_s=0,
    policies=(ScalingPolicyRule("Percent", 100, 15), ScalingPolicyRule("Pods", 4, 15)),
)
"""``defaults.go``: scale up by the larger of 100 % and 4 pods per 15 s, no stabilisation."""
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_s=DOWNSCALE_STABILISATION_S,
    policies=(ScalingPolicyRule("Percent", 100, 15),),
)
"""``defaults.go``: scale down by up to 100 % per 15 s after a 300 s stabilisation window."""


MIN_TARGET_UTILISATION = 0.01
"""The smallest HPA target: 1 % (``averageUtilization`` is a whole percent, at least 1)."""


@dataclass(frozen=True)
class HPAConfig:
    """An HPA on one utilisation metric (e.g. ``averageUtilization`` of CPU requests)."""

    target_utilisation: float = 0.7
    """Target average utilisation as a fraction (0.7 = ``averageUtilization: 70``)."""
    min_replicas: int = 1
    """``spec.minReplicas`` as configured (the predictive floor may raise it per sync)."""
    max_replicas: int = 100
    """``spec.maxReplicas``."""
    tolerance: float = TOLERANCE
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    metric: Metric = "cpu"
    """The metric type (module docstring, step 2): ``"cpu"`` (default) or ``"requests"``."""

    def __post_init__(self) -> None:
        # the API stores the target as a whole percent >= 1 (``averageUtilization``); a smaller fraction would be a
        # 0 % target, which the replica calculator divides by
        if not self.target_utilisation >= MIN_TARGET_UTILISATION - 1e-12:  # also NaN
            raise InputError(f"target_utilisation: {self.target_utilisation!r} must be at least "
                             f"{MIN_TARGET_UTILISATION} (the HPA's target is a whole percent >= 1)")

    @property
    def target_pct(self) -> int:
        """The integer percent the API stores."""
        return round(self.target_utilisation * 100)


def utilisation_pct(usage: float, requests: float) -> int:
    """``GetResourceUtilizationRatio``'s integer percent ``floor(100 * usage / requests)``; 73.5 % -> 73."""
    return math.floor(100.0 * usage / requests + EPS_PCT)


def replica_count(
    current: int,
    measured: int,
    utilisation: float,
    target_pct: int,
    *,
    unready: int = 0,
    missing: int = 0,
    tolerance: float = TOLERANCE,
    metric: Metric = "cpu",
) -> int | None:
    """``GetResourceReplicas`` (``metric="cpu"``) or ``calcPlainMetricReplicas`` (``"requests"``) for pods of equal
    request: ``measured`` ready pods with a metric, each at ``utilisation`` (demand per pod / capacity per pod: a
    fraction of the CPU request, or of the request rate one pod serves at 100 %), ``unready`` pending pods and
    ``missing`` ready pods without a metric, against a ``target_pct`` percent target (module docstring, step 2).
    ``None`` when no pod has a metric (the HPA then reports an error and does not scale)."""
    if measured <= 0:
        return None
    target = target_pct / 100.0

    def ratio_of(total: float, pods: int) -> float:
        return utilisation_pct(total, pods) / target_pct if metric == "cpu" else total / pods / target

    usage = measured * utilisation
    ratio = ratio_of(usage, measured)
    scale_up_with_unready = unready > 0 and ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        return hpa_ratio_rule(current, ratio, tolerance, counted=measured)
    n = measured
    if missing > 0 and ratio != 1.0:
        n += missing
        if ratio < 1.0:
            usage += missing * (max(100, target_pct) / 100.0 if metric == "cpu" else target)
    if scale_up_with_unready:
        n += unready
    new_ratio = ratio_of(usage, n)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return current
    new = hpa_ratio_rule(current, new_ratio, tolerance, counted=n)
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


@dataclass
class HPA:
    """Controller state for one HPA: recent recommendations and scale events (``horizontal.go``)."""

    config: HPAConfig
    _recs: deque[tuple[float, int]] = field(default_factory=deque)
    _peaks: deque[tuple[float, int]] = field(default_factory=deque)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)
    _started: bool = False
    proposal: int | None = None
    """The replica calculator's proposal at the last sync that computed one (``None``: skipped or no metrics)."""

    def sync(
        self,
        now_s: float,
        current: int,
        measured: int,
        utilisation: float,
        *,
        unready: int = 0,
        missing: int = 0,
        min_replicas: int | None = None,
    ) -> int:
        """One reconcile at ``now_s``; returns the new ``spec.replicas``. ``min_replicas`` overrides the configured
        ``minReplicas`` for this sync (the predictive floor)."""
        cfg = self.config
        low = cfg.min_replicas if min_replicas is None else min_replicas
        if not self._started:  # recordInitialRecommendation
            self._started = True
            self._remember(now_s, current)
        self.proposal = None
        if current > cfg.max_replicas:
            desired = cfg.max_replicas
        elif current < low:
            desired = low
        else:
            proposal = replica_count(current, measured, utilisation, cfg.target_pct, unready=unready,
                                     missing=missing, tolerance=cfg.tolerance, metric=cfg.metric)
            if proposal is None:
                return current
            self.proposal = proposal
            stabilised = self._stabilise(now_s, current, proposal)
            desired = self._rate_limit(now_s, current, stabilised, low)
        if desired != current:
            self._store_event(now_s, current, desired)
        return desired

    def retarget(self, target_utilisation: float) -> None:
        """A new target utilisation written to the HPA (the joint policy's choice); recent recommendations and scale
        events are kept, as the HPA controller keeps them across a spec update."""
        self.config = replace(self.config, target_utilisation=float(target_utilisation))

    def _stabilise(self, now_s: float, current: int, desired: int) -> int:
        """``stabilizeRecommendationWithBehaviors``: bring ``current`` within [lowest recommendation of the
        scale-up window, highest of the scale-down window] (each including ``desired``), then record ``desired``.

        Go keeps a slice and overwrites one expired entry per sync; expired entries are never counted again
        (cutoffs only move forward, comparisons are strict), so a time-ordered deque pruned at the older cutoff
        is equivalent. With the default scale-up window 0 (no scale-up stabilisation) the highest recent
        recommendation comes from a monotonic deque in O(1); other windows scan the deque."""
        up_w = self.config.scale_up.stabilization_window_s
        down_w = self.config.scale_down.stabilization_window_s
        recs, peaks = self._recs, self._peaks
        dead = now_s - max(up_w, down_w)
        while recs and recs[0][0] <= dead:
            recs.popleft()
        while peaks and peaks[0][0] <= dead:
            peaks.popleft()
        if up_w == 0:
            up_rec = desired
            down_rec = max(desired, peaks[0][1]) if peaks else desired
        else:
            up_cut, down_cut = now_s - up_w, now_s - down_w
            up_rec = min([desired, *(r for t, r in recs if t > up_cut)])
            down_rec = max([desired, *(r for t, r in recs if t > down_cut)])
        self._remember(now_s, desired)
        return min(max(current, up_rec), down_rec)

    def _remember(self, now_s: float, recommendation: int) -> None:
        self._recs.append((now_s, recommendation))
        peaks = self._peaks
        while peaks and peaks[-1][1] <= recommendation:
            peaks.pop()
        peaks.append((now_s, recommendation))

    def _rate_limit(self, now_s: float, current: int, desired: int, low: int) -> int:
        cfg = self.config
        if desired > current:
            limit = max(self._limit(now_s, current, cfg.scale_up, up=True), current)
            return min(desired, cfg.max_replicas, limit)
        if desired < current:
            limit = min(self._limit(now_s, current, cfg.scale_down, up=False), current)
            return max(desired, low, limit)
        return desired

    def _limit(self, now_s: float, current: int, rules: ScalingRules, *, up: bool) -> int:
        if rules.select_policy == "Disabled":
            return current
        proposals = []
        for p in rules.policies:
            cut = now_s - p.period_s
            added = sum(c for t, c in self.up_events if t > cut)
            removed = sum(c for t, c in self.down_events if t > cut)
            start = current - added + removed
            if p.kind == "Pods":
                proposals.append(start + p.value if up else start - p.value)
            elif up:
                proposals.append(math.ceil(start * (1.0 + p.value / 100.0)))
            else:
                proposals.append(int(start * (1.0 - p.value / 100.0)))
        # "Max" selects the policy allowing the largest change: the highest limit up, the lowest limit down.
        largest_change = rules.select_policy == "Max"
        return max(proposals) if largest_change == up else min(proposals)

    def _store_event(self, now_s: float, before: int, after: int) -> None:
        cfg = self.config
        if after > before:
            keep = now_s - cfg.scale_up.longest_period_s
            self.up_events = [e for e in self.up_events if e[0] > keep]
            self.up_events.append((now_s, after - before))
        else:
            keep = now_s - cfg.scale_down.longest_period_s
            self.down_events = [e for e in self.down_events if e[0] > keep]
            self.down_events.append((now_s, before - after))
