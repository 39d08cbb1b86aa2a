"""Tests of ``forecaster.scaling.settings``: the quantile knob maps to Forecast columns; bad fields are named."""

from __future__ import annotations

import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import ENSEMBLE, hi, lo
from forecaster.scaling import PolicySettings, band_column, lead_time_s
from forecaster.scaling.settings import DEFAULT_DECISION_INTERVAL_S, DEFAULT_LEAD_TIME_S, DEFAULT_STARTUP_S


@pytest.mark.parametrize(
    ("quantile", "column"),
    [
        ("ensemble", ENSEMBLE),
        ("median", ENSEMBLE),
        ("hi-80", hi(ENSEMBLE, 80)),
        ("HI-95", hi(ENSEMBLE, 95)),
        ("lo-80", lo(ENSEMBLE, 80)),
        ("ensemble-hi-95", hi(ENSEMBLE, 95)),
    ],
    ids=["ensemble", "median", "hi80", "upper-case", "lo80", "full-name"],
)
def test_band_column(quantile: str, column: str) -> None:
    assert band_column(quantile) == column


@pytest.mark.parametrize("quantile", ["p90", "hi-0", "hi-100", "mid-80", ""])
def test_band_column_rejects_unknown_names(quantile: str) -> None:
    with pytest.raises(InputError, match="quantile"):
        band_column(quantile)


def test_lead_time_is_startup_plus_refresh() -> None:
    assert lead_time_s(120, 60) == 180.0


def test_one_lead_time_default() -> None:
    """120 s start-up + one decision a minute; the policy's default is the same constant."""
    assert DEFAULT_LEAD_TIME_S == lead_time_s(DEFAULT_STARTUP_S, DEFAULT_DECISION_INTERVAL_S) == 180.0
    assert PolicySettings(capacity_per_pod=1.0).lead_time_s == DEFAULT_LEAD_TIME_S


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capacity_per_pod", 0.0),
        ("capacity_per_pod", float("nan")),
        ("target_utilisation", 1.5),
        ("lead_time_s", -1.0),
        ("quantile", "p99"),
        ("margin", -0.1),
        ("min_replicas", -1),
        ("max_replicas", 0),
        ("scale_down_pods_per_min", -1.0),
        ("cooldown_s", -5.0),
        ("stale_after_s", 0.0),
        ("breaker_close_ratio", 5.0),
        ("breaker_min_points", 0),
        ("confident_quantile", "p95"),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"capacity_per_pod": 10.0, field: value}
    with pytest.raises(InputError, match=field):
        PolicySettings(**kwargs)  # type: ignore[arg-type]


def test_settings_are_frozen_and_expose_the_column() -> None:
    st = PolicySettings(capacity_per_pod=10.0, quantile="hi-95")
    assert st.column == hi(ENSEMBLE, 95)
    with pytest.raises(AttributeError):
        st.margin = 1.0  # type: ignore[misc]


def test_confident_column() -> None:
    st = PolicySettings(capacity_per_pod=10.0, confident_scale_down=True)
    assert st.confident_column == hi(ENSEMBLE, 95)
