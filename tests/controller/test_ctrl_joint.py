"""The joint policy in the controller, on the fakes of ``forecaster.testing`` (issue 19): a refit chooses the setting
from a replay of the workload's own stored forecasts and demand, the HPA's target utilisation is written with the
floor (its own target recorded), the status and the decision record say which setting and why; the next refit
chooses again; between refits the setting in force is kept; Off restores the HPA's own floor and target; without
too little history (a day of demand, one forecast) nothing changes and the HPA's target is left alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from ctrl_builders import NOW, QUERY, Rig, check_status, make_rig, policy_object

from forecaster.contracts.frames import DS, ENSEMBLE, ID, hi, lo
from forecaster.cycle import hpa_target
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.spec import PolicySpec
from forecaster.runtime.controller import stored
from forecaster.scaling.joint import JointSetting
from forecaster.simulate import retune

BANK = (JointSetting("hi-80", 0.0, 0.6), JointSetting("hi-95", 0.25, 0.9))
"""A two-setting bank keeps the replays short: 0.6/hi-80 needs ceil(24 / 6) = 4 pods, 0.9/hi-95/+25 % needs
ceil(37.5 / 9) = 5 at a steady 20/s, so the first is cheaper; neither is ever short of capacity."""


def level(ds: pd.DatetimeIndex) -> np.ndarray:
    return np.full(len(ds), 20.0)


def joint_policy(**scaling: Any) -> dict[str, Any]:
    return policy_object(scaling={"policy": "Joint", **scaling})


def with_cpu_target(rig: Rig, percent: int = 70) -> None:
    rig.cluster.hpas[("shop", "web")]["spec"]["metrics"] = [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                    "averageUtilization": percent}}}]


def store_forecasts(rig: Rig, days: int = 4, every: str = "15min") -> None:
    """Forecasts issued every 15 minutes over the last ``days`` days, as the controller stores them."""
    spec = PolicySpec.from_object(rig.cluster.policies[("shop", "web")])
    for issued in pd.date_range(NOW - pd.Timedelta(days=days), NOW - pd.Timedelta(every), freq=every):
        ds = pd.date_range(issued, periods=13, freq="5min")
        y = level(ds)
        frame = pd.DataFrame({ID: spec.key, DS: ds, ENSEMBLE: y})
        for lvl, k in ((80, 0.2), (95, 0.5)):
            frame[lo(ENSEMBLE, lvl)] = y * (1 - k / 2)
            frame[hi(ENSEMBLE, lvl)] = y * (1 + k)
        stored.save_forecast(rig.store, spec.key, IssuedForecast(frame, issued, stored.fingerprint(spec)),
                             spec.forecast.levels)


@pytest.fixture
def jrig(monkeypatch: pytest.MonkeyPatch) -> Rig:
    monkeypatch.setattr(retune, "bank_for", lambda spec: BANK)
    rig = make_rig()
    rig.cluster.add_policy(joint_policy())
    with_cpu_target(rig)
    ds = pd.date_range(NOW - pd.Timedelta("5D"), NOW, freq="5min")
    rig.metrics.add(QUERY, pd.DataFrame({DS: ds, "y": level(ds)}))
    store_forecasts(rig)
    return rig


def replicas_records(rig: Rig) -> list[Any]:
    """The replicas decisions, oldest first."""
    found = [d for d in rig.store.list_decisions(workload_id="shop/web").items if d.kind == "replicas"]
    return sorted(found, key=lambda d: d.time)


def test_a_refit_chooses_writes_the_hpa_target_and_explains_it(jrig: Rig) -> None:
    ctl = jrig.controller()
    ctl.run_once()
    status = jrig.status()
    check_status(status)
    assert status["jointSetting"] == "0.60/hi-80/+0%/steady"
    assert status["jointReason"].startswith("first choice: chose 0.60/hi-80/+0%/steady: ")
    assert "runner-up 0.90/hi-95/+25%/steady" in status["jointReason"]
    assert "reactive at 70%" in status["jointReason"]
    assert status["hpaTargetUtilization"] == 0.6
    hpa = jrig.hpa()
    assert hpa_target.utilisation_targets(hpa) == {0: 60}
    assert hpa["metadata"]["annotations"][hpa_target.ORIGINAL_TARGET_ANNOTATION] == "0=70"
    assert [w for w in jrig.cluster.writes("patch_hpa")] == [("patch_hpa", "shop", "web")]  # floor + target: 1 patch
    record = replicas_records(jrig)[-1]
    joint = record.details["joint"]
    assert joint["rechosen"] and joint["due"] == "first choice" and joint["hpa_target_written"]
    assert joint["choice"]["setting"] == "0.60/hi-80/+0%/steady"
    assert joint["choice"]["runner_up"]["label"] == "0.90/hi-95/+25%/steady"
    assert joint["choice"]["reference"]["label"] == "reactive at 70%"
    assert "joint policy: 0.60/hi-80/+0%/steady (chose 0.60/hi-80/+0%/steady" in record.reason
    # the floor is sized at the chosen target: hi-80 of 20 = 24 at 10 per pod and 60 % -> 4
    assert jrig.hpa()["spec"]["minReplicas"] == 4


def test_between_refits_the_setting_is_kept_and_a_refit_chooses_again(jrig: Rig) -> None:
    ctl = jrig.controller()
    ctl.run_once()
    chosen_at = jrig.status()["jointChosenAt"]
    jrig.clock.advance(minutes=5)
    ctl.run_once()
    status = jrig.status()
    assert status["jointChosenAt"] == chosen_at and status["jointSetting"] == "0.60/hi-80/+0%/steady"
    assert not replicas_records(jrig)[-1].details["joint"]["rechosen"]
    # the user lowers the highest target the policy may write: chosen again at once, within the new bounds
    obj = jrig.cluster.policies[("shop", "web")]
    obj["spec"]["scaling"]["maxTargetUtilization"] = 0.55
    jrig.clock.advance(minutes=5)
    ctl.run_once()
    status = jrig.status()
    assert status["jointReason"].startswith("budget or target bounds changed")
    assert status["hpaTargetUtilization"] == 0.55 and hpa_target.utilisation_targets(jrig.hpa()) == {0: 55}
    # a day later (the refit interval): chosen again
    jrig.clock.advance(days=1)
    jrig.metrics.add(QUERY, pd.DataFrame({DS: pd.date_range(NOW - pd.Timedelta("5D"), jrig.clock.now, freq="5min"),
                                          "y": 20.0}))
    ctl.run_once()
    status = jrig.status()
    assert status["jointChosenAt"] != chosen_at and status["jointReason"].startswith("refit: last choice 1")
    assert replicas_records(jrig)[-1].details["joint"]["due"].startswith("refit")


def test_off_restores_the_hpas_own_floor_and_target(jrig: Rig) -> None:
    ctl = jrig.controller()
    ctl.run_once()
    assert hpa_target.utilisation_targets(jrig.hpa()) == {0: 60}
    jrig.cluster.policies[("shop", "web")]["spec"]["mode"] = "Off"
    jrig.clock.advance(minutes=1)
    ctl.run_once()
    hpa = jrig.hpa()
    assert hpa["spec"]["minReplicas"] == 2 and hpa_target.utilisation_targets(hpa) == {0: 70}
    assert not hpa["metadata"]["annotations"]
    assert "jointSetting" not in jrig.status()


def test_back_to_fixed_restores_the_hpas_own_target(jrig: Rig) -> None:
    ctl = jrig.controller()
    ctl.run_once()
    jrig.cluster.policies[("shop", "web")]["spec"]["scaling"] = {"policy": "Fixed"}
    jrig.clock.advance(minutes=1)
    ctl.run_once()
    hpa = jrig.hpa()
    assert hpa_target.utilisation_targets(hpa) == {0: 70}
    assert hpa_target.ORIGINAL_TARGET_ANNOTATION not in hpa["metadata"]["annotations"]


def test_with_too_little_history_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retune, "bank_for", lambda spec: BANK)
    rig = make_rig()
    rig.cluster.add_policy(joint_policy())
    with_cpu_target(rig)
    rig.controller().run_once()  # make_rig: a day of demand ending now -> half a UTC day before today
    status = rig.status()
    assert "jointSetting" not in status or status["jointSetting"] is None
    assert status["jointReason"].startswith("first choice (none in force yet: the spec's own settings and the HPA's "
                                            "own target stay): no change: 0.50 days replayed (need 1)")
    assert hpa_target.utilisation_targets(rig.hpa()) == {0: 70}  # the HPA's own target stays
    assert replicas_records(rig)[-1].details["joint"]["setting"] is None


def test_a_deleted_policy_leaves_its_hpa_with_its_own_floor_and_target(jrig: Rig) -> None:
    ctl = jrig.controller()
    ctl.run_once()
    assert hpa_target.utilisation_targets(jrig.hpa()) == {0: 60}
    jrig.cluster.delete_policy("shop", "web")
    report = ctl.run_once(jrig.clock.advance(minutes=1))
    hpa = jrig.hpa()
    assert hpa["spec"]["minReplicas"] == 2 and hpa_target.utilisation_targets(hpa) == {0: 70}
    assert hpa["metadata"]["annotations"] == {}
    assert "its own target utilisation 70%" in report.restored[0]


def test_a_failed_replay_keeps_the_setting_in_force_and_the_floor_is_still_decided(jrig: Rig) -> None:
    ctl = jrig.controller()
    ctl.run_once()
    jrig.metrics.garbage()  # Prometheus answers garbage from now on
    jrig.clock.advance(days=1)
    ctl.run_once()
    status = jrig.status()
    assert status["jointSetting"] == "0.60/hi-80/+0%/steady"
    assert "no change: the replay could not be made (PermanentError" in status["jointReason"]
    assert status["recommendedFloor"] is not None and hpa_target.utilisation_targets(jrig.hpa()) == {0: 60}


def spiky_rig(monkeypatch: pytest.MonkeyPatch, **scaling: Any) -> Rig:
    """``jrig`` with a 30-minute spike to 45/s on 2024-03-07 (three UTC days before ``NOW``'s): 0.6/hi-80's 4 pods
    (40/s) are short in it, 0.9/hi-95/+25 %'s 5 (50/s) are not."""
    monkeypatch.setattr(retune, "bank_for", lambda spec: BANK)
    rig = make_rig()
    rig.cluster.add_policy(joint_policy(historyDays=2, **scaling))
    with_cpu_target(rig)
    ds = pd.date_range(NOW - pd.Timedelta("5D"), NOW, freq="5min")
    y = level(ds)
    y[(ds >= pd.Timestamp("2024-03-07T12:00Z")) & (ds < pd.Timestamp("2024-03-07T12:30Z"))] = 45.0
    rig.metrics.add(QUERY, pd.DataFrame({DS: ds, "y": y}))
    store_forecasts(rig)
    return rig


def test_risk_days_judge_the_risk_on_more_days_than_the_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """``spec.scaling.riskDays``: with the cost and the risk on the last 2 days the spike 3 days ago is not seen and
    the cheaper 0.6/hi-80 is chosen; with the risk on 4 days it is short there (reactive at 70 % too, so the budget
    is half of its minutes) and 0.9/hi-95/+25 % is chosen, the reason giving both spans."""
    short = spiky_rig(monkeypatch)
    short.controller().run_once()
    assert short.status()["jointSetting"] == "0.60/hi-80/+0%/steady"
    assert "over 2 days" in short.status()["jointReason"]
    long = spiky_rig(monkeypatch, riskDays=4)
    long.controller().run_once()
    status = long.status()
    assert status["jointSetting"] == "0.90/hi-95/+25%/steady", status["jointReason"]
    assert "(replica-min over 2 days, under-provisioned min over 4)" in status["jointReason"]
    assert status["jointBudget"].endswith("2 days (risk over 4)")
    choice = replicas_records(long)[-1].details["joint"]["choice"]
    assert choice["setting"] == "0.90/hi-95/+25%/steady"
