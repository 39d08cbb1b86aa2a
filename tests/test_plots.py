"""Tests of ``forecaster.plots``: charts render to PNG from a hand-made forecast, without pyplot state."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from forecaster.frames import DS, ENSEMBLE, ID, MEMBERS, Y, hi, lo
from forecaster.plots import fan_chart, members_chart, save_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVELS = (80, 95)


def _history(uid: str = "api", days: int = 3) -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=days * 288, freq="5min", tz="UTC")
    y = 100 + 50 * np.sin(2 * np.pi * np.arange(len(ds)) / 288)
    return pd.DataFrame({ID: uid, DS: ds, Y: y})


def _forecast(history: pd.DataFrame, h: int = 24) -> pd.DataFrame:
    """Hand-made forecast: point 100, 80 % band +-10, 95 % band +-20, members around the point."""
    ds = pd.date_range(history[DS].max() + pd.Timedelta("5min"), periods=h, freq="5min")
    frame = pd.DataFrame({ID: history[ID].iloc[0], DS: ds, ENSEMBLE: np.full(h, 100.0)})
    for level, half in ((80, 10.0), (95, 20.0)):
        frame[lo(ENSEMBLE, level)] = 100.0 - half
        frame[hi(ENSEMBLE, level)] = 100.0 + half
    for i, member in enumerate(MEMBERS):
        frame[member] = 95.0 + 3 * i
    return frame


def _read_png(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return data


def test_fan_chart_draws_nested_bands_history_forecast_and_origin(tmp_path: Path) -> None:
    history = _history()
    other = _history("other")
    forecast = _forecast(history)
    actuals = pd.DataFrame({ID: "api", DS: forecast[DS], Y: 105.0})
    fig = fan_chart(pd.concat([history, other]), forecast, "api", LEVELS, actuals=actuals, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "t"
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(LEVELS)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["history", "forecast (ensemble)", "actual", "forecast origin"]
    hist_line = ax.get_lines()[0]
    # at least a day of history before the origin, never the other series' points
    assert len(hist_line.get_xdata()) == 288
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95 % band" in legend and "80 % band" in legend
    data = _read_png(save_png(fig, tmp_path / "charts" / "fan.png"))
    assert len(data) > 10_000


def test_fan_chart_without_history_uses_the_forecast_start() -> None:
    forecast = _forecast(_history())
    fig = fan_chart(_history().iloc[0:0], forecast, "api", LEVELS)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["forecast (ensemble)", "forecast origin"]


def test_fan_chart_unknown_series_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        fan_chart(_history(), _forecast(_history()), "nope", LEVELS)


def test_members_chart_draws_each_member_and_the_ensemble(tmp_path: Path) -> None:
    forecast = _forecast(_history())
    fig = members_chart(forecast, "api", [*MEMBERS, "absent"])
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == [*MEMBERS, "ensemble"]
    assert _read_png(save_png(fig, tmp_path / "members.png"))


def test_no_pyplot_figures_are_left_behind() -> None:
    before = plt.get_fignums()
    history = _history()
    fan_chart(history, _forecast(history), "api", LEVELS)
    members_chart(_forecast(history), "api", MEMBERS)
    assert plt.get_fignums() == before
