"""Operator reports: requested vs (predicted) actual use, slack, savings and risk; and window scoring.

* ``container_report`` - one row per container and resource: the current request, use over the window
  before ``now`` (mean, p50, p90, peak) or a supplied prediction (a quantile table), slack, the recommended
  request, projected savings and risk. Amounts are in report units: **cores** for CPU, **GiB** for memory
  (column ``unit``).
* ``group_report`` - sums and capacity-weighted ratios per namespace, per team, or over everything.
* ``score_window`` / ``count_changes`` / ``score_summary`` - what the right-sizing benchmark measures on
  the window *after* a decision (DESIGN.md "Measuring / Right-sizing").

Definitions (DESIGN.md): slack of a sample = ``(request - usage) / request``; a container's slack is its mean
over the samples with a positive request. A group's slack is ``1 - sum(mean use) / sum(request)``, the
capacity-weighted mean. Savings = current request - recommended target (negative: the container needs more).
Risk = probability that use exceeds the recommended request in the window (``risk.py``): from the empirical
distribution of the window's samples, or from the quantile table when one is given; unknown (NaN) for a
``low_confidence`` recommendation, whose history is too short to know it (a few hours never exceed their own
peak: "0.0 %" would be a guess). Overrun meaning: memory is non-compressible ("OOM"), CPU compressible
("throttling").

Pure: numpy and pandas. Called by ``api.rightsize``, the CLI and the right-sizing benchmark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.frames import CUTOFF, DS, ID
from forecaster.rightsizing.estimators import fmt_duration
from forecaster.rightsizing.frames import (
    CPU,
    GIB,
    LOW_CONFIDENCE,
    MEMORY,
    NAMESPACE,
    POLICY,
    QUANTILE,
    REQUEST,
    REQUEST_OF,
    RESOURCE,
    RESOURCES,
    SOURCE,
    TARGET,
    TEAM,
    VALUE,
    UsageError,
)
from forecaster.rightsizing.risk import (
    OVERRUN,
    empirical_exceedance,
    exceedance_probability,
    quantile_at,
    validate_quantiles,
)

UNIT: dict[str, str] = {CPU: "cores", MEMORY: "GiB"}
"""Report unit per resource."""
SCALE: dict[str, float] = {CPU: 1.0, MEMORY: GIB}
"""Divide a contract amount (cores, bytes) by this to get the report unit."""
AMOUNT_COLUMNS: tuple[str, ...] = ("request", "usage_mean", "usage_p50", "usage_p90", "usage_peak", "target", "savings")
CONTAINER_REPORT_COLUMNS: tuple[str, ...] = (
    ID, RESOURCE, "unit", "samples", *AMOUNT_COLUMNS[:5], "slack", "target", "projected_slack", "savings",
    "risk", "overrun", "basis", SOURCE, POLICY, LOW_CONFIDENCE,
)


def sample_slack(usage: np.ndarray, request: np.ndarray | float) -> float:
    """Mean of ``(request - usage) / request`` over the samples with a positive request (NaN if none).

    Worked example: requests 2, 2 and usage 1, 1.5 -> slack (0.5 + 0.25) / 2 = 0.375.
    """
    u = np.asarray(usage, dtype=float)
    r = np.broadcast_to(np.asarray(request, dtype=float), u.shape)
    ok = r > 0
    if not ok.any():
        return float("nan")
    return float(np.mean((r[ok] - u[ok]) / r[ok]))


def _namespace_of(uid: str) -> str | None:
    return uid.split("/", 1)[0] if "/" in uid else None


def _recent(frame: pd.DataFrame, now: pd.Timestamp, window: pd.Timedelta) -> dict[str, pd.DataFrame]:
    cut = frame.loc[(frame[DS] >= now - window) & (frame[DS] < now)]
    return {str(k): g for k, g in cut.groupby(ID, sort=False)}


def container_report(
    usage: pd.DataFrame,
    recommendations: pd.DataFrame,
    *,
    now: pd.Timestamp,
    window: str | pd.Timedelta = "24h",
    prediction: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (container, resource): request vs use, slack, recommended target, savings and risk.

    ``usage`` must be validated (``validate_usage``); ``recommendations`` is a recommendation frame.
    "Use" is the samples in ``[now - window, now)``; with a ``prediction`` quantile table
    (``frames.QUANTILE_COLUMNS``) the use columns come from the prediction instead (p50, p90 by
    interpolation, mean = the predicted median, peak = the highest quantile) and so does the risk;
    ``basis`` says which. ``namespace`` and
    ``team`` come from the recommendations, else from the usage; without a namespace column, the part of
    ``unique_id`` before the first ``/`` is taken as the namespace (``shop/cart/app`` -> ``shop``).
    """
    span = pd.Timedelta(window)
    recent = _recent(usage, now, span)
    pred = {}
    if prediction is not None and len(prediction):
        q = validate_quantiles(prediction)
        pred = {(str(k[0]), str(k[1])): g for k, g in q.groupby([ID, RESOURCE], sort=False)}
    labels = _labels(usage, recommendations)
    rows: list[dict[str, Any]] = []
    for rec in recommendations.itertuples(index=False):
        uid, res = str(getattr(rec, ID)), str(getattr(rec, RESOURCE))
        scale = SCALE[res]
        g = recent.get(uid)
        use = g[res].to_numpy(dtype=float) if g is not None else np.array([])
        req = g[REQUEST_OF[res]].to_numpy(dtype=float) if g is not None else np.array([])
        target = float(getattr(rec, TARGET))
        row: dict[str, Any] = {
            ID: uid, RESOURCE: res, "unit": UNIT[res], "samples": int(use.size),
            "request": float(getattr(rec, REQUEST)) / scale,
            "slack": sample_slack(use, req),
            "target": target / scale,
            "projected_slack": sample_slack(use, target),
            "savings": (float(getattr(rec, REQUEST)) - target) / scale,
            "overrun": OVERRUN[res],
            SOURCE: getattr(rec, SOURCE, None),
            POLICY: getattr(rec, POLICY, None),
        }
        table = pred.get((uid, res))
        if table is not None:
            lv, vs = table[QUANTILE].to_numpy(), table[VALUE].to_numpy()
            row.update(
                usage_mean=quantile_at(lv, vs, 0.5) / scale,
                usage_p50=quantile_at(lv, vs, 0.5) / scale,
                usage_p90=quantile_at(lv, vs, 0.9) / scale,
                usage_peak=float(vs.max()) / scale,
                risk=exceedance_probability(lv, vs, target),
                basis="prediction",
            )
        else:
            has = use.size > 0
            row.update(
                usage_mean=float(use.mean()) / scale if has else np.nan,
                usage_p50=float(np.quantile(use, 0.5)) / scale if has else np.nan,
                usage_p90=float(np.quantile(use, 0.9)) / scale if has else np.nan,
                usage_peak=float(use.max()) / scale if has else np.nan,
                risk=empirical_exceedance(use, target),
                basis=f"use over the last {fmt_duration(span)}" if has else "no recent samples",
            )
        if bool(getattr(rec, LOW_CONFIDENCE, False)):
            row["risk"] = np.nan  # too little history to know it
        row[LOW_CONFIDENCE] = bool(getattr(rec, LOW_CONFIDENCE, False))
        row.update(labels.get(uid, {}))
        rows.append(row)
    cols = [*CONTAINER_REPORT_COLUMNS, NAMESPACE, TEAM]
    return pd.DataFrame(rows, columns=cols)


def _labels(usage: pd.DataFrame, recs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    last = usage.groupby(ID, sort=False).tail(1)
    for uid in pd.unique(pd.concat([recs[ID].astype(str), usage[ID].astype(str)])):
        out[str(uid)] = {NAMESPACE: _namespace_of(str(uid)), TEAM: None}
    for col in (NAMESPACE, TEAM):
        for src in (last, recs):
            if col in src.columns:
                for uid, val in zip(src[ID].astype(str), src[col], strict=True):
                    if val is not None and not (isinstance(val, float) and np.isnan(val)):
                        out.setdefault(uid, {})[col] = val
    return out


def group_report(containers: pd.DataFrame, by: str | None = NAMESPACE) -> pd.DataFrame:
    """Sums per group (``by`` = namespace, team, or None for the whole fleet) and resource.

    Amounts (request, mean/p90/peak use, target, savings) are summed; ``slack`` = ``1 - sum(mean use) /
    sum(request)`` and ``projected_slack`` the same against the targets; ``risk_max``/``risk_mean`` over the
    containers, unknown (NaN) when any of them is ``low_confidence`` (counted in ``low_confidence``).
    Containers without the label are grouped under ``"(none)"``.
    """
    frame = containers.copy()
    keys = [RESOURCE, "unit"]
    if by is not None:
        if by not in frame.columns:
            raise UsageError(f"container report has no column {by!r} to group by")
        frame[by] = frame[by].astype(object).where(frame[by].notna(), "(none)")
        keys = [by, *keys]
    sums = ["request", "usage_mean", "usage_p90", "usage_peak", "target", "savings"]
    if LOW_CONFIDENCE not in frame.columns:
        frame[LOW_CONFIDENCE] = False
    agg = frame.groupby(keys, sort=True).agg(
        containers=(ID, "nunique"), **{c: (c, "sum") for c in sums},
        risk_max=("risk", "max"), risk_mean=("risk", "mean"), low_confidence=(LOW_CONFIDENCE, "sum"),
    ).reset_index()
    agg[LOW_CONFIDENCE] = agg[LOW_CONFIDENCE].astype(int)
    agg.loc[agg[LOW_CONFIDENCE] > 0, ["risk_max", "risk_mean"]] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        agg["slack"] = np.where(agg["request"] > 0, 1.0 - agg["usage_mean"] / agg["request"], np.nan)
        agg["projected_slack"] = np.where(agg["target"] > 0, 1.0 - agg["usage_mean"] / agg["target"], np.nan)
    agg["overrun"] = agg[RESOURCE].map(OVERRUN)
    return agg


SCORE_COLUMNS: tuple[str, ...] = (
    ID, "samples", "cpu_request", "memory_request", "cpu_slack", "memory_slack", "cpu_above_request",
    "memory_overruns", "memory_overrun", "cpu_usage_mean", "memory_usage_mean",
)


def score_window(usage_next_window: pd.DataFrame, recommendation: pd.DataFrame, column: str = TARGET) -> pd.DataFrame:
    """Score recommended requests on the use that followed (one row per container).

    ``usage_next_window`` has ``unique_id, ds, cpu, memory`` (other columns ignored); ``recommendation`` is a
    recommendation frame whose ``column`` (default ``target``) is the request put in place. Per container:
    ``cpu_slack``/``memory_slack`` (mean sample slack against that request), ``cpu_above_request`` (fraction
    of samples with CPU use above the CPU request: throttling time), ``memory_overruns`` (samples with memory
    above the memory request: OOM risk) and ``memory_overrun`` (any). Every container of the window must
    have a CPU and a memory recommendation, else ``UsageError`` names it.
    """
    missing = [c for c in (ID, DS, CPU, MEMORY) if c not in usage_next_window.columns]
    if missing:
        raise UsageError(f"usage window: missing column(s) {missing}")
    req = recommendation.pivot_table(index=ID, columns=RESOURCE, values=column, aggfunc="last")
    frame = usage_next_window[[ID, CPU, MEMORY]].copy()
    frame[ID] = frame[ID].astype(str)
    req.index = req.index.astype(str)
    for res in RESOURCES:
        known = req[res].dropna() if res in req.columns else pd.Series(dtype=float)
        lacking = sorted(set(frame[ID]) - set(known.index))
        if lacking:
            raise UsageError(f"no {res} recommendation ({column}) for container {lacking[0]} ({len(lacking)} lack one)")
        frame[f"{res}_req"] = frame[ID].map(known).astype(float)
    for res in RESOURCES:
        r, u = frame[f"{res}_req"].to_numpy(), frame[res].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[f"{res}_slack"] = np.where(r > 0, (r - u) / r, np.nan)
        frame[f"{res}_above"] = (u > r).astype(float)
    out = frame.groupby(ID, sort=True).agg(
        samples=(CPU, "size"),
        cpu_request=("cpu_req", "last"), memory_request=("memory_req", "last"),
        cpu_slack=("cpu_slack", "mean"), memory_slack=("memory_slack", "mean"),
        cpu_above_request=("cpu_above", "mean"), memory_overruns=("memory_above", "sum"),
        cpu_usage_mean=(CPU, "mean"), memory_usage_mean=(MEMORY, "mean"),
    ).reset_index()
    out["memory_overruns"] = out["memory_overruns"].astype(int)
    out["memory_overrun"] = out["memory_overruns"] > 0
    return out[list(SCORE_COLUMNS)]


def count_changes(
    decisions: pd.DataFrame, *, column: str = TARGET, at: str = CUTOFF, tolerance: float = 0.0
) -> pd.DataFrame:
    """Number of request changes between consecutive decisions, per container and resource.

    ``decisions`` stacks recommendation frames with a decision-time column ``at`` (default ``cutoff``).
    A change is a relative move larger than ``tolerance`` (``|x_i - x_{i-1}| > tolerance * x_{i-1}``; with
    the default 0 any difference counts). Worked example: targets 1.0, 1.0, 1.2, 1.1 -> 2 changes.
    """
    missing = [c for c in (ID, RESOURCE, column, at) if c not in decisions.columns]
    if missing:
        raise UsageError(f"decisions: missing column(s) {missing}")
    frame = decisions.sort_values([ID, RESOURCE, at], kind="stable")
    prev = frame.groupby([ID, RESOURCE], sort=False)[column].shift(1)
    cur = frame[column].astype(float)
    moved = prev.notna() & ((cur - prev).abs() > tolerance * prev.abs())
    frame = frame.assign(_moved=moved.astype(int))
    out = frame.groupby([ID, RESOURCE], sort=True).agg(decisions=(at, "size"), changes=("_moved", "sum"))
    return out.reset_index()


def score_summary(scores: pd.DataFrame) -> dict[str, float]:
    """Fleet figures from ``score_window`` rows: median/p90 slack over containers, throttled time, overruns.

    ``cpu_above_request`` is sample-weighted (total samples above / total samples).
    """
    n = scores["samples"].to_numpy(dtype=float)
    above = float((scores["cpu_above_request"].to_numpy(dtype=float) * n).sum() / n.sum()) if n.sum() else np.nan
    return {
        "containers": float(len(scores)),
        "cpu_slack_median": float(scores["cpu_slack"].median()),
        "cpu_slack_p90": float(scores["cpu_slack"].quantile(0.9)),
        "memory_slack_median": float(scores["memory_slack"].median()),
        "memory_slack_p90": float(scores["memory_slack"].quantile(0.9)),
        "cpu_above_request": above,
        "memory_overruns": float(scores["memory_overruns"].sum()),
        "containers_with_memory_overrun": float(scores["memory_overrun"].sum()),
    }
