"""Capacity arithmetic: demand -> replicas, and capacity per pod learned from history.

``replicas_for_demand`` (one value) and ``pods_for_demand`` (an array) are the one place where demand becomes pods:

    replicas = ceil(demand * (1 + margin) / (capacity_per_pod * target_utilisation))

the fixed point of the HPA's ratio rule ``desired = ceil(current * utilisation / target)``
(``pkg/controller/podautoscaler/replica_calculator.go``; docs "Horizontal Pod Autoscaling" -> "Algorithm
details") when utilisation = demand / (current * capacity_per_pod). Worked example: 95 req/s, 10 req/s per pod
at 100 %, target 0.7, margin 0.1 -> ceil(104.5 / 7) = ceil(14.93) = 15 pods. A tolerance of 1e-9 pods absorbs
float noise (70 / (1 * 0.7) is 100.00000000000001 in binary floating point and must give 100, not 101).

Pure: numpy/pandas. Called by ``forecaster.scaling.policy`` and ``forecaster.simulate``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError

EPS_PODS = 1e-9
"""Float noise tolerated before rounding a replica count up (see module docstring)."""


def replicas_for_demand(demand: float, capacity_per_pod: float, target_utilisation: float, margin: float = 0.0) -> int:
    """Pods needed so that ``demand * (1 + margin)`` runs at ``target_utilisation`` (module docstring formula);
    0 for zero demand."""
    need = float(demand) * (1.0 + margin) / (capacity_per_pod * target_utilisation)
    return max(0, math.ceil(need - EPS_PODS))


def pods_for_demand(demand: np.ndarray, capacity_per_pod: float, target_utilisation: float = 1.0,
                    margin: float = 0.0) -> np.ndarray:
    """``replicas_for_demand`` over an array (the same formula and float tolerance), as floats; never below 0.
    Worked example: demand [0, 70, 95], 10 per pod, target 0.7 -> [0, 10, 14]."""
    need = np.asarray(demand, dtype=float) * (1.0 + margin) / (capacity_per_pod * target_utilisation)
    return np.maximum(np.ceil(need - EPS_PODS), 0.0) + 0.0


def learn_capacity_per_pod(
    demand: pd.Series | np.ndarray,
    replicas: pd.Series | np.ndarray,
    *,
    quantile: float = 0.95,
    busy_fraction: float = 0.2,
    at_utilisation: float = 1.0,
) -> float:
    """Capacity per pod (demand one pod serves at 100 % utilisation) from a history of demand and READY replicas.

    The pods served the observed load, so the load per pod at busy times is a lower bound on what one pod can
    carry. Rule: take rows with ``replicas > 0`` and finite, non-negative demand; load per pod ``d / r``; keep the
    busiest ``busy_fraction`` of rows (high utilisation, where the per-pod load says most about capacity); return
    the ``quantile`` of their load divided by ``at_utilisation``, the utilisation those busy pods ran at (pass the
    HPA's target, e.g. 0.7, when the history was scaled by an HPA: per-pod load then hovered near 0.7 x capacity).

    Worked example: loads per pod 6, 7, 7, 7 (busy rows) under an HPA at 0.7 -> ~7 / 0.7 = 10 per pod.
    Raises ``InputError`` (naming ``demand``/``replicas``) on mismatched lengths or no usable rows.
    """
    d = np.asarray(demand, dtype=float)
    r = np.asarray(replicas, dtype=float)
    if d.shape != r.shape:
        raise InputError(f"replicas: length {r.shape} differs from demand's {d.shape}")
    if not 0.0 < quantile <= 1.0:
        raise InputError(f"quantile: {quantile!r} must be in (0, 1]")
    if not 0.0 < busy_fraction <= 1.0:
        raise InputError(f"busy_fraction: {busy_fraction!r} must be in (0, 1]")
    if not 0.0 < at_utilisation <= 1.0:
        raise InputError(f"at_utilisation: {at_utilisation!r} must be in (0, 1]")
    ok = np.isfinite(d) & np.isfinite(r) & (r > 0) & (d >= 0)
    if not ok.any():
        raise InputError("demand: no row with finite demand >= 0 and replicas > 0 to learn capacity from")
    load = d[ok] / r[ok]
    busy = load[load >= np.quantile(load, 1.0 - busy_fraction)]
    capacity = float(np.quantile(busy, quantile)) / at_utilisation
    if capacity <= 0:
        raise InputError("demand: busy rows carry no load; cannot learn capacity_per_pod")
    return capacity
