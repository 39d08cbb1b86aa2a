"""The executor the service's and the controller's refits run on, chosen by configuration.

    executor = executor_for(settings)      # settings.dask_address / settings.dask_workers, else None

- ``dask_address`` (``FORECASTER_DASK_ADDRESS``, ``--dask-address``): a ``DaskExecutor`` connected to that scheduler
  (``k8s/dask``); the fits' work units (series chunks x backtest windows) run on its workers;
- ``dask_workers`` N > 0 (``FORECASTER_DASK_WORKERS``, ``--dask-workers``): a ``DaskExecutor`` on an in-process
  ``LocalCluster`` of N worker processes;
- neither: None, the models use their own ``n_jobs`` (``model_options``; default this process).

The Dask client connects (or the LocalCluster starts) on the first fit, not here. Models get it lent
(``forecaster.forecasting.executor.Lent``): a saved artefact holds a ``SerialExecutor``, never the cluster.

Not pure (may start processes, imports ``dask.distributed`` only when asked). Called by
``forecaster.runtime.service.service.build_service``, ``forecaster.cli.controller`` and ``forecaster.cli.serve``.
"""

from __future__ import annotations

from forecaster.contracts.errors import InputError
from forecaster.forecasting.executor import Executor


def dask_executor(address: str | None, workers: int) -> Executor | None:
    """A ``DaskExecutor`` at ``address``, or on a LocalCluster of ``workers`` processes, or None (module docstring)."""
    if address and workers:
        raise InputError("dask_address/dask_workers: give a scheduler address or a LocalCluster size, not both")
    if not address and workers <= 0:
        return None
    # imported here: dask (about 1 s to import) loads only when configured
    from forecaster.adapters.dask import DaskExecutor

    return DaskExecutor(address or None, n_workers=max(1, workers or 2))


def close_executor(executor: Executor | None) -> None:
    """Close ``executor`` when it holds a client or cluster (a ``DaskExecutor``); anything else is left as is."""
    close = getattr(executor, "close", None)
    if callable(close):
        close()
