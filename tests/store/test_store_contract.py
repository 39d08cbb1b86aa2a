"""The ``ports.Store`` contract, run against a SQLite file, a real PostgreSQL server and ``InMemoryStore``
(the ``store`` fixture): round trips, UTC timestamps, idempotency, ordering, pagination, atomic failed writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.contracts.ports import (
    AccuracyRecord,
    ArtefactMeta,
    DecisionRecord,
    EventRecord,
    ForecastRun,
    Store,
    Workload,
)

T0 = pd.Timestamp("2024-03-04T00:00Z")
COLUMNS = ["ensemble", "ensemble-lo-80", "ensemble-hi-80", "seasonal", "lgbm"]


def frame(workload: str = "shop/web", start: pd.Timestamp = T0, n: int = 12, level: float = 100.0) -> pd.DataFrame:
    ds = pd.date_range(start, periods=n, freq="5min")
    base = level + np.arange(n, dtype=float)
    return pd.DataFrame({
        "unique_id": workload, "ds": ds, "ensemble": base, "ensemble-lo-80": base - 10, "ensemble-hi-80": base + 10,
        "seasonal": base - 1, "lgbm": base + 0.123456789,
    })


def run(run_id: str, issued: pd.Timestamp, workload: str = "shop/web", n: int = 12, level: float = 100.0,
        mae: float | None = 4.5) -> ForecastRun:
    return ForecastRun(run_id, workload, issued, "v1", (80,), frame(workload, issued, n, level), mae)


def same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert str(got["ds"].dt.tz) == "UTC"
    assert (got["ds"].to_numpy() == want["ds"].dt.tz_convert("UTC").dt.as_unit("ns").to_numpy()).all()
    assert got["unique_id"].astype(str).tolist() == want["unique_id"].astype(str).tolist()
    for col in want.columns[2:]:
        np.testing.assert_array_equal(got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), err_msg=col)


# -- workloads ------------------------------------------------------------------------------------------------------
def test_store_workload_upsert_keeps_created_at_and_updates_fields(store: Store) -> None:
    created = pd.Timestamp("2024-01-01T12:00:00.123456Z")
    store.upsert_workload(Workload("shop/web", "shop", query="rate(x[5m])", labels={"team": "a"}, created_at=created))
    store.upsert_workload(Workload("shop/web", "shop", query="rate(y[5m])", labels={"team": "b"}))
    got = store.get_workload("shop/web")
    assert got is not None
    assert (got.query, got.labels, got.namespace, got.kind, got.freq) == ("rate(y[5m])", {"team": "b"}, "shop",
                                                                          "demand", "5min")
    assert got.created_at == created and str(got.created_at.tz) == "UTC"
    assert store.get_workload("nope") is None


def test_store_workloads_are_paged_by_id_with_totals(store: Store) -> None:
    for name in ["c", "a", "e", "b", "d"]:
        store.upsert_workload(Workload(name))
    first = store.list_workloads(limit=2)
    assert [w.id for w in first.items] == ["a", "b"] and first.total == 5 and (first.limit, first.offset) == (2, 0)
    assert [w.id for w in store.list_workloads(limit=2, offset=4).items] == ["e"]
    past = store.list_workloads(limit=10, offset=9)
    assert past.items == [] and past.total == 5


@pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (10, -1)], ids=["negative-limit", "negative-offset"])
def test_store_bad_pagination_is_input_error(store: Store, limit: int, offset: int) -> None:
    with pytest.raises(InputError):
        store.list_decisions(limit=limit, offset=offset)


# -- forecasts ------------------------------------------------------------------------------------------------------
def test_store_forecast_round_trip(store: Store) -> None:
    want = run("shop/web/1", T0)
    want.frame.loc[3, "lgbm"] = np.nan
    store.save_forecast(want)
    got = store.latest_forecast("shop/web")
    assert got is not None
    assert (got.id, got.workload_id, got.model_version, got.levels, got.backtest_mae) == (
        "shop/web/1", "shop/web", "v1", (80,), 4.5)
    assert got.issued_at == T0 and str(got.issued_at.tz) == "UTC"
    same_frame(got.frame, want.frame)
    assert np.isnan(got.frame.loc[3, "lgbm"])
    assert store.latest_forecast("other") is None


def test_store_save_forecast_registers_an_unknown_workload(store: Store) -> None:
    store.save_forecast(run("new/1", T0, workload="new"))
    assert store.get_workload("new") is not None


def test_store_latest_forecast_is_the_newest_issue_time_not_the_last_saved(store: Store) -> None:
    store.save_forecast(run("r2", T0 + pd.Timedelta("10min"), level=2.0))
    store.save_forecast(run("r1", T0, level=1.0))
    store.save_forecast(run("other", T0 + pd.Timedelta("1h"), workload="other"))
    got = store.latest_forecast("shop/web")
    assert got is not None and got.id == "r2" and got.frame["ensemble"].iloc[0] == 2.0


def test_store_saving_a_run_id_again_replaces_it(store: Store) -> None:
    store.save_forecast(run("r1", T0, level=1.0, n=12))
    store.save_forecast(run("r1", T0, level=7.0, n=5))
    runs = store.forecasts_issued_between("shop/web", T0 - pd.Timedelta("1D"), T0 + pd.Timedelta("1D"))
    assert [r.id for r in runs] == ["r1"]
    assert len(runs[0].frame) == 5 and runs[0].frame["ensemble"].iloc[0] == 7.0


def test_store_forecasts_issued_between_is_inclusive_and_ordered(store: Store) -> None:
    for i in range(5):
        store.save_forecast(run(f"r{i}", T0 + pd.Timedelta(minutes=5 * (4 - i))))
    store.save_forecast(run("x", T0, workload="other"))
    got = store.forecasts_issued_between("shop/web", T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("15min"))
    assert [r.id for r in got] == ["r3", "r2", "r1"]
    assert all(len(r.frame) == 12 for r in got)


def test_store_timestamps_in_other_zones_are_stored_as_utc(store: Store) -> None:
    berlin = T0.tz_convert("Europe/Berlin")
    store.save_forecast(ForecastRun("r", "w", berlin, "v1", (80,), frame("w", berlin), None))
    got = store.latest_forecast("w")
    assert got is not None and got.issued_at == T0 and str(got.issued_at.tz) == "UTC"
    assert got.frame["ds"].iloc[0] == T0 and got.backtest_mae is None


@pytest.mark.parametrize(
    ("column", "value"),
    [("ensemble", np.inf), ("seasonal", "high"), ("ds", pd.NaT)],
    ids=["infinite", "not-a-number", "missing-ds"],
)
def test_store_bad_forecast_value_is_input_error_and_keeps_previous(store: Store, column: str, value: object) -> None:
    store.save_forecast(run("good", T0))
    bad = run("bad", T0 + pd.Timedelta("5min"), n=450)
    bad.frame[column] = bad.frame[column].astype(object)
    bad.frame.loc[430, column] = value
    with pytest.raises(InputError, match="row 430"):
        store.save_forecast(bad)
    latest = store.latest_forecast("shop/web")
    assert latest is not None and latest.id == "good" and len(latest.frame) == 12
    assert [r.id for r in store.forecasts_issued_between("shop/web", T0, T0 + pd.Timedelta("1D"))] == ["good"]


def test_store_naive_timestamps_and_foreign_rows_are_refused(store: Store) -> None:
    naive = run("r", T0)
    naive.frame["ds"] = naive.frame["ds"].dt.tz_localize(None)
    with pytest.raises(InputError, match="tz-aware"):
        store.save_forecast(naive)
    with pytest.raises(InputError, match="tz-aware"):
        store.save_forecast(ForecastRun("r", "shop/web", T0.tz_localize(None), "v1", (80,), frame(), None))
    with pytest.raises(InputError, match="unique_id"):
        store.save_forecast(ForecastRun("r", "shop/api", T0, "v1", (80,), frame("shop/web"), None))
    assert store.latest_forecast("shop/web") is None


@pytest.mark.parametrize("version", ["ens-5min-x", "ens-5min-x+fallback-seasonal"], ids=["model", "fallback"])
def test_store_refuses_a_forecast_issued_before_its_models_training_end(store: Store, version: str) -> None:
    trained_to = T0 + pd.Timedelta("6D")
    store.save_artefact(ArtefactMeta("ens-5min-x", trained_to, "ens-5min-x", "/m/x.zip", ("shop/web",),
                                     T0 - pd.Timedelta("7D"), trained_to))
    store.save_forecast(ForecastRun("kept", "shop/web", trained_to, version, (80,), frame(start=trained_to), None))
    early = ForecastRun("early", "shop/web", T0, version, (80,), frame(start=trained_to), None)
    with pytest.raises(InputError) as refused:
        store.save_forecast(early)
    message = str(refused.value)
    assert "2024-03-04T00:00:00Z" in message and "2024-03-10T00:00:00Z" in message and "ens-5min-x" in message
    assert "nothing written" in message
    latest = store.latest_forecast("shop/web")
    assert latest is not None and latest.id == "kept"
    assert store.forecasts_issued_between("shop/web", T0 - pd.Timedelta("1D"), T0 + pd.Timedelta("1D")) == []
    # issued at (or after) the training end, or by a model the store holds no artefact of: accepted
    store.save_forecast(ForecastRun("later", "shop/web", trained_to + pd.Timedelta("5min"), version, (80,),
                                    frame(start=trained_to), None))
    store.save_forecast(ForecastRun("other-model", "shop/web", T0, "v1", (80,), frame(), None))


def test_store_duplicate_forecast_timestamps_are_refused_and_keep_previous(store: Store) -> None:
    store.save_forecast(run("good", T0))
    bad = run("bad", T0 + pd.Timedelta("5min"), n=450)
    bad.frame.loc[440, "ds"] = bad.frame.loc[439, "ds"]
    with pytest.raises(InputError):
        store.save_forecast(bad)
    latest = store.latest_forecast("shop/web")
    assert latest is not None and latest.id == "good"


# -- actuals --------------------------------------------------------------------------------------------------------
def test_store_actuals_upsert_overwrites_and_ranges_are_inclusive(store: Store) -> None:
    ds = pd.date_range(T0, periods=10, freq="5min")
    store.save_actuals("w", pd.DataFrame({"ds": ds[:6], "y": 1.0}))
    store.save_actuals("w", pd.DataFrame({"ds": ds[4:][::-1], "y": np.arange(6, dtype=float)}))
    store.save_actuals("v", pd.DataFrame({"ds": ds, "y": 9.0}))
    got = store.actuals("w", ds[2], ds[8])
    assert list(got.columns) == ["ds", "y"] and str(got["ds"].dt.tz) == "UTC"
    assert got["ds"].tolist() == list(ds[2:9])
    assert got["y"].tolist() == [1.0, 1.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    empty = store.actuals("none", ds[0], ds[-1])
    assert len(empty) == 0 and list(empty.columns) == ["ds", "y"]


@pytest.mark.parametrize(
    "bad",
    [pd.DataFrame({"ds": [T0, T0 + pd.Timedelta("5min")], "y": [1.0, np.nan]}),
     pd.DataFrame({"ds": [T0, T0], "y": [1.0, 2.0]}),
     pd.DataFrame({"ds": [T0.tz_localize(None)], "y": [1.0]}),
     pd.DataFrame({"time": [T0], "y": [1.0]})],
    ids=["nan", "duplicate", "naive", "no-ds"],
)
def test_store_bad_actuals_write_nothing(store: Store, bad: pd.DataFrame) -> None:
    store.save_actuals("w", pd.DataFrame({"ds": [T0], "y": [3.0]}))
    with pytest.raises(InputError):
        store.save_actuals("w", bad)
    assert store.actuals("w", T0 - pd.Timedelta("1D"), T0 + pd.Timedelta("1D"))["y"].tolist() == [3.0]


# -- decisions ------------------------------------------------------------------------------------------------------
def decision(i: int, workload: str = "w", value: int = 3) -> DecisionRecord:
    return DecisionRecord(f"{workload}/replicas/{i}", workload, T0 + pd.Timedelta(minutes=i), "replicas", "Recommend",
                          False, {"min_replicas": np.int64(value)}, f"because {i}",
                          {"band": {"hi-80": np.float64(1.5), "lo-80": np.nan}, "rules": ("min", "cooldown")})


def test_store_decisions_are_idempotent_by_id(store: Store) -> None:
    assert store.record_decision(decision(1)) is True
    assert store.record_decision(decision(1, value=99)) is False
    page = store.list_decisions()
    assert page.total == 1
    got = page.items[0]
    assert got.value == {"min_replicas": 3} and got.time == T0 + pd.Timedelta("1min")
    assert got.details == {"band": {"hi-80": 1.5, "lo-80": None}, "rules": ["min", "cooldown"]}
    assert (got.kind, got.mode, got.applied, got.reason) == ("replicas", "Recommend", False, "because 1")


def test_store_decisions_list_newest_first_with_filters_and_totals(store: Store) -> None:
    for i in range(6):
        store.record_decision(decision(i, "a"))
        store.record_decision(decision(i, "b"))
    page = store.list_decisions(workload_id="a", limit=2, offset=1)
    assert [d.id for d in page.items] == ["a/replicas/4", "a/replicas/3"] and page.total == 6
    since = store.list_decisions(since=T0 + pd.Timedelta("4min"))
    assert since.total == 4 and [d.id for d in since.items] == ["b/replicas/5", "a/replicas/5", "b/replicas/4",
                                                                 "a/replicas/4"]


# -- events ---------------------------------------------------------------------------------------------------------
def test_store_upsert_event_says_created_and_keeps_first_created_at(store: Store) -> None:
    first = pd.Timestamp("2024-01-01T00:00Z")
    ev = EventRecord("sale-1", "Spring sale", "sale", T0, T0 + pd.Timedelta("1D"), ("shop/*",), 1.5, first)
    assert store.upsert_event(ev) is True
    assert store.upsert_event(EventRecord("sale-1", "Spring sale 2", "sale", T0, T0 + pd.Timedelta("2D"))) is False
    page = store.list_events()
    assert page.total == 1
    got = page.items[0]
    assert (got.name, got.end, got.scope, got.expected_uplift) == ("Spring sale 2", T0 + pd.Timedelta("2D"), (), None)
    assert got.created_at == first


def test_store_events_are_listed_by_start_and_validated(store: Store) -> None:
    for i in (3, 1, 2):
        store.upsert_event(EventRecord(f"e{i}", f"E{i}", "campaign", T0 + pd.Timedelta(days=i),
                                       T0 + pd.Timedelta(days=i, hours=1)))
    assert [e.id for e in store.list_events(limit=2).items] == ["e1", "e2"]
    with pytest.raises(InputError, match="kind"):
        store.upsert_event(EventRecord("x", "X", "party", T0, T0))
    with pytest.raises(InputError, match="not after start"):
        store.upsert_event(EventRecord("x", "X", "sale", T0, T0 - pd.Timedelta("1h")))
    with pytest.raises(InputError, match="not after start"):
        store.upsert_event(EventRecord("x", "X", "sale", T0, T0))
    assert store.list_events().total == 3


# -- accuracy and artefacts -----------------------------------------------------------------------------------------
def test_store_accuracy_records_are_listed_newest_first(store: Store) -> None:
    for i in range(3):
        store.record_accuracy(AccuracyRecord("w", T0 + pd.Timedelta(hours=i), T0, T0 + pd.Timedelta(hours=i), 12 * i,
                                             float(i) if i else float("nan"), {80: 0.8, 95: 0.9}, 2.0, i == 2))
    store.record_accuracy(AccuracyRecord("v", T0, T0, T0, 1, 1.0, {}, None, False))
    page = store.list_accuracy("w", limit=2)
    assert page.total == 3 and [r.n_points for r in page.items] == [24, 12]
    assert page.items[0].coverage == {80: 0.8, 95: 0.9} and page.items[0].drift is True
    oldest = store.list_accuracy("w", offset=2).items[0]
    assert np.isnan(oldest.mae) and oldest.backtest_mae == 2.0 and oldest.drift is False


def test_store_latest_artefact_is_the_newest_and_ids_replace(store: Store) -> None:
    assert store.latest_artefact() is None

    def meta(i: str, hours: int, path: str) -> ArtefactMeta:
        return ArtefactMeta(i, T0 + pd.Timedelta(hours=hours), f"v{i}", path, ("a", "b"), T0 - pd.Timedelta("7D"), T0,
                            {"lightgbm": "4.5"})

    store.save_artefact(meta("2", 2, "/m/2.zip"))
    store.save_artefact(meta("1", 1, "/m/1.zip"))
    got = store.latest_artefact()
    assert got is not None and got.id == "2" and got.workload_ids == ("a", "b")
    assert got.library_versions == {"lightgbm": "4.5"} and got.train_start == T0 - pd.Timedelta("7D")
    store.save_artefact(meta("1", 3, "/m/1b.zip"))
    got = store.latest_artefact()
    assert got is not None and (got.id, got.path) == ("1", "/m/1b.zip")


# -- retention ------------------------------------------------------------------------------------------------------
def test_store_prune_deletes_old_runs_actuals_and_accuracy_but_keeps_each_latest_run_and_the_audit_trail(
        store: Store) -> None:
    hour = pd.Timedelta("1h")
    for k in range(3):  # shop/web: runs at T0, T0+1h, T0+2h
        store.save_forecast(run(f"web@{k}", T0 + k * hour))
    store.save_forecast(run("cart@0", T0, workload="shop/cart"))  # old, but cart's only (latest) run
    store.save_actuals("shop/web", pd.DataFrame({"ds": pd.date_range(T0, periods=36, freq="5min"), "y": 1.0}))
    for k in range(3):
        store.record_accuracy(AccuracyRecord("shop/web", T0 + k * hour, T0, T0 + k * hour, 12, 1.0, {80: 0.8},
                                             2.0, False))
    store.record_decision(DecisionRecord("web/replicas/0", "shop/web", T0, "replicas", "Recommend", False,
                                         {"min_replicas": 3}, "why"))
    store.upsert_event(EventRecord("sale", "sale", "sale", T0, T0 + hour))

    deleted = store.prune(T0 + 2 * hour)

    assert deleted == {"forecasts": 2, "forecast_points": 24, "actuals": 24, "accuracy": 2}
    runs = store.forecasts_issued_between("shop/web", T0 - hour, T0 + 3 * hour)
    assert [r.id for r in runs] == ["web@2"]
    assert store.latest_forecast("shop/cart") is not None  # a workload's latest run survives any retention
    kept = store.actuals("shop/web", T0 - hour, T0 + 3 * hour)
    assert len(kept) == 12 and kept["ds"].min() == T0 + 2 * hour
    assert [a.evaluated_at for a in store.list_accuracy("shop/web").items] == [T0 + 2 * hour]
    assert store.list_decisions().total == 1 and store.list_events().total == 1
    assert store.prune(T0 + 2 * hour) == {"forecasts": 0, "forecast_points": 0, "actuals": 0, "accuracy": 0}
