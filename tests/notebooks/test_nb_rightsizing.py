"""Executes ``notebooks/rightsizing.ipynb`` on the Bitbrains fixture (nbclient): every cell runs, the requested vs
actual and right-sizing charts render as PNG, and the policy comparison is printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nb_runner import execute_fast, images, stderr, text
from nbformat import NotebookNode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed() -> Iterator[NotebookNode]:
    yield from execute_fast("rightsizing")


def test_runs_top_to_bottom_and_renders_every_chart(executed: NotebookNode) -> None:
    # requested vs actual for forecaster and VPA, then vm001's right-sizing chart under each
    assert images(executed) == 4
    assert stderr(executed) == ""


def test_compares_the_policies_per_container_team_and_day(executed: NotebookNode) -> None:
    out = text(executed)
    assert "3 containers, 2,877 samples" in out
    assert "decision time 2013-08-11 00:00 UTC" in out
    for word in ("analytics", "web", "forecaster", "vpa", "moving-window", "keep", "memory_overrun_samples_per_day"):
        assert word in out
