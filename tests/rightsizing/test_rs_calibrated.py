"""The default ``calibrated`` policy: memory headroom priced by OOM days, shrinkage toward siblings, cold start from
siblings (or the fixed fallback), on worked numbers (``policies.calibrated_policy``, ``selector.CostSelected``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rs_builders import GIB, T0, history

from forecaster.rightsizing.history import ContainerHistory, attach_fleet
from forecaster.rightsizing.policies import calibrated_policy, get_policy
from forecaster.rightsizing.recommend import recommend_histories
from forecaster.rightsizing.selector import CostSelected, Rule, peak_bank, rule_scores

DAYS = 30
NOW = T0 + pd.Timedelta(days=DAYS)


def memory_days(spike_days: tuple[int, ...] = (), spike: float = 1.1, days: int = DAYS) -> tuple[list[float], list]:
    """Hourly memory: 0.5 GiB, 1.0 GiB at noon, ``spike`` GiB at noon on ``spike_days``."""
    ds = list(pd.date_range(NOW - pd.Timedelta(days=days), periods=days * 24, freq="1h"))
    use = [(spike if (t - ds[0]).days in spike_days else 1.0) * GIB if t.hour == 12 else 0.5 * GIB for t in ds]
    return use, ds


def container(spike_days: tuple[int, ...] = (), *, uid: str = "c", days: int = DAYS) -> ContainerHistory:
    """A memory history from ``memory_days`` (request 2 GiB, decided at ``NOW``), labelled ``namespace=shop``."""
    use, ds = memory_days(spike_days, days=days)
    h = history(use, resource="memory", ds=ds, now=NOW, request=2 * GIB, uid=uid)
    h.labels["namespace"] = "shop"
    return h


def memory_selector(**kw: object) -> CostSelected:
    """The default policy's memory selector (``calibrated_policy``) with the given options."""
    opts: dict[str, object] = {"overrun": "any", "overrun_cost": 10.0, "days": 28, "lookback": "28D"} | kw
    return CostSelected(peak_bank(), **opts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("requests", "usage", "demand", "expected_above"),
    [
        ([1.0, 1.1], [0.5, 1.05], 0.0, [1.0, 0.0]),  # any sample above -> an overrun day
        ([1.0, 1.1], [0.5, 1.0], 0.0, [0.0, 0.0]),  # at the request is not above
        ([1.0, 1.3], [0.5, 0.9], 1.2, [1.0, 0.0]),  # a recorded kill asked for 1.2 (its bump)
    ],
    ids=["sample-above", "at-request", "oom-kill"],
)
def test_overrun_day_measure(requests: list[float], usage: list[float], demand: float,
                             expected_above: list[float]) -> None:
    _, above = rule_scores(np.array(requests), np.array(usage), "any", demand)
    assert above.tolist() == expected_above


def test_worked_example_spiky_container_keeps_a_tenth_of_headroom() -> None:
    """Docstring of ``calibrated_policy``: peaks of 1.1 GiB on days 10 and 20 of 30, 1.0 GiB otherwise.

    The 8-day peak x1.0 is exceeded on both spike days (2 of 28 windows: rate 0.071, cost 0.71 + idle), the
    28-day peak x1.0 on day 10 only (0.36 + idle); the 8-day peak x1.1 never, and its idle (about 0.55: 0.5 GiB
    most of the day under a 1.1 GiB request) is the lowest total, so the target is 1.1 x the 8-day peak of 1.0 GiB.
    """
    h = container((10, 20))
    sel = memory_selector()
    cost, points = sel.costs(h)
    assert points == 28
    rules = list(sel.rules)
    idle_8d = cost[rules.index(Rule.peak("8D", 1.0))] - 10 * 2 / 28
    assert cost[rules.index(Rule.peak("28D", 1.0))] == pytest.approx(idle_8d + 10 / 28, abs=0.02)
    assert cost.argmin() == rules.index(Rule.peak("8D", 1.1))
    assert cost.min() == pytest.approx(0.55, abs=0.02)
    est = sel.estimate(h)
    assert est.value == pytest.approx(1.1 * GIB)
    assert "peak of the last 8d x1.1" in est.reason and "over 28 past 24h windows" in est.reason


def test_a_steady_container_keeps_no_headroom_of_its_own() -> None:
    assert memory_selector().estimate(container()).value == pytest.approx(1.0 * GIB)


def test_siblings_overrun_rates_shrink_a_steady_container_toward_headroom() -> None:
    """Two spiky siblings: the 8-day peak x1.0 is above on 4 of their 56 windows (0.071). Shrunk with 7 windows'
    weight: (0 + 7 x 0.071) / (28 + 7) = 0.014, x10 = 0.14 more cost, more than the 0.045 of idle x1.1 adds."""
    alone = memory_selector(prior_days=7.0).estimate(container())
    assert alone.value == pytest.approx(1.0 * GIB)  # no fleet: nothing to shrink toward
    hs = attach_fleet([container(uid="steady"), *(container((10, 20), uid=f"spiky{i}") for i in range(2))])
    est = memory_selector(prior_days=7.0).estimate(hs[0])
    assert est.value == pytest.approx(1.1 * GIB)
    assert "shrunk toward namespace=shop (2 containers, 56 windows) with the weight of 7 windows" in est.reason


def test_cold_start_borrows_the_siblings_rule_and_says_so() -> None:
    """A container with two days of history (1 scorable window) among four-week-old siblings that needed a tenth
    of headroom takes their rule, applied to its own 8-day peak of 1.0 GiB; the fixed fallback takes x1.15."""
    hs = attach_fleet([container(days=2, uid="new"), *(container((10, 20), uid=f"spiky{i}") for i in range(2))])
    est = memory_selector(prior_days=7.0, siblings=True).estimate(hs[0])
    assert est.source == "siblings"
    assert "cold start: 1 of the 3 own past 24h windows needed, so chosen on the siblings namespace=shop" in est.reason
    assert est.value == pytest.approx(1.1 * GIB)
    fixed = memory_selector(prior_days=7.0, fallback=Rule.peak("8D", 1.15)).estimate(hs[0])
    assert fixed.source == "selected" and "fallback" in fixed.reason
    assert fixed.value == pytest.approx(1.15 * GIB)


def test_without_any_sibling_the_cold_start_falls_back() -> None:
    est = memory_selector(siblings=True, fallback=Rule.peak("8D", 1.15)).estimate(container(days=2))
    assert "fallback" in est.reason and "no sibling has them" in est.reason


def test_the_policy_never_plans_an_oom_and_reports_its_choice() -> None:
    mem = container((10, 20), uid="a")
    cpu = history([0.5] * (DAYS * 24), ds=memory_days()[1], now=NOW, uid="a")
    recs = recommend_histories(attach_fleet([cpu, mem]), calibrated_policy()).set_index("resource")
    assert recs.loc["memory", "target"] >= mem.usage[-8 * 24:].max()  # at least the 8-day peak
    assert recs.loc["memory", "target"] == pytest.approx(1.1 * GIB)
    assert recs.loc["memory", "policy"] == "calibrated"
    assert "peak of the last 8d x1.1" in recs.loc["memory", "reason"]
    assert get_policy("calibrated", oom_cost=1.0).settings["oom_cost"] == 1.0
