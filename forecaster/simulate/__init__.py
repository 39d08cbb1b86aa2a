"""Cluster replay: a demand trace through a simulated reactive HPA, predictive and oracle policies.

Public names: ``replay``, ``ReplayResult``, ``Outcomes``, ``capacity_for_peak``, ``minute_trace``,
``MinuteTrace``, ``ForecastProvider``, ``FrameProvider``, ``OracleProvider``, ``ISSUED_AT``, ``ReactivePolicy``,
``PredictivePolicy``, ``OraclePolicy``, ``FloorPolicy``, ``HPA``, ``HPAConfig``, ``replica_count``.
Plots live in ``forecaster.plots`` (``replay_chart``, ``pareto_chart``; matplotlib is not imported here).

Pure computation (no outside clients).
"""

from forecaster.simulate.hpa import HPA, HPAConfig, ScalingPolicyRule, ScalingRules, replica_count
from forecaster.simulate.policies import FloorPolicy, OraclePolicy, PredictivePolicy, ReactivePolicy
from forecaster.simulate.providers import ISSUED_AT, ForecastProvider, FrameProvider, OracleProvider
from forecaster.simulate.replay import replay
from forecaster.simulate.result import FRAME_COLUMNS, Outcomes, ReplayResult
from forecaster.simulate.trace import MinuteTrace, capacity_for_peak, minute_trace

__all__ = [
    "FRAME_COLUMNS",
    "HPA",
    "ISSUED_AT",
    "FloorPolicy",
    "ForecastProvider",
    "FrameProvider",
    "HPAConfig",
    "MinuteTrace",
    "OraclePolicy",
    "OracleProvider",
    "Outcomes",
    "PredictivePolicy",
    "ReactivePolicy",
    "ReplayResult",
    "ScalingPolicyRule",
    "ScalingRules",
    "capacity_for_peak",
    "minute_trace",
    "replay",
    "replica_count",
]
