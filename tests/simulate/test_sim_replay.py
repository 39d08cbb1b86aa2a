"""Tests of ``forecaster.simulate.replay``: a step in demand replayed under the reactive HPA, the oracle and a
predictive policy fed perfect or stale forecasts; outcome accounting; custom policies; errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, hi, lo
from forecaster.simulate import FRAME_COLUMNS, ISSUED_AT, FrameProvider, MinuteTrace, replay
from forecaster.simulate.policies import PredictivePolicy

T0 = pd.Timestamp("2024-03-04T00:00Z")
CAP = 10.0  # demand per pod at 100 %
TARGET = 0.5


def _step(n: int = 90, at: int = 30, low: float = 100.0, high: float = 300.0) -> pd.Series:
    values = np.where(np.arange(n) < at, low, high).astype(float)
    return pd.Series(values, index=pd.date_range(T0, periods=n, freq="1min"))


def _truth_forecasts(demand: pd.Series, every: str = "5min", steps: int = 12, scale: float = 1.0) -> pd.DataFrame:
    """Forecasts at 5-minute buckets equal to the true bucket means, issued every ``every``."""
    y5 = demand.resample("5min").mean() * scale
    parts = []
    for issued in pd.date_range(demand.index[0], demand.index[-1], freq=every):
        future = y5[y5.index >= issued].iloc[:steps]
        v = future.to_numpy()
        parts.append(pd.DataFrame({ISSUED_AT: issued, DS: future.index, ENSEMBLE: v,
                                   lo(ENSEMBLE, 80): v * 0.9, hi(ENSEMBLE, 80): v * 1.1}))
    return pd.concat(parts, ignore_index=True)


def _run(demand: pd.Series, policy: str = "reactive", **kw: object):  # type: ignore[no-untyped-def]
    return replay(demand, policy, capacity_per_pod=CAP, target_utilisation=TARGET, startup_s=120, **kw)  # type: ignore[arg-type]


def test_steady_demand_at_target_never_scales() -> None:
    result = _run(pd.Series(100.0, index=pd.date_range(T0, periods=30, freq="1min")))
    o = result.outcomes
    assert (o.under_provisioned_minutes, o.unserved, o.scaling_actions) == (0, 0.0, 0)
    assert o.replica_minutes == pytest.approx(30 * 20)  # 100 / (10 * 0.5) = 20 pods
    assert list(result.frame.columns) == list(FRAME_COLUMNS)
    assert result.frame["desired"].eq(20).all()


def test_reactive_hpa_lags_a_step_by_start_up_plus_the_metric_delay() -> None:
    """100 -> 300 at minute 30 (20 -> 60 pods). Metrics arrive a minute late: the syncs of minute 31 read minute 30,
    CPU capped at 100 % -> ratio 2 -> 40 pods at 31:00; then 20 pods at 100 % and 20 pending at 0 % average the
    target: no change. The 40 are ready at 33:00 (400 >= 300); minute 33 read at 34:00 is 75 % -> 60 pods. Minutes
    30-32 run on 20 pods (200 of 300 served)."""
    result = _run(_step())
    o = result.outcomes
    assert o.under_provisioned_minutes == 3
    assert o.unserved == pytest.approx(300.0)
    frame = result.frame.set_index(DS)
    assert frame.loc[T0 + pd.Timedelta("31min"), "desired"] == 40
    assert frame.loc[T0 + pd.Timedelta("33min"), "ready"] == pytest.approx(40.0)
    assert frame.loc[T0 + pd.Timedelta("34min"), "desired"] == 60
    assert o.scaling_actions == 2
    assert result.decisions == []


def test_oracle_is_ready_before_the_step() -> None:
    result = _run(_step(), "oracle")
    assert result.outcomes.under_provisioned_minutes == 0
    frame = result.frame.set_index(DS)
    # lead 180 s: at 27:00 the window [27:00, 30:00] contains the step -> floor 60, ready at 29:00
    assert frame.loc[T0 + pd.Timedelta("26min"), "floor"] == 20
    assert frame.loc[T0 + pd.Timedelta("27min"), "floor"] == 60
    assert frame.loc[T0 + pd.Timedelta("29min"), "ready"] == pytest.approx(60.0)
    assert result.outcomes.replica_minutes > _run(_step()).outcomes.replica_minutes
    assert len(result.decisions) == 90 and result.outcomes.floor_changes >= 1


def test_predictive_with_perfect_coarse_forecasts_matches_the_oracle_on_risk() -> None:
    demand = _step()
    result = _run(demand, "predictive", forecasts=_truth_forecasts(demand), quantile="ensemble")
    assert result.outcomes.under_provisioned_minutes == 0
    assert result.outcomes.fallback_decisions == 0
    d = result.decisions[27]
    assert d.time == T0 + pd.Timedelta("27min") and d.value == 60 and d.band_column == ENSEMBLE
    assert d.issued_at == T0 + pd.Timedelta("25min")


def test_predictive_floor_is_never_below_the_reactive_floor() -> None:
    rng = np.random.default_rng(3)
    demand = pd.Series(rng.uniform(50, 400, 240), index=pd.date_range(T0, periods=240, freq="1min"))
    result = _run(demand, "predictive", forecasts=_truth_forecasts(demand, scale=0.5))  # forecasts far too low
    for d in result.decisions:
        assert d.value >= min(d.reactive_floor, d.bounds[1]) or d.fell_back


def test_stale_forecasts_restore_the_own_floor_and_are_reported() -> None:
    """The cycle's one stale rule (``cycle.decide.decide_floor``, as in the controller): once the forecast is older
    than ``stale_after_s`` the floor goes back to the HPA's own (``min_replicas``) and the reactive HPA is in charge,
    reported as a fallback with the rule ``restore``."""
    demand = _step(n=240, at=300)  # flat 100
    forecasts = _truth_forecasts(demand, every="5min", steps=240, scale=3.0).query(f"{ISSUED_AT} == @T0")
    result = _run(demand, "predictive", forecasts=forecasts, quantile="ensemble",
                  policy_settings={"stale_after_s": 600.0, "release_after_s": 1800.0})
    rules = [d.rules for d in result.decisions]
    assert rules[5] == ()  # fresh: floor from the (too high) forecast, 60 pods
    assert result.decisions[5].value == 60
    assert rules[10] == () and rules[11] == ("stale", "hold", "restore")  # 600 s old is fresh, 660 s stale
    own = result.decisions[11].bounds[0]
    assert [d.value for d in result.decisions[11:]] == [own] * (240 - 11)  # the own floor, reactive HPA in charge
    assert (result.frame["floor"].to_numpy()[11:] == own).all()
    assert result.outcomes.fallback_decisions == 240 - 11  # stale from 11 min (> 600 s) on


def test_breaker_opens_when_recent_error_dwarfs_the_backtest_error() -> None:
    demand = _step(n=180, at=400)
    provider = FrameProvider(_truth_forecasts(demand, scale=3.0), backtest_mae=5.0)  # error 200 vs 5
    result = _run(demand, "predictive", forecasts=provider)
    opened = [d for d in result.decisions if "breaker_open" in d.rules]
    assert opened, "the breaker never opened"
    first = opened[0]
    assert first.time >= T0 + pd.Timedelta("30min")  # needs 6 finished 5-minute buckets of evidence
    assert first.rules == ("breaker_open", "hold")


class _WrappedProvider:
    """A provider that is not a FrameProvider (exercises the generic adapter)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.inner = FrameProvider(frame)

    def forecast(self, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.DataFrame] | None:
        return self.inner.forecast(now)


def test_any_forecast_provider_gives_the_same_replay() -> None:
    demand = _step()
    frame = _truth_forecasts(demand)
    a = _run(demand, "predictive", forecasts=frame)
    b = _run(demand, "predictive", forecasts=_WrappedProvider(frame))
    assert a.outcomes == b.outcomes
    pd.testing.assert_frame_equal(a.frame, b.frame)


class _FixedFloor:
    name = "fixed"

    def __init__(self) -> None:
        self.decisions: list = []  # type: ignore[type-arg]

    def bind(self, trace: MinuteTrace, settings: object) -> None:
        self.n = len(trace.demand)

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        return 30


def test_custom_policy_object_raises_min_replicas() -> None:
    result = _run(_step(), _FixedFloor())  # type: ignore[arg-type]
    assert result.outcomes.policy == "fixed"
    assert result.frame["floor"].eq(30).all()
    assert (result.frame["desired"] >= 30).all()


def test_bounds_progress_and_settings() -> None:
    calls: list[tuple[int, int]] = []
    result = _run(_step(), max_replicas=40, min_replicas=25, progress=lambda done, total: calls.append((done, total)))
    assert result.frame["desired"].between(25, 40).all()
    assert calls[-1] == (90, 90)
    assert result.settings["policy"] == "reactive" and result.settings["max_replicas"] == 40
    assert result.outcomes.peak_replicas == 40
    assert result.decisions_frame().empty


def test_replay_accepts_a_5_minute_trace() -> None:
    y5 = _step().resample("5min").mean()
    result = _run(y5)
    assert result.outcomes.minutes == 90


@pytest.mark.parametrize(
    ("policy", "kw", "match"),
    [
        ("magic", {}, "policy"),
        ("predictive", {}, "forecasts"),
        ("reactive", {"decision_interval_s": 90}, "decision_interval_s"),
        ("reactive", {"startup_s": -1}, "startup_s"),
        ("oracle", {"quantile": "p90"}, "quantile"),
    ],
    ids=["unknown-policy", "no-forecasts", "interval", "startup", "quantile"],
)
def test_replay_errors(policy: str, kw: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        replay(_step(), policy, capacity_per_pod=CAP, **kw)  # type: ignore[arg-type]


def test_predictive_policy_object_keeps_no_decisions_when_asked() -> None:
    demand = _step()
    policy = PredictivePolicy(_truth_forecasts(demand), keep_decisions=False)
    result = replay(demand, policy, capacity_per_pod=CAP, target_utilisation=TARGET)
    assert result.decisions == [] and result.outcomes.policy == "predictive"
