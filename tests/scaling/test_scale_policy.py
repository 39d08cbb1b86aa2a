"""Tests of ``forecaster.scaling.policy``: the composition's worked example, fallbacks and the decision record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, hi, lo
from forecaster.scaling import PolicySettings, ScalingPolicy, decisions_frame

T0 = pd.Timestamp("2024-03-04T10:00Z")
NS = 1_000_000_000


def _settings(**kw: object) -> PolicySettings:
    base: dict[str, object] = {"capacity_per_pod": 10.0, "target_utilisation": 0.7, "min_replicas": 2,
                               "max_replicas": 50, "lead_time_s": 180.0}
    base.update(kw)
    return PolicySettings(**base)  # type: ignore[arg-type]


def _at(s: float) -> int:
    return int(T0.value) + int(s * NS)


def _forecast(level: float, issued: pd.Timestamp = T0, steps: int = 12) -> pd.DataFrame:
    v = np.full(steps, float(level))
    return pd.DataFrame({DS: pd.date_range(issued, periods=steps, freq="5min"), ENSEMBLE: v,
                         lo(ENSEMBLE, 80): v * 0.8, hi(ENSEMBLE, 80): v * 1.2})


def test_docstring_worked_example() -> None:
    p = ScalingPolicy(_settings())
    first = p.decide_peak(_at(0), 3, _at(0), 175.0)  # ceil(175 / 7) = 25: raised from min 2
    assert (first.value, first.forecast_replicas, first.rules) == (25, 25, ())
    held = p.decide_peak(_at(200), 17, _at(200), 95.0)  # wants 14, reactive 17 -> 17; raised 200 s ago
    assert held.value == 25
    assert held.rules == ("reactive_floor", "cooldown")
    kept = p.decide_peak(_at(740), 3, _at(740), 175.0)
    assert kept.value == 25 and not kept.changed
    limited = p.decide_peak(_at(800), 12, _at(800), 95.0)
    assert limited.forecast_replicas == 14
    assert limited.value == 23  # ceil(25 - 2.5)
    assert limited.rules == ("rate_limit",)
    assert limited.previous == 25 and limited.changed


@pytest.mark.parametrize(
    ("peak", "reactive", "value", "rules"),
    [
        (95.0, 3, 14, ()),
        (95.0, 20, 20, ("reactive_floor",)),
        (0.0, 0, 2, ("min",)),
        (1000.0, 0, 50, ("max",)),
        (10.0, 80, 50, ("reactive_floor", "max")),  # max wins over the reactive floor
    ],
    ids=["forecast", "reactive-floor", "min", "max", "max-beats-reactive"],
)
def test_first_decision_table(peak: float, reactive: int, value: int, rules: tuple[str, ...]) -> None:
    d = ScalingPolicy(_settings()).decide_peak(_at(0), reactive, _at(0), peak)
    assert (d.value, d.rules, d.fell_back) == (value, rules, False)


def test_margin_and_quantile_choose_the_band() -> None:
    p = ScalingPolicy(_settings(quantile="hi-80", margin=0.25))
    d = p.decide(T0, 0, _forecast(70.0), T0)  # hi-80 = 84, x1.25 = 105 -> 15 pods
    assert d.peak_demand == pytest.approx(84.0)
    assert d.forecast_replicas == 15
    assert d.band == {ENSEMBLE: 70.0, lo(ENSEMBLE, 80): 56.0, hi(ENSEMBLE, 80): pytest.approx(84.0)}
    assert d.band_column == hi(ENSEMBLE, 80)
    assert d.issued_at == T0 and d.time == T0 and d.bounds == (2, 50)
    assert "ensemble-hi-80 peaks at 84" in d.reason


@pytest.mark.parametrize(
    ("band", "issued_s", "now_s", "rule"),
    [
        ("frame", 0.0, 1801.0, "stale"),
        (None, None, 60.0, "stale"),
        ("frame", 0.0, 7200.0, "stale"),
        ("late", 0.0, 60.0, "uncovered"),
    ],
    ids=["old", "absent", "very-old", "uncovered"],
)
def test_unusable_forecast_holds_the_last_value(band: str | None, issued_s: float | None, now_s: float,
                                                rule: str) -> None:
    p = ScalingPolicy(_settings(release_after_s=None), initial=30)
    frame = None
    if band == "frame":
        frame = _forecast(10.0, steps=300)
    elif band == "late":
        frame = _forecast(10.0, issued=T0 + pd.Timedelta("2h"))
    d = p.decide(T0 + pd.Timedelta(seconds=now_s), 5, frame,
                 None if issued_s is None else T0 + pd.Timedelta(seconds=issued_s))
    assert d.value == 30 and not d.changed and d.fell_back
    assert d.rules == (rule, "hold")
    assert "reactive HPA in charge" in d.reason


def test_breaker_opens_holds_and_closes_after_recovery() -> None:
    p = ScalingPolicy(_settings(), initial=20)
    frame = _forecast(10.0, steps=300)
    open_ = p.decide(T0, 0, frame, T0, recent_mae=40.0, backtest_mae=10.0, n_errors=12)
    assert open_.rules == ("breaker_open", "hold") and open_.value == 20
    still = p.decide(T0 + pd.Timedelta("1min"), 0, frame, T0, recent_mae=20.0, backtest_mae=10.0, n_errors=12)
    assert still.fell_back
    closed = p.decide(T0 + pd.Timedelta("2min"), 0, frame, T0, recent_mae=12.0, backtest_mae=10.0, n_errors=12)
    assert not closed.fell_back
    assert closed.value == 18  # rate limit from 20: max(1 pod, 10 % of 20) = 2 pods in the minute since


def test_release_after_long_fallback_steps_down_at_the_rate_limit() -> None:
    p = ScalingPolicy(_settings(release_after_s=600.0, stale_after_s=60.0), initial=40)
    values = [p.decide_peak(_at(60 * k), 5, None, None, has_forecast=False).value for k in range(16)]
    assert values[:10] == [40] * 10  # held for 600 s
    assert values[10:13] == [36, 33, 30]  # released: 10 %/min of the value being lowered
    assert p.decide_peak(_at(60 * 16), 5, None, None, has_forecast=False).rules[:2] == ("stale", "release")


def test_fresh_forecast_after_fallback_resets_the_release_clock() -> None:
    p = ScalingPolicy(_settings(release_after_s=120.0, stale_after_s=60.0), initial=40)
    p.decide_peak(_at(0), 5, None, None, has_forecast=False)
    p.decide_peak(_at(60), 5, _at(60), 280.0)  # fresh: 40 pods
    d = p.decide_peak(_at(180), 5, None, None, has_forecast=False)
    assert d.rules == ("stale", "hold")


def test_decide_rejects_naive_times() -> None:
    with pytest.raises(InputError, match="tz-aware"):
        ScalingPolicy(_settings()).decide(pd.Timestamp("2024-01-01"), 1, _forecast(1.0), T0)


def test_decisions_frame() -> None:
    p = ScalingPolicy(_settings(), workload="api")
    decisions = [p.decide_peak(_at(60 * k), 3, _at(0), 95.0) for k in range(3)]
    frame = decisions_frame(decisions)
    assert len(frame) == 3
    assert {"time", "issued_at", "band", "peak_demand", "capacity_per_pod", "forecast_replicas", "reactive_floor",
            "bounds", "value", "rules", "reason", "fell_back", "changed", "workload"} <= set(frame.columns)
    assert frame["changed"].tolist() == [True, False, False]
    assert frame["workload"].eq("api").all()
    assert decisions_frame([]).empty


def test_docstring_worked_example_with_a_confident_scale_down() -> None:
    """The module docstring's last line: the floor at 25, a minute after a kept decision; the forecast wants 14,
    hi-95 peaks at 110 -> 16 pods: the floor falls to 16 where the rate limit alone would keep 23."""
    p = ScalingPolicy(_settings(confident_scale_down=True))
    p.decide_peak(_at(0), 3, _at(0), 175.0)
    p.decide_peak(_at(740), 3, _at(740), 175.0, confident_peak=180.0)  # hi-95 needs 26 > 25: no drop
    d = p.decide_peak(_at(800), 12, _at(800), 95.0, confident_peak=110.0)
    assert (d.forecast_replicas, d.value) == (14, 16)
    assert d.rules == ("rate_limit", "confident")
    assert "ensemble-hi-95 peaks at 110 -> 16 pods" in d.reason


@pytest.mark.parametrize(
    ("confident_peak", "reactive", "value", "rules"),
    [
        (50.0, 3, 14, ("cooldown", "confident")),  # hi-95 needs 8: down to the forecast's own 14, not 8
        (50.0, 20, 20, ("reactive_floor", "cooldown", "confident")),  # never below the reactive floor
        (170.0, 3, 25, ("cooldown",)),  # hi-95 needs 25: not confident, the cool-down holds
        (None, 3, 25, ("cooldown",)),  # no confident band: the fixed pace
    ],
    ids=["down-to-forecast", "reactive-floor", "not-confident", "no-band"],
)
def test_confident_scale_down_bypasses_the_cooldown_only_as_far_as_the_band_allows(
    confident_peak: float | None, reactive: int, value: int, rules: tuple[str, ...]
) -> None:
    p = ScalingPolicy(_settings(confident_scale_down=True))
    p.decide_peak(_at(0), 3, _at(0), 175.0)  # 25, raised now: in cool-down for 300 s
    d = p.decide_peak(_at(60), reactive, _at(60), 95.0, confident_peak=confident_peak)
    assert (d.value, d.rules) == (value, rules)


def test_confident_scale_down_is_off_by_default_and_never_on_stale_input() -> None:
    p = ScalingPolicy(_settings())
    p.decide_peak(_at(0), 3, _at(0), 175.0)
    assert p.decide_peak(_at(60), 3, _at(60), 95.0, confident_peak=10.0).value == 25
    q = ScalingPolicy(_settings(confident_scale_down=True))
    q.decide_peak(_at(0), 3, _at(0), 175.0)
    stale = q.decide_peak(_at(4000), 3, _at(0), 95.0, confident_peak=10.0)
    assert stale.value == 25 and stale.fell_back


def test_confident_band_is_read_from_the_forecast_frame() -> None:
    p = ScalingPolicy(_settings(confident_scale_down=True, quantile="ensemble"))
    frame = _forecast(175.0)
    frame[hi(ENSEMBLE, 95)] = frame[ENSEMBLE] * 1.1
    assert p.decide(T0, 3, frame, T0).value == 25
    low = _forecast(60.0, issued=T0 + pd.Timedelta("1min"))
    low[hi(ENSEMBLE, 95)] = low[ENSEMBLE] * 1.1  # 66 -> 10 pods; the ensemble wants ceil(60 / 7) = 9
    d = p.decide(T0 + pd.Timedelta("1min"), 3, low, T0 + pd.Timedelta("1min"))
    assert (d.value, d.rules[-1]) == (10, "confident")
    without = ScalingPolicy(_settings(confident_scale_down=True, quantile="ensemble"))
    without.decide(T0, 3, _forecast(175.0), T0)  # no hi-95 column: the fixed pace
    assert without.decide(T0 + pd.Timedelta("1min"), 3, _forecast(60.0), T0).value == 25


def test_counters_tally_decisions_changes_and_fallbacks() -> None:
    p = ScalingPolicy(_settings())
    p.decide_peak(_at(0), 3, _at(0), 175.0)  # change
    p.decide_peak(_at(60), 3, _at(60), 175.0)  # kept
    p.decide_peak(_at(4000), 3, _at(0), 175.0)  # stale: fallback
    assert (p.decisions, p.changes, p.fallbacks) == (3, 1, 1)


def test_reconfigure_keeps_the_floor_and_its_cooldown() -> None:
    p = ScalingPolicy(_settings())
    p.decide_peak(_at(0), 3, _at(0), 175.0)  # 25 pods at target 0.7
    p.reconfigure(_settings(target_utilisation=0.9, quantile="hi-95", breaker_open_ratio=5.0))
    assert p.column == hi(ENSEMBLE, 95) and p.breaker.open_ratio == 5.0
    d = p.decide_peak(_at(60), 3, _at(60), 175.0)  # ceil(175 / 9) = 20 wanted, but raised 60 s ago
    assert (d.previous, d.value, d.rules) == (25, 25, ("cooldown",))
