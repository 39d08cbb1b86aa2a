"""Per-container rule selection by recent cost (selector.py) on worked numbers, and the ``cost-selected`` policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rs_builders import T0, history, usage_frame

from forecaster.rightsizing.policies import get_policy
from forecaster.rightsizing.recommend import recommend
from forecaster.rightsizing.selector import (
    DEFAULT_BANK,
    CostSelected,
    Rule,
    rule_costs,
    rule_values,
)

H = pd.Timedelta("1h")
AT = np.datetime64("2024-03-10T00:00", "ns")


def stamps(*ages_h: float) -> np.ndarray:
    return np.array([AT - np.timedelta64(int(a * 3600), "s") for a in ages_h], dtype="datetime64[ns]")


@pytest.mark.parametrize(
    ("usage", "ages_h", "rule", "expected"),
    [
        # equal ages -> equal weights 1,1,1,1: p50 threshold 2 is reached at the 2nd sorted sample
        ([4.0, 1.0, 3.0, 2.0], [1, 1, 1, 1], Rule(24 * H, 0.5), 2.0),
        ([4.0, 1.0, 3.0, 2.0], [1, 1, 1, 1], Rule(24 * H, 0.75), 3.0),
        ([4.0, 1.0, 3.0, 2.0], [1, 1, 1, 1], Rule(24 * H, 0.75, 1.5), 4.5),
        # 4 is 48 h old (weight 1/4), 1 is new (weight 1): sorted [1, 4], cumulative [1, 1.25]
        ([4.0, 1.0], [48, 0], Rule(24 * H, 0.5), 1.0),  # threshold 0.625
        ([4.0, 1.0], [48, 0], Rule(24 * H, 0.9), 4.0),  # threshold 1.125
        # peak rules: the largest sample no older than two half-lives, else the largest of all
        ([4.0, 1.0], [48, 0], Rule(12 * H, 1.0), 1.0),
        ([4.0, 1.0], [48, 0], Rule(24 * H, 1.0, 1.15), 4.6),
        ([4.0, 1.0], [48, 30], Rule(12 * H, 1.0), 4.0),
    ],
    ids=["p50", "p75", "p75-margin", "decay-low", "decay-high", "peak-recent", "peak-margin", "peak-fallback"],
)
def test_rule_values(usage: list[float], ages_h: list[float], rule: Rule, expected: float) -> None:
    got = rule_values([rule], stamps(*ages_h), np.array(usage), AT)
    assert got[0] == pytest.approx(expected)


def test_rule_values_share_one_sort_and_are_zero_without_samples() -> None:
    rules = [Rule(24 * H, 0.5), Rule(24 * H, 0.75), Rule(24 * H, 1.0)]
    assert rule_values(rules, stamps(1, 1, 1, 1), np.array([4.0, 1.0, 3.0, 2.0]), AT).tolist() == [2.0, 3.0, 4.0]
    assert rule_values(rules, stamps(), np.array([]), AT).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("overrun_cost", "expected"),
    [(1.0, [0.25, 0.5]), (4.0, [1.0, 0.5]), (0.0, [0.0, 0.5])],
    ids=["tight-wins", "peak-wins", "free-overruns"],
)
def test_rule_costs_worked_example(overrun_cost: float, expected: list[float]) -> None:
    """Module docstring: requests 1 and 3 against [1, 1, 1, 3]; idle fractions 0 and 0.5, above 1/4 and 0."""
    got = rule_costs(np.array([1.0, 3.0]), np.array([1.0, 1.0, 1.0, 3.0]), overrun_cost)
    assert got.tolist() == pytest.approx(expected)


def daily(days: int, *, burst: float | None = None, step: str = "30min") -> tuple[list[float], list[pd.Timestamp]]:
    """``days`` of samples at 1.0 core; with ``burst``, the first hour of every day runs at that level."""
    ds = pd.date_range(T0, periods=days * 48, freq=step)
    use = [burst if burst is not None and t.hour == 0 else 1.0 for t in ds]
    return use, list(ds)


def test_a_steady_container_gets_its_level_without_margin() -> None:
    use, ds = daily(20)
    h = history(use, ds=ds, now=ds[-1] + pd.Timedelta("30min"))
    est = CostSelected().estimate(h)
    assert est.value == pytest.approx(1.0)  # every margin-1 rule is exact and leaves nothing idle
    assert est.source == "selected"
    assert "lowest cost of 120 rules over 14 past 24h windows" in est.reason


@pytest.mark.parametrize(("overrun_cost", "low", "high"), [(0.0, 1.0, 1.0), (1000.0, 4.0, 6.4)],
                         ids=["overruns-free", "overruns-dear"])
def test_the_overrun_cost_moves_a_bursty_container_between_its_level_and_its_peak(
    overrun_cost: float, low: float, high: float
) -> None:
    """Two bursts of 4 cores every day: free overruns pick the level (1.0), dear ones a rule never exceeded."""
    use, ds = daily(20, burst=4.0)
    h = history(use, ds=ds, now=ds[-1] + pd.Timedelta("30min"))
    est = CostSelected(overrun_cost=overrun_cost).estimate(h)
    assert low <= est.value <= high


def test_too_little_history_falls_back_to_the_vpa_like_rule() -> None:
    use, ds = daily(2)
    h = history(use, ds=ds, now=ds[-1] + pd.Timedelta("30min"))
    est = CostSelected().estimate(h)
    assert est.value == pytest.approx(1.15)  # p90 of a flat 1.0, +15 %
    assert "fallback: 1 of the 3 past 24h windows" in est.reason


def test_policies_differing_only_in_overrun_cost_share_the_replay() -> None:
    use, ds = daily(10, burst=3.0)
    h = history(use, ds=ds, now=ds[-1] + pd.Timedelta("30min"))
    first = CostSelected(overrun_cost=1.0)
    unused, above = first.scores(h)
    assert unused.shape == above.shape == (9, len(DEFAULT_BANK))  # 9 scorable past days of the 10
    kept = [k for k in h.kept if k[0] == "cost-selected"]
    assert len(kept) == 14  # one entry per past window looked at, the unscorable ones included
    before = dict(h.kept)
    assert CostSelected(overrun_cost=50.0).scores(h)[0] == pytest.approx(unused)
    assert all(h.kept[k] is before[k] for k in before)  # nothing replayed again


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"percentile": 0.0}, "percentile"), ({"percentile": 1.2}, "percentile"), ({"margin": 0.0}, "margin")],
)
def test_bad_rules_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Rule(**{"half_life": 24 * H, "percentile": 0.9, **kwargs})  # type: ignore[arg-type]


def test_bad_selector_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one rule"):
        CostSelected(rules=())
    with pytest.raises(ValueError, match="overrun_cost"):
        CostSelected(overrun_cost=-1.0)


def test_cost_selected_policy_changes_only_the_cpu_target() -> None:
    frame = usage_frame(periods=12 * 24 * 6, cpu=0.01, memory=600 * 2**20)
    got = recommend(frame, policy="cost-selected").set_index("resource")
    vpa = recommend(frame, policy="vpa").set_index("resource")
    assert got.loc["cpu", "target"] == pytest.approx(0.025)  # 0.01 cores in use, raised to the VPA's 25 m floor
    assert "lowest cost of 120 rules" in got.loc["cpu", "reason"]
    assert got.loc["memory", "target"] == vpa.loc["memory", "target"]
    assert got.loc["cpu", "upper_bound"] >= got.loc["cpu", "target"] >= got.loc["cpu", "lower_bound"]
    assert get_policy("cost-selected", overrun_cost=5.0).settings["overrun_cost"] == 5.0
