"""``replay``: a demand trace, minute by minute, through a simulated cluster run by the HPA and a policy.

Each minute ``m`` (time ``t0 = start + m min``):

1. At a decision minute (every ``decision_interval_s``), the policy may write the HPA's ``minReplicas``
   (``max(configured minReplicas, policy floor)``). It sees the reactive floor
   ``ceil(demand[m-1] / (capacity_per_pod * target))`` - the demand measured at the last sync - and, for the
   predictive policy, the forecasts issued up to ``t0``.
2. Four HPA syncs at ``t0 + 0, 15, 30, 45 s``. Before each, pods whose start-up has finished become ready. The
   HPA sees the utilisation measured at the previous sync (metrics lag one sync): ``demand / (ready * capacity)``
   over the pods that were ready then; pods ready since have no metric yet (``missing``), pending pods are
   unready. Its answer resizes the pods at once (new pods pending for ``startup_s``; deletions pending-first).
3. The minute's ready and billed pods are the means over its four 15-s quarters.

Costs one Python loop over ints and floats (no pandas inside); the frame is built once at the end.

Pure: numpy/pandas. The public entry point of ``forecaster.simulate``; called by the benchmark and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.scaling.capacity import replicas_for_demand
from forecaster.scaling.settings import PolicySettings
from forecaster.simulate.cluster import Pods
from forecaster.simulate.hpa import HPA, SYNC_PERIOD_S, HPAConfig
from forecaster.simulate.policies import FloorPolicy, OraclePolicy, PredictivePolicy, ReactivePolicy
from forecaster.simulate.providers import ForecastProvider, FrameProvider
from forecaster.simulate.result import Outcomes, ReplayResult
from forecaster.simulate.trace import MINUTE_NS, BadValues, MinuteTrace, Resample, minute_trace

SYNCS_PER_MINUTE = 60 // SYNC_PERIOD_S
DEFAULT_MAX_REPLICAS = 10_000
"""``maxReplicas`` when the caller gives none: large enough never to bind."""


def _policy(policy: str | FloorPolicy, forecasts: Any, keep_decisions: bool) -> FloorPolicy:
    if not isinstance(policy, str):
        return policy
    if policy == "reactive":
        return ReactivePolicy()
    if policy == "oracle":
        return OraclePolicy(keep_decisions=keep_decisions)
    if policy == "predictive":
        if forecasts is None:
            raise InputError("forecasts: the predictive policy needs forecasts (a provider or an issued_at frame)")
        return PredictivePolicy(forecasts, keep_decisions=keep_decisions)
    raise InputError(f"policy: {policy!r} is not 'reactive', 'predictive', 'oracle' or a policy object")


def replay(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    policy: str | FloorPolicy = "reactive",
    *,
    capacity_per_pod: float,
    startup_s: float = 120.0,
    target_utilisation: float = 0.7,
    min_replicas: int = 1,
    max_replicas: int | None = None,
    forecasts: ForecastProvider | FrameProvider | pd.DataFrame | None = None,
    quantile: str = "hi-80",
    margin: float = 0.0,
    decision_interval_s: int = 60,
    lead_time_s: float | None = None,
    policy_settings: dict[str, Any] | None = None,
    initial_replicas: int | None = None,
    hpa: HPAConfig | None = None,
    resample: Resample = "hold",
    bad_values: BadValues = "error",
    keep_decisions: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Replay ``demand`` (per-minute rates; coarser traces are upsampled, see ``minute_trace``) under ``policy``.

    ``capacity_per_pod``: demand one pod serves at 100 % utilisation; ``startup_s``: seconds from asking for a pod
    to it being ready; ``target_utilisation``: the HPA's target (and the floor's); ``min_replicas`` /
    ``max_replicas``: the HPA's bounds; ``forecasts``: provider or long ``issued_at`` frame for ``"predictive"``;
    ``quantile``/``margin``: the floor's band and margin; ``decision_interval_s``: how often the policy decides
    (a multiple of 60); ``lead_time_s``: default ``startup_s + decision_interval_s``; ``policy_settings``: any
    other ``PolicySettings`` field; ``initial_replicas``: ready at the start (default: what the reactive rule wants
    for the first minute); ``hpa``: a full ``HPAConfig`` (its bounds and target then win); ``resample`` /
    ``bad_values``: see ``minute_trace`` (``bad_values="fill"`` treats NaN/negative minutes, e.g. an outage, as
    gaps, counted in ``Outcomes.filled_minutes``); ``progress(done, total)``: called about every 1 % of minutes.
    """
    trace = minute_trace(demand, method=resample, bad_values=bad_values)
    d = trace.demand
    n = len(d)
    if decision_interval_s < 60 or decision_interval_s % 60:
        raise InputError(f"decision_interval_s: {decision_interval_s!r} must be a positive multiple of 60")
    if startup_s < 0:
        raise InputError(f"startup_s: {startup_s!r} must be >= 0")
    cfg = hpa or HPAConfig(target_utilisation=target_utilisation, min_replicas=int(min_replicas),
                           max_replicas=int(max_replicas or DEFAULT_MAX_REPLICAS))
    settings = PolicySettings(
        capacity_per_pod=float(capacity_per_pod),
        target_utilisation=cfg.target_utilisation,
        lead_time_s=float(startup_s + decision_interval_s if lead_time_s is None else lead_time_s),
        quantile=quantile,
        margin=float(margin),
        min_replicas=cfg.min_replicas,
        max_replicas=cfg.max_replicas,
    )
    if policy_settings:
        settings = replace(settings, **policy_settings)
    floor_policy = _policy(policy, forecasts, keep_decisions)
    floor_policy.bind(trace, settings)

    cap, target = settings.capacity_per_pod, cfg.target_utilisation
    first = replicas_for_demand(d[0], cap, target) if initial_replicas is None else int(initial_replicas)
    replicas = min(max(first, cfg.min_replicas, 1), cfg.max_replicas)
    pods = Pods(replicas, startup_s)
    controller = HPA(cfg)
    every = decision_interval_s // 60
    floor = cfg.min_replicas
    measured_ready = pods.ready
    measured_util = d[0] / (pods.ready * cap) if pods.ready else 0.0
    actions = 0
    step_every = max(1, n // 100)
    desired_col = np.empty(n, dtype=np.int64)
    floor_col = np.empty(n, dtype=np.int64)
    ready_col = np.empty(n)
    billed_col = np.empty(n)
    start_ns = trace.start_ns
    for m in range(n):
        t0 = m * 60
        dm = float(d[m])
        if m % every == 0:
            reactive_floor = replicas_for_demand(d[m - 1] if m else dm, cap, target)
            wanted = floor_policy.floor(m, start_ns + m * MINUTE_NS, reactive_floor)
            floor = cfg.min_replicas if wanted is None else min(max(cfg.min_replicas, wanted), cfg.max_replicas)
        ready_sum = billed_sum = 0
        for q in range(SYNCS_PER_MINUTE):
            t = t0 + q * SYNC_PERIOD_S
            if pods.pending:
                pods.promote(t)
            ready = pods.ready
            measured = min(measured_ready, ready)
            current = pods.total
            new = controller.sync(t, current, measured, measured_util, unready=pods.n_pending,
                                  missing=ready - measured, min_replicas=floor)
            if new != current:
                pods.scale_to(new, t)
                actions += 1
            measured_ready = pods.ready
            measured_util = dm / (measured_ready * cap) if measured_ready else 0.0
            ready_sum += measured_ready
            billed_sum += pods.total
        desired_col[m] = pods.total
        floor_col[m] = floor
        ready_col[m] = ready_sum / SYNCS_PER_MINUTE
        billed_col[m] = billed_sum / SYNCS_PER_MINUTE
        if progress is not None and (m % step_every == 0 or m == n - 1):
            progress(m + 1, n)

    reactive = np.ceil(d / (cap * target) - 1e-9).clip(min=0).astype(np.int64)
    frame = pd.DataFrame({
        "ds": trace.index,
        "demand": d,
        "desired": desired_col,
        "ready": ready_col,
        "billed": billed_col,
        "capacity": ready_col * cap,
        "floor": floor_col,
        "reactive_desired": reactive,
    })
    outcomes = Outcomes.from_frame(floor_policy.name, frame, floor_policy.decisions, scaling_actions=actions,
                                   filled_minutes=trace.filled)
    info: dict[str, object] = {"policy": floor_policy.name, "startup_s": startup_s,
                               "decision_interval_s": decision_interval_s, **asdict(settings)}
    return ReplayResult(outcomes=outcomes, frame=frame, decisions=list(floor_policy.decisions), settings=info)
