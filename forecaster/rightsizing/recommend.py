"""Recommendations: validated usage in, one row per (container, resource) out.

``recommend(usage, ooms, policy=..., now=...)`` validates the whole input first (``validate_usage``,
``validate_ooms``) so one bad container raises ``UsageError`` naming it before anything is computed; then it
cuts per-container histories from the samples before ``now`` and runs the policy's target, lower-bound and
upper-bound chains on each. ``recommend_histories`` is the same second half for callers that validate once
and slide ``now`` (the right-sizing benchmark).

Output: the recommendation frame of ``frames.RECOMMENDATION_COLUMNS`` (+ ``namespace``/``team``). Bounds
are made consistent with the target (``lower_bound <= target <= upper_bound``); when that changes a bound
the reason says so. A container whose history covers less than the policy's ``min_history``
(``ContainerHistory.span``) is marked ``low_confidence`` and its reason starts with
``low confidence: 2.5 h of history, policy vpa needs 24 h``; ``recommend`` then warns
(``frames.LowConfidenceWarning``, text from ``low_confidence_message``).

Pure: numpy and pandas. Called by ``api.rightsize``, the CLI and the benchmark.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.contracts.clock import as_utc as utc_stamp
from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing.estimators import fmt_amount
from forecaster.rightsizing.frames import (
    GROUP_COLUMNS,
    LOW_CONFIDENCE,
    LOWER_BOUND,
    POLICY,
    REASON,
    RECOMMENDATION_COLUMNS,
    REQUEST,
    RESOURCE,
    SOURCE,
    TARGET,
    UNCAPPED_TARGET,
    UPPER_BOUND,
    LowConfidenceWarning,
    UsageError,
    empty_recommendations,
    validate_ooms,
    validate_usage,
)
from forecaster.rightsizing.history import ContainerHistory, histories
from forecaster.rightsizing.policies import Policy, get_policy

LOW_CONFIDENCE_PREFIX = "low confidence: "
"""How the reason of a ``low_confidence`` recommendation starts (``low_confidence_note``, ``confidence_note``)."""
DEFAULT_STEP = pd.Timedelta("1min")
"""Sampling step assumed when no container has two samples (VPA's own one-minute rate)."""


def sampling_step(usage: pd.DataFrame) -> pd.Timedelta:
    """Median spacing between consecutive samples of the same container (validated, sorted frame)."""
    same = usage[ID].to_numpy()[1:] == usage[ID].to_numpy()[:-1]
    ds = usage[DS].to_numpy(dtype="datetime64[ns]")
    gaps = (ds[1:] - ds[:-1])[same]
    gaps = gaps[gaps > np.timedelta64(0, "ns")]
    if gaps.size == 0:
        return DEFAULT_STEP
    return pd.Timedelta(int(np.median(gaps.astype(np.int64))), unit="ns")


def default_now(usage: pd.DataFrame) -> pd.Timestamp:
    """The decision time when none is given: the last sample plus one sampling step, so all data is used."""
    return pd.Timestamp(usage[DS].max()) + sampling_step(usage)


def as_utc(now: object) -> pd.Timestamp:
    """A tz-aware UTC timestamp; tz-naive input is a ``UsageError`` (we never guess a timezone)."""
    return utc_stamp(now, "now", UsageError)


def recommend(
    usage: pd.DataFrame,
    ooms: pd.DataFrame | None = None,
    *,
    policy: Policy | str = "vpa",
    now: object = None,
) -> pd.DataFrame:
    """Recommended requests for every container with samples before ``now``, under ``policy``.

    ``now`` defaults to the last ``ds`` plus one sampling step; only samples and OOM kills strictly before
    it are used. Raises ``UsageError`` for bad input (naming container and field), an unknown policy name,
    or when no container has a sample before ``now``.
    """
    frame = validate_usage(usage)
    kills = validate_ooms(ooms, frame)
    chosen = get_policy(policy)
    when = default_now(frame) if now is None else as_utc(now)
    hs = histories(frame, kills, when)
    if not hs:
        raise UsageError(f"usage frame: no sample before now={when.isoformat()} (first is {frame[DS].min()})")
    extra = tuple(c for c in GROUP_COLUMNS if c in frame.columns)
    recs = recommend_histories(hs, chosen, extra=extra)
    message = low_confidence_message(hs, chosen)
    if message:
        warnings.warn(message, LowConfidenceWarning, stacklevel=2)
    return recs


def fmt_hours(span: pd.Timedelta) -> str:
    """A history length in hours: ``2.5 h``, ``24 h``, ``168 h``."""
    return f"{round(span / pd.Timedelta('1h'), 2):g} h"


def low_confidence_note(h: ContainerHistory, policy: Policy) -> str:
    """``low confidence: 2.5 h of history, policy vpa needs 24 h`` when ``h`` covers less than the policy needs
    (``ContainerHistory.span < Policy.min_history``), else empty."""
    if h.span >= policy.min_history:
        return ""
    return (f"{LOW_CONFIDENCE_PREFIX}{fmt_hours(h.span)} of history, policy {policy.name} needs "
            f"{fmt_hours(policy.min_history)}")


def confidence_note(reason: str) -> str:
    """The ``low confidence: ...`` clause a recommendation's reason starts with (empty when there is none)."""
    head = str(reason).split("; target: ", 1)[0]
    return head if head.startswith(LOW_CONFIDENCE_PREFIX) and head != reason else ""


def low_confidence_message(hs: Sequence[ContainerHistory], policy: Policy) -> str:
    """One warning naming every container with too little history (empty when none), for users and logs."""
    short: dict[str, pd.Timedelta] = {}
    for h in hs:
        if h.span < policy.min_history:
            short[h.unique_id] = min(h.span, short.get(h.unique_id, h.span))
    if not short:
        return ""
    names = ", ".join(f"{uid} ({fmt_hours(span)} of history)" for uid, span in list(short.items())[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    k = len(short)
    return (f"low confidence: {k} container{'s' if k > 1 else ''} with less history than policy {policy.name} "
            f"needs: {names}{more}; it needs {fmt_hours(policy.min_history)}. Their recommendations are marked "
            "low_confidence, carry no risk figure and are never applied in Auto mode")


def _bound_note(kind: str, before: float, after: float, resource: str) -> str:
    if before == after:
        return ""
    return f"; {kind} {fmt_amount(before, resource)} moved to the target {fmt_amount(after, resource)}"


def recommend_histories(
    hs: Sequence[ContainerHistory], policy: Policy, *, extra: tuple[str, ...] = GROUP_COLUMNS
) -> pd.DataFrame:
    """Run ``policy`` on ready-made histories; ``extra`` label columns (namespace, team) are added."""
    rows: list[dict[str, object]] = []
    for h in hs:
        target = policy.estimator("target", h.resource).estimate(h)
        lower = policy.estimator("lower", h.resource).estimate(h)
        upper = policy.estimator("upper", h.resource).estimate(h)
        lo = min(lower.value, target.value)
        hi = max(upper.value, target.value)
        note = low_confidence_note(h, policy)
        reason = (
            (f"{note}; " if note else "")
            + f"target: {target.reason}"
            f" | lower bound: {lower.reason}{_bound_note('lower bound', lower.value, lo, h.resource)}"
            f" | upper bound: {upper.reason}{_bound_note('upper bound', upper.value, hi, h.resource)}"
        )
        row: dict[str, object] = {
            ID: h.unique_id,
            RESOURCE: h.resource,
            REQUEST: h.current_request,
            TARGET: target.value,
            LOWER_BOUND: lo,
            UPPER_BOUND: hi,
            UNCAPPED_TARGET: target.value if target.uncapped is None else target.uncapped,
            SOURCE: target.source,
            REASON: reason,
            POLICY: policy.name,
            LOW_CONFIDENCE: bool(note),
        }
        for col in extra:
            row[col] = h.labels.get(col)
        rows.append(row)
    if not rows:
        return empty_recommendations(extra)
    out = pd.DataFrame(rows)[[*RECOMMENDATION_COLUMNS, *extra]]
    for col in (REQUEST, TARGET, LOWER_BOUND, UPPER_BOUND, UNCAPPED_TARGET):
        out[col] = out[col].astype(float)
    out[LOW_CONFIDENCE] = out[LOW_CONFIDENCE].astype(bool)
    return out
