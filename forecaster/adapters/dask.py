"""``DaskExecutor``: the executor interface (``forecaster.forecasting.executor``) on a Dask cluster.

    with DaskExecutor("tcp://dask-scheduler.forecaster:8786") as ex:        # a running scheduler
        Forecaster(executor=ex).fit(history)
    with DaskExecutor(n_workers=2) as ex:                                    # an in-process LocalCluster
        ...

``map(fn, items)`` sends items in batches (``executor.batches``: 4 per worker). ``map_tasks(fn, tasks)`` runs one
Dask task per ``(shared, own)`` pair: each distinct ``shared`` object (a chunk of series' history) is sent once, as
a task of its own whose result the pair tasks take (so a worker that dies with it is recomputed elsewhere, which
``client.scatter`` data would not be), when its first pair is submitted, and released after its last; at most
``2 * n_workers`` tasks are in flight, so a worker holds a couple of chunks, never the fleet
(``forecaster.forecasting.members`` builds the chunks). Nothing is forked: a task gets only its arguments.

Failures: a task that raises raises here (fits are deterministic, so a retry would fail the same way); a worker
that dies mid-task (killed, out of memory) makes the scheduler run its tasks again on another worker, up to
``distributed.scheduler.allowed-failures`` (default 3) deaths per task, then ``KilledWorker`` is raised.

Pickling a ``DaskExecutor`` (e.g. inside a saved ``Forecaster``) keeps only its address and worker count; the
copy connects again (or starts a new ``LocalCluster``) on first use.

An adapter: imports ``dask.distributed``; pure code only sees the ``Executor`` protocol.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from dask.distributed import Client, Future, LocalCluster, wait

from forecaster.forecasting.executor import Progress, batches, run_chunk, run_task

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
P = TypeVar("P")

ENV_ADDRESS = "FORECASTER_DASK_ADDRESS"
"""The setting naming the scheduler (``tcp://host:8786``; k8s/dask/README.md); empty: no Dask."""


def _peak_rss_mb() -> float:
    """This worker process's peak resident memory (``VmHWM``) in MiB; 0 off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class DaskExecutor:
    """``Executor`` on ``dask.distributed``: a scheduler at ``address``, else a ``LocalCluster``.

    address             ``tcp://host:port`` of a running scheduler (the ``FORECASTER_DASK_ADDRESS`` setting).
    n_workers           LocalCluster worker processes when no address is given (default 2); with an address,
                        read from the scheduler (tasks in flight = twice the workers).
    threads_per_worker  LocalCluster threads per worker (default 1: the fits are single-threaded, and
                        statsmodels/pandas hold the GIL).
    client              an existing ``Client`` to use instead (not closed by ``close``).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        client: Client | None = None,
    ) -> None:
        self.address = address or None
        self._n_workers = max(1, n_workers)
        self.threads_per_worker = threads_per_worker
        self._client: Client | None = client
        self._cluster: LocalCluster | None = None
        self._owns_client = client is None
        self._connecting = threading.Lock()  # several threads (a service's shards) may make the first call at once

    # -- connection --------------------------------------------------------------------------------------
    @property
    def client(self) -> Client:
        """The Dask client, connected (or the LocalCluster started) on first use."""
        with self._connecting:
            if self._client is None:
                if self.address:
                    self._client = Client(self.address)
                else:
                    self._cluster = LocalCluster(
                        n_workers=self._n_workers,
                        threads_per_worker=self.threads_per_worker,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                    self._client = Client(self._cluster)
            return self._client

    @property
    def n_workers(self) -> int:
        """Workers now connected to the scheduler (at least 1); the LocalCluster size before it starts."""
        if self._client is None and not self.address:
            return self._n_workers
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def close(self) -> None:
        """Close the client and the LocalCluster this executor started (a given client stays open)."""
        if self._client is not None and self._owns_client:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client, self._cluster = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"address": self.address, "n_workers": self._n_workers, "threads": self.threads_per_worker}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["address"], n_workers=state["n_workers"], threads_per_worker=state["threads"])  # type: ignore[misc]

    # -- the executor interface --------------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        parts = [(None, (fn, items[a:b])) for a, b in batches(len(items), self.n_workers)]
        out: list[R] = []
        for part in self.map_tasks(_batch, parts):
            out.extend(part)
        return out

    def map_tasks(
        self, fn: Callable[[S, P], R], tasks: Sequence[tuple[S, P]], progress: Progress | None = None
    ) -> list[R]:
        client = self.client
        limit = 2 * self.n_workers
        last_use: dict[int, int] = {}
        for i, (shared, _) in enumerate(tasks):
            last_use[id(shared)] = i
        scattered: dict[int, Future] = {}
        running: dict[Future, int] = {}
        results: dict[int, R] = {}
        nxt = 0
        while nxt < len(tasks) or running:
            while nxt < len(tasks) and len(running) < limit:
                shared, own = tasks[nxt]
                arg: Any = shared
                if shared is not None:
                    if id(shared) not in scattered:
                        # a task holding the chunk, not client.scatter: scattered data dies with its worker,
                        # while a task's result is recomputed from its spec on another worker
                        scattered[id(shared)] = client.submit(_keep, shared, pure=False)
                    arg = scattered[id(shared)]
                key = f"{getattr(fn, '__name__', 'task').lstrip('_')}-{uuid.uuid4().hex}"  # named after the work
                running[client.submit(run_task, fn, arg, own, key=key)] = nxt
                nxt += 1
            done, _ = wait(list(running), return_when="FIRST_COMPLETED")
            for fut in done:
                i = running.pop(fut)
                results[i] = fut.result()
                fut.release()
                if progress is not None:
                    progress(len(results), len(tasks))
            # a chunk whose tasks are all submitted and none still running is dropped from the cluster
            busy = {id(tasks[j][0]) for j in running.values()}
            for held in [k for k in scattered if last_use[k] < nxt and k not in busy]:
                scattered.pop(held).release()
        return [results[i] for i in range(len(tasks))]

    # -- measuring ---------------------------------------------------------------------------------------
    def worker_peak_rss_mb(self) -> dict[str, float]:
        """Peak resident memory of every worker process (``VmHWM``, MiB), by worker address."""
        return {str(k): float(v) for k, v in self.client.run(_peak_rss_mb).items()}


def _keep(value: T) -> T:
    return value


def _batch(_: None, args: tuple[Callable[[T], R], Sequence[T]]) -> list[R]:
    return run_chunk(args)
