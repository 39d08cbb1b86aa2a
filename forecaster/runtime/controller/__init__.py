"""The in-cluster controller: ``PredictiveScalingPolicy`` objects in, HPA floors and VPA recommendations out.

Modules by role: ``spec`` (the policy object parsed and validated), ``state`` (what the status remembers),
``hpa``/``vpa``/``quantity`` (reading and writing the autoscalers' objects), ``forecasting`` (history windows, the
engine, the last good forecast), ``accuracy`` (backtest and recent forecast error, for the circuit breaker),
``stored`` (business events in scope and issued forecasts in the store), ``decide`` (the floor plan over
``forecaster.scaling.ScalingPolicy``), ``write`` (guarded, conflict-retried patches and Events), ``record`` (status,
store, metrics), ``cycle`` (what a cycle carries between steps, the write guard), ``steps`` (the named steps),
``run`` (``Controller.run_once``), ``leader`` (Lease election), ``loop`` (the APScheduler jobs), ``health``
(``/healthz``, ``/readyz``, ``/metrics``), ``report`` (what a cycle did).

Not pure: this is the loop. Called by the ``forecaster controller`` command and tests.
"""

from forecaster.cycle.forecast import EngineForecastProvider, ForecastProvider, IssuedForecast, LastGood
from forecaster.cycle.spec import ForecastSpec, PolicySpec, VpaSpec, parse_duration
from forecaster.runtime.controller.report import CycleReport, PolicyReport
from forecaster.runtime.controller.run import Controller, ControllerConfig
from forecaster.runtime.controller.vpa import UsageSource
from forecaster.runtime.leader import LeaderElector

__all__ = [
    "Controller",
    "ControllerConfig",
    "CycleReport",
    "EngineForecastProvider",
    "ForecastProvider",
    "ForecastSpec",
    "IssuedForecast",
    "LastGood",
    "LeaderElector",
    "PolicyReport",
    "PolicySpec",
    "UsageSource",
    "VpaSpec",
    "parse_duration",
]
