"""Outcomes of a replay, computed from its per-minute frame.

- ``under_provisioned_minutes``: minutes whose demand exceeds READY capacity (ready pods x capacity per pod, the
  time-weighted mean over the minute's four 15-s syncs);
- ``unserved``: the sum of that excess over all minutes (demand units x minutes: requests, when demand is a rate in
  requests per minute);
- ``replica_minutes``: billed pods (pending + ready) integrated over time, the cost;
- ``scaling_actions``: changes of the workload's desired replicas (``spec.replicas``) written by the HPA.

Pure: numpy/pandas. Built by ``forecaster.simulate.replay``; read by the benchmark, the CLI and plots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecaster.scaling.decision import ScalingDecision, decisions_frame

FRAME_COLUMNS = ("ds", "demand", "desired", "ready", "billed", "capacity", "floor", "reactive_desired")
"""Per-minute frame: demand; ``desired`` replicas at the end of the minute; mean ``ready`` and ``billed`` pods over
the minute; ready ``capacity``; the ``floor`` (``minReplicas``) in force; ``reactive_desired`` = what the
reactive rule wants for the minute's demand, ``ceil(demand / (capacity_per_pod * target))``."""


@dataclass(frozen=True)
class Outcomes:
    """The numbers a replay is judged by (module docstring)."""

    policy: str
    minutes: int
    under_provisioned_minutes: int
    unserved: float
    replica_minutes: float
    scaling_actions: int
    peak_replicas: int
    floor_changes: int = 0
    fallback_decisions: int = 0
    filled_minutes: int = 0

    @classmethod
    def from_frame(cls, policy: str, frame: pd.DataFrame, decisions: list[ScalingDecision], *,
                   scaling_actions: int, filled_minutes: int = 0, floor_changes: int | None = None,
                   fallback_decisions: int | None = None) -> Outcomes:
        """Score a per-minute frame. ``floor_changes``/``fallback_decisions``: counted during the run (so they hold
        when the decisions were not kept); by default counted from ``decisions``."""
        excess = np.maximum(frame["demand"].to_numpy(float) - frame["capacity"].to_numpy(float), 0.0)
        return cls(
            policy=policy,
            minutes=len(frame),
            under_provisioned_minutes=int((excess > 1e-9).sum()),
            unserved=float(excess.sum()),
            replica_minutes=float(frame["billed"].sum()),
            scaling_actions=scaling_actions,
            peak_replicas=int(frame["desired"].max()) if len(frame) else 0,
            floor_changes=sum(d.changed for d in decisions) if floor_changes is None else int(floor_changes),
            fallback_decisions=(sum(d.fell_back for d in decisions) if fallback_decisions is None
                                else int(fallback_decisions)),
            filled_minutes=filled_minutes,
        )

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain dict (for JSON and tables)."""
        return asdict(self)


@dataclass
class ReplayResult:
    """What ``replay`` returns: the outcomes, the per-minute frame and the predictive decisions."""

    outcomes: Outcomes
    frame: pd.DataFrame
    decisions: list[ScalingDecision] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)

    def decisions_frame(self) -> pd.DataFrame:
        """The decisions as a frame (one row each)."""
        return decisions_frame(self.decisions)
