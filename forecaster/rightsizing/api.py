"""``rightsize``: the one-call Python API - recommendations plus the operator reports.

``rightsize(usage, ooms, policy=..., now=..., window=...)`` validates the input once, recommends requests
under the policy (``recommend.py``) and builds the per-container, per-namespace and per-team reports
(``report.py``). Re-exported as ``forecaster.rightsize``; the CLI ``forecaster rightsize`` prints its frames.

Pure: pandas only. Called by notebooks, the CLI and the HTTP API.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from forecaster.frames import DS
from forecaster.rightsizing.frames import (
    GROUP_COLUMNS,
    NAMESPACE,
    TEAM,
    LowConfidenceWarning,
    UsageError,
    validate_ooms,
    validate_usage,
)
from forecaster.rightsizing.history import histories
from forecaster.rightsizing.policies import Policy, get_policy
from forecaster.rightsizing.predict import PREDICTED, predict_usage, request_statistics
from forecaster.rightsizing.recommend import as_utc, default_now, low_confidence_message, recommend_histories
from forecaster.rightsizing.report import container_report, group_report
from forecaster.rightsizing.risk import quantile_table


def window_alias(window: str | pd.Timedelta) -> str:
    """A pandas frequency string for ``window`` (``"24h"`` -> ``"1D"``), as the engine's grid wants it."""
    td = pd.Timedelta(window)
    if td % pd.Timedelta("1D") == pd.Timedelta(0):
        return f"{td // pd.Timedelta('1D')}D"
    return f"{int(td.total_seconds() // 60)}min"


@dataclass(frozen=True)
class RightsizingResult:
    """What ``rightsize`` returns.

    ``recommendations``: the recommendation frame (cores, bytes). ``containers``: per container and resource,
    request vs use, slack, savings, risk (cores, GiB). ``namespaces``/``teams``: the same summed per group
    (``teams`` is empty when the usage has no ``team`` column). ``now`` and ``window``: the decision time
    and the window the use figures cover. ``warnings``: what the user must know before acting (containers
    with less history than the policy needs, whose recommendations are ``low_confidence``); each was also
    issued as a ``LowConfidenceWarning``.
    """

    recommendations: pd.DataFrame
    containers: pd.DataFrame
    namespaces: pd.DataFrame
    teams: pd.DataFrame
    now: pd.Timestamp
    window: pd.Timedelta
    policy: str
    warnings: tuple[str, ...] = ()


PREDICTIVE_POLICIES = frozenset({"forecaster", "forecast-scaled-vpa"})
"""Registered policies that need the engine's prediction table (``rightsize`` computes it for them)."""


def rightsize(
    usage: pd.DataFrame,
    ooms: pd.DataFrame | None = None,
    *,
    policy: Policy | str = "vpa",
    now: object = None,
    window: str | pd.Timedelta = "24h",
    prediction: pd.DataFrame | None = None,
    planned_memory_overruns: float | None = None,
) -> RightsizingResult:
    """Recommend requests for every container and report slack, savings and risk.

    ``usage``/``ooms``: the frames of ``frames.py``. ``policy``: a ``Policy`` or a registered name
    (``"vpa"``, ``"autopilot"``, ``"keep"``, ...). ``now``: decision time (default: last sample plus one
    step); only data before it is used. ``window``: how much recent use the reports describe.
    ``prediction``: optional quantile table of predicted use for the reports. ``policy="forecaster"`` (and
    ``"forecast-scaled-vpa"``, the VPA's histograms moved by the forecast level) predicts the next ``window`` of
    every container first (``predict.predict_usage``: engine forecast, or a
    decaying histogram for short histories) and reports that prediction. ``planned_memory_overruns``: the
    fraction of each policy's memory-window samples the user accepts above the memory target (an OOM risk;
    None/0: none, the memory target covers the window's peak; ``policies.Policy``). Raises ``UsageError`` on
    bad input, before anything is computed. Containers with less history than the policy's ``min_history``
    get ``low_confidence`` recommendations, no risk figure and a ``LowConfidenceWarning`` (also in ``warnings``).
    """
    frame = validate_usage(usage)
    kills = validate_ooms(ooms, frame)
    when = default_now(frame) if now is None else as_utc(now)
    if isinstance(policy, str) and policy in PREDICTIVE_POLICIES:
        predicted = predict_usage(frame, when, window=window_alias(window))
        chosen = get_policy(policy, prediction=predicted, planned_memory_overruns=planned_memory_overruns)
        if prediction is None:
            prediction = quantile_table(request_statistics(predicted), PREDICTED, (80, 95))
    else:
        chosen = get_policy(policy, planned_memory_overruns=planned_memory_overruns)
    span = pd.Timedelta(window)
    if span <= pd.Timedelta(0):
        raise UsageError(f"window={window!r} must be positive")
    hs = histories(frame, kills, when)
    if not hs:
        raise UsageError(f"usage frame: no sample before now={when.isoformat()} (first is {frame[DS].min()})")
    extra = tuple(c for c in GROUP_COLUMNS if c in frame.columns)
    recs = recommend_histories(hs, chosen, extra=extra)
    containers = container_report(frame, recs, now=when, window=span, prediction=prediction)
    namespaces = group_report(containers, NAMESPACE)
    teams = group_report(containers, TEAM) if TEAM in frame.columns else group_report(containers.iloc[:0], TEAM)
    message = low_confidence_message(hs, chosen)
    if message:
        warnings.warn(message, LowConfidenceWarning, stacklevel=2)
    notes = (message,) if message else ()
    return RightsizingResult(recs, containers, namespaces, teams, when, span, chosen.name, notes)
