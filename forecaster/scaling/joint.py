"""The joint policy's choice: which forecast floor and which HPA target utilisation a workload runs with.

The predictive floor alone only adds replicas on top of a reactive HPA at a fixed target, so it can only cost more
at that target. The joint policy lets the reactive part run hotter (a higher HPA target) behind a floor that covers
the predictable load, and picks the pair per workload from a replay of the workload's own recent history
(``forecaster.simulate.tune`` replays; this module only chooses, so it is pure and cheap to test).

A ``JointSetting`` is one point of a small bank: the floor's band (``quantile``) and ``margin``, the HPA's
``target_utilisation`` (also the utilisation the floor is sized at) and the scale-down pace (``"steady"``: 10 %/min
after a 5-min cool-down; ``"confident"``: the floor may follow a confident forecast of falling load down at once,
``PolicySettings.confident_scale_down``). The choice, ``choose``:

1. Input unusable (too little history, or the forecasts were stale for much of it): no change; the setting in
   force is kept (its target brought within the policy's bounds if they changed).
2. Allowed risk from the ``RiskBudget``: ``under_minutes_per_day x days`` (e.g. 5 a day), or ``fraction x`` the
   under-provisioned minutes of the reactive HPA alone at ``reference_target`` on the same history (default: half of
   reactive at 70 %'s; 0 when reactive at 70 % had none).
3. Of the settings whose HPA target lies within the policy's ``TargetBounds`` and whose replay stayed within the
   allowed risk, the fewest replica-minutes wins (ties: fewer under-provisioned minutes, then the label). Edge guard:
   a setting whose HPA target is above ``GUARD_ABOVE`` (0.90 = 1 / (1 + tolerance): above it the HPA reacts only once
   pods are past 100 %, so the floor alone keeps them out of trouble) counts only if the same floor at the bank's
   next hotter target also stayed within the risk; the bank's hottest target is thus replayed as a probe of the edge,
   not chosen (a choice among settings that were all safe on 3 days would otherwise take the one with the least
   room to spare). If no setting passes, the guard is waived and the reason says so. Hysteresis:
   the setting in force is kept when it is within budget and costs at most ``switch_gain`` (1 %) more than the best,
   so near-equal settings do not make the HPA target flap. The runner-up is the next within the budget, else the
   cheapest over it.
4. No setting within the budget: the one with the fewest under-provisioned minutes (then the cheapest), and the
   explanation says the budget was missed.

Worked example (3 days, budget "half of reactive at 70 %", reactive at 70 %: 300,000 replica-min, 40 under-min ->
20 allowed): ``0.90/hi-80/+10%/steady`` 262,000 / 12, ``0.80/hi-80/+0%/steady`` 271,000 / 9,
``0.90/ensemble/+0%/steady`` 250,000 / 31 -> the third is over budget; the first is chosen, the second is the
runner-up, and the reason reads "chose 0.90/hi-80/+10%/steady: 262,000 replica-min, 12 under-provisioned min over
3 days (budget: at most 50% of reactive at 70%'s = 20); runner-up 0.80/hi-80/+0%/steady: 271,000 / 9; reactive at
70%: 300,000 / 40 (chosen: -12.7% replica-min)".

Pure: stdlib only. Called by ``forecaster.simulate.tune`` (and, through it, by the refit step of the decision cycle).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from forecaster.contracts.errors import InputError
from forecaster.scaling.settings import band_column

ScaleDown = Literal["steady", "confident"]
SCALE_DOWN: tuple[ScaleDown, ...] = ("steady", "confident")


@dataclass(frozen=True)
class JointSetting:
    """One setting of the joint policy (module docstring)."""

    quantile: str = "hi-80"
    """Band the floor is sized from (``PolicySettings.quantile``)."""
    margin: float = 0.0
    """Multiplicative margin on that band, >= 0 (``PolicySettings.margin``)."""
    target_utilisation: float = 0.7
    """The HPA's target utilisation, in (0, 1]; the floor is sized at it too."""
    scale_down: ScaleDown = "steady"
    """``"steady"`` (the fixed pace) or ``"confident"`` (``PolicySettings.confident_scale_down``)."""

    def __post_init__(self) -> None:
        band_column(self.quantile)
        if not math.isfinite(self.margin) or self.margin < 0:
            raise InputError(f"margin: {self.margin!r} must be >= 0")
        if not 0.0 < self.target_utilisation <= 1.0:
            raise InputError(f"target_utilisation: {self.target_utilisation!r} must be in (0, 1]")
        if self.scale_down not in SCALE_DOWN:
            raise InputError(f"scale_down: {self.scale_down!r} is not one of {', '.join(SCALE_DOWN)}")

    @property
    def label(self) -> str:
        """Short name, e.g. ``0.90/hi-80/+10%/steady``."""
        return f"{self.target_utilisation:.2f}/{self.quantile}/+{self.margin:.0%}/{self.scale_down}"

    def overrides(self) -> dict[str, Any]:
        """The ``PolicySettings`` fields this setting fixes (``target_utilisation`` is also the HPA's target)."""
        return {"quantile": self.quantile, "margin": self.margin, "target_utilisation": self.target_utilisation,
                "confident_scale_down": self.scale_down == "confident"}


@dataclass(frozen=True)
class TargetBounds:
    """The policy spec's bounds on the HPA target the joint policy may write (defaults 0.5 and 0.9)."""

    min_target: float = 0.5
    max_target: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 < self.min_target <= self.max_target <= 1.0:
            raise InputError(f"target bounds: need 0 < min_target ({self.min_target!r}) <= max_target "
                             f"({self.max_target!r}) <= 1")

    def clamp(self, target: float) -> float:
        """``target`` brought within the bounds."""
        return min(max(float(target), self.min_target), self.max_target)

    def contains(self, target: float) -> bool:
        return self.min_target - 1e-12 <= target <= self.max_target + 1e-12


@dataclass(frozen=True)
class RiskBudget:
    """How many under-provisioned minutes a choice may cost: ``under_minutes_per_day`` when given, else ``fraction`` of
    the reactive HPA's at ``reference_target`` on the same history (module docstring, step 2)."""

    under_minutes_per_day: float | None = None
    reference_target: float = 0.7
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.under_minutes_per_day is not None and not self.under_minutes_per_day >= 0:
            raise InputError(f"under_minutes_per_day: {self.under_minutes_per_day!r} must be >= 0")
        if not 0.0 < self.reference_target <= 1.0:
            raise InputError(f"reference_target: {self.reference_target!r} must be in (0, 1]")
        if not self.fraction >= 0:
            raise InputError(f"fraction: {self.fraction!r} must be >= 0")

    @property
    def relative(self) -> bool:
        """True when the budget is measured against the reactive reference."""
        return self.under_minutes_per_day is None

    def allowed(self, days: float, reference_under_minutes: float | None) -> float:
        """Under-provisioned minutes allowed over ``days`` of history."""
        if self.under_minutes_per_day is not None:
            return self.under_minutes_per_day * days
        if reference_under_minutes is None:
            raise InputError("risk budget: a relative budget needs the reactive reference's replay")
        return self.fraction * reference_under_minutes

    def describe(self) -> str:
        if self.under_minutes_per_day is not None:
            return f"at most {self.under_minutes_per_day:g} under-provisioned min a day"
        return f"at most {self.fraction:.0%} of reactive at {self.reference_target:.0%}'s"


DEFAULT_BUDGET = RiskBudget()
"""At most half the under-provisioned minutes of the reactive HPA at 70 % on the same recent history."""
BANK_TARGETS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
BANK_HEADROOM: tuple[tuple[str, float], ...] = (("ensemble", 0.0), ("ensemble", 0.1), ("hi-80", 0.0), ("hi-80", 0.1),
                                                ("hi-95", 0.0), ("hi-95", 0.25))
"""The default bank: HPA targets x (band, margin) pairs x both scale-down paces (48 settings within the default
bounds [0.5, 0.9]: the targets above 0.9 join only when the policy's bounds allow them, 72 settings up to 0.98 on an
uncapped metric). The pairs climb in headroom from the median forecast to hi-95 + 25 %; no pair is tuned to one
trace."""

HPA_TOLERANCE = 0.1
"""The HPA's default tolerance (``--horizontal-pod-autoscaler-tolerance``): no scaling while the ratio of the metric
to its target is within 10 % of 1."""
CAPPED_METRICS = frozenset({"cpu"})
"""HPA metrics a saturated pod cannot report above 100 % (CPU utilisation of requests, the pod's limit)."""


def reactive_ceiling(metric: str | None, tolerance: float = HPA_TOLERANCE) -> float:
    """The hottest HPA target (a whole percent) at which the reactive HPA can still scale up from saturated pods.

    On a capped metric a saturated pod reports 100 %, so the HPA's ratio is at most ``1 / target``; it scales up only
    when that ratio is more than ``1 + tolerance`` above 1, i.e. for ``target < 1 / (1 + tolerance)``. Above that the
    reactive HPA is blind to any load it does not already serve and the forecast floor alone would carry surprises,
    so the joint policy does not go there. An uncapped metric (request rate, KEDA's external metric) has no ceiling.
    Worked example: ``cpu``, tolerance 0.1 -> 1 / 1.1 = 0.909 -> 0.90 (at 0.91, 1 / 0.91 = 1.099 is within the
    tolerance); ``requests`` -> 1.0; ``None`` (unknown) -> 1.0."""
    if metric not in CAPPED_METRICS:
        return 1.0
    return round(math.ceil(100.0 / (1.0 + tolerance)) / 100.0 - 0.01, 2)


def default_bank(bounds: TargetBounds | None = None, targets: Iterable[float] = BANK_TARGETS,
                 headroom: Iterable[tuple[str, float]] = BANK_HEADROOM,
                 paces: Iterable[ScaleDown] = SCALE_DOWN, metric: str | None = None) -> tuple[JointSetting, ...]:
    """Every combination, each target brought within ``bounds`` (duplicates dropped), so a bank is never empty.
    ``metric``: the HPA's metric; on a capped one (``cpu``) targets above ``reactive_ceiling`` are left out (unless
    the bounds leave nothing else, then the lowest target the bounds allow)."""
    b = bounds or TargetBounds()
    kept = sorted({round(b.clamp(t), 4) for t in targets})
    ceiling = reactive_ceiling(metric)
    kept = [t for t in kept if t <= ceiling + 1e-9] or kept[:1]
    out = [JointSetting(q, m, t, p) for t in kept for q, m in headroom for p in paces]
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Trial:
    """One setting replayed on the recent history: its cost and its risk."""

    label: str
    replica_minutes: float
    under_minutes: float
    setting: JointSetting | None = None
    """``None`` for the reactive reference."""


@dataclass(frozen=True)
class JointChoice:
    """The choice and why (module docstring); ``record()`` is what the decision record stores."""

    setting: JointSetting
    previous: JointSetting | None
    reason: str
    chosen: Trial | None = None
    runner_up: Trial | None = None
    reference: Trial | None = None
    allowed_under_minutes: float | None = None
    within_budget: bool = True
    days: float = 0.0
    stale: bool = False

    @property
    def changed(self) -> bool:
        return self.previous is None or self.setting != self.previous

    def record(self) -> dict[str, Any]:
        """Flat fields for a decision record: the chosen setting, its numbers, the runner-up, the reference."""
        def trial(t: Trial | None) -> dict[str, Any] | None:
            return None if t is None else {"label": t.label, "replica_minutes": t.replica_minutes,
                                           "under_minutes": t.under_minutes}
        return {"setting": self.setting.label, **self.setting.overrides(), "changed": self.changed,
                "previous": None if self.previous is None else self.previous.label, "reason": self.reason,
                "chosen": trial(self.chosen), "runner_up": trial(self.runner_up), "reference": trial(self.reference),
                "allowed_under_minutes": self.allowed_under_minutes, "within_budget": self.within_budget,
                "days": self.days, "stale": self.stale}


def _fmt(t: Trial) -> str:
    return f"{t.replica_minutes:,.0f} / {t.under_minutes:,.0f}"


GUARD_ABOVE = reactive_ceiling("cpu")
"""Targets above 1 / (1 + tolerance) (0.90) pass the edge guard only (module docstring, step 3)."""


def _guarded(trial: Trial, guard_at: float) -> bool:
    return trial.setting is not None and trial.setting.target_utilisation > guard_at + 1e-9


def _hotter_within(trial: Trial, trials: Sequence[Trial], allowed: float) -> bool:
    """Edge guard (module docstring, step 3): the replay of ``trial``'s setting at the next hotter HPA target of the
    bank (same band, margin and pace) stayed within ``allowed`` too. False when the bank has no hotter target for it
    (the hottest target is replayed as a probe of the edge, not chosen)."""
    s = trial.setting
    assert s is not None
    hotter = [t for t in trials if t.setting is not None and t.setting.target_utilisation > s.target_utilisation + 1e-9
              and replace(t.setting, target_utilisation=s.target_utilisation) == s]
    if not hotter:
        return False
    nearest = min(hotter, key=lambda t: t.setting.target_utilisation if t.setting else 1.0)
    return nearest.under_minutes <= allowed + 1e-9


def keep(current: JointSetting | None, bounds: TargetBounds, why: str) -> JointChoice:
    """No change (module docstring, step 1): the setting in force, its target within ``bounds``."""
    base = current or JointSetting(target_utilisation=bounds.clamp(JointSetting().target_utilisation))
    setting = replace(base, target_utilisation=bounds.clamp(base.target_utilisation))
    note = "" if setting == base else f" (target brought within [{bounds.min_target:g}, {bounds.max_target:g}])"
    return JointChoice(setting, current, f"no change: {why}; keeping {setting.label}{note}", stale=True)


def choose(
    trials: Sequence[Trial],
    reference: Trial | None,
    budget: RiskBudget,
    bounds: TargetBounds,
    current: JointSetting | None = None,
    *,
    days: float,
    cost_days: float | None = None,
    switch_gain: float = 0.01,
    guard_above: float | None = None,
) -> JointChoice:
    """The setting with the fewest replica-minutes within the risk budget (module docstring, steps 2-4;
    ``guard_above``: targets above it pass the edge guard of step 3 only, default ``GUARD_ABOVE``, ``1.0``: off).
    ``days``: the history the trials' under-provisioned minutes (and the budget) cover; ``cost_days``: the one their
    replica-minutes cover, when shorter (``forecaster.simulate.tune.choose_on``'s ``risk_days``)."""
    guard_at = GUARD_ABOVE if guard_above is None else guard_above
    candidates = [t for t in trials if t.setting is not None and bounds.contains(t.setting.target_utilisation)]
    if not candidates:
        return keep(current, bounds, "no replayed setting lies within the policy's target bounds")
    allowed = budget.allowed(days, None if reference is None else reference.under_minutes)
    within = sorted((t for t in candidates if t.under_minutes <= allowed + 1e-9),
                    key=lambda t: (t.replica_minutes, t.under_minutes, t.label))
    guarded, edge = "", []
    if within and any(_guarded(t, guard_at) for t in within):
        safe = [t for t in within if not _guarded(t, guard_at) or _hotter_within(t, trials, allowed)]
        if safe:
            guarded = f"; above a target of {guard_at:.2f} only with the next hotter target also within it"
            edge = [t for t in within if t not in safe]
            within = safe
        else:
            guarded = f"; edge guard above {guard_at:.2f} waived: no other setting within the budget"
    if within:
        best, rest = within[0], within[1:]
        held = next((t for t in within if t.setting == current), None)
        if held is not None and held is not best and held.replica_minutes <= best.replica_minutes * (1 + switch_gain):
            rest = [best, *[t for t in rest if t is not held]]
            best = held
        over = sorted((t for t in candidates if t.under_minutes > allowed + 1e-9),
                      key=lambda t: (t.replica_minutes, t.under_minutes, t.label))
        runner = rest[0] if rest else (edge[0] if edge else (over[0] if over else None))
        verdict = ""
    else:
        ranked = sorted(candidates, key=lambda t: (t.under_minutes, t.replica_minutes, t.label))
        best, runner = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        verdict = " - no setting met the budget, so the safest"
    assert best.setting is not None
    span = (f"over {days:g} days" if cost_days is None or cost_days == days
            else f"(replica-min over {cost_days:g} days, under-provisioned min over {days:g})")
    parts = [f"chose {best.label}{verdict}: {best.replica_minutes:,.0f} replica-min, {best.under_minutes:,.0f} "
             f"under-provisioned min {span} (budget: {budget.describe()} = {allowed:,.0f}"
             f"{guarded if within else ''})"]
    if runner is not None:
        late = (" (over budget)" if within and runner.under_minutes > allowed + 1e-9
                else " (edge guard)" if runner in edge else "")
        parts.append(f"runner-up{late} {runner.label}: {_fmt(runner)}")
    if reference is not None:
        saving = best.replica_minutes / reference.replica_minutes - 1 if reference.replica_minutes else 0.0
        parts.append(f"{reference.label}: {_fmt(reference)} (chosen: {saving:+.1%} replica-min)")
    if best.setting == current:
        parts.append("unchanged")
    return JointChoice(best.setting, current, "; ".join(parts), best, runner, reference, allowed,
                       within_budget=bool(within), days=days)
