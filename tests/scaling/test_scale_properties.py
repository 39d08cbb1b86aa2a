"""Property tests of ``ScalingPolicy`` over generated forecasts and demand (issue 4 acceptance):

- with a usable forecast the floor is never below the reactive floor (unless that exceeds max), never above max;
- it never falls faster than the configured rate, and never within the cool-down after an increase;
- on stale input no change is made.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.scaling import PolicySettings, ScalingPolicy

NS = 1_000_000_000

step = st.tuples(
    st.integers(min_value=15, max_value=900),  # seconds since the previous decision
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=5_000.0)),  # peak demand (None: uncovered)
    st.booleans(),  # stale?
    st.integers(min_value=0, max_value=300),  # reactive floor
)
policy_settings = st.builds(
    PolicySettings,
    capacity_per_pod=st.floats(min_value=1.0, max_value=100.0),
    target_utilisation=st.floats(min_value=0.3, max_value=1.0),
    min_replicas=st.integers(min_value=0, max_value=5),
    max_replicas=st.integers(min_value=5, max_value=200),
    scale_down_pods_per_min=st.floats(min_value=0.0, max_value=5.0),
    scale_down_fraction_per_min=st.floats(min_value=0.0, max_value=0.5),
    cooldown_s=st.floats(min_value=0.0, max_value=900.0),
    stale_after_s=st.just(600.0),
    release_after_s=st.none(),
    margin=st.floats(min_value=0.0, max_value=0.5),
)


def _run(cfg: PolicySettings, steps: list[tuple[int, float | None, bool, int]]):  # type: ignore[no-untyped-def]
    policy = ScalingPolicy(cfg)
    now = 0
    out = []
    for dt, peak, stale, reactive in steps:
        now += dt
        issued = now - 3_600 if stale else now
        out.append((now, policy.decide_peak(now * NS, reactive, issued * NS, peak)))
    return out


@settings(max_examples=150, deadline=None)
@given(cfg=policy_settings, steps=st.lists(step, min_size=1, max_size=40))
def test_floor_respects_bounds_and_reactive_floor(cfg: PolicySettings, steps) -> None:  # type: ignore[no-untyped-def]
    for _, d in _run(cfg, steps):
        assert cfg.min_replicas <= d.value <= cfg.max_replicas
        if not d.fell_back:
            assert d.value >= min(d.reactive_floor, cfg.max_replicas)


@settings(max_examples=150, deadline=None)
@given(cfg=policy_settings, steps=st.lists(step, min_size=2, max_size=40))
def test_floor_never_falls_faster_than_the_rate(cfg: PolicySettings, steps) -> None:  # type: ignore[no-untyped-def]
    last_change_s, last_value = 0, cfg.min_replicas
    last_increase_s: int | None = None
    for now, d in _run(cfg, steps):
        if d.value < d.previous:
            rate = max(cfg.scale_down_pods_per_min, cfg.scale_down_fraction_per_min * last_value)
            assert last_value - d.value <= math.floor(rate * (now - last_change_s) / 60.0 + 1e-6)
            assert last_increase_s is None or now - last_increase_s >= cfg.cooldown_s
        if d.value > d.previous:
            last_increase_s = now
        if d.changed:
            last_change_s, last_value = now, d.value


@settings(max_examples=150, deadline=None)
@given(cfg=policy_settings, steps=st.lists(step, min_size=1, max_size=40))
def test_no_change_on_stale_input(cfg: PolicySettings, steps) -> None:  # type: ignore[no-untyped-def]
    for (_, _, stale, _), (_, d) in zip(steps, _run(cfg, steps), strict=True):
        if stale:
            assert d.fell_back and not d.changed and d.value == d.previous
            assert d.rules == ("stale", "hold")
