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

Level foresight, a reference rather than a bound: a forecaster can at best know the demand's *smooth level*, not
its minute-to-minute bursts. ``level_foresight_curve`` gives the policies that know each minute's level
``L_m`` exactly (the centred mean of the true demand over ``window`` minutes), get pods instantly, and run a
fixed headroom multiplier ``k`` over it:

    n_m(k) = max(min_replicas, ceil(k * L_m / capacity)),   short when d_m > n_m(k) * capacity.

Sweeping ``k`` traces replica-minutes against under-provisioned minutes. If even this curve cannot reach a
target, a policy that forecasts the level (with error, and with pods that take minutes to start) is not
expected to reach it either; a policy with other knowledge (e.g. when bursts happen) still might.

Worked example: demand [2, 2, 8, 2, 2], window 5 -> L = [4, 3.5, 3.2, 3.5, 4] (edge minutes average the
minutes their window holds), capacity 2. k = 1: pods ceil(L / 2) = [2, 2, 2, 2, 2], 10 replica-minutes, and the
burst minute (8 > 2 x 2) is short; k = 1.5: pods [3, 3, 3, 3, 3], 15, still short (8 > 6); k = 2: pods
[4, 4, 4, 4, 4], 20 replica-minutes, none short. Knowing only the level, covering the burst costs double.

Pure: numpy/pandas. Called by ``benchmarks/autoscaling.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.scaling.capacity import pods_for_demand
from forecaster.simulate.trace import BadValues, MinuteTrace, minute_trace


def _check_pods(capacity_per_pod: float, min_replicas: int) -> None:
    if not math.isfinite(capacity_per_pod) or capacity_per_pod <= 0:
        raise InputError(f"capacity_per_pod: {capacity_per_pod!r} must be a positive number")
    if min_replicas < 0:
        raise InputError(f"min_replicas: {min_replicas!r} must be >= 0")


def minute_needs(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    capacity_per_pod: float,
    *,
    min_replicas: int = 1,
    bad_values: BadValues = "error",
) -> np.ndarray:
    """``n_m``: pods that serve each minute's demand at 100 % utilisation (module docstring)."""
    _check_pods(capacity_per_pod, min_replicas)
    d = minute_trace(demand, bad_values=bad_values).demand
    # pods_for_demand's tolerance keeps a demand of exactly k pods' capacity at k pods despite float rounding
    return np.maximum(pods_for_demand(d, capacity_per_pod), min_replicas)


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


def level_foresight_curve(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    capacity_per_pod: float,
    *,
    window: int = 15,
    multipliers: np.ndarray | None = None,
    min_replicas: int = 1,
    bad_values: BadValues = "error",
) -> pd.DataFrame:
    """Replica-minutes and under-provisioned minutes of the level-foresight policies (module docstring).

    One row per headroom multiplier ``k`` (default 1.00, 1.01, ..., 4.00): columns ``multiplier``,
    ``replica_minutes``, ``under_provisioned_minutes``."""
    _check_pods(capacity_per_pod, min_replicas)
    if window < 1:
        raise InputError(f"window: {window!r} must be >= 1 minute")
    ks = np.round(np.arange(1.0, 4.0001, 0.01), 2) if multipliers is None else np.asarray(multipliers, dtype=float)
    if ks.size == 0 or not np.all(np.isfinite(ks)) or np.any(ks <= 0):
        raise InputError(f"multipliers: {ks.tolist()!r} must be positive numbers")
    d = np.asarray(minute_trace(demand, bad_values=bad_values).demand, dtype=float)
    # centred mean over `window` minutes; at the edges, the mean of the minutes the window holds
    level = pd.Series(d).rolling(window, center=True, min_periods=1).mean().to_numpy()
    rows = []
    for k in ks:
        pods = np.maximum(pods_for_demand(k * level, capacity_per_pod), min_replicas)
        short = int(np.count_nonzero(d > pods * capacity_per_pod * (1 + 1e-12)))
        rows.append({"multiplier": float(k), "replica_minutes": float(pods.sum()), "under_provisioned_minutes": short})
    return pd.DataFrame(rows)


def cheapest_within(curve: pd.DataFrame, max_under_minutes: float) -> float | None:
    """The fewest replica-minutes on ``curve`` with at most ``max_under_minutes`` short minutes (None if none)."""
    ok = curve[curve["under_provisioned_minutes"] <= max_under_minutes]
    return None if ok.empty else float(ok["replica_minutes"].min())
