"""``RightSizer``: fit once, update with new use, decide for every container; the same answers as one-shot
decisions, one new window scored per day, overlap and new containers handled (``sizer.py``)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from rs_builders import GIB, MIB, T0, usage_frame

from forecaster import RightSizer, rightsize
from forecaster.rightsizing import LowConfidenceWarning, UsageError
from forecaster.rightsizing.frames import TARGET

DAY = pd.Timedelta("1D")


def fleet(days: int = 20, seed: int = 0) -> pd.DataFrame:
    """Three containers, 30-minute samples for ``days`` days; the third joins after ``days - 2`` days."""
    rng = np.random.default_rng(seed)
    n = days * 48
    parts = []
    for i, (uid, start) in enumerate((("shop/a", T0), ("shop/b", T0), ("shop/new", T0 + (days - 2) * DAY))):
        periods = int((T0 + days * DAY - start) / pd.Timedelta("30min"))
        parts.append(usage_frame(uid, periods=periods, freq="30min", start=start, namespace="shop",
                                 cpu=rng.gamma(2.0, 0.1 * (i + 1), periods),
                                 memory=rng.uniform(200, 400 + 100 * i, periods) * MIB,
                                 cpu_request=2.0, memory_request=2 * GIB))
    assert sum(len(p) for p in parts) <= 3 * n
    return pd.concat(parts, ignore_index=True)


def targets(result_recs: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(str(r["unique_id"]), str(r["resource"])): float(r[TARGET]) for r in result_recs.to_dict("records")}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.simplefilter("ignore", LowConfidenceWarning)


@pytest.mark.parametrize("policy", ["calibrated", "vpa", "cost-selected", "moving-window", "keep"])
def test_daily_updates_decide_as_a_fresh_fit_would(policy: str) -> None:
    usage = fleet()
    days = [T0 + d * DAY for d in range(15, 20)]
    sizer = RightSizer(policy).fit(usage[usage["ds"] < days[0]], now=days[0])
    for prev, day in itertools.pairwise(days):
        sizer.update(usage[(usage["ds"] >= prev) & (usage["ds"] < day)], now=day)
        fresh = RightSizer(policy).fit(usage[usage["ds"] < day], now=day)
        assert targets(sizer.decide(reports=False).recommendations) == pytest.approx(
            targets(fresh.decide(reports=False).recommendations))


def test_one_new_window_is_scored_per_day() -> None:
    usage = fleet()
    day = T0 + 18 * DAY
    sizer = RightSizer("calibrated").fit(usage[usage["ds"] < day], now=day)
    sizer.decide(reports=False)
    before = {k: len(v) for k, v in sizer._kept.items()}
    sizer.update(usage[(usage["ds"] >= day) & (usage["ds"] < day + DAY)], now=day + DAY)
    sizer.decide(reports=False)
    grown = {k: len(v) - before.get(k, 0) for k, v in sizer._kept.items()}
    assert grown[("shop/a", "cpu")] == 1 and grown[("shop/a", "memory")] == 1


def test_overlapping_updates_and_new_containers() -> None:
    usage = fleet()
    cut = T0 + 17 * DAY
    sizer = RightSizer("vpa").fit(usage[usage["ds"] < cut], now=cut)
    assert sizer.containers == ["shop/a", "shop/b"]
    end = cut + 3 * DAY
    sizer.update(usage, now=end)  # the whole history again, plus three days and the new container
    sizer.update(usage, now=end)  # and again: nothing new
    one_shot = rightsize(usage, policy="vpa", now=end)
    assert sizer.containers == ["shop/a", "shop/b", "shop/new"]
    assert targets(sizer.decide().recommendations) == pytest.approx(targets(one_shot.recommendations))


def test_decide_uses_only_what_was_known_before_now() -> None:
    usage = fleet()
    sizer = RightSizer("vpa").fit(usage)
    early = sizer.decide(T0 + 10 * DAY, reports=False).recommendations
    assert targets(early) == pytest.approx(targets(rightsize(usage[usage["ds"] < T0 + 10 * DAY], policy="vpa",
                                                             now=T0 + 10 * DAY).recommendations))


def test_retention_trims_old_samples() -> None:
    usage = fleet()
    sizer = RightSizer("vpa", retention="5D").fit(usage)
    assert sizer.frame()["ds"].min() >= sizer.now - pd.Timedelta("5D")
    assert len(RightSizer("vpa", retention=None).fit(usage).frame()) == len(usage)


def test_decide_with_another_policy_and_reports() -> None:
    sizer = RightSizer().fit(fleet())
    assert sizer.policy_name == "calibrated"
    result = sizer.decide()
    assert result.policy == "calibrated" and len(result.containers) == 6
    assert set(result.namespaces["namespace"]) == {"shop"}
    assert sizer.decide(policy="vpa", reports=False).policy == "vpa"
    with pytest.raises(UsageError, match="needs the engine"):
        sizer.decide(policy="forecaster")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: RightSizer().decide(), "before fit"),
        (lambda: RightSizer(window="-1h"), "must be positive"),
        (lambda: RightSizer("nope"), "unknown policy"),
    ],
    ids=["decide-before-fit", "bad-window", "unknown-policy"],
)
def test_misuse_is_a_clear_error(call: object, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        call()  # type: ignore[operator]


def test_predictive_policy_fits_the_engine_once_and_updates_it() -> None:
    usage = fleet(days=3)
    sizer = RightSizer("forecaster").fit(usage[usage["ds"] < T0 + 2 * DAY], now=T0 + 2 * DAY)
    first = sizer.decide(reports=False)
    assert first.policy == "forecaster"
    sizer.update(usage[usage["ds"] >= T0 + 2 * DAY], now=T0 + 3 * DAY)
    assert sizer.decide(reports=False).recommendations["source"].isin(["histogram", "forecast"]).all()
