"""Base estimators (estimators.py) on worked numbers: histogram percentiles, daily peaks, moving windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rs_builders import MIB, T0, history

from forecaster.rightsizing.estimators import (
    CurrentRequest,
    DailyPeaks,
    DecayingHistogramPercentile,
    Estimator,
    MovingWindowPeak,
    MovingWindowPercentile,
    oom_bump,
)
from forecaster.rightsizing.histogram import CPU_BUCKETS, MEMORY_BUCKETS


def cpu_end(value: float) -> float:
    """End of the CPU bucket holding ``value``."""
    return CPU_BUCKETS.bucket_end(int(CPU_BUCKETS.find(np.array([value]))[0]))


def mem_end(value: float) -> float:
    """End of the memory bucket holding ``value``."""
    return MEMORY_BUCKETS.bucket_end(int(MEMORY_BUCKETS.find(np.array([value]))[0]))


H = pd.Timedelta("1h")


@pytest.mark.parametrize(
    ("usage", "requests", "percentile", "weight_by_request", "expected"),
    [
        # same time, so no decay. A = 0.2 cores at request 0.05 (weight max(0.05, 0.1) = 0.1),
        # B = 1.0 cores at request 1.0 (weight 1). p50 threshold 0.55: A's 0.1 falls short -> B's bucket.
        ([0.2, 1.0], [0.05, 1.0], 0.5, None, cpu_end(1.0)),
        # unweighted: threshold 1.0 is reached by A's weight 1 -> A's bucket
        ([0.2, 1.0], [0.05, 1.0], 0.5, False, cpu_end(0.2)),
        # p5 weighted: threshold 0.055 <= 0.1 -> A
        ([0.2, 1.0], [0.05, 1.0], 0.05, None, cpu_end(0.2)),
        # requests 2 and 1: weights 2 and 1; p60 threshold 1.8 <= 2 -> A
        ([0.2, 1.0], [2.0, 1.0], 0.6, None, cpu_end(0.2)),
    ],
    ids=["min-weight", "unweighted", "low-percentile", "request-weights"],
)
def test_cpu_histogram_weights_samples_by_request(
    usage: list[float], requests: list[float], percentile: float, weight_by_request: bool | None, expected: float
) -> None:
    stamps = [T0, T0]  # duplicate times are fine for a hand-made history: both samples get decay weight 1
    h = history(usage, ds=stamps, request=requests, now=T0)
    est = DecayingHistogramPercentile(percentile, weight_by_request=weight_by_request).estimate(h)
    assert est.value == pytest.approx(expected)
    assert est.source == "histogram"


def test_decay_halves_old_samples() -> None:
    # 0.2 cores 48 h before now (weight 0.25) and 1.0 core now-1h (weight ~0.97): p25 threshold 0.305 > 0.25
    h = history([0.2, 1.0], ds=[T0, T0 + 47 * H], now=T0 + 48 * H, request=1.0)
    assert DecayingHistogramPercentile(0.25).estimate(h).value == pytest.approx(cpu_end(1.0))
    # with a one-week half-life the old sample weighs 0.82 and holds p25 (threshold 0.45)
    assert DecayingHistogramPercentile(0.25, "168h").estimate(h).value == pytest.approx(cpu_end(0.2))


def test_lookback_drops_old_samples() -> None:
    h = history([5.0, 0.5], ds=[T0, T0 + 47 * H], now=T0 + 48 * H)
    assert DecayingHistogramPercentile(0.99).estimate(h).value == pytest.approx(cpu_end(5.0))
    est = DecayingHistogramPercentile(0.99, lookback="24h").estimate(h)
    assert est.value == pytest.approx(cpu_end(0.5))
    assert "over 24h" in est.reason


def test_histogram_reason_and_empty_history() -> None:
    h = history([0.5] * 10, request=1.0)
    est = DecayingHistogramPercentile(0.9).estimate(h)
    assert (
        est.reason
        == "p90 of decaying histogram (half-life 24h, 10 samples, weighted by max(request, 0.1)) = 0.511 cores"
    )
    assert DecayingHistogramPercentile(0.9).estimate(history([])).value == 0.0


def days(
    peaks_mib: list[float], *, per_day: int = 24, start: pd.Timestamp = T0
) -> tuple[list[pd.Timestamp], list[float]]:
    """Hourly samples, one day per entry: the day's peak at 12:00, 100 MiB otherwise."""
    ds, use = [], []
    for d, peak in enumerate(peaks_mib):
        for hour in range(per_day):
            ds.append(start + pd.Timedelta(days=d) + hour * H)
            use.append(peak * MIB if hour == 12 else 100 * MIB)
    return ds, use


@pytest.mark.parametrize(
    ("percentile", "expected_mib"),
    [
        # peaks 300, 400, 500 MiB with interval ends now-48h, now-24h, now: weights 0.25, 0.5, 1 (total 1.75)
        (0.10, 300),  # threshold 0.175 <= 0.25 -> 300's bucket
        (0.30, 400),  # threshold 0.525: 0.25 < 0.525 <= 0.75 -> 400's bucket
        (0.50, 500),  # threshold 0.875 > 0.75 -> 500's bucket
        (0.90, 500),
    ],
    ids=["p10", "p30", "p50", "p90"],
)
def test_daily_peaks_decay_per_interval(percentile: float, expected_mib: float) -> None:
    ds, use = days([300, 400, 500])
    h = history(use, ds=ds, resource="memory", now=T0 + pd.Timedelta(days=3))
    est = DailyPeaks(percentile).estimate(h)
    assert est.value == pytest.approx(mem_end(expected_mib * MIB))
    assert "3 24h peaks" in est.reason


def test_daily_peaks_keep_eight_intervals() -> None:
    # ten days; the two oldest hold huge peaks that must be forgotten (VPA keeps 8 intervals)
    ds, use = days([5000, 5000, 300, 300, 300, 300, 300, 300, 300, 300])
    h = history(use, ds=ds, resource="memory", now=T0 + pd.Timedelta(days=10))
    _ends, peaks, _ = DailyPeaks(0.9).peaks(h)
    assert len(peaks) == 8
    assert peaks.max() == 300 * MIB
    # p100 walks to the last non-empty bucket: 300 MiB with 8 intervals, 5000 MiB with all 10
    # (at p99 the old peaks would not show: their weights 2^-9 + 2^-8 are under 1 % of the total)
    assert DailyPeaks(1.0).estimate(h).value == pytest.approx(mem_end(300 * MIB))
    assert DailyPeaks(1.0, count=10).estimate(h).value == pytest.approx(mem_end(5000 * MIB))


def test_daily_peaks_align_on_the_first_sample() -> None:
    # first sample at 06:00: intervals are [06:00, next 06:00). A 900 MiB spike at 05:00 on day 2 belongs
    # to the first interval, so there are two intervals, peaks 900 and 200 MiB.
    start = T0 + 6 * H
    ds = [start + i * H for i in range(48)]
    use = [200 * MIB] * 48
    use[23] = 900 * MIB  # start + 23 h = day 2, 05:00
    h = history(use, ds=ds, resource="memory", now=start + 48 * H)
    ends, peaks, _ = DailyPeaks(0.9).peaks(h)
    assert list(peaks) == [900 * MIB, 200 * MIB]
    assert ends[0] == np.datetime64((start + 24 * H).tz_localize(None).as_unit("ns"))


@pytest.mark.parametrize(
    ("used", "bumped"),
    [(300 * MIB, 400 * MIB), (500 * MIB, 600 * MIB), (1024 * MIB, 1228.8 * MIB)],
    ids=["plus-100MiB", "equal", "times-1.2"],
)
def test_oom_bump(used: float, bumped: float) -> None:
    # max(used + 100 MiB, used * 1.2): the +100 MiB rule wins below 500 MiB, x1.2 above
    assert float(oom_bump(used)) == pytest.approx(bumped)


def test_oom_kill_enters_the_peaks_bumped() -> None:
    # three days at 300 MiB peak; an OOM kill on day 3 with 1000 MiB in use and a 256 MiB request:
    # used = max(256, 1000, peak before the kill) = 1000 MiB -> bump max(1100, 1200) = 1200 MiB
    ds, use = days([300, 300, 300])
    kill = T0 + pd.Timedelta(days=2, hours=13)
    h = history(
        use,
        ds=ds,
        resource="memory",
        request=256 * MIB,
        now=T0 + pd.Timedelta(days=3),
        oom_ds=[kill],
        oom_usage=[1000 * MIB],
    )
    _ends, peaks, bumped = DailyPeaks(0.9).peaks(h)
    assert bumped == 1
    assert peaks[-1] == pytest.approx(1200 * MIB)
    est = DailyPeaks(0.9).estimate(h)
    assert est.value == pytest.approx(mem_end(1200 * MIB))
    assert "1 raised by OOM kills" in est.reason
    assert DailyPeaks(0.9, include_ooms=False).estimate(h).value == pytest.approx(mem_end(300 * MIB))


def test_oom_kill_uses_the_request_when_larger() -> None:
    # kill at 200 MiB in use but the request was 2 GiB: VPA bumps from max(request, peak) = 2 GiB -> 2.4 GiB
    ds, use = days([200])
    h = history(
        use,
        ds=ds,
        resource="memory",
        request=2048 * MIB,
        now=T0 + pd.Timedelta(days=1),
        oom_ds=[T0 + 20 * H],
        oom_usage=[200 * MIB],
    )
    _, peaks, _ = DailyPeaks(0.9).peaks(h)
    assert peaks[-1] == pytest.approx(2048 * MIB * 1.2)


@pytest.mark.parametrize(
    ("usage", "percentile", "half_life", "window", "expected"),
    [
        ([1, 2, 3, 4], 0.5, None, None, 2.0),  # equal weights: cumulative 1,2,3,4 reaches 2 at the value 2
        ([1, 2, 3, 4], 0.75, None, None, 3.0),
        ([4, 3, 2, 1], 0.75, None, "2min", 2.0),  # window keeps the last two samples (2, 1): p75 -> 2
        # one-minute half-life: weights 1/8, 1/4, 1/2, 1 for 4,3,2,1 (newest last); p50 threshold 0.94
        # sorted 1 (w 1) reaches it at once -> 1
        ([4, 3, 2, 1], 0.5, "1min", None, 1.0),
        ([], 0.5, None, None, 0.0),
    ],
    ids=["median", "p75", "window", "decayed", "empty"],
)
def test_moving_window_percentile(
    usage: list[float], percentile: float, half_life: str | None, window: str | None, expected: float
) -> None:
    h = history(usage)
    est = MovingWindowPercentile(percentile, half_life, window).estimate(h)
    assert est.value == expected
    assert est.source == "window"


def test_moving_window_peak_and_fallback() -> None:
    h = history([9.0, 1.0, 2.0], ds=[T0, T0 + 47 * H, T0 + 48 * H], now=T0 + 49 * H)
    assert MovingWindowPeak("24h").estimate(h).value == 2.0
    assert MovingWindowPeak("72h").estimate(h).value == 9.0
    stale = MovingWindowPeak("1h").estimate(history([3.0, 5.0], now=T0 + 10 * H))
    assert stale.value == 5.0
    assert "no samples in the last 1h" in stale.reason


def test_current_request_is_the_latest() -> None:
    h = history([0.1, 0.1, 0.1], request=[1.0, 2.0, 1.5])
    est = CurrentRequest().estimate(h)
    assert (est.value, est.source) == (1.5, "current")


@pytest.mark.parametrize(
    "estimator",
    [
        DecayingHistogramPercentile(0.9),
        DailyPeaks(0.9),
        MovingWindowPercentile(0.95, "12h"),
        MovingWindowPeak("48h"),
        CurrentRequest(),
    ],
    ids=["histogram", "daily-peaks", "window-percentile", "window-peak", "current"],
)
def test_every_estimator_meets_the_protocol(estimator: Estimator) -> None:
    assert isinstance(estimator, Estimator)
    rng = np.random.default_rng(0)
    h = history(list(rng.gamma(2.0, 0.2, 500)), resource="cpu")
    est = estimator.estimate(h)
    assert np.isfinite(est.value) and est.value >= 0
    assert est.reason and est.source


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_percentile_out_of_range_is_rejected(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        DecayingHistogramPercentile(p)
