"""Lower bounds on the cost of any scaling policy: what perfect foresight with instant pods would need.

A policy that knows every minute's demand ``d_m`` exactly and gets pods the moment it asks for them needs
``n_m = max(min_replicas, ceil(d_m / capacity_per_pod))`` ready pods in minute ``m`` to serve it, so no policy
(reactive, predictive or oracle, all of which also pay start-up delay, rate limits and stabilisation) can
serve every minute with fewer than

    B(0) = sum_m n_m                                           replica-minutes.

Allowing ``u`` under-provisioned minutes, the cheapest choice is to run ``min_replicas`` pods in the ``u``
minutes that need the most, saving ``n_m - min_replicas`` in each:

    B(u) = B(0) - sum of the u largest (n_m - min_replicas).

``max_saving(reactive_cost, u) = 1 - B(u) / reactive_cost`` is then the largest relative saving any policy
could show against a reactive point with ``u`` under-provisioned minutes: a target above it is out of reach
on that trace, whatever the forecast.

Worked example: demand [3, 9, 10, 1] per minute, capacity 4, min 1 -> n = [1, 3, 3, 1], B(0) = 8; one minute
may be short -> drop a 3 to 1: B(1) = 6; against a reactive point costing 10 with no short minute the largest
possible saving is 1 - 8/10 = 20 %.

Pure: numpy/pandas. Called by ``benchmarks/autoscaling.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.errors import InputError
from forecaster.simulate.trace import BadValues, MinuteTrace, minute_trace


def minute_needs(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    capacity_per_pod: float,
    *,
    min_replicas: int = 1,
    bad_values: BadValues = "error",
) -> np.ndarray:
    """``n_m``: pods that serve each minute's demand at 100 % utilisation (module docstring)."""
    if not math.isfinite(capacity_per_pod) or capacity_per_pod <= 0:
        raise InputError(f"capacity_per_pod: {capacity_per_pod!r} must be a positive number")
    if min_replicas < 0:
        raise InputError(f"min_replicas: {min_replicas!r} must be >= 0")
    d = minute_trace(demand, bad_values=bad_values).demand
    # the tiny tolerance keeps a demand of exactly k pods' capacity at k pods despite float rounding
    return np.maximum(np.ceil(d / capacity_per_pod - 1e-9), min_replicas)


def ideal_replica_minutes(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    capacity_per_pod: float,
    *,
    under_minutes: int = 0,
    min_replicas: int = 1,
    bad_values: BadValues = "error",
) -> float:
    """``B(u)``: the fewest replica-minutes any policy needs with at most ``under_minutes`` short minutes."""
    if under_minutes < 0:
        raise InputError(f"under_minutes: {under_minutes!r} must be >= 0")
    need = minute_needs(demand, capacity_per_pod, min_replicas=min_replicas, bad_values=bad_values)
    total = float(need.sum())
    if under_minutes == 0:
        return total
    excess = np.sort(need - min_replicas)[::-1]
    return total - float(excess[:under_minutes].sum())


def ideal_curve(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    capacity_per_pod: float,
    max_under_minutes: int,
    *,
    min_replicas: int = 1,
    bad_values: BadValues = "error",
) -> np.ndarray:
    """``[B(0), B(1), ..., B(max_under_minutes)]`` in one pass (cumulative sums of the sorted excess)."""
    if max_under_minutes < 0:
        raise InputError(f"max_under_minutes: {max_under_minutes!r} must be >= 0")
    need = minute_needs(demand, capacity_per_pod, min_replicas=min_replicas, bad_values=bad_values)
    excess = np.sort(need - min_replicas)[::-1][:max_under_minutes]
    saved = np.concatenate([[0.0], np.cumsum(excess)])
    curve = float(need.sum()) - saved
    if len(curve) < max_under_minutes + 1:  # more short minutes allowed than minutes: flat from there
        curve = np.concatenate([curve, np.full(max_under_minutes + 1 - len(curve), curve[-1])])
    return curve


def max_saving(reactive_replica_minutes: float, ideal: float) -> float:
    """The largest relative saving any policy can show against a reactive point: ``1 - ideal / reactive``."""
    if reactive_replica_minutes <= 0:
        raise InputError(f"reactive_replica_minutes: {reactive_replica_minutes!r} must be > 0")
    return 1.0 - ideal / reactive_replica_minutes
