"""The refit job: a new model with backtest-learned weights, its artefact file and metadata, swapped into the cache;
a workload whose history fails is left out and reported, the rest are refitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from svc_support import DEMO_NOW, MakeDemo, model_options

from forecaster.forecasting.forecaster import Forecaster
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.registry import Registry, WorkloadSpec


def test_svc_refit_saves_the_artefact_and_swaps_the_model(make_demo: MakeDemo, fast_lgbm: dict[str, Any]) -> None:
    # three daily calibration windows (each after two days of training): enough to learn the weights; without model
    # rollout (tests/rollout: with it, the refit is a challenger in shadow until it beats the champion)
    service = make_demo(copies=2, history_days=6, model_options={**model_options(fast_lgbm), "n_windows": 3},
                        rollout=False)
    service.refresh()
    before = service.provider.model("freq/5min")
    later = DEMO_NOW + pd.Timedelta("1D")
    service.source.now = later  # type: ignore[attr-defined]
    saved = service.refit()
    meta = service.store.latest_artefact()
    assert meta is not None and saved == [meta.id] and meta.model_version == meta.id
    assert meta.workload_ids == ("nasa/www", "nasa/www-2") and meta.train_end == pd.Timestamp("1995-07-10T12:00Z")
    assert meta.library_versions["pandas"] == pd.__version__
    assert Path(meta.path).is_file() and Path(meta.path).parent == service.settings.artefact_dir.resolve()
    after = service.provider.model("freq/5min")
    assert after is not None and after is not before and after.version == meta.id
    assert set(after.forecaster.weights_["source"]) == {"learned"}
    assert all(service.provider.backtest_mae("freq/5min", w) is not None for w in ("nasa/www", "nasa/www-2"))
    loaded = Forecaster.load(meta.path)
    assert sorted(loaded.state.span) == ["nasa/www", "nasa/www-2"]
    service.refresh(later)
    run = service.store.latest_forecast("nasa/www")
    assert run is not None and run.model_version == meta.id


def test_svc_refit_leaves_out_a_failing_workload(make_demo: MakeDemo) -> None:
    service = make_demo()
    service.registry = Registry([*service.registry, WorkloadSpec(id="broken", query="nothing")])
    with pytest.raises(WorkloadError) as caught:
        service.refit()
    assert list(caught.value.errors) == ["broken"]
    meta = service.store.latest_artefact()
    assert meta is not None and meta.workload_ids == ("nasa/www",) and caught.value.results == [meta.id]


def test_svc_refit_applies_the_retention(make_demo: MakeDemo) -> None:
    service = make_demo(retention_days=0.5)
    first = service.refresh()["nasa/www"]
    later = DEMO_NOW + pd.Timedelta("1D")
    service.source.now = later  # type: ignore[attr-defined]
    second = service.refresh(later)["nasa/www"]
    assert first != second
    service.refit(later)
    runs = service.store.forecasts_issued_between("nasa/www", DEMO_NOW - pd.Timedelta("1D"), later)
    assert [r.id for r in runs] == [second]  # the run from a day ago is older than half a day: gone
    kept = service.store.actuals("nasa/www", DEMO_NOW - pd.Timedelta("2D"), later)
    assert kept["ds"].min() >= later - pd.Timedelta("12h")
    assert service.store.list_decisions().total == 4  # decisions are the audit trail: kept
