"""The joint policy's choice (``forecaster.scaling.joint``) and the confident scale-down it may pick, as properties
(issue 19): never below the reactive recommendation, never above max, the HPA target only within the policy's
bounds, no change on stale input, and a choice that says which setting won and why; plus the docstring's example."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.contracts.errors import InputError
from forecaster.scaling import PolicySettings, ScalingPolicy
from forecaster.scaling.capacity import replicas_for_demand
from forecaster.scaling.joint import (
    DEFAULT_BUDGET,
    GUARD_ABOVE,
    JointSetting,
    RiskBudget,
    TargetBounds,
    Trial,
    choose,
    default_bank,
    keep,
    reactive_ceiling,
)

NS = 1_000_000_000

# -- the confident scale-down inside ScalingPolicy -----------------------------------------------------------------
step = st.tuples(
    st.integers(min_value=15, max_value=900),  # seconds since the previous decision
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=5_000.0)),  # peak of the floor's band
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=5_000.0)),  # peak of the confident band
    st.booleans(),  # stale?
    st.integers(min_value=0, max_value=300),  # reactive floor
)
confident_settings = st.builds(
    PolicySettings,
    capacity_per_pod=st.floats(min_value=1.0, max_value=100.0),
    target_utilisation=st.floats(min_value=0.3, max_value=1.0),
    min_replicas=st.integers(min_value=0, max_value=5),
    max_replicas=st.integers(min_value=5, max_value=200),
    cooldown_s=st.floats(min_value=0.0, max_value=900.0),
    stale_after_s=st.just(600.0),
    release_after_s=st.none(),
    margin=st.floats(min_value=0.0, max_value=0.5),
    confident_scale_down=st.just(True),
)


@settings(max_examples=200, deadline=None)
@given(cfg=confident_settings, steps=st.lists(step, min_size=1, max_size=40))
def test_confident_scale_down_keeps_every_guarantee(cfg: PolicySettings, steps) -> None:  # type: ignore[no-untyped-def]
    policy = ScalingPolicy(cfg)
    now = 0
    for dt, peak, confident, stale, reactive in steps:
        now += dt
        issued = now - 3_600 if stale else now
        d = policy.decide_peak(now * NS, reactive, issued * NS, peak, confident_peak=confident)
        assert cfg.min_replicas <= d.value <= cfg.max_replicas  # never above max (nor below min)
        if stale:  # no change on stale input
            assert d.fell_back and d.value == d.previous and "confident" not in d.rules
        elif not d.fell_back:
            assert d.value >= min(reactive, cfg.max_replicas)  # never below the reactive recommendation
        if "confident" in d.rules:
            assert confident is not None and d.value < d.previous
            want = min(max(d.forecast_replicas or 0, reactive, cfg.min_replicas), cfg.max_replicas)
            need = replicas_for_demand(confident, cfg.capacity_per_pod, cfg.target_utilisation, cfg.margin)
            assert d.value == max(want, need)  # down to what the confident band needs, never below the target


# -- the choice -------------------------------------------------------------------------------------------------
setting = st.builds(
    JointSetting,
    quantile=st.sampled_from(["ensemble", "hi-80", "hi-95"]),
    margin=st.sampled_from([0.0, 0.1, 0.25]),
    target_utilisation=st.sampled_from([0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0]),
    scale_down=st.sampled_from(["steady", "confident"]),
)
trial = st.builds(
    lambda s, cost, risk: Trial(s.label, cost, float(risk), s),
    setting,
    st.floats(min_value=1.0, max_value=1e6),
    st.integers(min_value=0, max_value=500),
)
bounds = st.tuples(st.sampled_from([0.3, 0.5, 0.6, 0.7]), st.sampled_from([0.7, 0.8, 0.9, 1.0])).map(
    lambda b: TargetBounds(*b))
budget = st.one_of(
    st.builds(RiskBudget, fraction=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0])),
    st.builds(RiskBudget, under_minutes_per_day=st.sampled_from([0.0, 1.0, 5.0, 50.0])),
)
reference = st.builds(lambda c, u: Trial("reactive at 70%", c, float(u)), st.floats(min_value=1.0, max_value=1e6),
                      st.integers(min_value=0, max_value=500))


@settings(max_examples=300, deadline=None)
@given(trials=st.lists(trial, min_size=0, max_size=12, unique_by=lambda t: t.label), ref=reference, b=bounds,
       risk=budget, current=st.one_of(st.none(), setting))
def test_choice_stays_within_bounds_and_budget_and_explains_itself(trials, ref, b, risk, current) -> None:  # type: ignore[no-untyped-def]
    choice = choose(trials, ref, risk, b, current, days=3.0)
    assert b.contains(choice.setting.target_utilisation)  # the HPA target only within the policy's bounds
    eligible = [t for t in trials if b.contains(t.setting.target_utilisation)]
    if not eligible:
        assert choice.stale and choice.reason.startswith("no change")
        return
    allowed = risk.allowed(3.0, ref.under_minutes)
    within = [t for t in eligible if t.under_minutes <= allowed]
    assert choice.chosen is not None and choice.setting == choice.chosen.setting
    assert choice.chosen.label in choice.reason and ref.label in choice.reason  # which, and against what
    if within:
        def target(t: Trial) -> float:
            assert t.setting is not None
            return t.setting.target_utilisation

        def hotter_ok(t: Trial) -> bool:  # the edge guard above GUARD_ABOVE: the next hotter target within too
            if target(t) <= GUARD_ABOVE + 1e-9:
                return True
            up = [u for u in trials if target(u) > target(t) and u.label.split("/", 1)[1] == t.label.split("/", 1)[1]]
            return bool(up) and min(up, key=target).under_minutes <= allowed
        within = [t for t in within if hotter_ok(t)] or within
        cheapest = min(t.replica_minutes for t in within)
        assert choice.within_budget and choice.chosen.under_minutes <= allowed
        assert choice.chosen.replica_minutes <= cheapest * 1.01 + 1e-9  # the cheapest (1 % hysteresis)
    else:
        assert not choice.within_budget and "no setting met the budget" in choice.reason
        assert choice.chosen.under_minutes == min(t.under_minutes for t in eligible)
    if len(eligible) > 1:
        assert choice.runner_up is not None and "runner-up" in choice.reason and choice.runner_up.label in choice.reason


@settings(max_examples=100, deadline=None)
@given(b=bounds, current=st.one_of(st.none(), setting))
def test_no_change_on_stale_input(b: TargetBounds, current: JointSetting | None) -> None:
    choice = keep(current, b, "forecasts were fresh for 10% of the last 3 days")
    assert choice.stale and "no change" in choice.reason
    assert b.contains(choice.setting.target_utilisation)
    if current is not None and b.contains(current.target_utilisation):
        assert choice.setting == current and not choice.changed


def test_docstring_worked_example() -> None:
    def t(label: str, cost: float, under: float) -> Trial:
        target, quantile, margin, pace = label.split("/")
        s = JointSetting(quantile, float(margin.strip("+%")) / 100, float(target), pace)  # type: ignore[arg-type]
        assert s.label == label
        return Trial(label, cost, under, s)

    trials = [t("0.90/hi-80/+10%/steady", 262_000, 12), t("0.80/hi-80/+0%/steady", 271_000, 9),
              t("0.90/ensemble/+0%/steady", 250_000, 31)]
    ref = Trial("reactive at 70%", 300_000, 40)
    choice = choose(trials, ref, DEFAULT_BUDGET, TargetBounds(), None, days=3)
    assert choice.setting.label == "0.90/hi-80/+10%/steady" and choice.allowed_under_minutes == 20
    assert choice.runner_up is not None and choice.runner_up.label == "0.80/hi-80/+0%/steady"
    assert choice.reason == (
        "chose 0.90/hi-80/+10%/steady: 262,000 replica-min, 12 under-provisioned min over 3 days (budget: at most 50% "
        "of reactive at 70%'s = 20); runner-up 0.80/hi-80/+0%/steady: 271,000 / 9; reactive at 70%: 300,000 / 40 "
        "(chosen: -12.7% replica-min)")
    record = choice.record()
    assert record["setting"] == "0.90/hi-80/+10%/steady" and record["target_utilisation"] == 0.9
    assert record["chosen"]["under_minutes"] == 12 and record["reference"]["replica_minutes"] == 300_000
    # hysteresis: the second, in force and within 1 % of the best, would stay ...
    close = [t("0.90/hi-80/+10%/steady", 262_000, 12), t("0.80/hi-80/+0%/steady", 263_000, 9)]
    kept = choose(close, ref, DEFAULT_BUDGET, TargetBounds(), close[1].setting, days=3)
    assert kept.setting == close[1].setting and not kept.changed and kept.reason.endswith("unchanged")
    # ... but not at 3.4 % more
    assert choose(trials[:2], ref, DEFAULT_BUDGET, TargetBounds(), trials[1].setting, days=3).setting == \
        trials[0].setting


def test_zero_reference_risk_allows_none() -> None:
    s1, s2 = JointSetting(target_utilisation=0.9), JointSetting(target_utilisation=0.7)
    trials = [Trial(s1.label, 100.0, 1.0, s1), Trial(s2.label, 120.0, 0.0, s2)]
    choice = choose(trials, Trial("reactive at 70%", 130.0, 0.0), DEFAULT_BUDGET, TargetBounds(), None, days=1)
    assert choice.setting == s2 and choice.allowed_under_minutes == 0


def test_per_day_budget() -> None:
    s1, s2 = JointSetting(target_utilisation=0.9), JointSetting(target_utilisation=0.7)
    trials = [Trial(s1.label, 100.0, 14.0, s1), Trial(s2.label, 120.0, 0.0, s2)]
    budget = RiskBudget(under_minutes_per_day=5)
    assert choose(trials, None, budget, TargetBounds(), None, days=3).setting == s1  # 14 <= 15
    assert choose(trials, None, budget, TargetBounds(), None, days=2).setting == s2  # 14 > 10
    assert "at most 5 under-provisioned min a day" in budget.describe()
    with pytest.raises(InputError, match="reference"):
        choose(trials, None, DEFAULT_BUDGET, TargetBounds(), None, days=1)


@pytest.mark.parametrize(("lo", "hi"), [(0.5, 0.9), (0.75, 0.85), (0.95, 1.0), (0.3, 0.5)])
def test_default_bank_lies_within_bounds(lo: float, hi: float) -> None:
    bank = default_bank(TargetBounds(lo, hi))
    assert bank and all(lo <= s.target_utilisation <= hi for s in bank)
    assert len(bank) == len(set(bank))
    assert len(default_bank()) == 48


def test_reactive_ceiling_worked_example() -> None:
    """Capped CPU, tolerance 0.1: 1 / 1.1 = 0.909 -> 0.90; uncapped or unknown metrics have no ceiling."""
    assert reactive_ceiling("cpu") == pytest.approx(0.90)
    assert reactive_ceiling("cpu", tolerance=0.2) == pytest.approx(0.83)  # 1 / 0.83 = 1.205 > 1.2; 0.84: 1.19
    assert reactive_ceiling("cpu", tolerance=0.25) == pytest.approx(0.79)  # 0.80: 1.25, within the tolerance
    assert reactive_ceiling("requests") == 1.0
    assert reactive_ceiling(None) == 1.0


def test_bank_reaches_past_0_9_only_where_bounds_and_metric_allow() -> None:
    """Default bounds [0.5, 0.9]: the 48 settings of before whatever the metric; bounds up to 0.98: 72 on request
    rate (0.95 and 0.98 join), still 48 on capped CPU (the ceiling 0.90); bounds above the ceiling only: the lowest
    target the bounds allow, so the bank is never empty."""
    targets = lambda bank: sorted({s.target_utilisation for s in bank})  # noqa: E731
    assert default_bank(metric="requests") == default_bank(metric="cpu") == default_bank()
    wide = TargetBounds(0.5, 0.98)
    assert targets(default_bank(wide, metric="requests")) == [0.6, 0.7, 0.8, 0.9, 0.95, 0.98]
    assert len(default_bank(wide, metric="requests")) == 72
    assert default_bank(wide, metric="cpu") == default_bank()
    assert targets(default_bank(TargetBounds(0.95, 0.98), metric="cpu")) == [0.95]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: JointSetting(quantile="p95"), "quantile"),
        (lambda: JointSetting(margin=-0.1), "margin"),
        (lambda: JointSetting(target_utilisation=1.2), "target_utilisation"),
        (lambda: JointSetting(scale_down="fast"), "scale_down"),  # type: ignore[arg-type]
        (lambda: TargetBounds(0.9, 0.5), "target bounds"),
        (lambda: RiskBudget(under_minutes_per_day=-1), "under_minutes_per_day"),
        (lambda: RiskBudget(fraction=-0.5), "fraction"),
        (lambda: RiskBudget(reference_target=0.0), "reference_target"),
    ],
    ids=["quantile", "margin", "target", "pace", "bounds", "per-day", "fraction", "reference"],
)
def test_bad_joint_settings_name_the_field(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=match):
        make()


def test_overrides_are_policy_settings_fields() -> None:
    s = JointSetting("hi-95", 0.25, 0.8, "confident")
    fields = s.overrides()
    assert fields == {"quantile": "hi-95", "margin": 0.25, "target_utilisation": 0.8, "confident_scale_down": True}
    assert PolicySettings(capacity_per_pod=1.0, **fields).confident_scale_down


def test_edge_guard_worked_example() -> None:
    """Budget 0 (reactive at 70 % never short), all three targets of one floor safe on the replayed days: 0.98 is the
    bank's hottest (a probe), 0.95 counts because 0.98 stayed within the budget. One day later 0.98 was short 6
    minutes: 0.95 no longer counts, 0.90 (at or below GUARD_ABOVE, no guard) is chosen and 0.95 is named as the
    runner-up held back by the guard. With the guard off (``guard_above=1.0``) the hottest wins."""
    def t(target: float, cost: float, under: float) -> Trial:
        s = JointSetting("ensemble", 0.0, target, "confident")
        return Trial(s.label, cost, under, s)

    ref, bounds = Trial("reactive at 70%", 300_000, 0), TargetBounds(0.5, 0.98)
    safe = [t(0.90, 170_000, 0), t(0.95, 160_000, 0), t(0.98, 150_000, 0)]
    assert choose(safe, ref, DEFAULT_BUDGET, bounds, None, days=3).setting.target_utilisation == 0.95
    assert choose(safe, ref, DEFAULT_BUDGET, bounds, None, days=3, guard_above=1.0).setting.target_utilisation == 0.98
    short = [t(0.90, 170_000, 0), t(0.95, 160_000, 0), t(0.98, 150_000, 6)]
    c = choose(short, ref, DEFAULT_BUDGET, bounds, None, days=3)
    assert c.setting.target_utilisation == 0.90 and c.runner_up is not None
    assert c.runner_up.label == "0.95/ensemble/+0%/confident" and "(edge guard)" in c.reason
    assert "above a target of 0.90 only with the next hotter target also within it" in c.reason
    only_hot = [t(0.95, 160_000, 0), t(0.98, 150_000, 0)]  # nothing passes: the guard is waived, and says so
    c = choose(only_hot[1:], ref, DEFAULT_BUDGET, bounds, None, days=3)
    assert c.setting.target_utilisation == 0.98 and "edge guard above 0.90 waived" in c.reason
    assert pytest.approx(0.90) == GUARD_ABOVE
