"""The joint policy in the controller's decide step: which ``JointSetting`` each ``Joint`` policy runs with.

For a policy with ``spec.scaling.policy: Joint`` (and an HPA), once per refit interval (``simulate.retune.due``) the
setting is chosen again from a replay of the policy's own last ``historyDays`` days (``riskDays`` when longer: the
risk is judged on those, the cost on the last ``historyDays``): its demand over them (the
demand query, fetched again over those days at the forecast's frequency) and the forecasts the controller issued and
stored over them (``stored.recent_forecasts``; without a store there are none, so the setting in force is kept and
the reason says so). Between choices, the setting in force is read back from ``status.jointSetting``. Whatever is
used, its HPA target is brought within the spec's ``minTargetUtilization``/``maxTargetUtilization`` as a whole
percent (``retune.in_bounds``; a status edited by hand cannot widen them). A choice that keeps nothing in force
(input stale before any setting was chosen) leaves the spec's own settings and the HPA's own target in force. The
decide step then plans the floor with the setting (``cycle.decide.plan_floor(setting=)``); the record step writes
the choice to the status and the decision record (``record``). A store or Prometheus failure, or input the replay
rejects, keeps the setting in force (as stale input does) and says why; it never stops the floor decision.

Not pure (reads the store). Called by ``forecaster.runtime.controller.steps.decide``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from forecaster.cycle import hpa as hpa_
from forecaster.cycle.forecast import demand_history
from forecaster.runtime.controller import stored
from forecaster.runtime.controller.cycle import Cycle, PolicyWork
from forecaster.scaling.joint import keep
from forecaster.simulate import retune

if TYPE_CHECKING:
    from forecaster.runtime.controller.run import Controller

log = logging.getLogger(__name__)
DEFAULT_EVERY = pd.Timedelta("1D")


def refit_interval(ctl: Controller) -> pd.Timedelta:
    """The forecast provider's refit interval (a day when it does not say)."""
    every = getattr(ctl.forecasts, "refit_every", None)
    try:
        return pd.Timedelta(every) if every is not None else DEFAULT_EVERY
    except (TypeError, ValueError):
        return DEFAULT_EVERY


def choose(ctl: Controller, cycle: Cycle, work: PolicyWork) -> None:
    """Set ``work.joint_setting`` (and, when chosen again now, ``work.joint_choice`` and ``work.joint_due``)."""
    assert work.spec is not None and work.hpa is not None
    spec = work.spec
    if not spec.scaling.enabled or spec.served_to_keda:
        return
    bounds = spec.scaling.bounds
    current = retune.current_setting(work.status)
    why = retune.due(spec, work.status, cycle.now, refit_interval(ctl))
    if why is not None:
        settings = spec.to_settings(hpa_.original_floor(work.hpa, spec.key, work.status), hpa_.max_replicas(work.hpa))
        start = cycle.now.floor("1D") - pd.Timedelta(days=spec.scaling.replay_days)
        try:
            issued = [] if ctl.store is None else stored.recent_forecasts(
                ctl.store, spec.key, stored.fingerprint(spec), start - pd.Timedelta(seconds=spec.stale_after_s),
                cycle.now)
            history = None
            if issued:  # the replay needs the demand over the whole replayed days, not only the forecast's window
                frame = ctl.metrics.query_range(spec.query, start, cycle.now,
                                                pd.Timedelta(seconds=spec.forecast.frequency_s), id_labels=None)
                history = demand_history(frame, spec.key)
            choice = retune.rechoose(spec, settings, history, issued, work.forecast, current, cycle.now)
        except Exception as exc:  # the choice is an input of the floor: its failure keeps the setting in force
            log.warning("policy %s: joint policy not chosen again: %s", spec.key, exc)
            choice = keep(current, bounds, f"the replay could not be made ({type(exc).__name__}: {exc})")
        work.joint_choice, work.joint_due = choice, why
        log.info("policy %s: joint policy (%s): %s", spec.key, why, choice.reason)
        if choice.stale and current is None:  # nothing in force yet and nothing to choose from
            work.joint_due = f"{why} (none in force yet: the spec's own settings and the HPA's own target stay)"
            return
        current = choice.setting
    if current is not None:
        work.joint_setting = retune.in_bounds(current, bounds)
