"""Store retention in the controller: the ``prune`` step deletes forecast runs older than ``retention`` (never a
policy's latest), at most every ``prune_every``; a failing store is reported and the cycle's writes still land."""

from __future__ import annotations

import pandas as pd
import pytest
from ctrl_builders import NOW, Rig, constant

from forecaster.contracts.errors import TemporaryError


def run_ids(rig: Rig) -> list[str]:
    return [r.id for r in rig.store.forecasts_issued_between("shop/web", NOW - pd.Timedelta("1D"), rig.clock.now)]


def test_old_forecast_runs_are_pruned_but_never_the_latest(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller(config_overrides={"retention": pd.Timedelta("30min"), "prune_every": pd.Timedelta("1h")})
    ctl.run_once()
    ctl.run_once(rig.clock.advance(minutes=40))  # the first run is 40 min old, but pruning is not due yet
    assert len(run_ids(rig)) == 2
    ctl.run_once(rig.clock.advance(minutes=25))  # 65 min after the first prune: due; cut = 12:35
    assert run_ids(rig) == ["shop/web@2024-03-10T12:40:00+00:00", "shop/web@2024-03-10T13:05:00+00:00"]
    assert ctl.last_report is not None and not ctl.last_report.errors


def test_a_lone_stale_run_is_kept(rig: Rig) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller(config_overrides={"retention": pd.Timedelta("1min"), "prune_every": pd.Timedelta("1min")})
    ctl.run_once()
    rig.forecasts.error = TemporaryError("engine down")  # no newer run is stored from now on
    ctl.run_once(rig.clock.advance(hours=3))
    assert rig.store.latest_forecast("shop/web") is not None


@pytest.mark.parametrize(("retention", "kept"), [(pd.Timedelta("1min"), 1), (None, 2)])
def test_retention_none_keeps_everything(rig: Rig, retention: pd.Timedelta | None, kept: int) -> None:
    rig.forecasts.demand = constant(50.0)
    ctl = rig.controller(config_overrides={"retention": retention, "prune_every": pd.Timedelta("1min")})
    ctl.run_once()
    ctl.run_once(rig.clock.advance(minutes=30))
    assert len(run_ids(rig)) == kept


def test_a_failing_prune_is_reported_and_the_writes_stand(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.forecasts.demand = constant(50.0)

    def broken(before: pd.Timestamp) -> dict[str, int]:
        raise TemporaryError("database is locked")

    monkeypatch.setattr(rig.store, "prune", broken)
    report = rig.controller().run_once()
    assert any(e.startswith("prune: TemporaryError: database is locked") for e in report.errors), report.errors
    assert rig.hpa()["spec"]["minReplicas"] == 12
    assert rig.store.latest_forecast("shop/web") is not None
