"""``predict.ForecastScaled`` and the ``forecast-scaled-vpa`` policy: worked numbers, fallbacks, bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from rs_builders import history, usage_frame

from forecaster.contracts.errors import InputError
from forecaster.rightsizing import rightsize
from forecaster.rightsizing.estimators import Estimate
from forecaster.rightsizing.frames import UsageError
from forecaster.rightsizing.history import ContainerHistory
from forecaster.rightsizing.policies import get_policy, vpa_policy
from forecaster.rightsizing.predict import FORECAST, PREDICTED, ForecastScaled


class Fixed:
    """A base estimator answering a fixed value (so only the scaling is under test)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def estimate(self, h: ContainerHistory) -> Estimate:
        return Estimate(self.value, "histogram", f"base {self.value}")


def table(mean: float, uid: str = "c", resource: str = "cpu") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": [uid], "resource": [resource], "statistic": ["mean"], "source": [FORECAST],
                         PREDICTED: [mean], "reason": ["engine"]})


@pytest.mark.parametrize(
    ("predicted_mean", "expected"),
    [
        (0.3, 0.6),  # the docstring's example: recent mean 0.4 -> ratio 0.75 -> 0.8 x 0.75
        (0.4, 0.8),  # no change forecast: the base estimate
        (4.0, 1.2),  # ratio 10 clipped to 1.5
        (0.04, 0.4),  # ratio 0.1 clipped to 0.5
    ],
)
def test_worked_numbers(predicted_mean: float, expected: float) -> None:
    h = history([0.4] * 60)  # a steady 0.4 cores: decayed mean 0.4
    est = ForecastScaled(Fixed(0.8), table(predicted_mean)).estimate(h)
    assert est.value == pytest.approx(expected)
    assert "forecast level change" in est.reason and est.reason.startswith("base 0.8")


def test_decayed_mean_weights_recent_samples() -> None:
    """Half-life 1 h: 0.2 for a day then 0.6 for the last hour -> decayed mean near 0.4, not the plain 0.217."""
    h = history([0.2] * (23 * 60) + [0.6] * 60)
    est = ForecastScaled(Fixed(1.0), table(0.4), half_life="1h", bounds=(0.1, 10.0)).estimate(h)
    # the last hour carries half the total weight (half-life 1 h): mean = 0.5 * 0.6 + 0.5 * 0.2 = 0.4 -> ratio 1;
    # an undecayed mean (0.217) would give ratio 1.85
    assert est.value == pytest.approx(1.0, rel=0.01)


def test_fallbacks_keep_the_base_estimate() -> None:
    assert ForecastScaled(Fixed(0.8), table(0.3, uid="other")).estimate(history([0.4] * 10)).value == 0.8
    idle = ForecastScaled(Fixed(0.8), table(0.3)).estimate(history([0.0] * 10))
    assert idle.value == 0.8 and "idle recently" in idle.reason
    nan = ForecastScaled(Fixed(0.8), table(float("nan"))).estimate(history([0.4] * 10))
    assert nan.value == 0.8 and "no level forecast" in nan.reason


@pytest.mark.parametrize("bounds", [(0.0, 2.0), (1.2, 2.0), (0.5, 0.9)])
def test_bad_bounds_are_refused(bounds: tuple[float, float]) -> None:
    with pytest.raises(InputError, match="bounds"):
        ForecastScaled(Fixed(1.0), table(0.4), bounds=bounds)


def test_policy_is_the_vpa_chain_moved_by_the_forecast() -> None:
    """Same history: with a forecast of no change the policy equals the VPA; half the level -> half the target."""
    h = history([0.5] * (7 * 24 * 60))
    vpa = vpa_policy().estimator("target", "cpu").estimate(h).value
    same = get_policy("forecast-scaled-vpa", prediction=table(0.5)).estimator("target", "cpu").estimate(h).value
    half = get_policy("forecast-scaled-vpa", prediction=table(0.25)).estimator("target", "cpu").estimate(h).value
    assert same == pytest.approx(vpa, abs=0.001)  # RoundCPU rounds both up to a millicore
    assert half == pytest.approx(vpa / 2, abs=0.001)
    pol = get_policy("forecast-scaled-vpa", prediction=table(0.5))
    assert pol.name == "forecast-scaled-vpa" and pol.settings["level_bounds"] == [0.5, 1.5]


def test_policy_needs_a_prediction() -> None:
    with pytest.raises(UsageError, match="prediction"):
        get_policy("forecast-scaled-vpa")


def test_rightsize_api_predicts_for_the_scaled_policy() -> None:
    """``rightsize(policy="forecast-scaled-vpa")`` computes the prediction itself (the CLI calls the same)."""
    usage = usage_frame("shop/cart/app", periods=3 * 288)
    res = rightsize(usage, policy="forecast-scaled-vpa")
    assert res.policy == "forecast-scaled-vpa"
    assert "forecast level change" in " ".join(res.recommendations["reason"].astype(str))
