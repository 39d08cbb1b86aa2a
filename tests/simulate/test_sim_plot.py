"""Tests of ``forecaster.simulate.plot``: the replay and Pareto charts render to non-empty PNGs (Agg, no pyplot)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from forecaster.simulate import replay
from forecaster.simulate.plot import pareto_chart, replay_chart

T0 = pd.Timestamp("2024-03-04T00:00Z")
PNG = b"\x89PNG\r\n\x1a\n"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _demand() -> pd.Series:
    x = np.arange(240)
    return pd.Series(100 + 80 * (x > 100) + 20 * np.sin(x / 10), index=pd.date_range(T0, periods=240, freq="1min"))


def test_replay_chart_renders() -> None:
    result = replay(_demand(), "oracle", capacity_per_pod=10.0)
    fig = replay_chart(result)
    assert len(fig.axes) == 2
    assert "oracle" in fig._suptitle.get_text()  # type: ignore[union-attr]
    data = _png(fig)
    assert data.startswith(PNG) and len(data) > 10_000


def test_replay_chart_slices_a_window() -> None:
    result = replay(_demand(), capacity_per_pod=10.0)
    fig = replay_chart(result, start=T0 + pd.Timedelta("1h"), end=T0 + pd.Timedelta("2h"), title="window")
    line = fig.axes[0].get_lines()[0]
    assert len(line.get_xdata()) == 61
    assert _png(fig).startswith(PNG)


def test_pareto_chart_renders_outcomes_and_dicts() -> None:
    demand = _demand()
    points = [replay(demand, capacity_per_pod=10.0, target_utilisation=t).outcomes for t in (0.5, 0.7, 0.9)]
    rows = [{**o.as_dict(), "label": f"target {t}"} for o, t in zip(points, (0.5, 0.7, 0.9), strict=True)]
    rows.append({**replay(demand, "oracle", capacity_per_pod=10.0).outcomes.as_dict(), "label": "oracle"})
    fig = pareto_chart(rows, title="test")
    ax = fig.axes[0]
    assert {line.get_label() for line in ax.get_lines()} == {"reactive", "oracle"}
    assert _png(fig).startswith(PNG)
    assert _png(pareto_chart(points)).startswith(PNG)


def test_pareto_chart_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="replica_minutes"):
        pareto_chart(pd.DataFrame({"policy": ["reactive"]}))
