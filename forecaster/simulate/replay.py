"""``replay``: a demand trace, minute by minute, through a simulated cluster run by the HPA and a policy.

Each minute ``m`` (time ``t0 = start + m min``):

0. Settings scheduled in ``retune`` for this minute take effect (the joint policy's choice on a refit): a new
   ``target_utilisation`` is written to the HPA and every listed field to the floor's ``PolicySettings``.
1. At a decision minute (every ``decision_interval_s``), the policy may write the HPA's ``minReplicas``
   (``max(configured minReplicas, policy floor)``). It sees the reactive floor
   ``ceil(demand[k] / (capacity_per_pod * target))`` of the demand the metrics pipeline has delivered (``k`` the
   minute that was current ``metric_delay_s`` before ``t0``: ``m - 1`` by default) and, for the predictive policy,
   the forecasts issued up to ``t0``.
2. Four HPA syncs at ``t0 + 0, 15, 30, 45 s``. Before each, pods whose start-up has finished become ready. The
   metrics pipeline delivers, ``metric_delay_s`` late (default 60 s, as with a Prometheus adapter; a multiple of the
   15-s sync period), the per-pod metric of the minute that was current then, averaged over the pods that were
   ready at that moment and still are:

       utilisation = demand[k] / (ready_then * capacity_per_pod)
       metric "cpu" (default): min(utilisation, 1.0) - a pod cannot use more CPU than its limit, so a saturated
                               pod reports 100 % however much demand queues behind it
       metric "requests":      utilisation uncapped - a request rate counts every request sent to the pod

   Worked example (capacity 10 per pod, target 0.5, 20 ready pods, demand 100 -> 300 at minute 30): with the
   default delay every sync of minute 30 still sees minute 29 (utilisation 0.5, no change); the syncs of minute 31
   see minute 30: "cpu" reports min(300 / 200, 1) = 100 % -> ratio 2 -> 40 pods, then (20 ready at 100 %, 20
   pending at 0 %) the ratio is 1: no change until the new pods are ready; "requests" reports 150 % -> ratio 3 ->
   60 pods at once. Pods ready since the sample have no metric yet (``missing``), pending pods are unready
   (``forecaster.simulate.hpa``). The HPA's answer resizes the pods at once (new pods pending for ``startup_s``;
   deletions pending-first).
3. The minute's ready and billed pods are the means over its four 15-s quarters.

``metric_delay_s=15`` with an uncapped metric is the simulator before issue 19: the HPA saw the current minute's
demand from the second sync of a minute on.

Outcomes count floor changes (every move of the floor a policy asks for) and fallback decisions (from the policy's
``ScalingPolicy`` counters) during the run, so they hold with ``keep_decisions=False``.
Costs one Python loop over ints and floats (no pandas inside); the frame is built once at the end.

Pure: numpy/pandas. The public entry point of ``forecaster.simulate``; called by the benchmark and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.scaling.capacity import replicas_for_demand
from forecaster.scaling.policy import ScalingPolicy
from forecaster.scaling.settings import DEFAULT_DECISION_INTERVAL_S, DEFAULT_STARTUP_S, PolicySettings
from forecaster.scaling.settings import lead_time_s as lead_time_rule
from forecaster.simulate.cluster import Pods
from forecaster.simulate.hpa import HPA, METRICS, SYNC_PERIOD_S, HPAConfig, Metric
from forecaster.simulate.policies import FloorPolicy, OraclePolicy, PredictivePolicy, ReactivePolicy
from forecaster.simulate.providers import ForecastProvider, FrameProvider
from forecaster.simulate.result import Outcomes, ReplayResult
from forecaster.simulate.trace import MINUTE_NS, BadValues, MinuteTrace, Resample, minute_trace

SYNCS_PER_MINUTE = 60 // SYNC_PERIOD_S
DEFAULT_MAX_REPLICAS = 10_000
"""``maxReplicas`` when the caller gives none: large enough never to bind."""
DEFAULT_METRIC_DELAY_S = 60
"""Seconds from a metric's minute to the HPA reading it (scrape, rule evaluation and the adapter's cache: about
one minute with a Prometheus adapter or metrics-server)."""
Retune = Sequence[tuple[pd.Timestamp, Mapping[str, Any]]]
"""``(time, fields)`` pairs: from the first minute at or after ``time``, ``fields`` (``PolicySettings`` fields;
``target_utilisation`` is also written to the HPA) replace the settings in force."""


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
    startup_s: float = DEFAULT_STARTUP_S,
    target_utilisation: float = 0.7,
    min_replicas: int = 1,
    max_replicas: int | None = None,
    forecasts: ForecastProvider | FrameProvider | pd.DataFrame | None = None,
    quantile: str = "hi-80",
    margin: float = 0.0,
    decision_interval_s: int = int(DEFAULT_DECISION_INTERVAL_S),
    lead_time_s: float | None = None,
    policy_settings: dict[str, Any] | None = None,
    initial_replicas: int | None = None,
    hpa: HPAConfig | None = None,
    resample: Resample = "hold",
    bad_values: BadValues = "error",
    keep_decisions: bool = True,
    progress: Callable[[int, int], None] | None = None,
    metric: Metric | None = None,
    metric_delay_s: int = DEFAULT_METRIC_DELAY_S,
    retune: Retune | None = None,
) -> ReplayResult:
    """Replay ``demand`` (per-minute rates; coarser traces are upsampled, see ``minute_trace``) under ``policy``.

    ``capacity_per_pod``: demand one pod serves at 100 % utilisation; ``startup_s``: seconds from asking for a pod to it
    being ready; ``target_utilisation``: the HPA's target (and the floor's); ``min_replicas`` / ``max_replicas``: the
    HPA's bounds; ``forecasts``: provider or long ``issued_at`` frame for ``"predictive"``; ``quantile``/``margin``: the
    floor's band and margin; ``decision_interval_s``: how often the policy decides (a multiple of 60); ``lead_time_s``:
    default ``startup_s + decision_interval_s`` (180 s with the defaults,
    ``forecaster.scaling.settings.DEFAULT_LEAD_TIME_S``); ``policy_settings``: any other ``PolicySettings`` field;
    ``initial_replicas``: ready at the start (default: what the reactive rule wants for the first minute); ``hpa``: a
    full ``HPAConfig`` (its bounds and target then win); ``resample`` / ``bad_values``: see ``minute_trace``
    (``bad_values="fill"`` treats NaN/negative minutes, e.g. an outage, as gaps, counted in
    ``Outcomes.filled_minutes``); ``progress(done, total)``: called about every 1 % of minutes; ``metric``: what the HPA
    scales on, ``"cpu"`` (capped at 100 % per pod) or ``"requests"`` (uncapped); default ``hpa.metric`` when ``hpa`` is
    given, else ``"cpu"``; ``metric_delay_s``: seconds the metrics pipeline lags (default 60; a multiple of 15, >= 0; 0
    is an idealised pipeline that reads the current minute); ``retune``: settings that change during the replay
    (``Retune``; module docstring, step 0).
    """
    trace = minute_trace(demand, method=resample, bad_values=bad_values)
    d = trace.demand
    n = len(d)
    if decision_interval_s < 60 or decision_interval_s % 60:
        raise InputError(f"decision_interval_s: {decision_interval_s!r} must be a positive multiple of 60")
    if startup_s < 0:
        raise InputError(f"startup_s: {startup_s!r} must be >= 0")
    if metric_delay_s < 0 or metric_delay_s % SYNC_PERIOD_S:
        raise InputError(f"metric_delay_s: {metric_delay_s!r} must be a non-negative multiple of {SYNC_PERIOD_S} s")
    chosen_metric = metric or (hpa.metric if hpa is not None else "cpu")
    if chosen_metric not in METRICS:
        raise InputError(f"metric: {chosen_metric!r} is not one of {', '.join(METRICS)}")
    cfg = replace(hpa, metric=chosen_metric) if hpa is not None else HPAConfig(
        target_utilisation=target_utilisation, min_replicas=int(min_replicas),
        max_replicas=int(max_replicas or DEFAULT_MAX_REPLICAS), metric=chosen_metric)
    settings = PolicySettings(
        capacity_per_pod=float(capacity_per_pod),
        target_utilisation=cfg.target_utilisation,
        lead_time_s=lead_time_rule(startup_s, decision_interval_s) if lead_time_s is None else float(lead_time_s),
        quantile=quantile,
        margin=float(margin),
        min_replicas=cfg.min_replicas,
        max_replicas=cfg.max_replicas,
    )
    if policy_settings:
        settings = replace(settings, **policy_settings)
    changes = _retune_minutes(trace.start_ns, n, retune, settings)
    floor_policy = _policy(policy, forecasts, keep_decisions)
    floor_policy.bind(trace, settings)

    cap, target = settings.capacity_per_pod, cfg.target_utilisation
    first = replicas_for_demand(d[0], cap, target) if initial_replicas is None else int(initial_replicas)
    replicas = min(max(first, cfg.min_replicas, 1), cfg.max_replicas)
    pods = Pods(replicas, startup_s)
    controller = HPA(cfg)
    every = decision_interval_s // 60
    floor = cfg.min_replicas
    lag = metric_delay_s // SYNC_PERIOD_S  # syncs between a sample and its use
    capped = chosen_metric == "cpu"
    ready_after: list[int] = []  # ready pods after each sync's resize: the pods a later sample averages over
    actions = floor_changes = 0
    last_wanted = settings.min_replicas  # a policy's floor starts at the HPA's own minReplicas
    step_every = max(1, n // 100)
    desired_col = np.empty(n, dtype=np.int64)
    floor_col = np.empty(n, dtype=np.int64)
    ready_col = np.empty(n)
    billed_col = np.empty(n)
    target_col = np.empty(n)
    start_ns = trace.start_ns
    for m in range(n):
        t0 = m * 60
        if m in changes:
            settings = changes[m]
            target = settings.target_utilisation
            controller.retarget(target)
            _reconfigure(floor_policy, trace, settings)
        if m % every == 0:
            seen = max(0, (t0 - metric_delay_s) // 60)
            reactive_floor = replicas_for_demand(d[seen], cap, target)
            wanted = floor_policy.floor(m, start_ns + m * MINUTE_NS, reactive_floor)
            floor = cfg.min_replicas if wanted is None else min(max(cfg.min_replicas, wanted), cfg.max_replicas)
            if wanted is not None and wanted != last_wanted:
                floor_changes += 1
                last_wanted = wanted
        ready_sum = billed_sum = 0
        for q in range(SYNCS_PER_MINUTE):
            i = m * SYNCS_PER_MINUTE + q
            t = t0 + q * SYNC_PERIOD_S
            if pods.pending:
                pods.promote(t)
            ready = pods.ready
            j = i - lag
            if lag == 0:
                sample_ready, sample_minute = ready, m
            elif j < 0:
                sample_ready, sample_minute = replicas, 0
            else:
                sample_ready, sample_minute = ready_after[j], j // SYNCS_PER_MINUTE
            util = float(d[sample_minute]) / (sample_ready * cap) if sample_ready else 0.0
            if capped and util > 1.0:
                util = 1.0
            measured = min(sample_ready, ready)
            current = pods.total
            new = controller.sync(t, current, measured, util, unready=pods.n_pending, missing=ready - measured,
                                  min_replicas=floor)
            if new != current:
                pods.scale_to(new, t)
                actions += 1
            ready_after.append(pods.ready)
            ready_sum += pods.ready
            billed_sum += pods.total
        desired_col[m] = pods.total
        floor_col[m] = floor
        ready_col[m] = ready_sum / SYNCS_PER_MINUTE
        billed_col[m] = billed_sum / SYNCS_PER_MINUTE
        target_col[m] = target
        if progress is not None and (m % step_every == 0 or m == n - 1):
            progress(m + 1, n)

    reactive = np.ceil(d / (cap * target_col) - 1e-9).clip(min=0).astype(np.int64)
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
    tally = getattr(floor_policy, "policy", None)
    fallbacks = tally.fallbacks if isinstance(tally, ScalingPolicy) else None
    outcomes = Outcomes.from_frame(floor_policy.name, frame, floor_policy.decisions, scaling_actions=actions,
                                   filled_minutes=trace.filled, floor_changes=floor_changes,
                                   fallback_decisions=fallbacks)
    info: dict[str, object] = {"policy": floor_policy.name, "startup_s": startup_s,
                               "decision_interval_s": decision_interval_s, "metric": chosen_metric,
                               "metric_delay_s": metric_delay_s, **asdict(settings)}
    if changes:
        info["retuned_at_minutes"] = sorted(changes)
    return ReplayResult(outcomes=outcomes, frame=frame, decisions=list(floor_policy.decisions), settings=info)


def _retune_minutes(start_ns: int, n: int, retune: Retune | None,
                    settings: PolicySettings) -> dict[int, PolicySettings]:
    """``retune`` as ``{minute: settings in force from then}`` (validated here, so a bad field fails before the run);
    a time before the trace applies from minute 0, one after it never."""
    out: dict[int, PolicySettings] = {}
    current = settings
    for when, fields in sorted(retune or (), key=lambda pair: pd.Timestamp(pair[0])):
        stamp = pd.Timestamp(when)
        if stamp.tzinfo is None:
            raise InputError(f"retune: time {stamp} must be tz-aware (UTC)")
        minute = max(0, -(-(int(stamp.tz_convert("UTC").value) - start_ns) // MINUTE_NS))
        unknown = sorted(set(fields) - set(PolicySettings.__dataclass_fields__))
        if unknown:
            raise InputError(f"retune: {unknown[0]!r} is not a PolicySettings field")
        current = replace(current, **dict(fields))
        if minute < n:
            out[minute] = current
    return out


def _reconfigure(floor_policy: FloorPolicy, trace: MinuteTrace, settings: PolicySettings) -> None:
    """New settings for a bound policy: a policy driving a ``ScalingPolicy`` (as ``.policy``) keeps its state (the
    floor in force, cool-down, breaker) and gets the settings in place (``.settings`` too, if it keeps a copy); any
    other policy is bound again."""
    inner = getattr(floor_policy, "policy", None)
    if isinstance(inner, ScalingPolicy):
        inner.reconfigure(settings)
        if isinstance(getattr(floor_policy, "settings", None), PolicySettings):
            floor_policy.settings = settings  # type: ignore[attr-defined]
    else:
        floor_policy.bind(trace, settings)
