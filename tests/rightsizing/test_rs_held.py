"""``cycle.held_sizer.HeldSizers``: one ``RightSizer`` kept across cycles decides, cycle after cycle, exactly as a
fresh fit on the whole usage window would (the controller's and the service's right-sizing path).

The source is simulated: ``fetch(start, end)`` returns the samples in ``[start, end]``, as a Prometheus range
query does. Each cycle the held path fetches from ``HeldSizers.fetch_start`` (the newest held sample between
refits) and the fresh path fetches the whole window; the recommendations must be identical, every bound, every
container, with the window sliding (retention trims the oldest samples) and the refit schedule in between.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from rs_builders import GIB, MIB, T0, usage_frame

from forecaster import RightSizer
from forecaster.cycle.held_sizer import HeldSizers
from forecaster.rightsizing import LowConfidenceWarning
from forecaster.rightsizing.frames import LOWER_BOUND, RESOURCE, TARGET, UNCAPPED_TARGET, UPPER_BOUND

DAY = pd.Timedelta("1D")
WINDOW = pd.Timedelta("8D")
KEY = "shop/web"


def fleet(days: int = 14, seed: int = 1) -> pd.DataFrame:
    """Two containers with daily cycles and noise, 15-minute samples; ``b`` joins on day 3 and OOMs once."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, (uid, start) in enumerate((("shop/web/app", T0), ("shop/web/sidecar", T0 + 3 * DAY))):
        n = int((T0 + days * DAY - start) / pd.Timedelta("15min"))
        hours = np.arange(n) / 4.0
        daily = 1.0 + 0.6 * np.sin(2 * np.pi * hours / 24.0)
        parts.append(usage_frame(uid, periods=n, freq="15min", start=start, namespace="shop",
                                 cpu=daily * rng.gamma(3.0, 0.05 * (i + 1), n),
                                 memory=(300 + 80 * daily + rng.normal(0, 15, n)) * MIB * (i + 1),
                                 cpu_request=0.5, memory_request=1 * GIB))
    return pd.concat(parts, ignore_index=True).sort_values(["unique_id", "ds"], ignore_index=True)


def fetch(usage: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return usage[(usage["ds"] >= start) & (usage["ds"] <= end)].reset_index(drop=True)


def bounds(recs: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    return {(str(r["unique_id"]), str(r[RESOURCE]), col): float(r[col]) for r in recs.to_dict("records")
            for col in (TARGET, LOWER_BOUND, UPPER_BOUND, UNCAPPED_TARGET)}


def fresh(usage: pd.DataFrame, policy: str, now: pd.Timestamp, ooms: pd.DataFrame | None = None) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowConfidenceWarning)
        sizer = RightSizer(policy, retention=None).fit(fetch(usage, now - WINDOW, now), ooms, now)
        return sizer.decide(reports=False).recommendations


def run_cycles(usage: pd.DataFrame, policy: str, times: list[pd.Timestamp], held: HeldSizers,
               ooms: pd.DataFrame | None = None) -> None:
    for now in times:
        start = held.fetch_start(KEY, policy, WINDOW, now)
        kills = None if ooms is None else ooms[(ooms["ds"] >= start) & (ooms["ds"] <= now)]
        got = held.decide(KEY, fetch(usage, start, now), kills, policy, WINDOW, now).recommendations
        window_kills = None if ooms is None else ooms[(ooms["ds"] >= now - WINDOW) & (ooms["ds"] <= now)]
        assert bounds(got) == bounds(fresh(usage, policy, now, window_kills)), f"{policy} at {now}"


@pytest.mark.parametrize("policy", ["calibrated", "vpa", "cost-selected", "moving-window", "forecaster"])
def test_every_15_minute_cycle_decides_as_a_fresh_fit_on_the_window(policy: str) -> None:
    usage = fleet()
    start = T0 + 10 * DAY + pd.Timedelta("7h")
    times = [start + k * pd.Timedelta("15min") for k in range(6)]
    held = HeldSizers()
    run_cycles(usage, policy, times, held)
    assert (held.fits, held.updates) == (1, 5)  # fitted once, then only the new samples


@pytest.mark.parametrize("policy", ["calibrated", "cost-selected"])
def test_daily_cycles_across_refits_decide_as_a_fresh_fit(policy: str) -> None:
    usage = fleet()
    start = T0 + 9 * DAY + pd.Timedelta("30min")
    times = [start + k * pd.Timedelta("6h") for k in range(10)]  # 2.25 days: two daily refits
    held = HeldSizers()
    run_cycles(usage, policy, times, held)
    assert (held.fits, held.updates) == (3, 7)


def test_out_of_memory_kills_and_a_revised_newest_sample() -> None:
    usage = fleet()
    ooms = pd.DataFrame({"unique_id": ["shop/web/sidecar"], "ds": [T0 + 10 * DAY + pd.Timedelta("2h")],
                         "memory": [900 * MIB]})
    ooms["ds"] = ooms["ds"].dt.as_unit("ns")
    times = [T0 + 10 * DAY + k * pd.Timedelta("1h") for k in range(5)]
    held = HeldSizers()
    revised = usage.copy()
    newest = revised["ds"] == times[1]  # the sample at the end of cycle 1's range changes before cycle 2
    for now in times:
        source = usage if now <= times[1] else revised
        if now == times[2]:
            revised.loc[newest, "cpu"] *= 3.0
            source = revised
        start = held.fetch_start(KEY, "calibrated", WINDOW, now)
        kills = ooms[(ooms["ds"] >= start) & (ooms["ds"] <= now)]
        got = held.decide(KEY, fetch(source, start, now), kills, "calibrated", WINDOW, now).recommendations
        assert bounds(got) == bounds(fresh(source, "calibrated", now, ooms[ooms["ds"] <= now])), f"at {now}"
    assert held.fits == 1


def test_refit_when_the_policy_changes_the_clock_goes_back_or_a_day_passed() -> None:
    usage = fleet()
    now = T0 + 10 * DAY
    held = HeldSizers()
    held.decide(KEY, fetch(usage, now - WINDOW, now), None, "vpa", WINDOW, now)
    assert not held.refit_due(KEY, "vpa", WINDOW, now + pd.Timedelta("15min"))
    assert held.fetch_start(KEY, "vpa", WINDOW, now + pd.Timedelta("15min")) == now  # the newest held sample
    assert held.refit_due(KEY, "calibrated", WINDOW, now + pd.Timedelta("15min"))
    assert held.refit_due(KEY, "vpa", pd.Timedelta("7D"), now + pd.Timedelta("15min"))
    assert held.refit_due(KEY, "vpa", WINDOW, now - pd.Timedelta("15min"))  # a clock set back
    assert held.refit_due(KEY, "vpa", WINDOW, now + DAY)
    assert held.fetch_start(KEY, "vpa", WINDOW, now + DAY) == now + DAY - WINDOW
    assert held.refit_due("other", "vpa", WINDOW, now)
    held.drop_except([])
    assert len(held) == 0 and held.refit_due(KEY, "vpa", WINDOW, now + pd.Timedelta("15min"))


def test_a_cycle_with_nothing_new_still_moves_and_trims() -> None:
    usage = fleet()
    now = T0 + 10 * DAY
    held = HeldSizers()
    held.decide(KEY, fetch(usage, now - WINDOW, now), None, "vpa", WINDOW, now)
    later = now + pd.Timedelta("15min")
    got = held.decide(KEY, usage.iloc[:0], None, "vpa", WINDOW, later).recommendations
    expected = RightSizer("vpa", retention=None).fit(fetch(usage, later - WINDOW, now), now=later)
    assert bounds(got) == bounds(expected.decide(reports=False).recommendations)


def test_a_sizer_kept_with_a_longer_retention_is_not_a_fresh_fit() -> None:
    """The divergence ``HeldSizers`` guards against: a sizer updated every cycle with the default retention (63 days)
    keeps samples older than the window a fresh fit reads, so its history spans more than the ``forecaster``
    policy's 7-day minimum and the engine forecast replaces the window's histogram."""
    usage = fleet()
    first, later = T0 + 7 * DAY, T0 + 9 * DAY
    window = pd.Timedelta("7D")
    kept = RightSizer("forecaster").fit(fetch(usage, first - window, first), now=first)
    kept.update(fetch(usage, first, later), now=later)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowConfidenceWarning)
        old = kept.decide(reports=False).recommendations
        new = RightSizer("forecaster", retention=None).fit(fetch(usage, later - window, later), now=later)
        fresh_recs = new.decide(reports=False).recommendations
    assert kept.frame()["ds"].min() < later - window
    assert set(old["source"]) != set(fresh_recs["source"]) or bounds(old) != bounds(fresh_recs)
