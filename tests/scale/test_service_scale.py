"""The service at fleet scale (issue 21): the executor chosen by the settings, refits in shards, history read in
batched range queries with each workload's failure its own. Fakes at the ports (``forecaster.testing``) and tiny
models; the Dask equality test runs the real engine on a 2-worker ``LocalCluster``."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pandas as pd
import pytest
from svc_fleet import NOW, BatchingSource, forecasts, make_service

from forecaster.contracts.errors import InputError
from forecaster.forecasting.executor import Lent, ProcessExecutor, SerialExecutor
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.executor import dask_executor
from forecaster.runtime.service.service import build_service
from forecaster.runtime.service.shards import is_champion_key, is_part, members, part_key, split
from forecaster.runtime.settings import ServiceSettings
from forecaster.testing.metrics import FakeMetricsSource


# -- settings -------------------------------------------------------------------------------------------------------
def test_settings_read_the_executor_shards_and_batches_from_the_environment() -> None:
    st = ServiceSettings.from_env({"FORECASTER_DASK_ADDRESS": "tcp://dask-scheduler.forecaster:8786",
                                   "FORECASTER_SHARD_SIZE": "250", "FORECASTER_SHARD_CONCURRENCY": "3",
                                   "FORECASTER_FETCH_BATCH": "50", "FORECASTER_FETCH_CONCURRENCY": "8"})
    assert (st.dask_address, st.dask_workers, st.shard_size, st.shard_concurrency, st.fetch_batch,
            st.fetch_concurrency) == ("tcp://dask-scheduler.forecaster:8786", 0, 250, 3, 50, 8)
    local = ServiceSettings.from_env({"FORECASTER_DASK_WORKERS": "2", "FORECASTER_DASK_ADDRESS": ""})
    assert (local.dask_address, local.dask_workers) == (None, 2)
    default = ServiceSettings.from_env({})
    assert (default.dask_address, default.dask_workers, default.shard_size, default.fetch_batch) == (None, 0, 500, 100)


@pytest.mark.parametrize(("env", "names"), [
    ({"FORECASTER_DASK_ADDRESS": "tcp://s:8786", "FORECASTER_DASK_WORKERS": "2"}, "dask_address/dask_workers"),
    ({"FORECASTER_DASK_ADDRESS": "dask-scheduler"}, "dask_address"),
    ({"FORECASTER_DASK_WORKERS": "-1"}, "dask_workers"),
    ({"FORECASTER_SHARD_SIZE": "0"}, "shard_size"),
    ({"FORECASTER_FETCH_BATCH": "many"}, "FORECASTER_FETCH_BATCH"),
], ids=["both", "no-scheme", "negative", "zero-shard", "not-a-number"])
def test_bad_settings_name_the_field(env: dict[str, str], names: str) -> None:
    with pytest.raises(InputError, match=names):
        ServiceSettings.from_env(env)


def test_the_executor_follows_the_settings_and_is_lent_not_saved() -> None:
    assert dask_executor(None, 0) is None
    remote = dask_executor("tcp://127.0.0.1:1", 0)  # not connected until its first fit
    assert remote is not None and type(remote).__name__ == "DaskExecutor" and remote.address == "tcp://127.0.0.1:1"
    local = dask_executor(None, 3)
    assert local is not None and local.n_workers == 3  # type: ignore[attr-defined]
    with pytest.raises(InputError):
        dask_executor("tcp://127.0.0.1:1", 2)
    lent = Lent(ProcessExecutor(2))
    assert lent.n_workers == 2 and lent.map(abs, [-1, 2, -3]) == [1, 2, 3]
    assert isinstance(pickle.loads(pickle.dumps(lent)), SerialExecutor)  # an artefact never holds the cluster


# -- shards ---------------------------------------------------------------------------------------------------------
def test_split_worked_example() -> None:
    ids = [f"w{i:04d}" for i in range(1201)]
    parts = split("freq/5min", reversed(ids), 500)
    assert [(k, len(v)) for k, v in parts] == [("freq/5min~part-0", 500), ("freq/5min~part-1", 500),
                                               ("freq/5min~part-2", 201)]
    assert parts[1][1][0] == "w0500" and sum(len(v) for _, v in parts) == 1201
    assert split("freq/5min", ["b", "a"], 500) == [("freq/5min", ["a", "b"])]  # small group: one model, as before
    assert is_part(part_key("freq/5min", 2)) and not is_part("freq/5min~part-2~ens-x") and not is_part("freq/5min")
    assert is_champion_key("freq/5min") and not is_champion_key("freq/5min~new-1234")
    assert members("freq/5min", "freq/5min~part-2", ids, 500) == set(ids[1000:])


def test_a_refit_fits_one_model_per_shard_and_the_refresh_serves_every_workload(tmp_path: Path) -> None:
    service = make_service(tmp_path, 5, shard_size=2, shard_concurrency=2)
    saved = service.refit()
    assert len(saved) == math.ceil(5 / 2) == len(set(saved))  # one artefact per shard
    service.refresh()
    assert set(service.serving.values()) == {part_key("freq/5min", i) for i in range(3)}
    assert {w for w, k in service.serving.items() if k == part_key("freq/5min", 2)} == {"w04"}
    assert set(forecasts(service)) == set(service.registry.ids)
    assert not service.refit_due()  # the parts together are the group's model


# -- batched fetching -----------------------------------------------------------------------------------------------
def test_refresh_reads_n_workloads_in_ceil_n_over_batch_queries(tmp_path: Path) -> None:
    service = make_service(tmp_path, 7, fetch_batch=3)
    source = service.source
    assert isinstance(source, BatchingSource)
    service.refit()
    assert len(source.batch_calls) == math.ceil(7 / 3) and source.calls == []  # no one-by-one query
    source.batch_calls.clear()
    service.refresh()
    assert [len(b) for b in source.batch_calls] == [3, 3, 1]
    assert set(forecasts(service)) == set(service.registry.ids)


def test_batched_and_one_by_one_reading_give_the_same_forecasts(tmp_path: Path) -> None:
    batched = make_service(tmp_path / "b", 4, fetch_batch=3)
    alone = make_service(tmp_path / "a", 4, source=FakeMetricsSource())  # no query_batches: one query each
    for service in (batched, alone):
        service.refit()
        service.refresh()
    assert len(alone.source.calls) >= 8  # type: ignore[attr-defined]
    for wid, frame in forecasts(batched).items():
        pd.testing.assert_frame_equal(frame, forecasts(alone)[wid])


def test_one_bad_workload_fails_alone_and_named(tmp_path: Path) -> None:
    service = make_service(tmp_path, 5, fetch_batch=5)
    source = service.source
    assert isinstance(source, BatchingSource)
    service.refit()
    source.bad.add("q3")  # its query is rejected: the batch's union query fails with it
    with pytest.raises(WorkloadError) as failed:
        service.refresh()
    assert set(failed.value.errors) == {"w03"} and "rejected the query 'q3'" in failed.value.errors["w03"]
    assert set(failed.value.results) == {"w00", "w01", "w02", "w04"}  # the rest of its batch was read and forecast
    assert [q for q, *_ in source.calls] == ["q0", "q1", "q2", "q3", "q4"]  # the failed batch, read one by one


def test_a_restarted_service_restores_every_shard_without_fitting(tmp_path: Path) -> None:
    first = make_service(tmp_path, 5, shard_size=2, rollout=True)
    first.refit()
    first.refresh()
    parts = set(first.serving.values())
    versions = {k: first.provider.model(k).version for k in parts}  # type: ignore[union-attr]
    again = build_service(first.settings, store=first.store, source=first.source, registry=first.registry,
                          clock=first.clock)
    again.refresh(NOW + pd.Timedelta("5min"))
    assert again.serving == first.serving  # each workload on its part
    assert {k: again.provider.model(k).version for k in set(again.serving.values())} == {  # type: ignore[union-attr]
        k: versions[k] for k in parts}  # the stored champions, nothing refitted
    assert not again.refit_due(NOW)  # (NOW + 5 min is past midnight: the next daily slot, due by design)
