"""A service refit through a real Dask ``LocalCluster`` (2 worker processes) gives the forecasts the local pool
gives (issue 21): same small fleet, same tiny model, same seed; the executor as ``build_service`` makes it from the
settings (``dask_workers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from svc_fleet import forecasts, make_service

from forecaster.forecasting.executor import ProcessExecutor
from forecaster.runtime.service.executor import dask_executor


@pytest.mark.slow
def test_a_service_refit_on_a_local_cluster_forecasts_as_the_local_pool(tmp_path: Path) -> None:
    executor = dask_executor(None, 2)
    assert executor is not None
    try:
        on_dask = make_service(tmp_path / "dask", 4, executor=executor, shard_size=2)
        assert on_dask.settings.shard_size == 2
        on_dask.refit()
        on_dask.refresh()
        assert executor.client.scheduler_info()["workers"]  # type: ignore[attr-defined]  # the cluster did run
    finally:
        on_dask.close()
    on_pool = make_service(tmp_path / "pool", 4, executor=ProcessExecutor(2), shard_size=2)
    on_pool.refit()
    on_pool.refresh()
    dask_frames, pool_frames = forecasts(on_dask), forecasts(on_pool)
    assert set(dask_frames) == set(pool_frames) == {"w00", "w01", "w02", "w03"}
    for wid, frame in dask_frames.items():
        other = pool_frames[wid]
        assert list(frame.columns) == list(other.columns)
        numeric = frame.select_dtypes("number").columns
        np.testing.assert_allclose(frame[numeric].to_numpy(), other[numeric].to_numpy(), rtol=1e-6, atol=1e-6)


def test_build_service_takes_the_executor_from_the_settings(tmp_path: Path) -> None:
    service = make_service(tmp_path, 1, dask_workers=2)
    assert type(service.executor).__name__ == "DaskExecutor"
    assert service.provider.options["executor"].executor is service.executor  # lent to the models it fits
    service.close()  # no cluster was started (nothing was fitted): closing is a no-op
    assert make_service(tmp_path, 1).executor is None
