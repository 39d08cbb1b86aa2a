"""Per-container rule selection by recent cost, after Autopilot's ML recommender, with siblings for new containers.

Autopilot (Rzadca et al., "Autopilot: workload autoscaling at Google", EuroSys 2020, section 3, its ML
recommender) runs a bank of simple recommenders for every job and, each time, follows the one that would have cost
least on the job's own recent past. ``CostSelected`` does that for one resource with a bank of ``Rule`` values::

    rule (h, p, m)   value at time b = m * Q_p(samples in [b - lookback, b), weight 2**(-age / h))
                     (p = 1: the peak of the samples no older than 2 h; ``Rule.peak(w, m)`` = m x the peak of w)
    past points      b_k = now - k * window, k = 1 .. days, each with >= MIN_PAST_SAMPLES samples before it
                     and at least one sample in [b_k, b_k + window) to score on
    per point        unused_k = mean_i max(r_k - u_i, 0) / r_k       (the fraction of the request left idle)
                     above_k  = #{i : u_i > r_k} / n_k               (overrun="fraction": CPU, time throttled)
                              = 1 if max_i u_i > r_k, else 0         (overrun="any": memory, an OOM kill that day;
                                                                       a recorded kill counts as using its VPA bump)
                     with r_k = max(value at b_k, floor), u_i the samples of [b_k, b_k + window)
    cost(rule)       idle + overrun_cost * rate
                     idle = mean_k unused_k,  rate = (sum_k above_k + prior_days * sibling rate) / (n + prior_days)
    chosen rule      argmin cost; ties go to the rule with the larger value now (the safer one)
    answer           the chosen rule's value at now

``Q_p`` is the exact weighted percentile (``histogram.weighted_percentile``: the smallest sample whose
cumulative weight reaches ``p`` of the total). ``overrun_cost`` prices overruns against idle capacity: for CPU,
10 means one per cent of the time above the request costs as much as ten per cent of the request left idle; for
memory an overrun day is an OOM kill, the dominant cost (the ``calibrated`` policy prices one like ten days of a
fully idle request).

**Siblings** (the Borg way for a new job: start from what similar jobs need, not from a fixed guess). Overrun
events are rare on one container's few weeks, so with ``prior_days > 0`` each rule's overrun rate is shrunk toward
its pooled rate on the container's siblings (``history.Fleet.sibling_groups``: same workload, image, team or
namespace label, else the whole fleet), weighing the siblings like ``prior_days`` windows of its own. A container
with fewer than ``min_points`` scorable windows (a new one) takes idle and rate from the first sibling group with
``min_points`` scored windows, pooled with its own, and its reason says so; without siblings the ``fallback`` rule
answers.

Worked example (``tests/rightsizing/test_rs_selector.py``): one past day scored on the samples ``[1, 1, 1, 3]``
with two rules whose values that day are 1 and 3. Rule 1 leaves nothing idle and is below one sample in four:
cost ``overrun_cost * 0.25``. Rule 3 is never exceeded and leaves ``(2/3 + 2/3 + 2/3 + 0) / 4 = 0.5`` idle: cost
0.5. With ``overrun_cost = 1`` the tight rule wins (0.25 < 0.5); with 4 the peak rule wins (1.0 > 0.5). With
``overrun="any"`` rule 1 is above on that day (rate 1): cost ``overrun_cost``. Shrinkage: a rule never above on a
container's 7 windows, above on 1 % of its siblings' windows, with ``prior_days = 7``: rate ``(0 + 7 x 0.01) / 14
= 0.005``.

Scores of a past window never change once it is over, so they are kept per window start (and the first sample of
its lookback, which retention may trim) in the history's ``kept`` store (``sizer.RightSizer`` keeps it from one day
to the next: a daily decision scores one new window).

Pure: numpy and pandas. Called by ``policies.py`` (the ``cost-selected`` and ``calibrated`` policies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from forecaster.rightsizing.estimators import Estimate, fmt_amount, fmt_duration, oom_bump, request_at
from forecaster.rightsizing.history import ContainerHistory

MIN_PAST_SAMPLES = 12
"""A past point is scored only when at least this many samples precede it inside the lookback."""
DEFAULT_OVERRUN_COST = 10.0
"""One per cent of samples above the request costs as much as ten per cent of the request idle."""
DEFAULT_DAYS = 14
"""Past decision points scored (one per ``window``, so two weeks of daily windows)."""
Overrun = Literal["fraction", "any"]


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

    @classmethod
    def peak(cls, window: str | pd.Timedelta, margin: float = 1.0) -> Rule:
        """``margin x`` the largest sample of the last ``window`` (a peak rule looks back two half-lives)."""
        return cls(pd.Timedelta(window) / 2, 1.0, margin)

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


def peak_bank(
    windows: Sequence[str] = ("8D", "28D"), margins: Sequence[float] = (1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 2.0)
) -> tuple[Rule, ...]:
    """Peaks of each window times each margin: the default has 2 x 7 = 14 memory rules, from the VPA's 8-day
    memory history to four weeks, and from no headroom to twice the peak."""
    return tuple(Rule.peak(w, m) for w in windows for m in margins)


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
    age_s = (at - ds).astype("timedelta64[ns]").astype(np.int64) / 1e9
    order: np.ndarray | None = None
    curves: dict[pd.Timedelta, np.ndarray] = {}
    for i, rule in enumerate(rules):
        hl = pd.Timedelta(rule.half_life)
        if rule.percentile >= 1.0:
            recent = age_s <= 2 * hl.total_seconds()
            base = float(usage[recent].max()) if recent.any() else float(usage.max())
        else:
            if order is None:
                order = np.argsort(usage, kind="stable")
            if hl not in curves:
                curves[hl] = np.cumsum(np.exp2(-age_s[order] / hl.total_seconds()))
            cum = curves[hl]
            idx = int(np.searchsorted(cum, rule.percentile * cum[-1] * (1 - 1e-12), side="left"))
            base = float(usage[order][min(idx, usage.size - 1)])
        out[i] = base * rule.margin
    return out


def rule_scores(requests: np.ndarray, usage: np.ndarray, overrun: Overrun = "fraction",
                demand: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per request: the idle fraction ``mean(max(r - u, 0) / r)`` and the overrun measure (module doc).

    ``demand``: memory a recorded OOM kill in the window asked for (its VPA bump); with ``overrun="any"`` a
    request below it is above too."""
    r = requests[:, None]
    u = usage[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        unused = np.where(r > 0, np.maximum(r - u, 0.0) / r, 0.0).mean(axis=1)
    if overrun == "any":
        top = max(float(usage.max()) if usage.size else 0.0, demand)
        return np.asarray(unused, dtype=float), (requests < top).astype(float)
    return np.asarray(unused, dtype=float), np.asarray((u > r).mean(axis=1), dtype=float)


def rule_costs(requests: np.ndarray, usage: np.ndarray, overrun_cost: float,
               overrun: Overrun = "fraction") -> np.ndarray:
    """``unused + overrun_cost * above`` of each request (module doc) against one window's samples."""
    unused, above = rule_scores(requests, usage, overrun)
    return unused + overrun_cost * above


@dataclass(frozen=True)
class Pooled:
    """Summed per-rule scores over scored windows: ``unused`` and ``above`` sums and the number of ``points``."""

    unused: np.ndarray
    above: np.ndarray
    points: int
    containers: int = 1

    def minus(self, other: Pooled) -> Pooled:
        return Pooled(self.unused - other.unused, self.above - other.above, self.points - other.points,
                      self.containers - other.containers)


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
        overrun: Overrun = "fraction",
        prior_days: float = 0.0,
        siblings: bool = False,
    ) -> None:
        if not rules:
            raise ValueError("CostSelected needs at least one rule")
        if overrun_cost < 0 or days < 1 or min_points < 1 or prior_days < 0:
            raise ValueError("overrun_cost and prior_days must be >= 0, days and min_points >= 1")
        if overrun not in ("fraction", "any"):
            raise ValueError(f"overrun must be 'fraction' or 'any', got {overrun!r}")
        self.rules = tuple(rules)
        self.overrun_cost, self.prior_days = float(overrun_cost), float(prior_days)
        self.days, self.min_points = int(days), int(min_points)
        self.window, self.lookback = pd.Timedelta(window), pd.Timedelta(lookback)
        self.floor, self.fallback = float(floor), fallback
        self.overrun: Overrun = overrun
        self.siblings = bool(siblings)
        # the bank's hash, once: hashing 120 rules at every cache lookup would cost more than the lookup saves
        self._key = ("cost-selected", hash(self.rules), self.window, self.lookback, self.floor, self.overrun)

    def _values_at(self, h: ContainerHistory, rules: Sequence[Rule], at: np.datetime64) -> np.ndarray:
        lo = int(np.searchsorted(h.ds, at - self.lookback.to_timedelta64(), side="left"))
        hi = int(np.searchsorted(h.ds, at, side="left"))
        return rule_values(rules, h.ds[lo:hi], h.usage[lo:hi], at)

    def _point(self, h: ContainerHistory, b: np.datetime64) -> tuple[np.ndarray, np.ndarray] | None:
        """Scores of every rule on the window starting at ``b`` (None when it cannot be scored); cached."""
        win, back = self.window.to_timedelta64(), self.lookback.to_timedelta64()
        start = int(np.searchsorted(h.ds, b - back, side="left"))
        # the first sample the score reads is in the key: once retention has trimmed part of the lookback, the score
        # a fresh fit would compute differs, so it is computed again
        key = (*self._key, b, h.ds[start] if start < h.n else b)
        if key in h.kept:
            cached = h.kept[key]
            return cached if isinstance(cached, tuple) else None
        mid = int(np.searchsorted(h.ds, b, side="left"))
        end = int(np.searchsorted(h.ds, b + win, side="left"))
        out: tuple[np.ndarray, np.ndarray] | None = None
        if mid - start >= MIN_PAST_SAMPLES and end > mid:
            requests = np.maximum(rule_values(self.rules, h.ds[start:mid], h.usage[start:mid], b), self.floor)
            kills = (h.oom_ds >= b) & (h.oom_ds < b + win)
            demand = 0.0
            if self.overrun == "any" and kills.any():
                used = np.maximum(h.oom_usage[kills], request_at(h, h.oom_ds[kills]))
                demand = float(oom_bump(used).max())
            out = rule_scores(requests, h.usage[mid:end], self.overrun, demand)
        h.kept[key] = out if out is not None else False
        return out

    def scores(self, h: ContainerHistory) -> tuple[np.ndarray, np.ndarray]:
        """Idle fraction and overrun measure of every rule at every scorable past point (points x rules)."""
        unused, above = [], []
        win = self.window.to_timedelta64()
        for k in range(1, self.days + 1):
            point = self._point(h, h.now64 - k * win)
            if point is not None:
                unused.append(point[0])
                above.append(point[1])
        n = len(self.rules)
        return np.array(unused).reshape(-1, n), np.array(above).reshape(-1, n)

    def pooled(self, h: ContainerHistory) -> Pooled:
        """This container's summed scores (module doc); once per decision."""
        key = (*self._key, self.days, "pooled")
        cached = h.cache.get(key)
        if isinstance(cached, Pooled):
            return cached
        unused, above = self.scores(h)
        out = Pooled(unused.sum(axis=0), above.sum(axis=0), unused.shape[0])
        h.cache[key] = out
        return out

    def sibling_pool(self, h: ContainerHistory) -> tuple[str, Pooled] | None:
        """The first sibling group (``Fleet.sibling_groups``) with ``min_points`` scored windows: its description
        and pooled scores without ``h``'s own; None without one."""
        if h.fleet is None:
            return None
        for name, members in h.fleet.sibling_groups(h):
            key = (*self._key, self.days, h.now64, h.resource, name)
            group = h.fleet.cache.get(key)
            if not isinstance(group, Pooled):
                parts = [self.pooled(m) for m in [h, *members]]
                group = Pooled(np.sum([p.unused for p in parts], axis=0), np.sum([p.above for p in parts], axis=0),
                               sum(p.points for p in parts), len(parts))
                h.fleet.cache[key] = group
            others = group.minus(self.pooled(h))
            if others.points >= self.min_points:
                return name, others
        return None

    def costs(self, h: ContainerHistory) -> tuple[np.ndarray, int]:
        """Mean cost of every rule over the scorable past points, and how many points there were (own only)."""
        own = self.pooled(h)
        if not own.points:
            return np.zeros(len(self.rules)), 0
        return (own.unused + self.overrun_cost * own.above) / own.points, own.points

    def estimate(self, h: ContainerHistory) -> Estimate:
        """The chosen rule's value now; borrowed from siblings or the fallback rule with too few past points."""
        own = self.pooled(h)
        sib = self.sibling_pool(h) if (self.siblings or self.prior_days > 0) else None
        n, span = own.points, fmt_duration(self.window)
        if n >= self.min_points:
            idle = own.unused / n
            if sib is not None and self.prior_days > 0:
                prior = sib[1].above / sib[1].points
                rate = (own.above + self.prior_days * prior) / (n + self.prior_days)
                how = (f"over {n} past {span} windows, overrun rates shrunk toward {sib[0]} ({sib[1].containers} "
                       f"containers, {sib[1].points} windows) with the weight of {self.prior_days:g} windows")
            else:
                rate = own.above / n
                how = f"over {n} past {span} windows"
        elif sib is not None and self.siblings:
            name, others = sib
            total = n + others.points
            idle, rate = (own.unused + others.unused) / total, (own.above + others.above) / total
            how = (f"cold start: {n} of the {self.min_points} own past {span} windows needed, so chosen on the "
                   f"siblings {name} ({others.containers} containers, {others.points} windows)")
        else:
            value = float(self._values_at(h, [self.fallback], h.now64)[0])
            reason = (f"{self.fallback.label} = {fmt_amount(value, h.resource)} (fallback: {n} of the "
                      f"{self.min_points} past {span} windows needed to choose a rule"
                      + (", and no sibling has them)" if self.siblings else ")"))
            return Estimate(value, "selected", reason)
        cost = idle + self.overrun_cost * rate
        now_values = self._values_at(h, self.rules, h.now64)
        best = np.flatnonzero(np.isclose(cost, cost.min(), rtol=1e-9, atol=1e-12))
        i = int(best[np.argmax(now_values[best])])
        measure = "fraction above" if self.overrun == "fraction" else "overrun-day rate"
        reason = (f"{self.rules[i].label} = {fmt_amount(float(now_values[i]), h.resource)}, the lowest cost of "
                  f"{len(self.rules)} rules {how} (idle fraction + {self.overrun_cost:g} x {measure} = "
                  f"{cost[i]:.3f})")
        return Estimate(float(now_values[i]), "siblings" if n < self.min_points else "selected", reason)
