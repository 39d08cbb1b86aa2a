"""``forecaster.forecasting.members``: building, fitting and predicting members, failure isolation, and the leak-free
rolling-origin member backtest."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
import pytest

import forecaster.models.events as events_module
import forecaster.models.lgbm as lgbm_module
from forecaster.contracts.errors import InputError, LeakageError
from forecaster.contracts.frames import band_columns
from forecaster.forecasting.history import prepare_history
from forecaster.forecasting.members import (
    EngineConfig,
    build_members,
    fit_members,
    member_cv,
    predict_members,
    split_signals,
    update_members,
)
from forecaster.models.base import FitData, PredictData
from forecaster.models.seasonal import SeasonalMember
from signals.errors import EventsError
from signals.errors import LeakageError as SignalsLeakageError

FREQ, LEVELS, H = "5min", (80, 95), 12
T0 = pd.Timestamp("2024-03-04T00:00Z")


def cfg(members: tuple[str, ...] = ("seasonal", "events"), horizon: int = H, **kw: Any) -> EngineConfig:
    return EngineConfig(FREQ, LEVELS, horizon, members, **kw)


@pytest.fixture(scope="module")
def history(multi_frame: pd.DataFrame) -> pd.DataFrame:
    return prepare_history(multi_frame, FREQ)[0]


# --- build_members -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("members", "message"),
    [
        (("events", "lgbm"), "'seasonal' is required"),
        (("seasonal", "prophet"), "unknown member.*'prophet'"),
        ((), "'seasonal' is required"),
    ],
    ids=["no-seasonal", "unknown", "none"],
)
def test_build_members_validation(members: tuple[str, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_members(cfg(members))


def test_build_members_in_dependency_order_with_params() -> None:
    built = build_members(
        cfg(("lgbm", "signals", "seasonal", "events"), n_jobs=3, member_params={"lgbm": {"num_leaves": 7}})
    )
    assert list(built) == ["seasonal", "events", "signals", "lgbm"]
    assert built["lgbm"].num_leaves == 7  # type: ignore[attr-defined]
    assert built["seasonal"].n_jobs == 3  # type: ignore[attr-defined]  # the engine's n_jobs by default
    assert build_members(cfg(member_params={"seasonal": {"n_jobs": 1}}))["seasonal"].n_jobs == 1  # type: ignore[attr-defined]


def test_build_members_does_not_mutate_the_params() -> None:
    params = {"seasonal": {"order": (1, 0, 0)}}
    build_members(cfg(member_params=params))
    assert params == {"seasonal": {"order": (1, 0, 0)}}


# --- failure isolation -----------------------------------------------------------------------------------------
class Broken:
    """An events member whose ``fit`` raises ``error``."""

    name = "events"
    error: Exception = RuntimeError("boom")

    def __init__(self, **_: Any) -> None:
        self.fallbacks_: dict[str, str] = {}

    def fit(self, data: FitData) -> Self:
        raise self.error

    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        raise AssertionError("never called after a failed fit")

    def update(self, data: FitData) -> Self:
        raise AssertionError("never called after a failed fit")


def test_a_member_that_raises_in_fit_is_replaced_by_the_baseline(
    history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "EventsMember", Broken)
    members = fit_members(cfg(), history, None, None)
    assert set(members.errors) == {"events"}
    assert members.errors["events"] == "fit failed, replaced by the seasonal baseline: RuntimeError: boom"
    out = predict_members(members, H)
    np.testing.assert_array_equal(out[band_columns("events", LEVELS)], out[band_columns("seasonal", LEVELS)])
    update_members(members, history, None)  # the broken member is skipped, not updated


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InputError("events: field 'kind' is bogus"), InputError),
        (EventsError("events: event #1 ('x'): field 'end'"), InputError),
        (SignalsLeakageError("mood read after issue time"), LeakageError),
    ],
    ids=["input-error", "events-error-mapped", "signals-leak-mapped"],
)
def test_bad_input_from_a_member_propagates(
    error: Exception, expected: type[Exception], history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = type("BrokenInput", (Broken,), {"error": error})
    monkeypatch.setattr(events_module, "EventsMember", broken)
    with pytest.raises(expected, match=str(error).split(":")[0]):
        fit_members(cfg(), history, None, None)


class FailsAtPredict(Broken):
    def fit(self, data: FitData) -> Self:
        return self

    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        raise ZeroDivisionError("bad day")


def test_a_member_that_raises_in_predict_is_replaced(history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "EventsMember", FailsAtPredict)
    members = fit_members(cfg(), history, None, None)
    assert members.errors == {}
    out = predict_members(members, H)
    assert members.errors["events"].startswith("predict failed, replaced by the seasonal baseline: ZeroDivisionError")
    np.testing.assert_array_equal(out["events"], out["seasonal"])


class SkipsSeriesB(Broken):
    """A member that forecasts only series ``a`` (as seasonal + 1)."""

    def fit(self, data: FitData) -> Self:
        return self

    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        base = data.baseline
        assert base is not None
        part = base[base["unique_id"] == "a"].copy()
        for src, dst in zip(band_columns("seasonal", LEVELS), band_columns("events", LEVELS), strict=True):
            part[dst] = part[src] + 1.0
        return part


def test_series_a_member_skipped_are_filled_from_the_baseline(
    history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "EventsMember", SkipsSeriesB)
    members = fit_members(cfg(), history, None, None)
    out = predict_members(members, H)
    a, b = out[out.unique_id == "a"], out[out.unique_id == "b"]
    np.testing.assert_allclose(a["events"], a["seasonal"] + 1.0)
    np.testing.assert_array_equal(b["events"], b["seasonal"])
    assert "filled from the seasonal baseline" in members.errors["events"]


def test_predict_members_columns_and_horizon_guard(history: pd.DataFrame) -> None:
    members = fit_members(cfg(("seasonal", "events", "signals")), history, None, None)
    out = predict_members(members, H)
    assert list(out.columns) == [
        "unique_id",
        "ds",
        *band_columns("seasonal", LEVELS),
        *band_columns("events", LEVELS),
        *band_columns("signals", LEVELS),
    ]
    assert len(out) == 2 * H
    with pytest.raises(InputError, match="h=13 exceeds the horizon"):
        predict_members(members, H + 1)


def test_update_members_moves_every_forecast(history: pd.DataFrame) -> None:
    first = history.groupby("unique_id").head(len(history) // 2 - 12)
    members = fit_members(cfg(("seasonal", "events", "signals")), first, None, None)
    update_members(members, history, None)
    out = predict_members(members, H)
    last = history.groupby("unique_id")["ds"].max()
    for uid, g in out.groupby("unique_id"):
        assert g["ds"].iloc[0] == last[uid] + pd.Timedelta(FREQ)


# --- signals split -----------------------------------------------------------------------------------------
def test_split_signals_keeps_observed_only_signals_out_of_the_future() -> None:
    cutoff = T0 + pd.Timedelta("2h")
    ds = pd.date_range(T0, periods=5, freq="1h")
    signals = pd.concat(
        [
            pd.DataFrame({"ds": ds, "signal": "temp", "value": 1.0, "known_in_advance": True}),
            pd.DataFrame({"ds": ds, "signal": "mood", "value": 2.0, "known_in_advance": False}),
        ],
        ignore_index=True,
    )
    train, future = split_signals(signals, cutoff)
    assert train is not None and future is not None
    assert (train["ds"] <= cutoff).all() and len(train) == 6  # 00:00-02:00 of both signals
    assert future["signal"].unique().tolist() == ["temp"]  # mood after the cutoff does not exist yet
    assert future["ds"].tolist() == list(ds[3:])
    assert split_signals(None, cutoff) == (None, None)
    no_flag = signals.drop(columns=["known_in_advance"])
    assert len(split_signals(no_flag, cutoff)[1]) == 0  # unknown = observed only


# --- member_cv --------------------------------------------------------------------------------------------
LeakCheck = tuple[pd.DataFrame, pd.DataFrame, list[pd.Timestamp]]


def cv_signals() -> pd.DataFrame:
    ds = pd.date_range(T0, T0 + pd.Timedelta("4D2h"), freq="1h")
    temp = pd.DataFrame({"ds": ds, "signal": "temp", "value": 15 + 5 * np.sin(np.arange(len(ds)) / 5)})
    mood = pd.DataFrame({"ds": ds, "signal": "mood", "value": np.cos(np.arange(len(ds)) / 7)})
    return pd.concat([temp.assign(known_in_advance=True), mood.assign(known_in_advance=False)], ignore_index=True)


@pytest.fixture(scope="module")
def leak_check(
    history: pd.DataFrame, fast_lgbm: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.Timestamp]]:
    """member_cv on the real data and on data perturbed after the first cutoff (y and observed-only mood)."""
    config = EngineConfig(FREQ, LEVELS, H, member_params={"lgbm": fast_lgbm}, seed=3)
    cutoffs = [T0 + pd.Timedelta("2D12h"), T0 + pd.Timedelta("3D12h")]
    signals = cv_signals()
    plain = member_cv(config, history, cutoffs, H, None, signals)
    after = history["ds"] > cutoffs[0]
    perturbed = history.assign(y=np.where(after, history["y"] * 1.7 + 5.0, history["y"]))
    mood_after = (signals["signal"] == "mood") & (signals["ds"] > cutoffs[0])
    signals_p = signals.assign(value=np.where(mood_after, signals["value"] * -3.0, signals["value"]))
    return plain, member_cv(config, perturbed, cutoffs, H, None, signals_p), cutoffs


def test_member_cv_frame_shape(leak_check: LeakCheck) -> None:
    plain, _, cutoffs = leak_check
    assert list(plain.columns[:6]) == ["unique_id", "ds", "cutoff", "refit_at", *band_columns("seasonal", LEVELS)[:2]]
    assert (plain["refit_at"] == plain["cutoff"]).all()  # no refresh origins unless asked for
    assert {"y", "is_outage", "events", "signals", "lgbm"} <= set(plain.columns)
    assert plain.groupby(["cutoff", "unique_id"]).size().tolist() == [H] * 4
    assert sorted(plain["cutoff"].unique()) == cutoffs
    steps = (plain["ds"] - plain["cutoff"]) // pd.Timedelta(FREQ)
    assert steps.between(1, H).all()
    assert not plain[["y", "seasonal", "events", "signals", "lgbm"]].isna().any().any()


def test_member_cv_uses_only_data_up_to_each_cutoff(
    leak_check: LeakCheck,
) -> None:
    plain, perturbed, cutoffs = leak_check
    cols = ["unique_id", "ds", *[c for m in ("seasonal", "events", "signals", "lgbm") for c in band_columns(m, LEVELS)]]
    first_p = plain[plain.cutoff == cutoffs[0]][cols].reset_index(drop=True)
    first_q = perturbed[perturbed.cutoff == cutoffs[0]][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(first_p, first_q, check_exact=True)  # the forecasts did not see the future
    # ... while the actuals and the later cutoff's forecasts did change (the check can fail)
    assert not np.allclose(
        plain.loc[plain.cutoff == cutoffs[0], "y"], perturbed.loc[perturbed.cutoff == cutoffs[0], "y"]
    )
    assert not np.allclose(
        plain.loc[plain.cutoff == cutoffs[1], "lgbm"], perturbed.loc[perturbed.cutoff == cutoffs[1], "lgbm"]
    )


def test_member_cv_drops_series_with_too_little_training_data(history: pd.DataFrame) -> None:
    short_b = history[(history.unique_id == "a") | (history.ds >= T0 + pd.Timedelta("2D"))]
    cutoff = T0 + pd.Timedelta("3D")
    out = member_cv(cfg(("seasonal",)), short_b, [cutoff], H, min_train_steps=2 * 288)
    assert out["unique_id"].unique().tolist() == ["a"]  # b has one day before the cutoff
    with pytest.raises(InputError, match="no cutoff leaves any training data"):
        member_cv(cfg(("seasonal",)), history, [T0 - pd.Timedelta("1h")], H)


def test_member_cv_reports_progress(history: pd.DataFrame) -> None:
    seen: list[tuple[int, int]] = []
    cutoffs = [T0 + pd.Timedelta("3D"), T0 + pd.Timedelta("3D1h")]
    member_cv(cfg(("seasonal",)), history, cutoffs, 6, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 2), (2, 2)]


def test_lgbm_member_failure_does_not_take_the_ensemble_down(
    history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exploding(lgbm_module.LGBMMember):
        def fit(self, data: FitData) -> Exploding:
            raise MemoryError("lightgbm ran out of memory")

    monkeypatch.setattr(lgbm_module, "LGBMMember", Exploding)
    members = fit_members(cfg(("seasonal", "lgbm")), history, None, None)
    assert "MemoryError" in members.errors["lgbm"]
    out = predict_members(members, H)
    np.testing.assert_array_equal(out["lgbm"], out["seasonal"])
    assert isinstance(members.fitted["seasonal"], SeasonalMember)


def test_refresh_origins_replay_refreshes_without_refit_and_without_the_future(
    history: pd.DataFrame, fast_lgbm: dict[str, Any]
) -> None:
    """Refresh origins every 3 h after each fit: rows issued at ``cutoff`` = origin, from the fit at ``refit_at``,
    ``refresh_h`` steps ahead; changing the data after an origin changes nothing issued at or before it."""
    config = EngineConfig(FREQ, LEVELS, H, member_params={"lgbm": fast_lgbm}, seed=3)
    cut = T0 + pd.Timedelta("2D12h")
    kw: dict[str, Any] = {"refresh_every": "3h", "refresh_span": "1D", "refresh_h": 6}
    plain = member_cv(config, history, [cut], H, **kw)
    fresh = plain[plain["cutoff"] == plain["refit_at"]]
    refreshed = plain[plain["cutoff"] != plain["refit_at"]]
    assert (refreshed["refit_at"] == cut).all() and len(fresh) == 2 * H  # two series
    origins = sorted(refreshed["cutoff"].unique())
    assert origins == [cut + pd.Timedelta(hours=3 * k) for k in range(1, 8)]  # 3 h ... 21 h after the fit
    steps = (refreshed["ds"] - refreshed["cutoff"]) // pd.Timedelta(FREQ)
    assert steps.between(1, 6).all() and len(refreshed) == 7 * 6 * 2
    assert not refreshed[["y", "seasonal", "lgbm"]].isna().any().any()
    # the fourth origin (12 h after the fit) sees nothing after itself
    origin = origins[3]
    perturbed = history.assign(y=np.where(history["ds"] > origin, history["y"] * 1.7 + 5.0, history["y"]))
    again = member_cv(config, perturbed, [cut], H, **kw)
    cols = ["unique_id", "ds", "cutoff", "seasonal", "events", "lgbm"]
    upto = plain["cutoff"] <= origin
    pd.testing.assert_frame_equal(
        plain.loc[upto, cols].reset_index(drop=True), again.loc[again["cutoff"] <= origin, cols].reset_index(drop=True)
    )
    later = plain["cutoff"] > origin
    assert not np.allclose(plain.loc[later, "seasonal"], again.loc[again["cutoff"] > origin, "seasonal"])
