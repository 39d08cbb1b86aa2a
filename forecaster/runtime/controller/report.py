"""What one controller cycle did: per policy the decision, the writes and the errors; per step the time taken.

``CycleReport`` is what ``Controller.run_once`` returns and what ``forecaster controller --once`` prints
(``render``) or dumps as JSON (``to_dict``). ``PolicyReport`` collects, as the steps go, the mode, the floor plan,
the VPA recommendation, the model serving (champion, challenger in shadow), warnings, every write made
(``"patch hpa shop/web minReplicas 2 -> 7"``) or skipped, and every error as ``"<step>: <message>"``.

Pure: standard library and pandas. Called by ``forecaster.runtime.controller.run`` and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecaster.cycle.decide import FloorPlan
from forecaster.runtime.controller.vpa import ContainerRecommendation


@dataclass
class PolicyReport:
    """One policy's cycle."""

    key: str
    mode: str = ""
    plan: FloorPlan | None = None
    recommendations: list[ContainerRecommendation] | None = None
    writes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Changes not made, with why (not leader, conflicts exhausted, dry run)."""
    errors: list[str] = field(default_factory=list)
    forecast_issued_at: pd.Timestamp | None = None
    model: str = ""
    """The model behind the forecast: the champion's version and, while one runs in shadow, the challenger's standing
    (``forecaster.runtime.controller.rollout``); empty without a rollout provider."""
    warnings: list[str] = field(default_factory=list)
    """What to fix that does not stop the cycle (a per-pod demand query: the feedback-loop guard)."""

    @property
    def floor(self) -> int | None:
        return None if self.plan is None else self.plan.value

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "policy": self.key,
            "mode": self.mode,
            "floor": self.floor,
            "decision": None if plan is None else {
                "summary": plan.summary, "reason": plan.reason, "previous": plan.decision.previous,
                "value": plan.value, "forecast_replicas": plan.decision.forecast_replicas,
                "reactive_floor": plan.reactive, "peak_demand": plan.decision.peak_demand,
                "bounds": list(plan.decision.bounds), "rules": list(plan.decision.rules),
                "explanation": plan.decision.reason,
            },
            "vpa": None if self.recommendations is None else [r.as_vpa() for r in self.recommendations],
            "forecast_issued_at": None if self.forecast_issued_at is None else self.forecast_issued_at.isoformat(),
            "model": self.model,
            "warnings": list(self.warnings),
            "writes": list(self.writes),
            "skipped": list(self.skipped),
            "errors": list(self.errors),
        }


@dataclass
class CycleReport:
    """One ``run_once``."""

    now: pd.Timestamp
    identity: str
    leader: bool = False
    steps: dict[str, float] = field(default_factory=dict)
    """Step name -> seconds taken."""
    policies: list[PolicyReport] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    """HPAs whose own floor was put back because no valid policy manages them any more."""
    errors: list[str] = field(default_factory=list)
    """Errors of the cycle as a whole (e.g. the policies could not be listed)."""

    def policy(self, key: str) -> PolicyReport:
        """The report of policy ``namespace/name``; ``KeyError`` when the cycle did not see it."""
        for item in self.policies:
            if item.key == key:
                return item
        raise KeyError(key)

    @property
    def writes(self) -> list[str]:
        return [w for p in self.policies for w in p.writes] + list(self.restored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(), "identity": self.identity, "leader": self.leader,
            "steps_s": {k: round(v, 4) for k, v in self.steps.items()},
            "policies": [p.to_dict() for p in self.policies],
            "restored": list(self.restored), "errors": list(self.errors),
        }

    def render(self) -> list[str]:
        """Plain lines for a terminal or a log."""
        steps = ", ".join(f"{k} {v:.2f}s" for k, v in self.steps.items())
        lines = [f"cycle {self.now.isoformat()} as {self.identity}: "
                 f"{'leader' if self.leader else 'not leader (nothing done)'}; {steps}"]
        lines += [f"  error: {e}" for e in self.errors]
        for p in self.policies:
            head = f"  {p.key} [{p.mode or '?'}]"
            if p.plan is not None:
                head += f" {p.plan.summary} ({p.plan.reason}): {p.plan.decision.reason}"
            lines.append(head)
            if p.recommendations:
                for rec in p.recommendations:
                    item = rec.as_vpa()
                    lines.append(f"    vpa {rec.container}: target {item['target']}, lower {item['lowerBound']}, "
                                 f"upper {item['upperBound']}")
            if p.model:
                lines.append(f"    model {p.model}")
            lines += [f"    warning {w}" for w in p.warnings]
            lines += [f"    wrote {w}" for w in p.writes]
            lines += [f"    skipped {s}" for s in p.skipped]
            lines += [f"    error {e}" for e in p.errors]
        lines += [f"  restored {r}" for r in self.restored]
        return lines
