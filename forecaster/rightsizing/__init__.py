"""Borg-style resource prediction: predicted actual use against requests, and right-sized requests.

Pure computation (no outside clients). Usage history in, recommendations and reports out.

Modules, by role: ``frames`` (column names, validation), ``history`` (per-container history before
``now``), ``histogram`` (VPA's bucketed decaying histogram), ``estimators`` (percentiles, peaks, current
request), ``wrappers`` (margin, floor, confidence, OOM bump, memory peak floor, clamp, rounding),
``selector`` (per-container rule choice by recent cost, siblings for new containers), ``policies`` (the one
place they are composed: calibrated (the default), VPA, moving window, keep-current, ..., plus a registry),
``recommend`` (the recommendation frame), ``risk`` and ``report`` (slack, savings, risk, window scoring), ``sizer``
(``RightSizer``: fit once, update daily, decide for every container) and ``api`` (``rightsize``, one decision).
"""

from forecaster.rightsizing.api import RightsizingResult, rightsize
from forecaster.rightsizing.estimators import (
    CurrentRequest,
    DailyPeaks,
    DecayingHistogramPercentile,
    Estimate,
    Estimator,
    LoadAdjustedPercentile,
    MovingWindowPeak,
    MovingWindowPercentile,
)
from forecaster.rightsizing.frames import (
    LOW_CONFIDENCE,
    RECOMMENDATION_COLUMNS,
    RESOURCES,
    LowConfidenceWarning,
    UsageError,
    validate_ooms,
    validate_usage,
)
from forecaster.rightsizing.history import ContainerHistory, Fleet, histories
from forecaster.rightsizing.policies import (
    DEFAULT_POLICY,
    POLICIES,
    Policy,
    calibrated_policy,
    get_policy,
    keep_current_policy,
    moving_window_policy,
    register_policy,
    vpa_policy,
)
from forecaster.rightsizing.recommend import recommend, recommend_histories
from forecaster.rightsizing.report import (
    container_report,
    count_changes,
    group_report,
    score_summary,
    score_window,
)
from forecaster.rightsizing.risk import exceedance_probability, quantile_table, risk_from_quantiles
from forecaster.rightsizing.sizer import RightSizer
from forecaster.rightsizing.wrappers import (
    Clamp,
    ConfidenceMultiplier,
    Margin,
    MinResources,
    OOMBump,
    PeakFloor,
    RoundCPU,
)

__all__ = [
    "DEFAULT_POLICY",
    "LOW_CONFIDENCE",
    "POLICIES",
    "RECOMMENDATION_COLUMNS",
    "RESOURCES",
    "Clamp",
    "ConfidenceMultiplier",
    "ContainerHistory",
    "CurrentRequest",
    "DailyPeaks",
    "DecayingHistogramPercentile",
    "Estimate",
    "Estimator",
    "Fleet",
    "LoadAdjustedPercentile",
    "LowConfidenceWarning",
    "Margin",
    "MinResources",
    "MovingWindowPeak",
    "MovingWindowPercentile",
    "OOMBump",
    "PeakFloor",
    "Policy",
    "RightSizer",
    "RightsizingResult",
    "RoundCPU",
    "UsageError",
    "calibrated_policy",
    "container_report",
    "count_changes",
    "exceedance_probability",
    "get_policy",
    "group_report",
    "histories",
    "keep_current_policy",
    "moving_window_policy",
    "quantile_table",
    "recommend",
    "recommend_histories",
    "register_policy",
    "rightsize",
    "risk_from_quantiles",
    "score_summary",
    "score_window",
    "validate_ooms",
    "validate_usage",
    "vpa_policy",
]
