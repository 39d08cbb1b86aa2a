"""The record of one scaling decision (DESIGN.md "Contracts" -> "Scaling decision"), and a frame of many.

Every decision says what the forecast said, what it would take, what the reactive rule wanted, which bounds and
rules acted, what was written and why, so a dry run (``Recommend`` mode) can be read without the code.

Pure: pandas only. Built by ``ScalingPolicy``; read by the simulator, the controller and reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

RULES: tuple[str, ...] = (
    "reactive_floor",
    "min",
    "max",
    "cooldown",
    "rate_limit",
    "confident",
    "stale",
    "uncovered",
    "breaker_open",
    "hold",
    "release",
)
"""Names that may appear in ``ScalingDecision.rules``, in the order the policy applies them:
``reactive_floor`` raised the value to what the reactive rule wants; ``min``/``max`` clamped; ``cooldown`` blocked a
decrease soon after an increase; ``rate_limit`` slowed a decrease; ``confident`` let a confident forecast of falling
load lower what the cool-down or rate limit held (``PolicySettings.confident_scale_down``); ``stale`` (forecast too old
or absent), ``uncovered`` (no forecast row in the lead window) and ``breaker_open`` (recent error far above backtest
error) are fallbacks, answered by ``hold`` (keep the last safe value) or, after ``release_after_s``, ``release`` (step
the held floor down towards the reactive floor)."""


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    """One decision of the predictive floor (an HPA ``minReplicas``) for one workload at one time."""

    time: pd.Timestamp
    """When the decision was made (UTC)."""
    issued_at: pd.Timestamp | None
    """Issue time of the forecast used, ``None`` when there was none."""
    band_column: str
    """The band that set the floor, e.g. ``ensemble-hi-80``."""
    band: dict[str, float]
    """The forecast values (every band column) at the step where the chosen band peaks in the lead window."""
    peak_demand: float | None
    """Largest value of the chosen band over ``[time, time + lead]``; ``None`` without a usable forecast."""
    capacity_per_pod: float
    """Demand one pod serves at 100 % utilisation."""
    forecast_replicas: int | None
    """Replicas the forecast asks for: ``ceil(peak * (1 + margin) / (capacity * target))``."""
    reactive_floor: int
    """Replicas the reactive rule wants now."""
    bounds: tuple[int, int]
    """``(min_replicas, max_replicas)`` applied."""
    previous: int
    """Floor in force before this decision."""
    value: int
    """Floor in force after it: the ``minReplicas`` written (equal to ``previous`` when nothing changed)."""
    rules: tuple[str, ...] = field(default_factory=tuple)
    """Rules that changed or held the value, in the order applied (see ``RULES``)."""
    reason: str = ""
    """One human sentence: why this value."""
    fell_back: bool = False
    """True when the forecast was not used (stale, uncovered or breaker open): the reactive HPA is in charge."""
    workload: str = ""
    """Workload id, when the caller named one."""

    @property
    def changed(self) -> bool:
        """Whether the floor moved."""
        return self.value != self.previous


def decisions_frame(decisions: list[ScalingDecision]) -> pd.DataFrame:
    """One row per decision; ``band`` stays a dict column, ``rules`` a comma-joined string, plus ``changed``."""
    cols = [f for f in ScalingDecision.__dataclass_fields__]
    if not decisions:
        return pd.DataFrame(columns=[*cols, "changed"])
    rows = []
    for d in decisions:
        row = asdict(d)
        row["rules"] = ",".join(d.rules)
        row["changed"] = d.changed
        rows.append(row)
    return pd.DataFrame(rows, columns=[*cols, "changed"])
