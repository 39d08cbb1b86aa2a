"""``rightsize``: the one-call Python API - recommendations plus the operator reports.

``rightsize(usage, ooms, policy=..., now=..., window=...)`` is one decision of a ``sizer.RightSizer`` fitted on the
whole input: it validates the input once, recommends requests under the policy (``recommend.py``) and builds the
per-container, per-namespace and per-team reports (``report.py``). Re-exported as ``forecaster.rightsize``.

Pure: pandas only. Called by notebooks and tests; the CLI, service and controller use ``RightSizer`` directly.
"""

from __future__ import annotations

import pandas as pd

from forecaster.rightsizing.policies import DEFAULT_POLICY, Policy
from forecaster.rightsizing.sizer import PREDICTIVE_POLICIES, RightSizer, RightsizingResult, window_alias

__all__ = ["PREDICTIVE_POLICIES", "RightsizingResult", "rightsize", "window_alias"]


def rightsize(
    usage: pd.DataFrame,
    ooms: pd.DataFrame | None = None,
    *,
    policy: Policy | str = DEFAULT_POLICY,
    now: object = None,
    window: str | pd.Timedelta = "24h",
    prediction: pd.DataFrame | None = None,
    planned_memory_overruns: float | None = None,
) -> RightsizingResult:
    """Recommend requests for every container and report slack, savings and risk: one decision of a
    ``RightSizer`` fitted on all of ``usage`` (``RightSizer(policy, ...).fit(usage, ooms, now).decide()``).

    ``usage``/``ooms``: the frames of ``frames.py``. ``policy``: a ``Policy`` or a registered name
    (``"calibrated"``, ``"vpa"``, ``"moving-window"``, ``"keep"``, ...). ``now``: decision time (default: last
    sample plus one step); only data before it is used. ``window``: how much recent use the reports describe.
    ``prediction``: optional quantile table of predicted use for the reports. ``policy="forecaster"`` (and
    ``"forecast-scaled-vpa"``, the VPA's histograms moved by the forecast level) predicts the next ``window`` of
    every container first (``predict.UsagePredictor``: engine forecast, or a decaying histogram for short
    histories) and reports that prediction. ``planned_memory_overruns``: the fraction of each policy's
    memory-window samples the user accepts above the memory target (an OOM risk; None/0: none, the memory target
    covers the window's peak; ``policies.Policy``). Raises ``UsageError`` on bad input, before anything is
    computed. Containers with less history than the policy's ``min_history`` get ``low_confidence``
    recommendations, no risk figure and a ``LowConfidenceWarning`` (also in ``warnings``). For daily decisions
    on a fleet keep a ``RightSizer`` instead: it does not replay the whole history every day.
    """
    sizer = RightSizer(policy, window=window, retention=None, planned_memory_overruns=planned_memory_overruns)
    return sizer.fit(usage, ooms, now).decide(prediction=prediction, stacklevel=3)
