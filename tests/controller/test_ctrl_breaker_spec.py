"""``spec.breaker`` (openRatio, closeRatio, minPoints): defaults, per-policy values into ``PolicySettings``, and bad
values refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from ctrl_builders import policy_object

from forecaster.contracts.errors import InputError
from forecaster.runtime.controller import PolicySpec


def test_defaults_match_the_scaling_policy_settings() -> None:
    spec = PolicySpec.from_object(policy_object())
    assert (spec.breaker_open_ratio, spec.breaker_close_ratio, spec.breaker_min_points) == (3.0, 1.5, 6)
    settings = spec.to_settings(2, 20)
    assert (settings.breaker_open_ratio, settings.breaker_close_ratio, settings.breaker_min_points) == (3.0, 1.5, 6)


def test_per_policy_values_reach_the_settings() -> None:
    spec = PolicySpec.from_object(policy_object(breaker={"openRatio": 10, "closeRatio": 2, "minPoints": 3}))
    settings = spec.to_settings(2, 20)
    assert (settings.breaker_open_ratio, settings.breaker_close_ratio, settings.breaker_min_points) == (10.0, 2.0, 3)


@pytest.mark.parametrize(
    ("breaker", "field"),
    [
        ({"openRatio": 2, "closeRatio": 3}, "spec.breaker.closeRatio"),
        ({"openRatio": 0.5}, "spec.breaker.openRatio"),
        ({"closeRatio": 0}, "spec.breaker.closeRatio"),
        ({"closeRatio": "low"}, "spec.breaker.closeRatio"),
        ({"minPoints": 0}, "spec.breaker.minPoints"),
        ({"minPoints": 2.5}, "spec.breaker.minPoints"),
        ("on", "spec.breaker"),
    ],
)
def test_bad_values_name_the_field(breaker: Any, field: str) -> None:
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        PolicySpec.from_object(policy_object(breaker=breaker))
