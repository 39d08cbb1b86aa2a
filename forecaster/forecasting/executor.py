"""One interface for per-series work: a map over workloads (DESIGN.md "Scale").

Two calls, both keeping input order:

- ``map(fn, items)``: many small items (e.g. one series' fit each); the executor batches them, so each task
  carries many items (pickling one big batch is cheaper than many small ones).
- ``map_tasks(fn, tasks)``: few heavy work units, one task each. A task is ``(shared, own)`` and runs
  ``fn(shared, own)``; ``shared`` is the unit's data (a chunk of series' history), which several tasks may hold
  (the same chunk under every backtest window): a distributed executor ships each distinct ``shared`` object to
  a worker once and drops it when its tasks are done, so a worker holds a few chunks, never the fleet.
  At most ``2 * n_workers`` tasks are in flight: the inputs of the others are not serialised yet.

``make_executor(n_jobs)`` gives a ``SerialExecutor`` for ``n_jobs == 1`` and a local ``ProcessExecutor``
otherwise; ``forecaster.adapters.dask.DaskExecutor`` implements the same two calls on a Dask cluster (kept out of
this pure module: it imports ``dask.distributed``). Every task runs with BLAS limited to one thread.
``Lent(executor)`` hands a long-lived executor (a service's Dask cluster) to models without tying it to them: it
runs the same calls, and pickles (a saved artefact, a model shipped to a worker) as a ``SerialExecutor``.

Called by ``forecaster.forecasting.members`` and the members that fit per series.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

from forecaster.models.base import single_threaded_blas as single_threaded_blas  # noqa: PLC0414  (re-exported)

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
P = TypeVar("P")

Progress = Callable[[int, int], None]


class Executor(Protocol):
    """Apply ``fn`` to every item or task; results in input order (see the module docstring)."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...

    def map_tasks(
        self, fn: Callable[[S, P], R], tasks: Sequence[tuple[S, P]], progress: Progress | None = None
    ) -> list[R]: ...


def run_chunk(args: tuple[Callable[[T], R], Sequence[T]]) -> list[R]:
    """``fn`` over one batch of items, BLAS single-threaded (the body of a ``map`` task)."""
    fn, chunk = args
    with single_threaded_blas():
        return [fn(item) for item in chunk]


_run_chunk = run_chunk  # the name older callers and tests use


def run_task(fn: Callable[[S, P], R], shared: S, own: P) -> R:
    """``fn(shared, own)`` with BLAS single-threaded (the body of a ``map_tasks`` task)."""
    with single_threaded_blas():
        return fn(shared, own)


def batches(n_items: int, n_workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of the batches ``map`` sends: ``min(n_items, 4 * n_workers)`` near-equal batches
    (4 per worker, so a slow batch does not leave the other workers idle at the end). E.g. 37 items on 2
    workers -> 8 batches of 4 or 5 items."""
    n_chunks = max(1, min(n_items, n_workers * 4))
    bounds = [round(i * n_items / n_chunks) for i in range(n_chunks + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n_chunks)]


class SerialExecutor:
    """Runs in this process; the default for small fleets and in tests."""

    n_workers = 1

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        with single_threaded_blas():
            return [fn(item) for item in items]

    def map_tasks(
        self, fn: Callable[[S, P], R], tasks: Sequence[tuple[S, P]], progress: Progress | None = None
    ) -> list[R]:
        out: list[R] = []
        for i, (shared, own) in enumerate(tasks):
            out.append(run_task(fn, shared, own))
            if progress is not None:
                progress(i + 1, len(tasks))
        return out


class ProcessExecutor:
    """A local process pool of ``n_workers`` (forked: callers need no ``__main__`` guard).

    Forking is safe here because nothing in this process runs a thread pool while the pool starts: tasks run
    LightGBM single-threaded in the workers (``members.member_cv`` checks ``num_threads == 1``).
    """

    def __init__(self, n_workers: int) -> None:
        self.n_workers = max(1, n_workers)

    def _pool(self, n_tasks: int) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(max_workers=min(self.n_workers, n_tasks), mp_context=ctx)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) < 2 * self.n_workers:
            return SerialExecutor().map(fn, items)
        out: list[R] = []
        with self._pool(len(items)) as pool:
            for part in pool.map(run_chunk, [(fn, items[a:b]) for a, b in batches(len(items), self.n_workers)]):
                out.extend(part)
        return out

    def map_tasks(
        self, fn: Callable[[S, P], R], tasks: Sequence[tuple[S, P]], progress: Progress | None = None
    ) -> list[R]:
        if self.n_workers == 1 or len(tasks) < 2:
            return SerialExecutor().map_tasks(fn, tasks, progress)
        results: dict[int, R] = {}
        limit = 2 * self.n_workers
        with self._pool(len(tasks)) as pool:
            running: dict[Future[R], int] = {}
            nxt = 0
            while nxt < len(tasks) or running:
                while nxt < len(tasks) and len(running) < limit:
                    shared, own = tasks[nxt]
                    running[pool.submit(run_task, fn, shared, own)] = nxt
                    nxt += 1
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[running.pop(fut)] = fut.result()
                    if progress is not None:
                        progress(len(results), len(tasks))
        return [results[i] for i in range(len(tasks))]


class Lent:
    """``executor`` lent to the models a service fits (module docstring): same ``map``/``map_tasks``; pickled, it is a
    ``SerialExecutor``, so an artefact never names (or starts) the service's cluster when loaded elsewhere."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    @property
    def n_workers(self) -> int:
        return workers_of(self.executor)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return self.executor.map(fn, items)

    def map_tasks(
        self, fn: Callable[[S, P], R], tasks: Sequence[tuple[S, P]], progress: Progress | None = None
    ) -> list[R]:
        return self.executor.map_tasks(fn, tasks, progress)

    def __reduce__(self) -> tuple[type[SerialExecutor], tuple[()]]:
        return (SerialExecutor, ())


def make_executor(n_jobs: int | None) -> Executor:
    """``1`` -> serial; ``None``/``-1`` -> one worker per core; ``n`` -> ``n`` workers."""
    if n_jobs is None or n_jobs < 0:
        n_jobs = os.cpu_count() or 1
    return SerialExecutor() if n_jobs == 1 else ProcessExecutor(n_jobs)


def workers_of(executor: Executor) -> int:
    """How many tasks ``executor`` runs side by side (1 when it does not say)."""
    return max(1, int(getattr(executor, "n_workers", 1) or 1))
