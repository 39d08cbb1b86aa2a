"""State across restarts: a new controller instance (a restart, or another replica taking the Lease) continues from
the policy's status exactly as one long-lived ScalingPolicy would: cool-down and scale-down rate limit included."""

from __future__ import annotations

import pandas as pd
from ctrl_builders import NOW, Rig, constant, policy_object

from forecaster.contracts.frames import DS
from forecaster.cycle.state import restore_policy
from forecaster.runtime.controller import PolicySpec
from forecaster.scaling import ScalingPolicy

SCHEDULE = [  # minutes after NOW, forecast demand (hi-80 = 1.2 x)
    (0, 50.0),    # -> 12 pods: raise
    (2, 10.0),    # -> 3 wanted: cool-down holds 12 (raised 2 min ago, cool-down 5 min)
    (4, 10.0),    # still in cool-down
    (6, 10.0),    # rate limit: 1 minute past the cool-down at max(1, 10 % of 12) pods/min -> 11
    (7, 10.0),
    (9, 10.0),
    (15, 10.0),
    (30, 10.0),
]


def _frame(rig: Rig, at: pd.Timestamp, demand: float) -> pd.DataFrame:
    spec = PolicySpec.from_object(policy_object())
    history = pd.DataFrame({DS: [at.floor("5min")]})
    return type(rig.forecasts)(constant(demand)).forecast("shop/web", spec.forecast, history, at)


def test_a_new_controller_each_cycle_decides_like_one_long_lived_policy(rig: Rig) -> None:
    spec = PolicySpec.from_object(policy_object())
    reference = ScalingPolicy(spec.to_settings(2, 20), initial=2)
    for minutes, demand in SCHEDULE:
        now = NOW + pd.Timedelta(minutes=minutes)
        rig.clock.now = now
        rig.forecasts.demand = constant(demand)
        rig.controller(identity=f"replica-{minutes}").run_once(now)  # a fresh instance: nothing in memory
        # a new replica may only act once the previous holder's 15 s Lease has lapsed: it did here (minutes apart)
        expected = reference.decide(now, 3, _frame(rig, now, demand), now).value
        assert rig.hpa()["spec"]["minReplicas"] == expected, f"at +{minutes} min"
    assert [reference.value] == [rig.hpa()["spec"]["minReplicas"]]


def test_cool_down_is_respected_by_a_restarted_controller(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    assert rig.hpa()["spec"]["minReplicas"] == 12
    rig.forecasts.demand = constant(10.0)
    now = rig.clock.advance(minutes=2)
    rig.controller(identity="replica-a").run_once(now)  # same identity: it renews its own Lease
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert rig.status()["reason"] == "CoolDown"
    now = rig.clock.advance(minutes=4)  # 6 min after the raise
    rig.controller(identity="replica-a").run_once(now)
    assert rig.hpa()["spec"]["minReplicas"] == 11
    assert rig.status()["reason"] == "RateLimited"


def test_restore_policy_reads_every_state_field_back() -> None:
    spec = PolicySpec.from_object(policy_object())
    status = {"lastIncreaseTime": "2024-03-10T12:00:00Z", "lastChangeTime": "2024-03-10T12:01:00Z",
              "lastForecastTime": "2024-03-10T12:02:00Z", "fallbackSince": "2024-03-10T12:03:00Z"}
    policy = restore_policy(spec.to_settings(2, 20), status, 9, "shop/web")
    t0 = NOW.value / 1e9
    assert policy.value == 9
    assert (policy.last_increase_s, policy.last_change_s, policy.last_decision_s, policy.fallback_since_s) == (
        t0, t0 + 60, t0 + 120, t0 + 180)
    empty = restore_policy(spec.to_settings(2, 20), {}, 1, "shop/web")
    assert empty.value == 2 and empty.last_increase_s is None  # clamped to the HPA's own floor


def test_recommend_mode_continues_its_own_dry_run_trajectory(rig: Rig) -> None:
    rig.cluster.add_policy(policy_object(mode="Recommend"))
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    rig.forecasts.demand = constant(10.0)
    rig.controller().run_once(rig.clock.advance(minutes=2))
    status = rig.status()
    assert status["recommendedFloor"] == 12 and status["reason"] == "CoolDown"
    assert rig.hpa()["spec"]["minReplicas"] == 2


def test_recommend_after_auto_keeps_the_written_floor_and_says_so(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    rig.controller().run_once()
    rig.cluster.add_policy(policy_object(mode="Recommend"))
    rig.controller().run_once(rig.clock.advance(minutes=1))
    assert rig.hpa()["spec"]["minReplicas"] == 12
    status = rig.status()
    assert status["floorInForce"] == 12
    assert "still in force" in status["lastDecision"] and "mode Off" in status["lastDecision"]
