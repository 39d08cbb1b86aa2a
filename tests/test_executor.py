"""``forecaster.forecasting.executor``: serial and process-pool maps keep input order and cover every item once."""

from __future__ import annotations

import math
import os

import pytest

from forecaster.forecasting.executor import ProcessExecutor, SerialExecutor, _run_chunk, make_executor


def test_serial_map_keeps_order() -> None:
    assert SerialExecutor().map(str, [3, 1, 2]) == ["3", "1", "2"]
    assert SerialExecutor().map(str, []) == []


@pytest.mark.parametrize(
    ("n_jobs", "kind", "workers"),
    [(1, SerialExecutor, None), (2, ProcessExecutor, 2), (5, ProcessExecutor, 5)],
    ids=["one", "two", "five"],
)
def test_make_executor(n_jobs: int, kind: type, workers: int | None) -> None:
    ex = make_executor(n_jobs)
    assert isinstance(ex, kind)
    assert callable(ex.map)
    if workers is not None:
        assert ex.n_workers == workers  # type: ignore[attr-defined]


@pytest.mark.parametrize("n_jobs", [None, -1], ids=["none", "minus-one"])
def test_make_executor_all_cores(n_jobs: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    ex = make_executor(n_jobs)
    assert isinstance(ex, ProcessExecutor) and ex.n_workers == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert isinstance(make_executor(n_jobs), SerialExecutor)


def test_process_executor_runs_small_inputs_in_process() -> None:
    # fewer than 2 items per worker: no pool, so even a lambda (unpicklable) works
    assert ProcessExecutor(4).map(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]


def test_process_executor_keeps_order_over_chunks() -> None:
    items = list(range(37))  # 2 workers -> 8 chunks of 4-5 items
    assert ProcessExecutor(2).map(math.factorial, items) == [math.factorial(i) for i in items]


def test_process_executor_floor_of_one_worker() -> None:
    assert ProcessExecutor(0).n_workers == 1


def test_run_chunk_applies_fn_to_every_item() -> None:
    assert _run_chunk((abs, [-1, 2, -3])) == [1, 2, 3]
