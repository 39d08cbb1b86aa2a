"""The ``lgbm`` member: protocol contract, learning, fallbacks, update and leakage guards."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import NotFittedError
from forecaster.contracts.frames import LGBM, band_columns, hi, lo
from forecaster.models.base import FitData, Member, PredictData
from forecaster.models.lgbm import LGBMMember, band_widths, bucket_edges, naive_forecast, row_budget

FREQ, DAY, H, LEVELS = "1h", 24, 24, (80, 95)
START = pd.Timestamp("2024-01-01", tz="UTC")


def _member(**kw: object) -> LGBMMember:
    opts: dict = {"num_threads": 1, "max_rows": 20_000, "num_rounds": 60, "learning_rate": 0.1,
                  "early_stopping_rounds": 10, **kw}
    return LGBMMember(**opts)


def _frame(values: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = [
        pd.DataFrame({"unique_id": uid, "ds": pd.date_range(START, periods=len(y), freq=FREQ),
                      "y": np.asarray(y, float), "is_outage": False})
        for uid, y in values.items()
    ]
    return pd.concat(rows, ignore_index=True).sort_values(["unique_id", "ds"], ignore_index=True)


def _daily(n: int, n_series: int = 4, noise: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Same daily shape for every series, different levels, multiplicative-free additive noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    shape = 2.0 + np.sin(2 * np.pi * t / DAY) + 0.5 * np.cos(4 * np.pi * t / DAY)
    return {f"s{i}": (10 + 5 * i) * shape + noise * (10 + 5 * i) * rng.normal(size=n) for i in range(n_series)}


def _fit(values: dict[str, np.ndarray], member: LGBMMember | None = None, **kw: object) -> LGBMMember:
    data = FitData(_frame(values), FREQ, LEVELS, H, seed=7, **kw)  # type: ignore[arg-type]
    return (member or _member()).fit(data)


@pytest.fixture(scope="module")
def fitted() -> LGBMMember:
    return _fit(_daily(21 * DAY, noise=0.05))


def _assert_contract(frame: pd.DataFrame, ids: list[str], h: int) -> None:
    assert list(frame.columns) == ["unique_id", "ds", *band_columns(LGBM, LEVELS)]
    assert len(frame) == len(ids) * h
    assert sorted(frame["unique_id"].unique()) == sorted(ids)
    assert not frame.isna().any().any()
    tol = 1e-9
    assert (frame[lo(LGBM, 95)] <= frame[lo(LGBM, 80)] + tol).all()
    assert (frame[lo(LGBM, 80)] <= frame[LGBM] + tol).all()
    assert (frame[LGBM] <= frame[hi(LGBM, 80)] + tol).all()
    assert (frame[hi(LGBM, 80)] <= frame[hi(LGBM, 95)] + tol).all()


def test_is_a_member_with_contract_output(fitted: LGBMMember) -> None:
    assert isinstance(fitted, Member) and fitted.name == "lgbm"
    out = fitted.predict(H, PredictData())
    _assert_contract(out, ["s0", "s1", "s2", "s3"], H)
    first = out[out["unique_id"] == "s0"]["ds"]
    assert first.iloc[0] == START + pd.Timedelta(hours=21 * DAY)  # the step after the last observation
    assert (first.diff().dropna() == pd.Timedelta(hours=1)).all()
    assert fitted.fallbacks_ == {}
    # bands are real (non-zero) and wider at 95 than at 80 somewhere
    assert (out[hi(LGBM, 95)] - out[lo(LGBM, 95)]).mean() > (out[hi(LGBM, 80)] - out[lo(LGBM, 80)]).mean() > 0


def test_shorter_h_is_a_prefix_and_longer_h_raises(fitted: LGBMMember) -> None:
    full, short = fitted.predict(H, PredictData()), fitted.predict(5, PredictData())
    _assert_contract(short, ["s0", "s1", "s2", "s3"], 5)
    pd.testing.assert_frame_equal(
        short.reset_index(drop=True), full.groupby("unique_id").head(5).reset_index(drop=True)
    )
    with pytest.raises(ValueError, match="horizon"):
        fitted.predict(H + 1, PredictData())


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        _member().predict(3, PredictData())


def test_deterministic_under_a_seed() -> None:
    values = _daily(16 * DAY, n_series=3, noise=0.2, seed=3)
    a = _fit(values).predict(H, PredictData())
    b = _fit(values).predict(H, PredictData())
    pd.testing.assert_frame_equal(a, b)
    c = _member().fit(FitData(_frame(values), FREQ, LEVELS, H, seed=99)).predict(H, PredictData())
    assert not np.allclose(a[LGBM], c[LGBM])  # the seed really drives bagging


def test_learns_a_noisy_daily_pattern_better_than_seasonal_naive() -> None:
    n_days = 21
    values = _daily((n_days + 1) * DAY, n_series=6, noise=0.15, seed=11)
    train = {k: v[: n_days * DAY] for k, v in values.items()}
    out = _fit(train).predict(H, PredictData())
    err_model, err_naive = [], []
    for uid, y in values.items():
        actual = y[n_days * DAY:]
        err_model.append(np.abs(out.loc[out["unique_id"] == uid, LGBM].to_numpy() - actual))
        err_naive.append(np.abs(y[(n_days - 1) * DAY: n_days * DAY] - actual))
    mae_model, mae_naive = np.mean(err_model), np.mean(err_naive)
    assert mae_model < 0.85 * mae_naive, (mae_model, mae_naive)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"c": np.full(20 * DAY, 5.0)}, 5.0),
        ({"z": np.zeros(20 * DAY)}, 0.0),
    ],
    ids=["constant-only", "all-zero-only"],
)
def test_constant_and_all_zero_series_alone(values: dict[str, np.ndarray], expected: float) -> None:
    m = _fit(values)
    out = m.predict(H, PredictData())
    _assert_contract(out, list(values), H)
    assert m.booster_ is not None and m.fallbacks_ == {}
    np.testing.assert_allclose(out[LGBM], expected, atol=1e-6)


def test_constant_and_all_zero_series_among_others() -> None:
    values = {**_daily(20 * DAY, n_series=2, noise=0.05), "c": np.full(20 * DAY, 5.0), "z": np.zeros(20 * DAY)}
    out = _fit(values).predict(H, PredictData())
    _assert_contract(out, list(values), H)
    assert (out[LGBM] >= 0).all()
    np.testing.assert_allclose(out.loc[out["unique_id"] == "c", LGBM], 5.0, rtol=0.15)
    # scale 1.0 for an all-zero series: a shared tree may leave a tiny positive value, never a blow-up
    np.testing.assert_allclose(out.loc[out["unique_id"] == "z", LGBM], 0.0, atol=0.05)


def test_too_short_history_falls_back_with_reason() -> None:
    long = _daily(15 * DAY, n_series=2, noise=0.05)
    short = np.arange(2 * DAY) + 1.0  # shorter than 2 days + horizon -> seasonal naive
    tiny = np.array([4.0, 6.0, 5.0])  # shorter than a day -> last value
    m = _fit({**long, "short": short, "tiny": tiny})
    assert set(m.fallbacks_) == {"short", "tiny"}
    assert "shorter than 2 days + horizon" in m.fallbacks_["short"]
    out = m.predict(H, PredictData())
    _assert_contract(out, [*long, "short", "tiny"], H)
    np.testing.assert_allclose(out.loc[out["unique_id"] == "short", LGBM], short[-DAY:])
    np.testing.assert_allclose(out.loc[out["unique_id"] == "tiny", LGBM], 5.0)


def test_all_series_too_short_means_all_fall_back() -> None:
    m = _fit({"a": np.arange(30.0), "b": np.ones(10)})
    assert m.booster_ is None and set(m.fallbacks_) == {"a", "b"}
    out = m.predict(H, PredictData())
    _assert_contract(out, ["a", "b"], H)
    np.testing.assert_allclose(out.loc[out["unique_id"] == "a", LGBM], np.r_[np.arange(6.0, 30.0)])


def test_update_moves_the_origin_without_retraining(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _daily(18 * DAY, n_series=3, noise=0.05)
    first = {k: v[: 16 * DAY] for k, v in values.items()}
    m = _fit(first)
    booster, widths = m.booster_, m.widths_.copy()
    before = m.predict(H, PredictData())

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("update must not retrain")

    monkeypatch.setattr(lgb, "train", no_training)
    same = m.update(FitData(_frame(values), FREQ, LEVELS, H, seed=7))
    assert same is m and m.booster_ is booster
    np.testing.assert_array_equal(m.widths_, widths)
    after = m.predict(H, PredictData())
    _assert_contract(after, list(values), H)
    assert after["ds"].min() == before["ds"].min() + pd.Timedelta(hours=2 * DAY)
    # a level shift in the appended days moves the forecast with it
    shifted = {k: np.r_[v[: 16 * DAY], 3 * v[16 * DAY:]] for k, v in values.items()}
    m.update(FitData(_frame(shifted), FREQ, LEVELS, H, seed=7))
    assert m.predict(H, PredictData())[LGBM].mean() > 1.5 * after[LGBM].mean()


def test_update_promotes_a_series_that_grew_long_enough() -> None:
    values = _daily(16 * DAY, n_series=2, noise=0.05)
    m = _fit({**values, "new": values["s0"][: 2 * DAY]})
    assert "new" in m.fallbacks_
    m.update(FitData(_frame({**values, "new": values["s0"][:4 * DAY]}), FREQ, LEVELS, H))
    assert "new" not in m.fallbacks_
    _assert_contract(m.predict(H, PredictData()), [*values, "new"], H)


def _signals(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    ds = pd.date_range(START, periods=n + H, freq=FREQ)
    promo = (rng.random(n + H) < 0.2).astype(float)  # known in advance (a schedule)
    mood = rng.normal(size=n + H)  # observed only
    frame = pd.concat([
        pd.DataFrame({"ds": ds, "signal": "promo", "value": promo, "known_in_advance": True}),
        pd.DataFrame({"ds": ds, "signal": "mood", "value": mood, "known_in_advance": False}),
    ], ignore_index=True)
    return frame, promo


def test_known_signal_is_used_at_the_target_observed_only_never_in_the_future() -> None:
    n = 16 * DAY
    signals, promo = _signals(n, seed=5)
    values = {k: v + 20 * promo[:n] for k, v in _daily(n, n_series=3, noise=0.02).items()}
    hist_signals = signals[signals["ds"] < START + pd.Timedelta(hours=n)]
    m = _fit(values, signals=hist_signals)
    assert m.spec_.known_signals == ("promo",) and m.spec_.observed_signals == ("mood",)
    future = signals[signals["ds"] >= START + pd.Timedelta(hours=n)].copy()
    base = m.predict(H, PredictData(future_signals=future))

    # rewriting the observed-only signal after the issue time changes nothing
    wild = future.copy()
    wild.loc[wild["signal"] == "mood", "value"] = 1e6
    pd.testing.assert_frame_equal(m.predict(H, PredictData(future_signals=wild)), base)

    # the known-in-advance schedule is read at the target time
    on, off = future.copy(), future.copy()
    on.loc[on["signal"] == "promo", "value"] = 1.0
    off.loc[off["signal"] == "promo", "value"] = 0.0
    uplift = m.predict(H, PredictData(future_signals=on))[LGBM] - m.predict(H, PredictData(future_signals=off))[LGBM]
    assert uplift.mean() > 10.0


def test_event_at_the_target_time_raises_the_forecast() -> None:
    n = 16 * DAY
    values = _daily(n, n_series=2, noise=0.02)
    starts = [START + pd.Timedelta(hours=int(h)) for h in range(30, n, 50)]
    events = pd.DataFrame({"name": "sale", "kind": "sale", "start": starts,
                           "end": [s + pd.Timedelta(hours=6) for s in starts], "scope": None})
    for s in starts:
        i = int((s - START) / pd.Timedelta(hours=1))
        for v in values.values():
            v[i:i + 6] *= 2
    m = _fit(values, events=events)
    t_future = START + pd.Timedelta(hours=n + 10)
    future = pd.DataFrame({"name": ["next"], "kind": ["sale"], "start": [t_future],
                           "end": [t_future + pd.Timedelta(hours=6)], "scope": [None]})
    plain = m.predict(H, PredictData())
    with_event = m.predict(H, PredictData(events=future))
    ratio = with_event[LGBM].to_numpy() / plain[LGBM].to_numpy()
    step = np.tile(np.arange(1, H + 1), 2)
    assert ratio[(step >= 11) & (step <= 16)].mean() > 1.25  # true uplift 2x; few examples, few rounds
    np.testing.assert_allclose(ratio[step <= 10], 1.0)


def test_band_widths_quantiles_per_bucket_and_non_decreasing() -> None:
    edges = bucket_edges(24)
    assert edges[0] == 1 and edges[-1] <= 24 and np.all(np.diff(edges) > 0)
    steps = np.r_[np.ones(100, int), np.full(100, 24)]
    res = np.r_[np.linspace(0, 1, 100), np.linspace(0, 0.5, 100)]  # the far bucket is *narrower*
    w = band_widths(res, steps, edges, (50, 90))
    assert w[0, 0] == pytest.approx(0.5) and w[0, 1] == pytest.approx(0.9)
    assert np.all(np.diff(w, axis=0) >= 0)  # running max: never narrower further out
    assert w[-1, 1] == pytest.approx(0.9)


def test_naive_forecast_rules() -> None:
    y = np.r_[np.arange(24.0), np.arange(24.0) + 1]
    point, widths, rule = naive_forecast(y, np.zeros(48, bool), 30, 24, (80,))
    assert rule.startswith("seasonal naive")
    np.testing.assert_allclose(point[:24], y[24:])
    np.testing.assert_allclose(point[24:], y[24:30])  # k > day: two days back relative to the target
    assert widths[80][0] == pytest.approx(1.0) and widths[80][-1] == pytest.approx(np.sqrt(2))
    point, _, rule = naive_forecast(np.array([1.0, 3.0]), np.zeros(2, bool), 4, 24, (80,))
    assert rule == "last value" and list(point) == [3.0] * 4


@pytest.mark.parametrize(
    ("n_series", "expected"),
    [(0, 100_000), (1, 100_000), (2, 200_000), (3, 300_000), (1_000, 300_000)],
    ids=["none", "one", "two", "three", "fleet"],
)
def test_row_budget_worked_example(n_series: int, expected: int) -> None:
    """``min(max_rows, rows_per_series * n_series)`` with the defaults (300,000, 100,000)."""
    assert row_budget(n_series, 300_000, 100_000) == expected


def test_rows_grow_with_the_fleet_up_to_the_cap() -> None:
    """One series trains on at most ``rows_per_series`` rows (training + validation, ``n_train_rows_`` after the
    refit), three on three times that, eight on no more than ``max_rows``."""
    opts = {"max_rows": 5_000, "rows_per_series": 1_000}
    one = _fit(_daily(21 * DAY, n_series=1, noise=0.05), _member(**opts))
    three = _fit(_daily(21 * DAY, n_series=3, noise=0.05), _member(**opts))
    many = _fit(_daily(21 * DAY, n_series=8, noise=0.05), _member(**opts))
    # 160 origins per series (21 days hourly, every 3rd step from day 1), steps per origin m = budget // origins:
    # one series 1,000 // 160 = 6 -> 960 rows; three 3,000 // 480 = 6 -> 2,880; eight 5,000 // 1,280 = 3 -> 3,840
    assert (one.n_train_rows_, three.n_train_rows_, many.n_train_rows_) == (960, 2_880, 3_840)
