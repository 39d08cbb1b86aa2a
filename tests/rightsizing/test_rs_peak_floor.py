"""No policy recommends a memory target below the peak of its own memory window (``wrappers.PeakFloor``), unless
the user plans overruns with a stated risk (``planned_memory_overruns``), and then the reason says so.

A property test runs every registered policy (``policies.POLICIES``) on generated usage; the policies that read
the engine's prediction get an adversarial prediction table (predicted peaks far below what was used), so the
floor, not the forecast, has to hold the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rs_builders import GIB, MIB, T0, history, usage_frame

from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing import rightsize
from forecaster.rightsizing.api import PREDICTIVE_POLICIES
from forecaster.rightsizing.estimators import Estimate
from forecaster.rightsizing.frames import UsageError
from forecaster.rightsizing.history import ContainerHistory
from forecaster.rightsizing.policies import POLICIES, Policy, get_policy, keep_current_policy, vpa_policy
from forecaster.rightsizing.predict import FORECAST, PREDICTED, STATISTICS
from forecaster.rightsizing.recommend import recommend
from forecaster.rightsizing.wrappers import PeakFloor

USAGE_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "usage_small.csv"


class Fixed:
    """A base estimator answering a fixed value (so only the floor is under test)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def estimate(self, h: ContainerHistory) -> Estimate:
        return Estimate(self.value, "histogram", f"base {self.value / MIB:g} MiB")


# -- the wrapper: worked numbers -------------------------------------------------------------------------------
def test_peak_floor_worked_example() -> None:
    # ten samples of 1..10 MiB in the window: the floor is the peak, 10 MiB
    h = history([v * MIB for v in range(1, 11)], resource="memory")
    est = PeakFloor(Fixed(4 * MIB), "8D").estimate(h)
    assert est.value == 10 * MIB
    assert "raised to the 8d memory peak 10.0 MiB" in est.reason
    # a planned overrun of 20 %: k = floor(0.2 x 10) = 2 samples may lie above -> the 8th smallest, 8 MiB
    planned = PeakFloor(Fixed(4 * MIB), "8D", planned_overruns=0.2).estimate(h)
    assert planned.value == 8 * MIB
    assert "planned overruns" in planned.reason and "2 of 10 samples" in planned.reason
    # the base already covers the peak: unchanged, no note
    high = PeakFloor(Fixed(12 * MIB), "8D").estimate(h)
    assert (high.value, high.reason) == (12 * MIB, "base 12 MiB")


def test_peak_floor_only_looks_at_its_window() -> None:
    # a 900 MiB spike 3 days ago, 100 MiB since: a 48 h window does not see it, an 8 day window does
    ds = pd.date_range(T0, periods=4 * 24, freq="1h")
    use = np.full(len(ds), 100 * MIB)
    use[24] = 900 * MIB
    h = history(list(use), resource="memory", ds=list(ds), step="1h")
    assert PeakFloor(Fixed(0.0), "48h").estimate(h).value == 100 * MIB
    assert PeakFloor(Fixed(0.0), "8D").estimate(h).value == 900 * MIB


def test_planned_overrun_below_the_peak_says_so_in_the_reason() -> None:
    h = history([v * MIB for v in range(1, 11)], resource="memory")
    est = PeakFloor(Fixed(9 * MIB), "8D", planned_overruns=0.2).estimate(h)
    assert est.value == 9 * MIB  # 1 of 10 samples (10 %) above, within the 20 % the user accepted
    assert "planned overruns: 1 of 10 samples" in est.reason and "peak 10.0 MiB" in est.reason


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_planned_overruns_must_be_a_fraction_below_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="planned"):
        PeakFloor(Fixed(1.0), "8D", planned_overruns=fraction)
    with pytest.raises(UsageError, match="planned_memory_overruns"):
        vpa_policy().with_planned_memory_overruns(fraction)


def test_cpu_and_bounds_are_not_floored() -> None:
    # 8 days of hourly samples with one spike on day 3: its daily peak weighs 2^-5 in the VPA's histogram
    cpu, memory = np.full(192, 0.1), np.full(192, 300 * MIB)
    cpu[60], memory[60] = 3.0, 3 * GIB
    recs = recommend(usage_frame(periods=192, freq="1h", cpu=cpu, memory=memory), policy="vpa").set_index("resource")
    assert recs.loc["cpu", "target"] < 3.0  # CPU is compressible: throttling, not a kill
    assert recs.loc["memory", "target"] == 3 * GIB
    assert recs.loc["memory", "upper_bound"] >= recs.loc["memory", "target"]


# -- every registered policy ---------------------------------------------------------------------------------
def _prediction(usage: pd.DataFrame, factor: float) -> pd.DataFrame:
    """A prediction table for every container, resource and statistic at ``factor`` x the container's median use."""
    rows: list[dict[str, Any]] = []
    for uid, g in usage.groupby(ID):
        for res, stats in STATISTICS.items():
            value = float(g[res].median()) * factor
            for stat in stats:
                rows.append({ID: uid, "resource": res, "statistic": stat, "source": FORECAST, PREDICTED: value,
                             "predicted-lo-80": value * 0.8, "predicted-hi-80": value * 1.1,
                             "predicted-lo-95": value * 0.7, "predicted-hi-95": value * 1.2, "reason": "test"})
    return pd.DataFrame(rows)


def _policy(name: str, usage: pd.DataFrame, factor: float) -> Policy:
    if name in PREDICTIVE_POLICIES:
        return get_policy(name, prediction=_prediction(usage, factor))
    return get_policy(name)


@st.composite
def fleets(draw: st.DrawFn) -> pd.DataFrame:
    """1-3 containers ending together, 1 hour to 12 days of samples every 5, 15 or 60 minutes; memory wanders
    around a level with a few spikes up to 4x; requests from 0.15 to twice the level (often below the use)."""
    step = pd.Timedelta(minutes=draw(st.sampled_from([5, 15, 60])))
    end = T0 + pd.Timedelta("14D")
    frames = []
    for i in range(draw(st.integers(1, 3))):
        hours = draw(st.integers(1, 12 * 24))
        periods = max(1, int(pd.Timedelta(hours=hours) / step))
        level = draw(st.floats(32, 4096)) * MIB
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        memory = level * rng.uniform(0.5, 1.0, periods)
        for _ in range(draw(st.integers(0, 3))):
            memory[draw(st.integers(0, periods - 1))] *= draw(st.floats(1.0, 4.0))
        frames.append(usage_frame(
            f"ns/app{i}/main", periods=periods, freq=step, start=end - periods * step,
            cpu=rng.gamma(2.0, 0.1, periods), memory=memory,
            memory_request=level * draw(st.floats(0.15, 2.0)), cpu_request=draw(st.floats(0.05, 2.0)),
        ))
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=30, deadline=None)
@given(usage=fleets(), factor=st.floats(0.01, 2.0), planned=st.sampled_from([0.0, 0.0, 0.01, 0.1]))
def test_no_policy_recommends_memory_below_the_peak_of_its_window(
    usage: pd.DataFrame, factor: float, planned: float
) -> None:
    now = usage[DS].max() + pd.Timedelta("1min")
    for name in sorted(POLICIES):
        policy = _policy(name, usage, factor)
        if planned:
            policy = policy.with_planned_memory_overruns(planned)
        window = policy.memory_window
        assert window >= pd.Timedelta("1D"), f"{name}: a memory window shorter than a day misses the daily peak"
        recs = recommend(usage, policy=policy, now=now)
        for rec in recs[recs["resource"] == "memory"].to_dict("records"):
            g = usage[(usage[ID] == rec[ID]) & (usage[DS] >= now - window) & (usage[DS] < now)]
            used = g["memory"].to_numpy(dtype=float)
            if planned == 0.0:
                assert rec["target"] >= used.max() * (1 - 1e-12), (name, rec[ID], rec["reason"])
            else:
                above = float(np.mean(used > rec["target"]))
                assert above <= planned + 1e-12, (name, rec[ID], above, rec["reason"])
                if rec["target"] < used.max():
                    assert "planned overruns" in rec["reason"], (name, rec["reason"])


def test_rightsize_passes_planned_overruns_to_the_policy() -> None:
    usage = usage_frame(periods=100, memory=[200 * MIB] * 99 + [2 * GIB], memory_request=GIB)
    safe = rightsize(usage, policy="keep").recommendations.set_index("resource")
    assert safe.loc["memory", "target"] == 2 * GIB
    risky = rightsize(usage, policy="keep", planned_memory_overruns=0.05).recommendations.set_index("resource")
    assert risky.loc["memory", "target"] == GIB  # the one 2 GiB sample (1 %) is within the 5 % accepted
    assert "planned overruns: 1 of 100 samples" in risky.loc["memory", "reason"]


def test_keep_is_raised_to_the_peak_when_the_request_is_below_it() -> None:
    usage = usage_frame(periods=24, memory=[300 * MIB] * 23 + [700 * MIB], memory_request=512 * MIB)
    rec = recommend(usage, policy=keep_current_policy()).set_index("resource").loc["memory"]
    assert rec["target"] == 700 * MIB and "raised to the 8d memory peak" in rec["reason"]


def test_default_policy_on_the_fixture_covers_the_daily_peaks() -> None:
    """The issue's reproduction: ``forecaster rightsize --input tests/fixtures/usage_small.csv`` (default policy
    ``forecaster``) gave vm004 437 MiB while its daily peaks reached 1,049 MiB within the last 8 days."""
    usage = pd.read_csv(USAGE_CSV)
    result = rightsize(usage, policy="forecaster")
    frame = usage.assign(ds=pd.to_datetime(usage[DS], utc=True))
    recent = frame[frame[DS] >= result.now - pd.Timedelta("8D")]
    peaks = recent.groupby(ID)["memory"].max()
    memory = result.recommendations[result.recommendations["resource"] == "memory"].set_index(ID)["target"]
    assert peaks["vm004"] > 1000 * MIB
    for uid, peak in peaks.items():
        assert memory[uid] >= peak, (uid, memory[uid] / MIB, peak / MIB)
