"""recommend() and histories(): the recommendation frame, ``now`` handling, validation before computation."""

from __future__ import annotations

import pandas as pd
import pytest
from rs_builders import MIB, T0, two_containers, usage_frame

from forecaster.rightsizing.frames import RECOMMENDATION_COLUMNS, UsageError, validate_ooms, validate_usage
from forecaster.rightsizing.history import histories
from forecaster.rightsizing.policies import vpa_policy
from forecaster.rightsizing.recommend import default_now, recommend, recommend_histories, sampling_step


def test_recommendation_frame_shape() -> None:
    recs = recommend(two_containers())
    assert list(recs.columns) == [*RECOMMENDATION_COLUMNS, "namespace", "team"]
    assert list(zip(recs["unique_id"], recs["resource"], strict=True)) == [
        ("pay/api/app", "cpu"),
        ("pay/api/app", "memory"),
        ("shop/cart/app", "cpu"),
        ("shop/cart/app", "memory"),
    ]
    assert list(recs["namespace"]) == ["pay", "pay", "shop", "shop"]
    assert list(recs["team"]) == ["core", "core", "web", "web"]
    assert recs["policy"].eq("vpa").all()
    for col in ("request", "target", "lower_bound", "upper_bound", "uncapped_target"):
        assert recs[col].dtype == float
    assert recs["low_confidence"].all()  # an hour of samples: less than the VPA policy's 24 h
    for reason in recs["reason"]:
        assert reason.startswith("low confidence: 1 h of history, policy vpa needs 24 h; target: ")
        assert " | lower bound: " in reason and " | upper bound: " in reason


def test_no_label_columns_without_labels() -> None:
    recs = recommend(usage_frame())
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)


def test_default_now_is_last_sample_plus_one_step() -> None:
    frame = validate_usage(usage_frame(periods=12, freq="5min"))
    assert sampling_step(frame) == pd.Timedelta("5min")
    assert default_now(frame) == T0 + pd.Timedelta("60min")
    single = validate_usage(usage_frame(periods=1))
    assert default_now(single) == T0 + pd.Timedelta("1min")


def test_only_data_before_now_is_used() -> None:
    # a 10-core spike at 01:00 and later: invisible to a decision taken at 01:00
    cpu = [0.5] * 12 + [10.0] * 12
    usage = usage_frame(periods=24, cpu=cpu, cpu_limit=20.0, cpu_request=1.0)
    at_one = recommend(usage, now=T0 + pd.Timedelta("1h"))
    later = recommend(usage)
    assert at_one.loc[at_one["resource"] == "cpu", "target"].iloc[0] == 0.588
    assert later.loc[later["resource"] == "cpu", "target"].iloc[0] > 1.0
    # same answer when the future rows are simply absent
    cut = recommend(usage.iloc[:12], now=T0 + pd.Timedelta("1h"))
    pd.testing.assert_frame_equal(at_one, cut)


def test_containers_born_after_now_are_left_out() -> None:
    usage = pd.concat([usage_frame("a/old/app"), usage_frame("b/new/app", start=T0 + pd.Timedelta("2h"))])
    recs = recommend(usage, now=T0 + pd.Timedelta("1h"))
    assert set(recs["unique_id"]) == {"a/old/app"}
    with pytest.raises(UsageError, match="no sample before now"):
        recommend(usage, now=T0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [("2024-03-04 01:00", "tz-naive"), ("not a time", "not a timestamp")],
    ids=["naive", "garbage"],
)
def test_bad_now(now: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected):
        recommend(usage_frame(), now=now)


def test_one_bad_container_stops_everything() -> None:
    usage = pd.concat([usage_frame("a/ok/app"), usage_frame("b/bad/app", memory_request=512.0)])
    with pytest.raises(UsageError, match="memory_request of b/bad/app looks like MiB"):
        recommend(usage)


def test_unknown_policy_name() -> None:
    with pytest.raises(UsageError, match="unknown policy"):
        recommend(usage_frame(), policy="magic")


def test_histories_cut_at_now_and_route_ooms_to_memory() -> None:
    usage = validate_usage(usage_frame(periods=12))
    kills = validate_ooms(
        pd.DataFrame({"unique_id": ["shop/cart/app"] * 2, "ds": [T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("2h")]}),
        usage,
    )
    hs = histories(usage, kills, T0 + pd.Timedelta("30min"))
    assert [(h.unique_id, h.resource) for h in hs] == [("shop/cart/app", "cpu"), ("shop/cart/app", "memory")]
    cpu, mem = hs
    assert cpu.n == mem.n == 6  # 00:00 .. 00:25
    assert len(cpu.oom_ds) == 0
    assert len(mem.oom_ds) == 1 and mem.oom_usage[0] == 600 * MIB  # the later kill is after now
    assert cpu.current_request == 1.0
    assert cpu.step_minutes == 5.0
    assert cpu.lifespan_days == pytest.approx(25 / 1440)


def test_recommend_histories_reuses_validated_input() -> None:
    usage = validate_usage(two_containers())
    kills = validate_ooms(None, usage)
    now = T0 + pd.Timedelta("1h")
    direct = recommend_histories(histories(usage, kills, now), vpa_policy())
    via_api = recommend(two_containers(), now=now)
    pd.testing.assert_frame_equal(direct, via_api)
