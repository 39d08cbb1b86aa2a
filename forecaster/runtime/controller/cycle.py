"""The state one controller cycle carries from step to step: a ``PolicyWork`` per policy, the ``WriteGuard``.

``PolicyWork`` is filled in as the steps run (spec, HPA, VPA, history, forecast, plans) and records each failure
with the step and a CamelCase reason, so a failed policy is reported, written to its status and counted, and the
remaining steps skip only what depends on the part that failed.

``WriteGuard`` is asked before every write: false under ``--dry-run`` or once the Lease was lost in this cycle
(``LeaderElector.check`` re-reads it before each write). Once false for leadership it stays false until the next
cycle, so a cycle never writes after losing the Lease.

Not pure (the guard reads the Lease). Called by ``forecaster.runtime.controller.steps`` and ``.run``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecaster.contracts.modes import Mode
from forecaster.cycle.accuracy import ErrorSummary
from forecaster.cycle.decide import FloorPlan
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.spec import PolicySpec
from forecaster.runtime.controller.report import CycleReport, PolicyReport
from forecaster.runtime.controller.vpa import ContainerRecommendation
from forecaster.runtime.leader import LeaderElector
from forecaster.scaling.joint import JointChoice, JointSetting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """Why part of a policy's cycle failed: the step, a CamelCase reason and the message."""

    step: str
    reason: str
    message: str
    part: str = "hpa"
    """Which part it stops: ``hpa`` (the floor), ``vpa`` (the recommendation) or ``policy`` (everything)."""


@dataclass
class PolicyWork:
    """One policy going through the cycle."""

    obj: dict[str, Any]
    report: PolicyReport
    spec: PolicySpec | None = None
    status: dict[str, Any] = field(default_factory=dict)
    hpa: dict[str, Any] | None = None
    vpa: dict[str, Any] | None = None
    history: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    """The business events in the policy's scope (an Events frame; ``None``: none, or no store)."""
    usage: tuple[pd.DataFrame, pd.DataFrame | None] | None = None
    forecast: IssuedForecast | None = None
    errors: ErrorSummary | None = None
    """Recent and backtest forecast error, for the circuit breaker."""
    joint_setting: JointSetting | None = None
    """The joint policy's setting this cycle plans with (``None``: the spec's own settings; ``controller.joint``)."""
    joint_choice: JointChoice | None = None
    """The joint policy's choice made this cycle (``None``: not chosen again this cycle)."""
    joint_due: str | None = None
    """Why it was chosen again this cycle."""
    plan: FloorPlan | None = None
    floor_applied: bool = False
    """The plan's floor is in force on the HPA after the write step (Auto)."""
    recommendations: list[ContainerRecommendation] | None = None
    vpa_status: dict[str, Any] | None = None
    vpa_written: bool = False
    failures: list[Failure] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.report.key

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def mode(self) -> str:
        return self.report.mode

    @property
    def forecast_problem(self) -> Failure | None:
        """Why no fresh forecast was made this cycle (fetching or forecasting failed), if so."""
        return next((f for f in self.failures if f.part == "forecast"), None)

    def failed(self, part: str) -> bool:
        """Whether ``part`` (or the whole policy) has failed earlier in the cycle."""
        return any(f.part in (part, "policy") for f in self.failures)

    def fail(self, step: str, reason: str, message: str, part: str = "hpa") -> None:
        failure = Failure(step, reason, " ".join(str(message).split()), part)
        self.failures.append(failure)
        self.report.errors.append(f"{step}: {failure.message}")
        log.warning("policy %s failed at %s (%s): %s", self.key, step, reason, failure.message)

    def involved(self) -> dict[str, Any]:
        """Object reference of the policy, for Events."""
        meta = self.obj.get("metadata") or {}
        ref = {"apiVersion": self.obj.get("apiVersion", "forecaster.io/v1alpha1"),
               "kind": self.obj.get("kind", "PredictiveScalingPolicy"),
               "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")}
        return {k: v for k, v in ref.items() if v}


class WriteGuard:
    """May this cycle write now? (module docstring)"""

    def __init__(self, elector: LeaderElector | None, *, dry_run: bool = False) -> None:
        self.elector = elector
        self.dry_run = dry_run
        self.lost = False

    def allowed(self) -> bool:
        if self.lost:
            return False
        if self.elector is not None and not self.elector.check():
            self.lost = True
            log.warning("lease lost mid-cycle: no further writes in this cycle")
            return False
        return True


@dataclass
class Cycle:
    """Everything one ``run_once`` works on."""

    now: pd.Timestamp
    guard: WriteGuard
    report: CycleReport
    works: list[PolicyWork] = field(default_factory=list)
    listed: bool = False
    """The policies were listed (orphan HPAs may only be judged when we know every policy)."""

    def active(self) -> list[PolicyWork]:
        """Policies with a valid spec, not Off, whose whole cycle has not failed."""
        return [w for w in self.works if w.spec is not None and w.mode != Mode.OFF and not w.failed("policy")]
