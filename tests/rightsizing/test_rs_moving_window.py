"""The ``moving-window`` policy and its statistics, after Autopilot's moving-window recommenders (Rzadca et al.,
EuroSys 2020, section 3, "Moving window recommenders"): decayed weights ``2**(-age / half_life)``, the
load-adjusted percentile ``S_pj`` and the peak ``S_max``, plus a margin; ``autopilot`` is its deprecated former
name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rs_builders import MIB, T0, history, usage_frame

from forecaster.rightsizing.estimators import LoadAdjustedPercentile, MovingWindowPeak
from forecaster.rightsizing.histogram import decay_weights
from forecaster.rightsizing.policies import MOVING_WINDOW_MARGIN, get_policy, moving_window_policy
from forecaster.rightsizing.recommend import recommend

H = pd.Timedelta("1h")


@pytest.mark.parametrize(
    ("age_h", "half_life_h", "weight"),
    [(0, 12, 1.0), (12, 12, 0.5), (24, 12, 0.25), (6, 12, 2**-0.5), (48, 48, 0.5)],
    ids=["now", "one-half-life", "two-half-lives", "half-a-half-life", "memory-48h"],
)
def test_decayed_weight_halves_every_half_life(age_h: float, half_life_h: float, weight: float) -> None:
    """w[tau] = 2^(-tau / t_half): a sample one half-life old counts half."""
    now = np.datetime64("2024-03-10T00:00", "ns")
    got = decay_weights(np.array([now - np.timedelta64(int(age_h * 3600), "s")]), now, half_life_h * 3600.0)
    assert got[0] == pytest.approx(weight)


@pytest.mark.parametrize(
    ("usage", "ages_h", "percentile", "expected"),
    [
        # same age: weights = loads 1, 1, 1, 1, 4 (total 8); p80 threshold 6.4 is reached only at the 4-core sample
        ([1.0, 1.0, 1.0, 1.0, 4.0], [1, 1, 1, 1, 1], 0.8, 4.0),
        # p50 threshold 4.0 is reached at the fourth 1-core sample
        ([1.0, 1.0, 1.0, 1.0, 4.0], [1, 1, 1, 1, 1], 0.5, 1.0),
        # the 4-core sample 24 h (two half-lives) old weighs 4 x 1/4 = 1 of 5: p80 threshold 4.0 -> 1 core
        ([1.0, 1.0, 1.0, 1.0, 4.0], [0, 0, 0, 0, 24], 0.8, 1.0),
        # ... and p95 (threshold 4.75) still needs it -> 4 cores
        ([1.0, 1.0, 1.0, 1.0, 4.0], [0, 0, 0, 0, 24], 0.95, 4.0),
        # idle samples carry no weight: the percentile of the use is the busy level
        ([0.0, 0.0, 0.0, 2.0], [1, 1, 1, 1], 0.5, 2.0),
    ],
    ids=["load-adjusted-p80", "p50", "decayed-burst-p80", "decayed-burst-p95", "idle-ignored"],
)
def test_load_adjusted_percentile(usage: list[float], ages_h: list[float], percentile: float, expected: float) -> None:
    now = T0 + pd.Timedelta("2D")
    h = history(usage, ds=[now - a * H for a in ages_h], now=now)
    est = LoadAdjustedPercentile(percentile, 12 * H).estimate(h)
    assert est.value == pytest.approx(expected)
    assert "load-adjusted, half-life 12h" in est.reason


def test_time_weighted_and_load_weighted_percentiles_differ_on_bursts() -> None:
    """The docstring's example: time-weighted p80 of 1, 1, 1, 1, 4 is 1 core, load-adjusted p80 is 4 cores."""
    h = history([1.0, 1.0, 1.0, 1.0, 4.0])
    assert float(np.quantile(h.usage, 0.8, method="inverted_cdf")) == 1.0
    assert LoadAdjustedPercentile(0.8, 12 * H).estimate(h).value == 4.0
    assert LoadAdjustedPercentile(0.8, 12 * H).estimate(history([0.0, 0.0])).value == 0.0


def test_moving_window_targets_are_the_statistics_plus_the_margin() -> None:
    """S_p95 = 4 cores -> 4.4 cores; S_max = 600 MiB in the last 8 days -> 660 MiB (docstring numbers)."""
    usage = usage_frame(periods=5, freq="1h", cpu=[1.0, 1.0, 1.0, 1.0, 4.0], memory=[500 * MIB] * 4 + [600 * MIB])
    recs = recommend(usage, policy="moving-window").set_index("resource")
    assert MOVING_WINDOW_MARGIN == 0.10
    assert recs.loc["cpu", "target"] == pytest.approx(4.4)
    assert recs.loc["memory", "target"] == pytest.approx(660 * MIB)
    assert MovingWindowPeak("8D").estimate(history([600.0, 500.0], resource="memory")).value == 600.0


def test_moving_window_knobs_and_the_deprecated_name() -> None:
    p = moving_window_policy(margin=0.0, memory_window="48h")
    assert p.name == "moving-window" and p.memory_window == pd.Timedelta("48h")
    with pytest.warns(DeprecationWarning, match="now named 'moving-window'"):
        old = get_policy("autopilot")
    assert old.name == "moving-window" and old.settings == moving_window_policy().settings


@pytest.mark.parametrize(
    ("ages_d", "peaks_mib", "expected_mib"),
    [
        ([9, 1], [900.0, 600.0], 600.0),  # a peak older than the 8-day window is forgotten
        ([7.9, 1], [900.0, 600.0], 900.0),  # ... one inside it is kept, however old within the window
        ([1, 0.5], [600.0, 650.0], 650.0),  # the largest sample of the window, not the latest
    ],
    ids=["older-than-window", "inside-window", "largest-not-latest"],
)
def test_s_max_is_the_peak_of_the_window(ages_d: list[float], peaks_mib: list[float], expected_mib: float) -> None:
    """S_max = max of the samples of the moving window (no decay on the peak): 8 days for memory."""
    now = T0 + pd.Timedelta("20D")
    h = history([p * MIB for p in peaks_mib], resource="memory", ds=[now - pd.Timedelta(days=a) for a in ages_d],
                now=now)
    assert MovingWindowPeak("8D").estimate(h).value == pytest.approx(expected_mib * MIB)


def test_moving_window_bounds_worked_example() -> None:
    """The docstring's chains on one day of hourly samples, every hour 1 core except 4 cores at 06:00 and 18:00,
    memory 500 MiB except 600 MiB at 18:00, decided at midnight. Weights = load x 2**(-age / 12 h): the 22 one-core
    samples weigh 11.55, the two 4-core ones (18 h and 6 h old) 4 x (0.354 + 0.707) = 4.24, of 15.79 in all. Lower =
    load-adjusted median (7.90 is reached among the 1-core samples) = 1 core, and for memory the window's peak,
    600 MiB; the p95 weight 15.01 is only reached by the 4-core samples, so target =
    S_p95 x1.1 = 4.4 cores and S_max x1.1 = 660 MiB; upper = the 7-day peak (4 cores, 600 MiB), below the target,
    so moved up to it (a recommendation's bounds always hold its target)."""
    cpu = [4.0 if h in (6, 18) else 1.0 for h in range(24)]
    memory = [600 * MIB if h == 18 else 500 * MIB for h in range(24)]
    recs = recommend(usage_frame(periods=24, freq="1h", cpu=cpu, memory=memory),
                     policy="moving-window").set_index("resource")
    assert recs.loc["cpu", "lower_bound"] == pytest.approx(1.0)
    assert recs.loc["cpu", "upper_bound"] == pytest.approx(4.4)
    assert recs.loc["memory", "upper_bound"] == pytest.approx(660 * MIB)
    assert recs.loc["cpu", "target"] == pytest.approx(4.4)
    assert recs.loc["memory", "target"] == pytest.approx(660 * MIB)
    assert recs.loc["memory", "lower_bound"] == pytest.approx(600 * MIB)
