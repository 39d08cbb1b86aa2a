"""One interface for per-series work: a map over workloads (DESIGN.md "Scale").

``make_executor(n_jobs)`` gives a serial map for ``n_jobs == 1`` and a local process pool otherwise.
Work is chunked so each task carries many series (pickling one big chunk is cheaper than many small ones).
A Dask executor can implement the same ``map`` later. Called by members that fit per series.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Apply ``fn`` to every item; results in input order."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


class SerialExecutor:
    """Runs in this process; the default for small fleets and in tests."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        with single_threaded_blas():
            return [fn(item) for item in items]


def _run_chunk(args: tuple[Callable[[T], R], Sequence[T]]) -> list[R]:
    fn, chunk = args
    with single_threaded_blas():
        return [fn(item) for item in chunk]


def single_threaded_blas() -> Any:
    """Context limiting BLAS/OpenMP to one thread.

    Per-series statsmodels fits are tiny matrix problems: a multi-threaded OpenBLAS spends far more time
    synchronising threads than computing (measured: one SARIMAX fit 2.7 s threaded vs 0.05 s single-threaded
    on a busy 2-core machine). Parallelism comes from running series side by side instead.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


class ProcessExecutor:
    """A local process pool of ``n_workers``; items are sent in ``n_workers * 4`` chunks."""

    def __init__(self, n_workers: int) -> None:
        self.n_workers = max(1, n_workers)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) < 2 * self.n_workers:
            return SerialExecutor().map(fn, items)
        n_chunks = min(len(items), self.n_workers * 4)
        bounds = [round(i * len(items) / n_chunks) for i in range(n_chunks + 1)]
        chunks: Iterable[tuple[Callable[[T], R], Sequence[T]]] = (
            (fn, items[bounds[i] : bounds[i + 1]]) for i in range(n_chunks)
        )
        out: list[R] = []
        with ProcessPoolExecutor(max_workers=self.n_workers) as pool:
            for part in pool.map(_run_chunk, chunks):
                out.extend(part)
        return out


def make_executor(n_jobs: int | None) -> Executor:
    """``1`` -> serial; ``None``/``-1`` -> one worker per core; ``n`` -> ``n`` workers."""
    if n_jobs is None or n_jobs < 0:
        n_jobs = os.cpu_count() or 1
    return SerialExecutor() if n_jobs == 1 else ProcessExecutor(n_jobs)
