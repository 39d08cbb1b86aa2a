"""The controller's side of model rollout and of the feedback-loop guard: the ``rollout`` step and two conditions.

The ``rollout`` step (between ``write`` and ``record``), per policy with a valid spec:

- **feedback-loop guard**: a demand query that measures per-pod load (``forecaster.cycle.rollout.per_pod_demand``:
  an ``avg`` over pods, a division by a pod or replica count, a utilisation) is one our own scaling changes; the
  policy gets a warning in the cycle report, the condition ``DemandSignal`` False (reason ``PerPodDemand``) and, when
  the condition turns False, a ``Warning`` Event ``PerPodDemand``. The policy still runs: the warning says what to fix.
- **rollout events**: what happened to the policy's models this cycle (``RolloutProvider.drain``) becomes an Event on
  the policy: ``ChallengerFitted``, ``ModelPromoted``, ``ChallengerRejected`` (Warning: a refit kept out, with the
  scores), ``ChallengerSuperseded``, ``ModelRolledBack``; the model history itself is in the store
  (``forecaster.runtime.rollout``).
- the report's ``model`` line: the champion's version, and the challenger's standing when one runs in shadow; it is
  the message of the condition ``ModelRollout`` (reason ``ChampionServing``, or ``RolledBack`` while a rolled-back
  model serves).

Events are writes: made only while this replica holds the Lease. A provider without rollout (a fake, the plain engine
provider) gives no events and no ``ModelRollout`` condition.

Not pure (Events through the cluster API). Called by ``forecaster.runtime.controller.run`` (the step) and
``.record`` (``conditions``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from forecaster.contracts.errors import ForecasterError
from forecaster.cycle.forecast import RolloutProvider
from forecaster.cycle.rollout import CHALLENGER, PROMOTED, REJECTED, ROLLED_BACK, SUPERSEDED, per_pod_demand
from forecaster.cycle.state import set_condition
from forecaster.runtime.controller.cycle import Cycle, PolicyWork

if TYPE_CHECKING:
    from forecaster.runtime.controller.run import Controller

log = logging.getLogger(__name__)

DEMAND_SIGNAL = "DemandSignal"
MODEL_ROLLOUT = "ModelRollout"
EVENT_REASONS: dict[str, tuple[str, str]] = {
    CHALLENGER: ("ChallengerFitted", "Normal"), PROMOTED: ("ModelPromoted", "Normal"),
    REJECTED: ("ChallengerRejected", "Warning"), SUPERSEDED: ("ChallengerSuperseded", "Normal"),
    ROLLED_BACK: ("ModelRolledBack", "Normal"),
}
"""Rollout event kind -> Kubernetes Event ``(reason, type)``."""
MESSAGE_CHARS = 1024


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def model_line(provider: RolloutProvider, key: str) -> str:
    """``champion <version>`` and, when a challenger runs in shadow, its standing (``rollout.Evidence.summary``)."""
    champion = provider.model(key)
    if champion is None:
        return ""
    line = f"champion {champion.version or '(unsaved)'}"
    if champion.pinned_at is not None:
        line += f" (rolled back to at {champion.pinned_at.isoformat()})"
    challenger = provider.challenger(key)
    if challenger is not None:
        evidence = provider.evidence(key)
        line += f"; challenger {challenger.version or '(unsaved)'} in shadow: " + (
            evidence.summary() if evidence is not None else "no point scored yet")
    return line


def _event(ctl: Controller, cycle: Cycle, work: PolicyWork, reason: str, type_: str, message: str) -> None:
    if not cycle.guard.allowed():
        work.report.skipped.append(f"event {reason}: this replica no longer holds the lease")
        return
    try:
        ctl.cluster.create_event(work.namespace, work.involved(), reason=reason, message=message[:MESSAGE_CHARS],
                                 type_=type_)
        work.report.writes.append(f"event {reason} {work.key}")
    except ForecasterError as exc:  # an Event describes; its failure changes nothing
        log.warning("event %s about %s not created: %s", reason, work.key, exc)


def announce(ctl: Controller, cycle: Cycle) -> None:
    """The ``rollout`` step (module docstring)."""
    provider = ctl.forecasts if isinstance(ctl.forecasts, RolloutProvider) else None
    for work in cycle.works:
        if work.spec is None:
            continue
        warning = per_pod_demand(work.spec.query)
        if warning:
            work.report.warnings.append(warning)
            old = _condition(work.status, DEMAND_SIGNAL)
            if old is None or old.get("status") != "False":
                _event(ctl, cycle, work, "PerPodDemand", "Warning", f"spec.demand.query: {warning}")
        if provider is None:
            continue
        for event in provider.drain(work.key):
            reason, type_ = EVENT_REASONS.get(event.kind, ("ModelRollout", "Normal"))
            _event(ctl, cycle, work, reason, type_, f"model {event.version}: {event.reason}")
        work.report.model = model_line(provider, work.key)


def conditions(work: PolicyWork, conditions_: list[dict[str, Any]], now: pd.Timestamp,
               generation: int) -> list[dict[str, Any]]:
    """``conditions_`` with ``DemandSignal`` and ``ModelRollout`` set from this cycle's report (module docstring)."""
    warning = next((w for w in work.report.warnings if w.startswith("demand query is per-pod")), "")
    if warning:
        conditions_ = set_condition(conditions_, DEMAND_SIGNAL, False, "PerPodDemand", warning, now, generation)
    elif _condition({"conditions": conditions_}, DEMAND_SIGNAL) is not None:
        conditions_ = set_condition(conditions_, DEMAND_SIGNAL, True, "TotalDemand",
                                    "the demand query is not per-pod load", now, generation)
    if work.report.model:
        reason = "RolledBack" if "(rolled back to at" in work.report.model else "ChampionServing"
        conditions_ = set_condition(conditions_, MODEL_ROLLOUT, True, reason, work.report.model[:MESSAGE_CHARS], now,
                                    generation)
    return conditions_
