"""Post-processing steps of the scaling policy, each a small pure function with a worked example.

They are composed, in order and in one commented place, by ``ScalingPolicy.decide`` (``policy.py``):
reactive floor -> clamp to [min, max] -> cool-down -> scale-down rate limit (the last two only hold a
decrease back towards the previous value, which was within bounds, so the result stays within bounds).
Each returns the new value; the caller compares it with its input to record which rule acted.

``hpa_ratio_rule`` is the reactive HPA's own rule, the one function the simulated HPA
(``forecaster.simulate.hpa``) and the controller's reading of a live HPA apply.

Pure: stdlib only.
"""

from __future__ import annotations

import math

EPS = 1e-9
HPA_TOLERANCE = 0.1
"""The HPA controller's default ``--horizontal-pod-autoscaler-tolerance``: a usage ratio within 10 % of 1 leaves
the replica count alone."""


def hpa_ratio_rule(current_replicas: int, ratio: float, tolerance: float = HPA_TOLERANCE, *,
                   counted: int | None = None) -> int:
    """The HPA's ratio rule (``replica_calculator.go``; docs "Horizontal Pod Autoscaling" -> "Algorithm details"):

        current_replicas                 when |1 - ratio| <= tolerance
        ceil(ratio * counted)            otherwise

    where ``ratio`` = current metric / target (e.g. 105 % CPU over a 70 % target = 1.5) and ``counted`` the pods the
    metric was averaged over (the ready pods with a metric; default ``current_replicas``). Worked examples: 4 pods,
    ratio 1.5 -> ceil(6.0) = 6; 10 pods, ratio 1.04 -> 10 (within tolerance); ratio 0.9 -> 10 (the boundary is
    inclusive); ratio 0.88 -> ceil(8.8) = 9; 6 pods of which 4 were counted, ratio 0.5 -> ceil(2.0) = 2. No float
    slack: Go computes the same doubles and rounds the same way."""
    if abs(1.0 - ratio) <= tolerance:
        return int(current_replicas)
    return math.ceil(ratio * (current_replicas if counted is None else counted))


def apply_reactive_floor(value: int, reactive_floor: int) -> int:
    """Never below what the reactive rule wants now: ``max(value, reactive_floor)``. (8, 11) -> 11."""
    return max(value, reactive_floor)


def clamp(value: int, min_replicas: int, max_replicas: int) -> int:
    """Bounds of the HPA: ``min(max(value, min_replicas), max_replicas)``. (0, 1, 10) -> 1; (12, 1, 10) -> 10."""
    return min(max(value, min_replicas), max_replicas)


def in_cooldown(now_s: float, last_increase_s: float | None, cooldown_s: float) -> bool:
    """True while fewer than ``cooldown_s`` seconds have passed since the floor was last raised: no decrease then.
    Raised at 100 s, cool-down 300 s: at 399 s True, at 400 s False."""
    return last_increase_s is not None and now_s - last_increase_s < cooldown_s


def scale_down_limit(ref_value: int, elapsed_s: float, pods_per_min: float, fraction_per_min: float) -> int:
    """Lowest value allowed ``elapsed_s`` seconds after the floor stood at ``ref_value``:

        ceil(ref_value - max(pods_per_min, fraction_per_min * ref_value) * elapsed_s / 60)

    so the floor never falls faster than the larger of the two rates. Worked examples (1 pod/min, 10 %/min):
    from 40 after 60 s -> 36 (4 pods = 10 % of 40); from 5 after 60 s -> 4 (1 pod); from 5 after 30 s -> 5 (half
    a pod is not a pod yet). Never below 0."""
    rate_per_min = max(pods_per_min, fraction_per_min * ref_value)
    return max(0, math.ceil(ref_value - rate_per_min * max(0.0, elapsed_s) / 60.0 - EPS))


def is_stale(issued_at_s: float | None, now_s: float, stale_after_s: float) -> bool:
    """True when there is no forecast or it was issued more than ``stale_after_s`` seconds before ``now_s``.
    Issued 10:00, limit 30 min: stale at 10:30:01, fresh at 10:30:00."""
    return issued_at_s is None or now_s - issued_at_s > stale_after_s
