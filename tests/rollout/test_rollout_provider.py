"""``RolloutProvider`` on the real engine: a refit on a bad day (a broken exporter reporting zeros for the six hours
before it) stays in shadow and is kept out while the champion's forecasts are exactly those of a provider that never
refitted; a refit that has seen more of a new demand level than the champion is promoted with its evidence; a stale
champion, new settings or a clock set back promote at once; a failing challenger never stops the champion; a rollback
installs the model it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import DS, ID, Y
from forecaster.cycle.forecast import EngineForecastProvider, Model, RolloutProvider
from forecaster.cycle.rollout import RolloutEvent, RolloutPolicy
from forecaster.cycle.spec import ForecastSpec

START = pd.Timestamp("2024-03-04T00:00Z")
SPEC = ForecastSpec("5min", 300.0, 4 * 86400.0, 3600.0, (80, 95))
FIRST = START + pd.Timedelta("4D") + pd.Timedelta("1min")
REFIT = START + pd.Timedelta("5D") + pd.Timedelta("1min")
POLICY = RolloutPolicy(min_points=12, max_points=48)
SHIFT = START + pd.Timedelta("3D") + pd.Timedelta("12h")
"""Demand doubles from here on (a new customer): the first model has seen half a day of it, the refit a day and a
half."""


def series(zeros_before: pd.Timestamp | None = None, shift: bool = False) -> pd.DataFrame:
    """Eight days of a daily pattern with 5 % noise; zeros (a broken exporter) for the six hours before
    ``zeros_before``; with ``shift``, twice the demand from ``SHIFT`` on."""
    ds = pd.date_range(START, periods=288 * 8, freq="5min")
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440.0)
    y = 100 * (1 + 0.5 * np.sin(2 * np.pi * tod)) + np.random.default_rng(0).normal(0, 5, len(ds))
    frame = pd.DataFrame({ID: "k", DS: ds, Y: np.clip(y, 0, None)})
    if shift:
        frame.loc[frame[DS] >= SHIFT, Y] *= 2.0
    if zeros_before is not None:
        frame.loc[(frame[DS] >= zeros_before.floor("5min") - pd.Timedelta("6h"))
                  & (frame[DS] < zeros_before.floor("5min")), Y] = 0.0
    return frame


Step = Callable[[pd.Timestamp], pd.DataFrame]


def run(provider: EngineForecastProvider, data: pd.DataFrame, times: list[pd.Timestamp]) -> list[pd.DataFrame]:
    """One controller-like cycle per time: the window the provider asks for, then its forecast."""
    out = []
    for t in times:
        start, end = provider.history_window("k", SPEC, t)
        out.append(provider.forecast("k", SPEC, data[(data[DS] >= start) & (data[DS] <= end)], t))
    return out


def after_refit(n: int) -> list[pd.Timestamp]:
    return [REFIT + pd.Timedelta(minutes=5 * i) for i in range(n)]


@pytest.fixture(scope="module")
def bad_refit(engine_options: dict[str, Any]) -> tuple[RolloutProvider, list[RolloutEvent], list[pd.DataFrame],
                                                       list[pd.DataFrame]]:
    """A champion fitted on good data, a refit a day later on data whose last six hours are zeros; the same cycles
    through a provider that never refits."""
    data = series(zeros_before=REFIT)
    seen: list[RolloutEvent] = []
    rollout = RolloutProvider(options=engine_options, rollout=POLICY, on_event=lambda e, m: seen.append(e))
    plain = EngineForecastProvider(options=engine_options, refit_every=pd.Timedelta("30D"))
    times = [FIRST, *after_refit(16)]
    return rollout, seen, run(rollout, data, times), run(plain, data, times)


def test_a_refit_on_a_bad_day_is_kept_out_and_the_decisions_do_not_change(bad_refit: Any) -> None:
    provider, seen, served, never_refitted = bad_refit
    assert [e.kind for e in seen] == ["promoted", "challenger", "rejected"]
    first, challenger, rejected = seen
    assert rejected.version == challenger.version and rejected.previous == first.version
    assert "worse than the champion" in rejected.reason and rejected.evidence is not None
    ev = rejected.evidence
    assert ev.n_points == POLICY.min_points and ev.worse_statistic > POLICY.z
    # the zeros pulled the challenger's level down: worse on pinball loss (the rule's score; by how much depends on
    # the engine's bands: 6.1x at 4f7a168, 1.8x once a46fee3 widened them by the members' disagreement) and on MAE
    assert ev.challenger.pinball > 1.25 * ev.champion.pinball and ev.challenger.mae > ev.champion.mae
    assert provider.challenger("k") is None and provider.model("k") is not None
    for got, want in zip(served, never_refitted, strict=True):  # only the champion drives decisions
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert provider.drain("k") == seen and provider.drain("k") == []


def test_the_rejected_refit_is_not_retried_every_cycle(bad_refit: Any) -> None:
    provider = bad_refit[0]
    later = after_refit(16)[-1] + pd.Timedelta("5min")
    start, end = provider.history_window("k", SPEC, later)
    assert end - start < pd.Timedelta("1h"), "the schedule counts the age from the newest fit, kept or not"


def test_a_refit_that_saw_more_of_a_new_demand_level_is_promoted(engine_options: dict[str, Any]) -> None:
    data = series(shift=True)
    seen: list[RolloutEvent] = []
    provider = RolloutProvider(options=engine_options, rollout=POLICY, on_event=lambda e, m: seen.append(e))
    # one cycle per scored point: the paired test decides between POLICY.min_points and POLICY.max_points
    run(provider, data, [FIRST, *after_refit(POLICY.max_points + 1)])
    assert [e.kind for e in seen] == ["promoted", "challenger", "promoted"]
    promoted = seen[-1]
    assert promoted.evidence is not None and POLICY.min_points <= promoted.evidence.n_points <= POLICY.max_points
    assert "better by more than 2 %" in promoted.reason and promoted.previous == seen[0].version
    assert promoted.evidence is not None and promoted.evidence.better_statistic > POLICY.z
    assert promoted.evidence.challenger.pinball < 0.98 * promoted.evidence.champion.pinball
    assert promoted.evidence.mae_worse_statistic < POLICY.z  # and its point forecast is no worse
    model = provider.model("k")
    assert model is not None and model.fitted_at == REFIT and provider.challenger("k") is None


def test_promoted_at_once_when_the_champion_is_stale_or_the_settings_change(engine_options: dict[str, Any]) -> None:
    data = series()
    seen: list[RolloutEvent] = []
    stale = RolloutPolicy(min_points=6, stale_after=pd.Timedelta("12h"))
    provider = RolloutProvider(options=engine_options, rollout=stale, on_event=lambda e, m: seen.append(e))
    run(provider, data, [FIRST, REFIT])
    assert [e.kind for e in seen] == ["promoted", "promoted"] and "stale" in seen[1].reason
    other = ForecastSpec("5min", 300.0, 4 * 86400.0, 7200.0, (80, 95))
    start, end = provider.history_window("k", other, REFIT + pd.Timedelta("5min"))
    provider.forecast("k", other, data[(data[DS] >= start) & (data[DS] <= end)], REFIT + pd.Timedelta("5min"))
    assert seen[-1].kind == "promoted" and "settings changed" in seen[-1].reason


def test_a_failing_challenger_is_kept_out_and_the_champion_serves(engine_options: dict[str, Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = series()
    provider = RolloutProvider(options=engine_options, rollout=POLICY)
    run(provider, data, [FIRST, REFIT])
    challenger = provider.challenger("k")
    assert challenger is not None

    def broken(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise ValueError("member blew up")

    monkeypatch.setattr(challenger.forecaster, "predict", broken)
    (frame,) = run(provider, data, [REFIT + pd.Timedelta("5min")])
    assert len(frame) == SPEC.horizon_steps and provider.challenger("k") is None
    (event,) = [e for e in provider.drain("k") if e.kind == "rejected"]
    assert "failed to forecast: ValueError: member blew up" in event.reason


def test_a_rollback_installs_the_model_it_names(engine_options: dict[str, Any]) -> None:
    data = series()
    provider = RolloutProvider(options=engine_options, rollout=RolloutPolicy(stale_after=pd.Timedelta("1h")))
    run(provider, data, [FIRST])
    first = provider.model("k")
    assert first is not None
    first.version = "v1"
    run(provider, data, [REFIT])  # the champion is stale: the refit serves at once
    assert provider.model("k") is not first
    pinned_at = REFIT + pd.Timedelta("2min")
    asked: list[str] = []

    def rollback(key: str, spec: ForecastSpec, now: pd.Timestamp, current: Model | None) -> Model | None:
        asked.append(key)
        first.pinned_at = pinned_at
        return first if len(asked) == 1 else None

    provider.rollback = rollback
    provider.drain("k")
    run(provider, data, [REFIT + pd.Timedelta("5min"), REFIT + pd.Timedelta("10min")])
    assert provider.model("k") is first and len(asked) == 2
    (event,) = provider.drain("k")
    assert (event.kind, event.version) == ("rolled_back", "v1")
    # its age counts from the rollback: a refit an hour after the rollback is stale again, not a day before it
    assert provider._champion_age("k", pinned_at + pd.Timedelta("30min")) == pd.Timedelta("30min")


def test_a_clock_set_back_promotes_the_refit_at_once(engine_options: dict[str, Any]) -> None:
    data = series()
    seen: list[RolloutEvent] = []
    provider = RolloutProvider(options=engine_options, rollout=POLICY, on_event=lambda e, m: seen.append(e))
    run(provider, data, [REFIT, FIRST])  # the second cycle is a day earlier than the first model's data
    assert [e.kind for e in seen] == ["promoted", "promoted"] and "clock went back" in seen[1].reason
