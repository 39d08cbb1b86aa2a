"""Predictive horizontal scaling: a demand forecast band turned into an HPA ``minReplicas`` floor.

Public names: ``PolicySettings``, ``ScalingPolicy``, ``ScalingDecision``, ``decisions_frame``, ``ForecastBand``,
``replicas_for_demand``, ``learn_capacity_per_pod``, ``lead_time_s``, ``band_column``, ``CircuitBreaker``,
``ErrorTracker``.

Pure computation (no outside clients).
"""

from forecaster.scaling.band import ForecastBand, peak_in_window
from forecaster.scaling.breaker import CircuitBreaker, ErrorTracker
from forecaster.scaling.capacity import learn_capacity_per_pod, replicas_for_demand
from forecaster.scaling.decision import RULES, ScalingDecision, decisions_frame
from forecaster.scaling.policy import ScalingPolicy
from forecaster.scaling.settings import PolicySettings, band_column, lead_time_s

__all__ = [
    "RULES",
    "CircuitBreaker",
    "ErrorTracker",
    "ForecastBand",
    "PolicySettings",
    "ScalingDecision",
    "ScalingPolicy",
    "band_column",
    "decisions_frame",
    "lead_time_s",
    "learn_capacity_per_pod",
    "peak_in_window",
    "replicas_for_demand",
]
