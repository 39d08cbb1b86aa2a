"""Simulator realism (issue 19): the metric the HPA scales on (CPU capped at 100 % per pod, or an uncapped request
rate) and the metrics pipeline's delay, each on a worked example; settings changed during a replay (``retune``);
floor changes and fallbacks counted with ``keep_decisions=False``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, hi, lo
from forecaster.scaling.settings import DEFAULT_LEAD_TIME_S
from forecaster.simulate import ISSUED_AT, HPAConfig, replay

T0 = pd.Timestamp("2024-03-04T00:00Z")
CAP = 10.0
TARGET = 0.5


def _step(n: int = 90, at: int = 30, low: float = 100.0, high: float = 500.0) -> pd.Series:
    values = np.where(np.arange(n) < at, low, high).astype(float)
    return pd.Series(values, index=pd.date_range(T0, periods=n, freq="1min"))


def _run(demand: pd.Series, policy: str = "reactive", **kw: object):  # type: ignore[no-untyped-def]
    return replay(demand, policy, capacity_per_pod=CAP, target_utilisation=TARGET, startup_s=120, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("metric", "delay", "under", "unserved"),
    [
        # "requests", 60 s late: the syncs of minute 31 read minute 30 (250 % -> ratio 5): 20 -> 40 (the scale-up
        # limit doubles per 15 s), 31:15 -> 80, 31:30 -> 100 pods, ready from 33:00; minutes 30-32 short by 300.
        ("requests", 60, 3, 900.0),
        # "cpu", 60 s late: minute 30 reads as 100 % (capped) -> ratio 2 -> 40 pods at 31:00; then 20 ready pods at
        # 100 % and 20 pending at 0 % average 50 %, the target: no change until 33:00 (40 ready, 400 < 500, short by
        # 100); minute 33 read at 34:00 is again 100 % -> 80 pods, ready 36:00. Short 30-32 by 300, 33-35 by 100.
        ("cpu", 60, 6, 1200.0),
        ("requests", 0, 2, 600.0),  # an idealised pipeline reads minute 30 at 30:00: one minute earlier
        ("requests", 120, 4, 1200.0),  # each minute of delay is one more short minute
        ("cpu", 120, 8, 1600.0),
    ],
    ids=["requests-60s", "cpu-60s", "requests-0s", "requests-120s", "cpu-120s"],
)
def test_metric_type_and_delay_worked_example(metric: str, delay: int, under: int, unserved: float) -> None:
    """100 -> 500 at minute 30 (20 pods at 50 % -> 100 needed), capacity 10 per pod, start-up 120 s."""
    o = _run(_step(), metric=metric, metric_delay_s=delay).outcomes
    assert (o.under_provisioned_minutes, o.unserved) == (under, pytest.approx(unserved))


def test_cpu_metric_stalls_at_double_while_new_pods_start() -> None:
    frame = _run(_step(), metric="cpu").frame.set_index(DS)
    desired = frame["desired"].to_numpy()
    assert list(desired[29:37]) == [20, 20, 40, 40, 40, 80, 80, 80]
    frame = _run(_step(), metric="requests").frame.set_index(DS)
    assert list(frame["desired"].to_numpy()[29:33]) == [20, 20, 100, 100]


def test_the_default_hpa_never_sees_the_current_minute() -> None:
    """A one-minute spike at minute 30: with the default 60-s delay no sync of minute 30 reacts; the syncs of minute
    31 read it (and scale up, too late)."""
    demand = _step(at=30, high=100.0)
    demand.iloc[30] = 400.0
    frame = _run(demand, metric="requests").frame
    assert frame["desired"].iloc[30] == 20
    assert frame["desired"].iloc[31] > 20


def test_requests_15s_late_is_the_simulator_before_issue_19() -> None:
    """The old model (metric of the previous sync, uncapped) kept its worked example: 100 -> 300 at minute 30,
    20 -> 40 at 30:15, 60 at 30:30, minutes 30 and 31 short, minute 32 averages 45 ready pods."""
    result = _run(_step(high=300.0), metric="requests", metric_delay_s=15)
    o = result.outcomes
    assert (o.under_provisioned_minutes, o.unserved, o.scaling_actions) == (2, pytest.approx(200.0), 2)
    frame = result.frame.set_index(DS)
    assert frame.loc[T0 + pd.Timedelta("30min"), "desired"] == 60
    assert frame.loc[T0 + pd.Timedelta("32min"), "ready"] == pytest.approx(45.0)


def test_defaults_are_documented_values() -> None:
    result = _run(_step(), "oracle")
    assert result.settings["metric"] == "cpu" and result.settings["metric_delay_s"] == 60
    assert result.settings["lead_time_s"] == DEFAULT_LEAD_TIME_S == 180.0


def test_a_full_hpa_config_brings_its_metric() -> None:
    cfg = HPAConfig(target_utilisation=TARGET, max_replicas=500, metric="requests")
    a = replay(_step(), capacity_per_pod=CAP, startup_s=120, hpa=cfg)
    b = _run(_step(), metric="requests")
    assert a.outcomes.under_provisioned_minutes == b.outcomes.under_provisioned_minutes == 3
    assert a.settings["metric"] == "requests"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"metric": "gpu"}, "metric"),
        ({"metric_delay_s": 10}, "metric_delay_s"),
        ({"metric_delay_s": -15}, "metric_delay_s"),
        ({"retune": [(T0, {"quantile_x": 1})]}, "quantile_x"),
        ({"retune": [(pd.Timestamp("2024-03-04"), {})]}, "tz-aware"),
    ],
    ids=["metric", "delay-off-grid", "delay-negative", "retune-field", "retune-naive-time"],
)
def test_realism_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        _run(_step(), **kw)


def _forecasts(demand: pd.Series, scale: float = 1.0, until: pd.Timestamp | None = None) -> pd.DataFrame:
    y5 = demand.resample("5min").max() * scale
    parts = []
    for issued in pd.date_range(demand.index[0], until or demand.index[-1], freq="5min"):
        v = y5[y5.index >= issued].iloc[:12]
        parts.append(pd.DataFrame({ISSUED_AT: issued, DS: v.index, ENSEMBLE: v.to_numpy(),
                                   lo(ENSEMBLE, 80): v.to_numpy() * 0.9, hi(ENSEMBLE, 80): v.to_numpy() * 1.1,
                                   hi(ENSEMBLE, 95): v.to_numpy() * 1.2}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("policy", ["predictive", "oracle"])
def test_floor_changes_and_fallbacks_are_counted_without_keeping_decisions(policy: str) -> None:
    rng = np.random.default_rng(5)
    demand = pd.Series(rng.uniform(50, 500, 240), index=pd.date_range(T0, periods=240, freq="1min"))
    kw: dict[str, object] = {}
    if policy == "predictive":  # forecasts stop after two hours: stale, then fallbacks
        kw = {"forecasts": _forecasts(demand, until=T0 + pd.Timedelta("2h")),
              "policy_settings": {"stale_after_s": 600.0}}
    kept = _run(demand, policy, **kw).outcomes
    lean = _run(demand, policy, keep_decisions=False, **kw)
    assert lean.decisions == []
    assert kept.floor_changes > 0
    assert (lean.outcomes.floor_changes, lean.outcomes.fallback_decisions) == (kept.floor_changes,
                                                                              kept.fallback_decisions)
    if policy == "predictive":
        assert kept.fallback_decisions > 100


def test_retune_before_the_trace_applies_from_the_start() -> None:
    demand = _step()
    a = _run(demand, initial_replicas=20, retune=[(T0 - pd.Timedelta("1h"), {"target_utilisation": 0.8})])
    b = replay(demand, capacity_per_pod=CAP, target_utilisation=0.8, startup_s=120, initial_replicas=20)
    assert a.outcomes == b.outcomes
    assert a.settings["retuned_at_minutes"] == [0]


def test_retune_writes_the_hpa_target_and_the_floor_settings_mid_replay() -> None:
    """At minute 45 the HPA target goes 0.5 -> 0.9: the reactive rule then wants ceil(500 / 9) = 56 pods instead of
    100, and the HPA scales down after its 5-minute stabilisation window; the floor (oracle) follows the new target."""
    demand = _step()
    result = _run(demand, "oracle", retune=[(T0 + pd.Timedelta("45min"), {"target_utilisation": 0.9})])
    frame = result.frame
    assert frame["reactive_desired"].iloc[44] == 100 and frame["reactive_desired"].iloc[45] == 56
    assert frame["floor"].iloc[44] == 100
    assert frame["floor"].iloc[60] == 56  # the floor's own rate limit took it down from 100 over the minutes
    assert frame["desired"].iloc[-1] == 56
    assert result.decisions[46].previous == result.decisions[45].value  # one policy, state kept across the change
