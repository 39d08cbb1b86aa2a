"""Policies (policies.py): the VPA rule on worked numbers, Autopilot, keep-current, and the registry."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rs_builders import GIB, MIB, T0, usage_frame

from forecaster.rightsizing.estimators import CurrentRequest, DailyPeaks
from forecaster.rightsizing.frames import UsageError
from forecaster.rightsizing.histogram import MEMORY_BUCKETS
from forecaster.rightsizing.policies import (
    POLICIES,
    Policy,
    get_policy,
    keep_current_policy,
    register_policy,
    vpa_policy,
)
from forecaster.rightsizing.recommend import recommend
from forecaster.rightsizing.wrappers import Margin, OOMBump

WEEK_1MIN = 7 * 1440 + 1  # one-minute samples spanning exactly a week


def by_resource(recs: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["resource"]: row for _, row in recs.iterrows()}


@pytest.fixture(scope="module")
def steady_week() -> pd.DataFrame:
    """0.5 cores and 600 MiB for a week of one-minute samples; requests 1 core and 1 GiB."""
    return usage_frame(periods=WEEK_1MIN, freq="1min", cpu=0.5, memory=600 * MIB)


def test_vpa_worked_example(steady_week: pd.DataFrame) -> None:
    recs = by_resource(recommend(steady_week, policy="vpa"))
    cpu, mem = recs["cpu"], recs["memory"]
    # CPU: 0.5 cores sits in bucket [0.4773, 0.5111); p50/p90/p95 = its end 0.51113.
    # target 0.51113 x 1.15 = 0.58780 -> rounded up to 0.588
    assert cpu["target"] == 0.588
    # lower: x (1 + 0.001/7)^-2 = 0.99971 -> 0.58763 -> 0.588; upper: x (1 + 1/7) = 0.67178 -> 0.672
    assert cpu["lower_bound"] == 0.588
    assert cpu["upper_bound"] == 0.672
    assert cpu["uncapped_target"] == 0.588
    # memory: 600 MiB sits in bucket [6.232e8, 6.644e8) B -> p90 of the 8 daily peaks = 664,388,475 B;
    # x1.15 = 764,046,746 B (728.7 MiB); upper x(1 + 1/7) = 873,196,282 B; no rounding for memory
    end = MEMORY_BUCKETS.bucket_end(int(MEMORY_BUCKETS.find(np.array([600 * MIB]))[0]))
    assert end == pytest.approx(664_388_475.03)
    assert mem["target"] == pytest.approx(end * 1.15)
    assert mem["upper_bound"] == pytest.approx(end * 1.15 * (1 + 1 / 7))
    assert mem["lower_bound"] == pytest.approx(end * 1.15 * (1 + 0.001 / 7) ** -2)
    assert (cpu["request"], mem["request"]) == (1.0, GIB)
    assert cpu["source"] == mem["source"] == "histogram"
    assert "p90 of decaying histogram" in cpu["reason"] and "+15% margin" in cpu["reason"]
    assert "8 24h peaks" in mem["reason"]


@pytest.mark.parametrize(
    ("containers_per_pod", "cpu_min", "memory_min"),
    [(1, 0.025, 250 * MIB), (2, 0.013, 125 * MIB), (5, 0.012, 50 * MIB)],
    ids=["one", "two", "five"],
)
def test_vpa_pod_minimums_split_across_containers(containers_per_pod: int, cpu_min: float, memory_min: float) -> None:
    # an idle container: CPU 0 -> end of bucket 0 = 0.01 x1.15 = 0.0115 cores; memory 20 MiB -> a bucket
    # end near 21 MiB x1.15 ~ 24 MiB; the pod minimum (25 m, 250 MiB) split over the containers wins:
    # two containers -> 12.5 m rounded up to 0.013 and 125 MiB; five -> 5 m < 0.0115, so the histogram's
    # 0.0115 rounded up to 0.012 stays, and 50 MiB
    idle = usage_frame(periods=288, cpu=0.0, memory=20 * MIB)
    recs = by_resource(recommend(idle, policy=vpa_policy(containers_per_pod=containers_per_pod)))
    assert recs["cpu"]["target"] == cpu_min
    assert recs["memory"]["target"] == pytest.approx(memory_min)


def test_vpa_min_max_clamp_keeps_uncapped_target(steady_week: pd.DataFrame) -> None:
    policy = vpa_policy(max_allowed={"cpu": 0.3}, min_allowed={"memory": 1 * GIB})
    recs = by_resource(recommend(steady_week, policy=policy))
    assert recs["cpu"]["target"] == 0.3
    assert recs["cpu"]["uncapped_target"] == 0.588
    assert recs["cpu"]["upper_bound"] == 0.3  # every bound is clamped
    assert "capped at the policy maximum 0.300 cores" in recs["cpu"]["reason"]
    assert recs["memory"]["target"] == GIB
    assert recs["memory"]["uncapped_target"] == pytest.approx(764_046_746.28)


def test_vpa_oom_bump_reaches_the_target() -> None:
    # 300 MiB steady for two days, request 256 MiB; killed an hour ago at 300 MiB:
    # used = max(256 MiB request, 300 MiB) -> bump max(400, 360) = 400 MiB enters today's peak;
    # the target is at least 400 MiB (here: p90 of the peaks lands on the bumped one, x1.15)
    usage = usage_frame(periods=576, memory=300 * MIB, memory_request=256 * MIB)
    now = T0 + pd.Timedelta(days=2)
    kills = pd.DataFrame({"unique_id": ["shop/cart/app"], "ds": [now - pd.Timedelta("1h")]})
    mem = by_resource(recommend(usage, kills, policy="vpa", now=now))["memory"]
    bucket = MEMORY_BUCKETS.bucket_end(int(MEMORY_BUCKETS.find(np.array([400 * MIB]))[0]))
    assert mem["target"] == pytest.approx(bucket * 1.15)
    assert mem["target"] >= 400 * MIB
    assert "raised by OOM kills" in mem["reason"]
    without = by_resource(recommend(usage, policy="vpa", now=now))["memory"]
    assert without["target"] < 400 * MIB


def test_oom_floor_without_the_histogram() -> None:
    # a week at 200 MiB and a kill 30 min ago at 100 MiB in use; the peaks leave the kill out, so the
    # OOMBump wrapper alone holds the target at the bump of max(use 100 MiB, request 256 MiB):
    # max(256 + 100, 256 x 1.2) = 356 MiB, above the peaks' p90 x 1.15 (200 MiB bucket end ~ 210 MiB -> 242 MiB)
    usage = usage_frame(periods=2016, memory=200 * MIB, memory_request=256 * MIB)
    now = T0 + pd.Timedelta(days=7)
    keep = keep_current_policy()
    target = OOMBump(Margin(DailyPeaks(0.9, include_ooms=False), 0.15))
    policy = Policy(
        "oom-only", target={"cpu": keep.target["cpu"], "memory": target}, lower=keep.lower, upper=keep.upper
    )
    kills = pd.DataFrame({"unique_id": ["shop/cart/app"], "ds": [now - pd.Timedelta("30min")], "memory": [100 * MIB]})
    mem = by_resource(recommend(usage, kills, policy=policy, now=now))["memory"]
    assert mem["target"] == pytest.approx(356 * MIB)
    assert "after 1 OOM kill(s) in the last 24h" in mem["reason"]
    # a day later the floor has lapsed: back to the peaks (200 MiB bucket end x 1.15 < 356 MiB)
    later = by_resource(recommend(usage, kills, policy=policy, now=now + pd.Timedelta("25h")))["memory"]
    assert later["target"] < 356 * MIB


def test_moving_window() -> None:
    # 9 days of hourly samples: memory 900 MiB on day 1 only, then 400 MiB; CPU 0.1 except 1.0 in the last 2
    # hours. Memory target = 1.1 x the peak of the last 8 days = 440 MiB (day 1 is outside the window).
    # CPU: p95 of the load-adjusted histogram, 12 h half-life (now = last sample + 1 h): the two newest samples
    # weigh 1.0 x 2^(-1/12) + 1.0 x 2^(-2/12) = 1.835 against 0.1 x ~15.8 = 1.58 for all the others (geometric
    # sum over 9 days): 54 % of the use is at 1.0 -> S_p95 = 1.0 -> x1.1 = 1.1 cores
    n = 9 * 24
    memory = [900 * MIB] * 24 + [400 * MIB] * (n - 24)
    cpu = [0.1] * (n - 2) + [1.0, 1.0]
    usage = usage_frame(periods=n, freq="1h", cpu=cpu, memory=memory)
    recs = by_resource(recommend(usage, policy="moving-window"))
    assert recs["memory"]["target"] == pytest.approx(440 * MIB)
    assert recs["cpu"]["target"] == pytest.approx(1.1)
    assert recs["memory"]["upper_bound"] == pytest.approx(440 * MIB)  # peak of the last week (400) below target
    assert recs["cpu"]["source"] == "window"
    assert recs["cpu"]["policy"] == "moving-window"
    # a single 1.0 sample 48 h back weighs 1.0 x 2^-4 = 0.0625 of ~1.64 in all: 3.8 % of the use, below the top
    # 5 % -> S_p95 = 0.1 -> 0.11 cores
    old = usage.assign(cpu=[0.1] * (n - 48) + [1.0] + [0.1] * 47)
    assert by_resource(recommend(old, policy="moving-window"))["cpu"]["target"] == pytest.approx(0.11)


def test_keep_current_policy_echoes_requests() -> None:
    usage = usage_frame(cpu_request=[1.0] * 6 + [1.5] * 6, memory_request=2 * GIB)
    recs = by_resource(recommend(usage, policy="keep"))
    for res, value in (("cpu", 1.5), ("memory", 2 * GIB)):
        row = recs[res]
        assert row["target"] == row["lower_bound"] == row["upper_bound"] == row["uncapped_target"] == value
        assert row["source"] == "current"


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(POLICIES)
    yield
    POLICIES.clear()
    POLICIES.update(saved)


def test_registry_takes_one_entry(restore_registry: None) -> None:
    def doubled() -> Policy:
        keep = keep_current_policy()
        return Policy("doubled", target=keep.target, lower=keep.lower, upper=keep.upper, min_allowed={"cpu": 2.0})

    register_policy("doubled", doubled)
    recs = by_resource(recommend(usage_frame(), policy="doubled"))
    assert recs["cpu"]["target"] == 2.0 and recs["cpu"]["policy"] == "doubled"
    assert set(POLICIES) >= {"calibrated", "vpa", "moving-window", "keep", "doubled"}


def test_get_policy() -> None:
    p = vpa_policy()
    assert get_policy(p) is p
    assert get_policy("vpa", containers_per_pod=2).settings["containers_per_pod"] == 2
    with pytest.raises(UsageError, match="unknown policy 'nope'"):
        get_policy("nope")
    with pytest.raises(ValueError, match="only accepted with a policy name"):
        get_policy(p, margin=0.2)


def test_policy_needs_every_estimator() -> None:
    with pytest.raises(ValueError, match=r"no lower estimator for \['memory'\]"):
        Policy(
            "broken",
            target={"cpu": CurrentRequest(), "memory": CurrentRequest()},
            lower={"cpu": CurrentRequest()},
            upper={"cpu": CurrentRequest(), "memory": CurrentRequest()},
        )
    with pytest.raises(ValueError, match="unknown resource"):
        Policy(
            "broken",
            target=keep_current_policy().target,
            lower=keep_current_policy().lower,
            upper=keep_current_policy().upper,
            max_allowed={"gpu": 1.0},
        )


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    hours=st.integers(1, 72),
    policy=st.sampled_from(["calibrated", "vpa", "moving-window", "keep"]),
)
def test_bounds_are_ordered_for_any_history(seed: int, hours: int, policy: str) -> None:
    rng = np.random.default_rng(seed)
    n = hours * 12
    usage = usage_frame(periods=n, cpu=rng.gamma(2.0, 0.2, n), memory=rng.uniform(100, 900, n) * MIB)
    recs = recommend(usage, policy=policy)
    assert (recs["lower_bound"] <= recs["target"]).all()
    assert (recs["target"] <= recs["upper_bound"]).all()
    assert np.isfinite(recs[["target", "lower_bound", "upper_bound", "uncapped_target"]].to_numpy()).all()
