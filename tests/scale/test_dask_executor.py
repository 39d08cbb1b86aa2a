"""``forecaster.adapters.dask.DaskExecutor`` on a real 2-worker ``LocalCluster`` (worker processes): the executor
calls keep order, the real engine gives the same forecasts as the local process pool for the same seed, and a
worker killed mid-fit is replaced and its tasks run again, so the fit completes with the same forecasts.

Small on purpose (3 series of 5 days, horizon 12, 3 windows, a tiny LightGBM): the cluster starts once per module.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.distributed")

from fleet_support import FAST_LGBM
from fleet_support import series as synthetic_series

from forecaster import Forecaster
from forecaster.adapters.dask import DaskExecutor
from forecaster.forecasting.executor import ProcessExecutor, SerialExecutor
from forecaster.forecasting.history import prepare_history
from forecaster.forecasting.members import EngineConfig, member_cv

pytestmark = pytest.mark.slow

SEED = 11


@pytest.fixture(scope="module")
def dask_ex() -> Iterator[DaskExecutor]:
    with DaskExecutor(n_workers=2) as ex:
        ex.client.wait_for_workers(2, timeout=120)
        yield ex


@pytest.fixture(scope="module")
def fleet() -> pd.DataFrame:
    parts = [synthetic_series(5, f"w{i}", seed=i, level=40.0 + 30 * i, noise=0.08) for i in range(3)]
    return pd.concat(parts, ignore_index=True)


def _forecaster(executor: Any) -> Forecaster:
    return Forecaster(horizon=12, n_windows=3, seed=SEED, member_params={"lgbm": FAST_LGBM}, executor=executor)


@pytest.fixture(scope="module")
def pool_forecast(fleet: pd.DataFrame) -> pd.DataFrame:
    return _forecaster(ProcessExecutor(2)).fit(fleet).predict()


def _square(x: int) -> int:
    return x * x


def _scaled(shared: np.ndarray, k: int) -> float:
    return float(shared.sum() * k)


def test_map_and_map_tasks_keep_order(dask_ex: DaskExecutor) -> None:
    assert dask_ex.map(_square, list(range(23))) == [i * i for i in range(23)]
    assert dask_ex.map(_square, []) == []
    a, b = np.arange(4.0), np.ones(3)  # two chunks, each shared by several tasks, scattered once
    seen: list[tuple[int, int]] = []
    out = dask_ex.map_tasks(_scaled, [(a, 1), (a, 2), (b, 1), (b, 5), (a, 3)], lambda i, n: seen.append((i, n)))
    assert out == [6.0, 12.0, 3.0, 15.0, 18.0]
    assert seen[-1] == (5, 5) and len(seen) == 5
    assert dask_ex.n_workers == 2


def test_pickled_executor_keeps_only_its_settings() -> None:
    ex = DaskExecutor("tcp://127.0.0.1:1", n_workers=3, threads_per_worker=2)
    copy = pickle.loads(pickle.dumps(ex))
    assert (copy.address, copy._n_workers, copy.threads_per_worker, copy._client) == ("tcp://127.0.0.1:1", 3, 2, None)


def test_engine_on_localcluster_matches_the_process_pool(
    dask_ex: DaskExecutor, fleet: pd.DataFrame, pool_forecast: pd.DataFrame
) -> None:
    on_dask = _forecaster(dask_ex).fit(fleet).predict()
    pd.testing.assert_frame_equal(on_dask, pool_forecast, check_exact=False, rtol=1e-9, atol=1e-9)


def test_chunked_backtest_on_localcluster_matches_serial(dask_ex: DaskExecutor, fleet: pd.DataFrame) -> None:
    """Two chunks (2 + 1 series) x 3 cutoffs: the same rows in the same order on any executor."""
    history = prepare_history(fleet, "5min")[0]
    cuts = [history["ds"].max() - pd.Timedelta(hours=h) for h in (25, 13, 1)]
    kw: dict[str, Any] = {"member_params": {"lgbm": FAST_LGBM}, "seed": SEED, "chunk_series": 2}
    members = ("seasonal", "events", "lgbm")
    serial = member_cv(EngineConfig("5min", (80, 95), 12, members, executor=SerialExecutor(), **kw), history, cuts, 12)
    dask = member_cv(EngineConfig("5min", (80, 95), 12, members, executor=dask_ex, **kw), history, cuts, 12)
    assert serial["unique_id"].nunique() == 3 and serial["cutoff"].nunique() == 3
    pd.testing.assert_frame_equal(dask, serial, check_exact=False, rtol=1e-9, atol=1e-9)


def test_worker_killed_mid_fit_is_replaced_and_the_fit_completes(
    dask_ex: DaskExecutor, fleet: pd.DataFrame, pool_forecast: pd.DataFrame
) -> None:
    client = dask_ex.client
    result: dict[str, Any] = {}

    def fit() -> None:
        try:
            result["pred"] = _forecaster(dask_ex).fit(fleet).predict()
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=fit)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if any(not str(k).startswith("keep-") for k in keys)]
        if busy:
            pids = client.run(os.getpid, workers=busy[:1])
            killed = next(iter(pids.values()))
            os.kill(killed, signal.SIGKILL)  # the worker dies in the middle of its fit
        else:
            time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None, "no fit task was seen running on a worker"
    assert "error" not in result, result.get("error")
    pd.testing.assert_frame_equal(result["pred"], pool_forecast, check_exact=False, rtol=1e-9, atol=1e-9)
    client.wait_for_workers(2, timeout=120)  # the nanny started a new worker in its place
    assert killed not in client.run(os.getpid).values()
