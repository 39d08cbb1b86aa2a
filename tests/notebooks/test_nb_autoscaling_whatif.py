"""Executes ``notebooks/autoscaling_whatif.ipynb`` on the bundled NASA extract (nbclient, ``FORECASTER_NB_FAST=1``:
one replayed day): every cell runs, the replay and Pareto charts render as PNG, and the comparisons are printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nb_runner import execute_fast, images, stderr, text
from nbformat import NotebookNode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed() -> Iterator[NotebookNode]:
    yield from execute_fast("autoscaling_whatif")


def test_runs_top_to_bottom_and_renders_every_chart(executed: NotebookNode) -> None:
    assert images(executed) == 3  # reactive replay, predictive replay, Pareto
    assert stderr(executed) == ""


def test_replays_one_day_and_compares_at_equal_cost_and_risk(executed: NotebookNode) -> None:
    out = text(executed)
    assert "(1,440 minutes)" in out  # FORECASTER_NB_FAST=1 replays one day
    assert "288 forecasts issued" in out
    assert "equal cost:" in out and "equal risk:" in out
    for policy in ("reactive", "predictive", "oracle"):
        assert policy in out
