"""rightsize(): recommendations plus per-container, per-namespace and per-team reports in one call."""

from __future__ import annotations

import pandas as pd
import pytest
from rs_builders import GIB, T0, two_containers, usage_frame

import forecaster.rightsizing as rs
from forecaster.rightsizing import RightsizingResult, UsageError, rightsize


@pytest.mark.parametrize("policy", ["calibrated", "vpa", "moving-window", "keep"])
def test_rightsize_returns_every_frame(policy: str) -> None:
    result = rightsize(two_containers(), policy=policy)
    assert isinstance(result, RightsizingResult)
    assert result.policy == policy
    assert result.now == T0 + pd.Timedelta("1h")
    assert len(result.recommendations) == 4
    assert len(result.containers) == 4
    assert set(result.namespaces["namespace"]) == {"pay", "shop"}
    assert set(result.teams["team"]) == {"core", "web"}
    if policy == "keep":
        assert result.containers["savings"].eq(0).all()


def test_the_default_policy_is_calibrated() -> None:
    assert rightsize(two_containers()).policy == rs.DEFAULT_POLICY == "calibrated"


def test_autopilot_is_a_deprecated_alias_of_moving_window() -> None:
    with pytest.warns(DeprecationWarning, match="now named 'moving-window'"):
        result = rightsize(two_containers(), policy="autopilot")
    assert result.policy == "moving-window"


def test_rightsize_without_team_labels() -> None:
    result = rightsize(usage_frame(cpu_request=2.0, memory_request=4 * GIB), policy="vpa")
    assert result.teams.empty
    assert list(result.namespaces["namespace"]) == ["shop", "shop"]  # from "shop/cart/app"
    cpu = result.containers.iloc[0]
    # 0.5 cores for an hour: VPA target 0.588 -> savings 2 - 0.588 = 1.412 cores
    assert cpu["savings"] == pytest.approx(1.412)


def test_rightsize_window_and_now() -> None:
    result = rightsize(usage_frame(periods=24), now="2024-03-04T01:00Z", window="30min", policy="vpa")
    assert result.window == pd.Timedelta("30min")
    assert result.containers["samples"].eq(6).all()
    with pytest.raises(UsageError, match="must be positive"):
        rightsize(usage_frame(), window="-1h")


def test_rightsize_rejects_bad_input_before_computing() -> None:
    with pytest.raises(UsageError, match="cpu_request of shop/cart/app looks like millicores"):
        rightsize(usage_frame(cpu_request=1000.0))


def test_public_names() -> None:
    for name in rs.__all__:
        assert hasattr(rs, name), name
    assert {"rightsize", "recommend", "vpa_policy", "score_window", "ContainerHistory"} <= set(rs.__all__)
