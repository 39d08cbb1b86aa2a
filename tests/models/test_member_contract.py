"""One contract every ensemble member passes, and the whole ``Forecaster`` with it.

For each of ``seasonal``, ``events``, ``signals``, ``lgbm``, ``last`` (wired exactly as
``forecaster.forecasting.members`` wires
them: the baseline members get the seasonal member's ``fitted_`` at fit time and its forecast at predict
time) and for ``Forecaster``: ``predict(h)`` has exactly ``h`` rows per series on the grid right after the
history, the contract's columns, no NaN, nested ordered bands, and the same output from a fresh instance
with the same seed. Degenerate histories (constant, all zero, too short) fall back without crashing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster import Forecaster
from forecaster.contracts.frames import ENSEMBLE, band_columns, forecast_columns, hi, lo
from forecaster.forecasting.history import prepare_history
from forecaster.forecasting.members import split_signals
from forecaster.models.base import FitData, Member, PredictData
from forecaster.models.events import EventsMember
from forecaster.models.last import LastMember
from forecaster.models.lgbm import LGBMMember
from forecaster.models.seasonal import SeasonalMember
from forecaster.models.signals import SignalsMember

FREQ, H, LEVELS, SEED = "5min", 24, (80, 95), 11
STEP = pd.Timedelta(FREQ)
T0 = pd.Timestamp("2024-03-04T00:00Z")
NAMES = ("seasonal", "events", "signals", "lgbm", "last", "forecaster")


def make_member(name: str, lgbm: dict[str, Any]) -> Member:
    factories: dict[str, Callable[[], Member]] = {
        "seasonal": SeasonalMember,
        "events": EventsMember,
        "signals": SignalsMember,
        "lgbm": lambda: LGBMMember(**lgbm),
        "last": LastMember,
    }
    return factories[name]()


@dataclass
class Inputs:
    history: pd.DataFrame  # raw (the Forecaster validates it itself)
    events: pd.DataFrame | None
    signals: pd.DataFrame | None


def events_frame() -> pd.DataFrame:
    """A past campaign (day 1, 10:00-14:00) and one inside the forecast window (day 4, 00:30-01:30)."""
    return pd.DataFrame(
        {
            "name": ["spring push", "flash"],
            "kind": ["campaign", "campaign"],
            "start": [T0 + pd.Timedelta("1D10h"), T0 + pd.Timedelta("4D30min")],
            "end": [T0 + pd.Timedelta("1D14h"), T0 + pd.Timedelta("4D90min")],
        }
    )


def signals_frame(end: pd.Timestamp) -> pd.DataFrame:
    """Hourly ``temp`` (known in advance, to 3 h past ``end``) and ``mood`` (observed only, up to ``end``)."""
    temp_ds = pd.date_range(T0, end + pd.Timedelta("3h"), freq="1h")
    mood_ds = pd.date_range(T0, end, freq="1h")
    temp = pd.DataFrame({"ds": temp_ds, "signal": "temp", "value": 15 + 5 * np.sin(np.arange(len(temp_ds)) / 5)})
    mood = pd.DataFrame({"ds": mood_ds, "signal": "mood", "value": np.cos(np.arange(len(mood_ds)) / 7)})
    return pd.concat([temp.assign(known_in_advance=True), mood.assign(known_in_advance=False)], ignore_index=True)


def run(name: str, inputs: Inputs, lgbm: dict[str, Any], h: int = H, seed: int = SEED) -> tuple[pd.DataFrame, Any]:
    """Fit ``name`` on ``inputs`` the way the engine does and forecast ``h`` steps: (frame, fitted object)."""
    if name == "forecaster":
        fc = Forecaster(FREQ, LEVELS, H, n_windows=2, min_windows=2, seed=seed, member_params={"lgbm": lgbm})
        fc.fit(inputs.history, events=inputs.events, signals=inputs.signals)
        last = fc.state.history_tail["ds"].max()
        _, future = split_signals(fc.state.signals, last)
        return fc.predict(h, future_signals=future), fc
    history, _ = prepare_history(inputs.history, FREQ)
    last = history["ds"].max()
    train_signals, future = split_signals(inputs.signals, last) if inputs.signals is not None else (None, None)
    seasonal = SeasonalMember().fit(FitData(history, FREQ, LEVELS, H, inputs.events, train_signals, None, seed))
    base = seasonal.predict(h, PredictData(inputs.events, future, None))
    if name == "seasonal":
        return base, seasonal
    member = make_member(name, lgbm)
    member.fit(FitData(history, FREQ, LEVELS, H, inputs.events, train_signals, seasonal.fitted_, seed))
    return member.predict(h, PredictData(inputs.events, future, base)), member


def point_of(name: str) -> str:
    return ENSEMBLE if name == "forecaster" else name


def assert_contract(frame: pd.DataFrame, name: str, history: pd.DataFrame, h: int) -> None:
    point = point_of(name)
    expected = forecast_columns(LEVELS) if name == "forecaster" else band_columns(name, LEVELS)
    assert list(frame.columns) == ["unique_id", "ds", *expected]
    assert not frame.isna().any().any(), frame[frame.isna().any(axis=1)].head()
    last = history.assign(ds=pd.to_datetime(history["ds"], utc=True)).groupby("unique_id")["ds"].max()
    assert frame.groupby("unique_id").size().to_dict() == dict.fromkeys(last.index, h)
    for uid, g in frame.groupby("unique_id"):
        assert g["ds"].iloc[0] == last[uid] + STEP, uid  # continues the grid right after the history
        assert (g["ds"].diff().dropna() == STEP).all(), uid
    tol = 1e-9 * (1 + frame[point].abs().max())
    chain = [lo(point, 95), lo(point, 80), point, hi(point, 80), hi(point, 95)]
    for inner, outer in itertools.pairwise(chain):
        bad = frame[inner] > frame[outer] + tol
        assert not bad.any(), f"{inner} > {outer} at {frame.loc[bad, ['unique_id', 'ds']].head(3).to_dict('records')}"


# --- the main contract -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(multi_frame: pd.DataFrame) -> Inputs:
    end = pd.to_datetime(multi_frame["ds"]).max()
    return Inputs(multi_frame, events_frame(), signals_frame(end))


@pytest.fixture(scope="module")
def runs(inputs: Inputs, fast_lgbm: dict[str, Any]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, Any]]:
    """Per name: (forecast, forecast of a fresh instance with the same seed, fitted object)."""
    out = {}
    for name in NAMES:
        first, fitted = run(name, inputs, fast_lgbm)
        again, _ = run(name, inputs, fast_lgbm)
        out[name] = (first, again, fitted)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_contract(name: str, runs: dict[str, tuple[pd.DataFrame, pd.DataFrame, Any]], inputs: Inputs) -> None:
    frame, _, fitted = runs[name]
    assert_contract(frame, name, inputs.history, H)
    if name != "forecaster":
        assert isinstance(fitted, Member) and fitted.name == name
        assert fitted.fallbacks_ == {}  # 4 days of clean data: nothing to fall back from


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_forecast(name: str, runs: dict[str, tuple[pd.DataFrame, pd.DataFrame, Any]]) -> None:
    first, again, _ = runs[name]
    pd.testing.assert_frame_equal(first, again, check_exact=True)


@pytest.mark.parametrize("name", NAMES)
def test_bands_have_width(name: str, runs: dict[str, tuple[pd.DataFrame, pd.DataFrame, Any]]) -> None:
    """Noisy history: the 95 % band is strictly wider than the 80 % band on average, both non-degenerate."""
    frame, _, _ = runs[name]
    p = point_of(name)
    w80 = (frame[hi(p, 80)] - frame[lo(p, 80)]).mean()
    w95 = (frame[hi(p, 95)] - frame[lo(p, 95)]).mean()
    assert w95 > w80 > 0


@pytest.mark.parametrize("name", NAMES)
def test_shorter_h(name: str, inputs: Inputs, fast_lgbm: dict[str, Any], runs: dict[str, Any]) -> None:
    """``predict(h)`` for h below the horizon gives h rows per series too (the first h of the full one for
    the members, whose forecast of step k does not depend on h)."""
    if name == "forecaster":
        frame = runs[name][2].predict(5)
    else:
        frame, _ = run(name, inputs, fast_lgbm, h=5)
    assert_contract(frame, name, inputs.history, 5)
    full = runs[name][0].groupby("unique_id").head(5).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), full, rtol=1e-9)


# --- degenerate histories ----------------------------------------------------------------------------------
def constant(days: float = 4, value: float = 50.0) -> pd.DataFrame:
    ds = pd.date_range(T0, periods=round(days * 288), freq=FREQ)
    return pd.DataFrame({"unique_id": "flat", "ds": ds, "y": value})


CASES = {
    "constant": (constant, 50.0),
    "all-zero": (lambda: constant(value=0.0), 0.0),
    "too-short": (lambda: constant(days=3 / 24).assign(y=np.linspace(10.0, 20.0, 36)), None),
}
REASONS = {  # the members that promise a recorded fallback for a case, and a word of the reason
    ("seasonal", "constant"): "constant",
    ("seasonal", "all-zero"): "constant",
    ("seasonal", "too-short"): "under two days",
    ("lgbm", "too-short"): "shorter than 2 days",
    ("signals", "too-short"): "min_rows",
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", NAMES)
def test_degenerate_history(name: str, case: str, fast_lgbm: dict[str, Any]) -> None:
    make, value = CASES[case]
    history = make()
    end = history["ds"].max()
    frame, fitted = run(name, Inputs(history, events_frame(), signals_frame(end)), fast_lgbm)
    assert_contract(frame, name, history, H)
    point = frame[point_of(name)].to_numpy()
    if value is not None:  # a constant history forecasts that constant
        np.testing.assert_allclose(point, value, atol=1e-9)
    else:  # too short: a naive rule, so within the range seen
        assert ((point >= 10 - 1e-9) & (point <= 20 + 1e-9)).all()
    reason = REASONS.get((name, case))
    if reason is not None:
        assert reason in fitted.fallbacks_.get("flat", ""), fitted.fallbacks_
    if name == "forecaster" and case == "too-short":
        assert (fitted.weights_["source"] == "default").all()
