"""Per-container rule selection by recent cost, after Autopilot's ML recommender.

Autopilot (Rzadca et al., "Autopilot: workload autoscaling at Google", EuroSys 2020, section 3.2.2) runs a
bank of simple recommenders for every job and, each time, follows the one that would have cost least on the
job's own recent past. ``CostSelected`` does that for one resource with a bank of ``Rule`` values::

    rule (h, p, m)   value at time b = m * Q_p(samples in [b - lookback, b), weight 2**(-age / h))
                     (p = 1: the peak of the samples no older than 2 h - a decayed peak would be the plain peak)
    past points      b_k = now - k * window, k = 1 .. days, each with >= MIN_PAST_SAMPLES samples before it
                     and at least one sample in [b_k, b_k + window) to score on
    cost(rule)       mean over the points of  unused_k + overrun_cost * above_k
                     unused_k = mean_i max(r_k - u_i, 0) / r_k       (the fraction of the request left idle)
                     above_k  = #{i : u_i > r_k} / n_k               (the fraction of samples above the request)
                     with r_k = max(value at b_k, floor), u_i the samples of [b_k, b_k + window)
    chosen rule      argmin cost; ties go to the rule with the larger value now (the safer one)
    answer           the chosen rule's value at now

``Q_p`` is the exact weighted percentile (``histogram.weighted_percentile``: the smallest sample whose
cumulative weight reaches ``p`` of the total). With fewer than ``min_points`` scorable past points (a new
container) the ``fallback`` rule answers and the reason says why.

``overrun_cost`` prices a sample above the request against idle capacity: 10 means one per cent of the time
above the request costs as much as ten per cent of the request left idle. Larger values buy fewer samples
above the request with more slack; the container decides where its misses are cheapest, so a fleet spends its
risk on the workloads where it saves the most (the rule that wins on a steady container is tighter than the
one that wins on a bursty one).

Worked example (``tests/rightsizing/test_rs_selector.py``): one past day scored on the samples
``[1, 1, 1, 3]`` with two rules whose values that day are 1 and 3. Rule 1 leaves nothing idle and is below
one sample in four: cost ``overrun_cost * 0.25``. Rule 3 is never exceeded and leaves ``(2/3 + 2/3 + 2/3 +
0) / 4 = 0.5`` idle: cost 0.5. With ``overrun_cost = 1`` the tight rule wins (0.25 < 0.5); with 4 the peak
rule wins (1.0 > 0.5).

Pure: numpy and pandas. Called by ``policies.py`` (the ``cost-selected`` policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.rightsizing.estimators import Estimate, fmt_amount, fmt_duration
from forecaster.rightsizing.history import ContainerHistory

MIN_PAST_SAMPLES = 12
"""A past point is scored only when at least this many samples precede it inside the lookback."""
DEFAULT_OVERRUN_COST = 10.0
"""One per cent of samples above the request costs as much as ten per cent of the request idle."""
DEFAULT_DAYS = 14
"""Past decision points scored (one per ``window``, so two weeks of daily windows)."""


@dataclass(frozen=True)
class Rule:
    """``margin x`` the ``percentile`` of the samples, weights halving every ``half_life`` (see module doc)."""

    half_life: pd.Timedelta
    percentile: float
    margin: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile <= 1.0:
            raise ValueError(f"rule percentile must be within (0, 1], got {self.percentile}")
        if self.margin <= 0 or pd.Timedelta(self.half_life) <= pd.Timedelta(0):
            raise ValueError("rule margin and half_life must be > 0")

    @property
    def label(self) -> str:
        stat = f"peak of the last {fmt_duration(2 * self.half_life)}" if self.percentile >= 1.0 else (
            f"p{self.percentile * 100:g} (half-life {fmt_duration(self.half_life)})")
        return stat if self.margin == 1.0 else f"{stat} x{self.margin:g}"


def rule_bank(
    half_lives: Sequence[str] = ("12h", "24h", "72h"),
    percentiles: Sequence[float] = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0),
    margins: Sequence[float] = (1.0, 1.15, 1.3, 1.6),
) -> tuple[Rule, ...]:
    """Every combination: the default bank has 3 x 10 x 4 = 120 rules."""
    return tuple(Rule(pd.Timedelta(h), p, m) for h in half_lives for p in percentiles for m in margins)


DEFAULT_BANK = rule_bank()
DEFAULT_FALLBACK = Rule(pd.Timedelta("24h"), 0.9, 1.15)
"""The VPA's own choice (p90 of a 24 h-decayed history, +15 %), used until enough past points exist."""


def rule_values(rules: Sequence[Rule], ds: np.ndarray, usage: np.ndarray, at: np.datetime64) -> np.ndarray:
    """Each rule's value at ``at`` from the samples ``ds < at`` passed in (already cut to the lookback).

    One sort serves every rule: per half-life one cumulative weight curve, per percentile one search.
    """
    out = np.zeros(len(rules))
    if usage.size == 0:
        return out
    order = np.argsort(usage, kind="stable")
    values = usage[order]
    age_s = (at - ds[order]).astype("timedelta64[ns]").astype(np.int64) / 1e9
    curves: dict[pd.Timedelta, np.ndarray] = {}
    for i, rule in enumerate(rules):
        hl = pd.Timedelta(rule.half_life)
        if rule.percentile >= 1.0:
            recent = age_s <= 2 * hl.total_seconds()
            base = float(values[recent].max()) if recent.any() else float(values.max())
        else:
            if hl not in curves:
                curves[hl] = np.cumsum(np.exp2(-age_s / hl.total_seconds()))
            cum = curves[hl]
            idx = int(np.searchsorted(cum, rule.percentile * cum[-1] * (1 - 1e-12), side="left"))
            base = float(values[min(idx, values.size - 1)])
        out[i] = base * rule.margin
    return out


def rule_scores(requests: np.ndarray, usage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per request: the idle fraction ``mean(max(r - u, 0) / r)`` and the fraction of samples above it."""
    r = requests[:, None]
    u = usage[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        unused = np.where(r > 0, np.maximum(r - u, 0.0) / r, 0.0).mean(axis=1)
    return np.asarray(unused, dtype=float), np.asarray((u > r).mean(axis=1), dtype=float)


def rule_costs(requests: np.ndarray, usage: np.ndarray, overrun_cost: float) -> np.ndarray:
    """``unused + overrun_cost * above`` of each request (module doc) against one window's samples."""
    unused, above = rule_scores(requests, usage)
    return unused + overrun_cost * above


class CostSelected:
    """The bank's rule with the lowest recent cost for this container (module doc for the formulas)."""

    def __init__(
        self,
        rules: Sequence[Rule] = DEFAULT_BANK,
        *,
        overrun_cost: float = DEFAULT_OVERRUN_COST,
        days: int = DEFAULT_DAYS,
        window: str | pd.Timedelta = "24h",
        lookback: str | pd.Timedelta = "8D",
        min_points: int = 3,
        floor: float = 0.0,
        fallback: Rule = DEFAULT_FALLBACK,
    ) -> None:
        if not rules:
            raise ValueError("CostSelected needs at least one rule")
        if overrun_cost < 0 or days < 1 or min_points < 1:
            raise ValueError("overrun_cost must be >= 0, days and min_points >= 1")
        self.rules = tuple(rules)
        self.overrun_cost = float(overrun_cost)
        self.days, self.min_points = int(days), int(min_points)
        self.window, self.lookback = pd.Timedelta(window), pd.Timedelta(lookback)
        self.floor, self.fallback = float(floor), fallback

    def _values_at(self, h: ContainerHistory, rules: Sequence[Rule], at: np.datetime64) -> np.ndarray:
        lo = int(np.searchsorted(h.ds, at - self.lookback.to_timedelta64(), side="left"))
        hi = int(np.searchsorted(h.ds, at, side="left"))
        return rule_values(rules, h.ds[lo:hi], h.usage[lo:hi], at)

    def scores(self, h: ContainerHistory) -> tuple[np.ndarray, np.ndarray]:
        """Idle fraction and fraction above of every rule at every scorable past point (points x rules).

        Kept in ``h.cache``: policies that differ only in ``overrun_cost`` share the replay."""
        key = ("cost-selected", self.rules, self.days, self.window, self.lookback, self.floor)
        cached = h.cache.get(key)
        if isinstance(cached, tuple):
            return cached[0], cached[1]
        unused, above = [], []
        win, back = self.window.to_timedelta64(), self.lookback.to_timedelta64()
        for k in range(1, self.days + 1):
            b = h.now64 - k * win
            start = int(np.searchsorted(h.ds, b - back, side="left"))
            mid = int(np.searchsorted(h.ds, b, side="left"))
            end = int(np.searchsorted(h.ds, b + win, side="left"))
            if mid - start < MIN_PAST_SAMPLES or end <= mid:
                continue
            requests = np.maximum(rule_values(self.rules, h.ds[start:mid], h.usage[start:mid], b), self.floor)
            u, a = rule_scores(requests, h.usage[mid:end])
            unused.append(u)
            above.append(a)
        n = len(self.rules)
        out = (np.array(unused).reshape(-1, n), np.array(above).reshape(-1, n))
        h.cache[key] = out
        return out

    def costs(self, h: ContainerHistory) -> tuple[np.ndarray, int]:
        """Mean cost of every rule over the scorable past points, and how many points there were."""
        unused, above = self.scores(h)
        points = unused.shape[0]
        if not points:
            return np.zeros(len(self.rules)), 0
        return (unused + self.overrun_cost * above).mean(axis=0), points

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The chosen rule's value now; the fallback rule with too few past points."""
        cost, points = self.costs(h)
        if points < self.min_points:
            value = float(self._values_at(h, [self.fallback], h.now64)[0])
            reason = (f"{self.fallback.label} = {fmt_amount(value, h.resource)} (fallback: {points} of the "
                      f"{self.min_points} past {fmt_duration(self.window)} windows needed to choose a rule)")
            return Estimate(value, "selected", reason)
        now_values = self._values_at(h, self.rules, h.now64)
        best = np.flatnonzero(np.isclose(cost, cost.min(), rtol=1e-9, atol=1e-12))
        i = int(best[np.argmax(now_values[best])])
        rule = self.rules[i]
        reason = (f"{rule.label} = {fmt_amount(float(now_values[i]), h.resource)}, the lowest cost of "
                  f"{len(self.rules)} rules over {points} past {fmt_duration(self.window)} windows "
                  f"(idle fraction + {self.overrun_cost:g} x fraction above = {cost[i]:.3f})")
        return Estimate(float(now_values[i]), "selected", reason)
