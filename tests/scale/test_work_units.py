"""The fleet-scale work units (``forecaster.forecasting.members``, "Fleet scale") and the executor calls under them:
chunks round-trip the history, anchors follow their worked example, ``map_tasks`` keeps order on every local
executor, and chunking changes no forecast of the per-series members."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from fleet_support import FAST_LGBM
from fleet_support import series as synthetic_series

from forecaster.forecasting.chunks import Chunk, _phase1b, chunks_of, level_anchors
from forecaster.forecasting.executor import ProcessExecutor, SerialExecutor, batches, make_executor
from forecaster.forecasting.history import prepare_history
from forecaster.forecasting.members import EngineConfig, member_cv
from forecaster.models.lgbm import sample_series


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    parts = [synthetic_series(4, f"s{i}", seed=i, level=50.0 + 10 * i) for i in range(5)]
    return prepare_history(pd.concat(parts, ignore_index=True), "5min")[0]


def _mul(shared: list[int], k: int) -> list[int]:
    return [x * k for x in shared]


@pytest.mark.parametrize("executor", [SerialExecutor(), ProcessExecutor(2)], ids=["serial", "process"])
def test_map_tasks_keeps_order_and_reports_progress(executor: object) -> None:
    a, b = [1, 2], [3]
    seen: list[tuple[int, int]] = []
    out = executor.map_tasks(_mul, [(a, 2), (b, 3), (a, 5)], lambda i, n: seen.append((i, n)))  # type: ignore[attr-defined]
    assert out == [[2, 4], [9], [5, 10]]
    assert [n for _, n in seen] == [3, 3, 3] and seen[-1][0] == 3


def test_batches_worked_example() -> None:
    """37 items on 2 workers: 8 batches of 4 or 5 items covering every item once, in order."""
    parts = batches(37, 2)
    assert len(parts) == 8 and parts[0][0] == 0 and parts[-1][1] == 37
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(parts))
    assert {b - a for a, b in parts} == {4, 5}
    assert batches(3, 2) == [(0, 1), (1, 2), (2, 3)]


def test_make_executor_kinds() -> None:
    assert isinstance(make_executor(1), SerialExecutor)
    assert isinstance(make_executor(2), ProcessExecutor)


def test_chunk_round_trips_the_history(history: pd.DataFrame) -> None:
    chunk = Chunk.of(history)
    back = chunk.frame()
    assert list(chunk.ids) == [f"s{i}" for i in range(5)] and chunk.counts.sum() == len(history)
    pd.testing.assert_frame_equal(back, history[back.columns].reset_index(drop=True), check_dtype=False)


def test_chunks_of_splits_whole_series_in_order(history: pd.DataFrame) -> None:
    chunks = chunks_of(history, 2)
    assert [list(c.ids) for c in chunks] == [["s0", "s1"], ["s2", "s3"], ["s4"]]
    assert sum(int(c.counts.sum()) for c in chunks) == len(history)
    assert len(chunks_of(history, 500)) == 1


def test_level_anchors_worked_example() -> None:
    """7 daily cutoffs -> one anchor; 21 daily cutoffs -> days 0, 7 and 14; unsorted input is sorted."""
    t = pd.Timestamp("2024-03-01T00:00Z")
    days = [t + pd.Timedelta(days=d) for d in range(21)]
    assert level_anchors(days[:7]) == [t]
    assert level_anchors(list(reversed(days))) == [days[0], days[7], days[14]]
    assert level_anchors([]) == []


def test_sample_series_is_all_up_to_the_cap_then_a_seeded_ordered_draw() -> None:
    ids = [f"x{i}" for i in range(10)]
    assert sample_series(ids, 10, seed=0) == ids
    drawn = sample_series(ids, 4, seed=3)
    assert len(drawn) == 4 and drawn == sorted(drawn, key=ids.index) and drawn == sample_series(ids, 4, seed=3)


def test_chunking_changes_no_forecast_without_events(history: pd.DataFrame) -> None:
    """Seasonal and lgbm are per series / global: 1, 2 or 5 series per chunk give the same backtest rows."""
    cuts = [history["ds"].max() - pd.Timedelta(hours=h) for h in (30, 6)]
    members = ("seasonal", "lgbm")
    runs = [
        member_cv(EngineConfig("5min", (80, 95), 12, members, {"lgbm": FAST_LGBM}, chunk_series=n), history, cuts, 12)
        for n in (1, 2, 5)
    ]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(other, runs[0])
    assert runs[0]["unique_id"].nunique() == 5
    assert np.isfinite(runs[0]["lgbm"]).all()


def test_phase1b_plan_worked_example() -> None:
    """Anchors c0 and c2; c0's probe gave (40 rounds, bands), c2's failed: c0 and c1 train with c0's rounds, c2 keeps
    its error (not retrained), c3 and the final model (after c3) train with a hold-out of their own (None)."""
    c0, c1, c2, c3, end = (pd.Timestamp("2024-03-10T00:00Z") + pd.Timedelta(days=d) for d in (0, 1, 7, 8, 9))
    bands = np.ones((3, 2))
    at, given = _phase1b([c0, c1, c2, c3], [c0, c2], {c0: (40, bands), c2: "fit failed: boom"}, end)
    assert at == [c0, c1, c3, end]
    assert [g if g is None else g[0] for g in given] == [40, 40, None, None]
    at, given = _phase1b([c0, c1], [c0], {c0: None}, None)  # an anchor without a model: every cutoff on its own
    assert at == [c0, c1] and given == [None, None]
    at, given = _phase1b([c0, c1], [c0], {c0: (40, bands)}, end)  # the final model: its own hold-out, always
    assert at == [c0, c1, end] and [g if g is None else g[0] for g in given] == [40, 40, None]


def test_fit_trains_one_hold_out_then_one_model_per_cutoff_and_the_final(
    history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Forecaster.fit`` with its calibration windows (2 of the 3 asked for fit in 4 days: one anchor): the anchor's
    hold-out training, then one training per window with the anchor's rounds, and the final model with a hold-out of
    its own (a hold-out training and a refit at its best round), 5 in all (before issue 21: 6, a hold-out and a refit
    at the anchor and for the final model); the fitted lgbm member is the phase-1b one given the whole fleet's
    history."""
    import lightgbm as lgb

    from forecaster.forecasting.forecaster import Forecaster

    rounds: list[int] = []
    real = lgb.train

    def spy(params: dict, train_set: lgb.Dataset, num_boost_round: int = 100, **kw: object) -> lgb.Booster:
        rounds.append(num_boost_round)
        return real(params, train_set, num_boost_round, **kw)

    monkeypatch.setattr(lgb, "train", spy)
    fc = Forecaster("5min", (80, 95), 12, n_windows=3, min_windows=1, member_params={"lgbm": FAST_LGBM}, n_jobs=1)
    fc.fit(history)
    member = fc.state.members.fitted["lgbm"]
    assert fc.state.cv_windows == 2 and len(rounds) == 1 + 2 + 2
    assert rounds[0] == FAST_LGBM["num_rounds"] and rounds[3] == FAST_LGBM["num_rounds"]  # the two hold-outs
    assert rounds[-1] == member.best_iteration_  # type: ignore[attr-defined]  # the final model's own best round
    assert sorted(member.panel_.ids) == sorted(history["unique_id"].unique())  # type: ignore[attr-defined]
