"""Executes ``notebooks/capacity_planning.ipynb`` on the bundled NASA extract (nbclient, ``FORECASTER_NB_FAST=1``):
every cell runs, the charts render as PNG, and the forecast, margin and scenario plans are printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nb_runner import execute_fast, images, stderr, text
from nbformat import NotebookNode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed() -> Iterator[NotebookNode]:
    yield from execute_fast("capacity_planning")


def test_runs_top_to_bottom_and_renders_every_chart(executed: NotebookNode) -> None:
    # fan chart vs the held-out week, two member charts, the long-range daily-peak fan chart
    assert images(executed) == 4
    assert stderr(executed) == ""


def test_prints_the_forecast_check_the_margin_and_the_plans(executed: NotebookNode) -> None:
    out = text(executed)
    assert "nasa-http: training 1995-07-01 04:00" in out
    assert "held-out steps; ensemble MAE" in out
    assert "margin that covered every held-out day's peak" in out
    assert "learned launch uplift" in out
    for scenario in ("flat", "growth 5 %/month + launch", "growth 5 %/month + EU region", "growth 15 %/month"):
        assert scenario in out
    assert "autoscaling saves" in out
