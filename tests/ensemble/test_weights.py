"""``forecaster.ensemble.weights``: simplex LAD weights and their per-series learning from a backtest frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from forecaster.ensemble.leads import LEAD, bucket_of, lead_buckets
from forecaster.ensemble.weights import (
    DROPPED,
    METHOD,
    SOURCE,
    choose_weights,
    default_weights,
    duplicates,
    inverse_mae,
    learn_weights,
    simplex_lad,
)

T = pd.Timestamp("2024-01-01T00:00Z")


def lad(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(np.abs(y - X @ w).sum())


# --- simplex_lad -------------------------------------------------------------------------------------------
def test_docstring_example() -> None:
    """y = [10, 10], a = [8, 8], b = [11, 11]: 8 w_a + 11 (1 - w_a) = 10 -> w_a = 1/3, MAE 0."""
    X = np.array([[8.0, 11.0], [8.0, 11.0]])
    w = simplex_lad(X, np.array([10.0, 10.0]))
    np.testing.assert_allclose(w, [1 / 3, 2 / 3], atol=1e-9)
    assert lad(X, np.array([10.0, 10.0]), w) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("perfect", [0, 1, 2], ids=["first", "middle", "last"])
def test_a_perfect_member_takes_all_the_weight(perfect: int) -> None:
    rng = np.random.default_rng(perfect)
    y = rng.uniform(50, 150, 40)
    X = y[:, None] + rng.normal(0, 10, (40, 3))
    X[:, perfect] = y
    w = simplex_lad(X, y)
    expected = np.zeros(3)
    expected[perfect] = 1.0
    np.testing.assert_allclose(w, expected, atol=1e-8)


def test_lad_is_robust_to_one_outlier_row() -> None:
    # member a is exact on 9 rows and off by 900 on one (LAD 900); b is off by 200 everywhere (LAD 2000)
    y = np.full(10, 100.0)
    a = y.copy()
    a[0] = 1000.0
    X = np.column_stack([a, y + 200.0])  # a: |900| once; b: 10 x 200
    np.testing.assert_allclose(simplex_lad(X, y), [1.0, 0.0], atol=1e-8)


def test_all_zero_target_does_not_divide_by_zero() -> None:
    X = np.array([[0.0, 3.0], [0.0, 4.0]])
    np.testing.assert_allclose(simplex_lad(X, np.zeros(2)), [1.0, 0.0], atol=1e-9)


DEMAND = st.integers(0, 10_000).map(lambda v: v / 100.0)  # 0.00 .. 100.00: realistic magnitudes


@settings(max_examples=40, deadline=None)
@given(X=arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(1, 4)), elements=DEMAND), data=st.data())
def test_weights_are_on_the_simplex_and_optimal(X: np.ndarray, data: st.DataObject) -> None:
    y = data.draw(arrays(np.float64, X.shape[0], elements=DEMAND))
    w = simplex_lad(X, y)
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0)
    best = lad(X, y, w)
    tol = 1e-6 * (1.0 + np.abs(y).sum() + np.abs(X).sum())
    for vertex in np.eye(X.shape[1]):  # no single member does better
        assert best <= lad(X, y, vertex) + tol
    assert best <= lad(X, y, np.full(X.shape[1], 1.0 / X.shape[1])) + tol  # nor the plain average


def _primal_lad(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The LP of the module docstring as written (``m + 2n`` variables, ``n + 1`` equality rows)."""
    from scipy.optimize import linprog

    n, m = X.shape
    a_eq = np.zeros((n + 1, m + 2 * n))
    a_eq[:n, :m], a_eq[:n, m : m + n], a_eq[:n, m + n :], a_eq[n, :m] = X, np.eye(n), -np.eye(n), 1.0
    c = np.concatenate([np.zeros(m), np.ones(2 * n)])
    res = linprog(c, A_eq=a_eq, b_eq=np.concatenate([y, [1.0]]), bounds=(0, None), method="highs")
    return np.asarray(res.x[:m])


@pytest.mark.parametrize("seed", range(8))
def test_the_dual_gives_the_primal_s_optimum(seed: int) -> None:
    """``simplex_lad`` solves the dual (module docstring): the same weights as the primal LP where the optimum is
    unique (random data), and never a larger LAD."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(20, 600)), int(rng.integers(2, 5))
    X = rng.uniform(0.0, 100.0, (n, m))
    y = X @ rng.dirichlet(np.ones(m)) + rng.normal(0.0, 5.0, n)
    w, ref = simplex_lad(X, y), _primal_lad(X, y)
    np.testing.assert_allclose(w, ref, atol=1e-6)
    assert lad(X, y, w) <= lad(X, y, ref) * (1 + 1e-9)
    assert w.min() >= 0.0 and w.sum() == pytest.approx(1.0)


# --- learn_weights -----------------------------------------------------------------------------------------
def backtest(n_windows: int, uid: str = "a", h: int = 4, seed: int = 0) -> pd.DataFrame:
    """A member backtest where ``good`` equals ``y`` and ``bad`` is ``y + 20``."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(n_windows):
        cutoff = T + pd.Timedelta(days=w)
        y = rng.uniform(50, 100, h)
        rows.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": cutoff + pd.Timedelta("5min") * np.arange(1, h + 1),
                    "cutoff": cutoff,
                    "y": y,
                    "is_outage": False,
                    "good": y,
                    "bad": y + 20.0,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_learns_per_series_with_source() -> None:
    cv = pd.concat([backtest(3, "a"), backtest(3, "b", seed=1).rename(columns={"good": "bad", "bad": "good"})])
    w = learn_weights(cv, ["good", "bad"], min_windows=3)
    assert list(w.columns) == ["unique_id", "good", "bad", SOURCE, METHOD, LEAD, DROPPED]
    assert w["unique_id"].tolist() == ["a", "b"]
    np.testing.assert_allclose(w[["good", "bad"]].to_numpy(), [[1.0, 0.0], [0.0, 1.0]], atol=1e-8)
    assert w[SOURCE].tolist() == ["learned", "learned"]


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (["seasonal", "events", "signals", "lgbm"], [0.4, 0.3, 0.2, 0.1]),
        (["seasonal", "lgbm"], [0.8, 0.2]),  # the defaults renormalised over the members that run
    ],
    ids=["all", "subset"],
)
def test_no_usable_window_falls_back_to_the_defaults(members: list[str], expected: list[float]) -> None:
    cv = backtest(2)
    for i, m in enumerate(members):
        cv[m] = cv["y"] + i  # distinct members (identical ones are dropped: see the duplicate tests)
    cv["y"] = np.nan  # no actual yet in any window: nothing to learn from
    w = learn_weights(cv, members, min_windows=3)
    np.testing.assert_allclose(w[members].to_numpy()[0], expected)
    assert w[SOURCE].iloc[0] == "default"


def test_members_without_a_default_share_equally_when_no_default_applies() -> None:
    cv = backtest(1)
    cv["y"] = np.nan
    w = learn_weights(cv, ["good", "bad"], min_windows=3)
    np.testing.assert_allclose(w[["good", "bad"]].to_numpy()[0], [0.5, 0.5])


def test_inverse_mae_worked_example() -> None:
    """MAE 1 and 3 -> weights 1/1 : 1/3 = 0.75 : 0.25; an exact member takes the whole weight."""
    y = np.array([10.0, 20.0])
    X = np.array([[11.0, 13.0], [19.0, 17.0]])
    np.testing.assert_allclose(inverse_mae(X, y), [0.75, 0.25])
    np.testing.assert_allclose(inverse_mae(np.array([[10.0, 12.0], [20.0, 21.0]]), y), [1.0, 0.0])


def test_fewer_windows_than_needed_weigh_members_by_inverse_mae() -> None:
    """Two windows (< min_windows 3): no leave-one-window-out choice, but not the fixed defaults either: the
    members by 1 / MAE on those windows (``good`` off by 5, ``bad`` by 20 -> 0.8 / 0.2)."""
    cv = backtest(2)
    cv["good"] = cv["y"] + 5.0
    w = learn_weights(cv, ["good", "bad"], min_windows=3)
    np.testing.assert_allclose(w[["good", "bad"]].to_numpy()[0], [0.8, 0.2])
    assert (w[SOURCE].iloc[0], w[METHOD].iloc[0]) == ("learned", "inverse-mae")


def test_fewer_windows_keep_the_defaults_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import forecaster.ensemble.weights as weights

    monkeypatch.setattr(weights, "FEW_WINDOWS", "default")
    cv = backtest(2).rename(columns={"good": "seasonal", "bad": "lgbm"})
    w = learn_weights(cv, ["seasonal", "lgbm"], min_windows=3)
    assert w[SOURCE].iloc[0] == "default"
    np.testing.assert_allclose(w[["seasonal", "lgbm"]].to_numpy()[0], [0.8, 0.2])


def test_outage_rows_are_ignored() -> None:
    """On outage rows y is 0 (not demand) and only ``bad`` happens to match; they must not count."""
    cv = backtest(3)
    outage = cv.index % 2 == 0
    cv.loc[outage, "is_outage"] = True
    cv.loc[outage, "y"] = 0.0
    cv.loc[outage, "bad"] = 0.0
    w = learn_weights(cv, ["good", "bad"], min_windows=3)
    np.testing.assert_allclose(w[["good", "bad"]].to_numpy()[0], [1.0, 0.0], atol=1e-8)


def test_windows_that_are_all_outage_or_nan_do_not_count() -> None:
    cv = backtest(3)
    cv.loc[cv.cutoff == cv.cutoff.max(), "is_outage"] = True  # the third window is an outage
    cv.loc[cv.cutoff == cv.cutoff.min(), "y"] = np.nan  # the first has no actuals yet
    w = learn_weights(cv, ["good", "bad"], min_windows=2)
    assert w[METHOD].iloc[0] == "inverse-mae"  # one usable window < 2
    np.testing.assert_allclose(w[["good", "bad"]].to_numpy()[0], [1.0, 0.0])  # good is exact
    assert learn_weights(cv, ["good", "bad"], min_windows=1)[METHOD].iloc[0] != "inverse-mae"


def test_default_weights_for_every_series() -> None:
    w = default_weights(["x", "y"], ["seasonal", "events", "signals", "lgbm"])
    assert w["unique_id"].tolist() == ["x", "y"]
    np.testing.assert_allclose(w[["seasonal", "events", "signals", "lgbm"]].to_numpy(), [[0.4, 0.3, 0.2, 0.1]] * 2)
    assert (w[SOURCE] == "default").all()
    np.testing.assert_allclose(default_weights(["x"], ["events", "lgbm"])[["events", "lgbm"]].iloc[0], [0.75, 0.25])


def test_method_choice_by_leave_one_window_out() -> None:
    """A combination that only fits noise loses to the single best member on held-out windows."""
    rng = np.random.default_rng(3)
    n_win, h = 6, 12
    windows = np.repeat(np.arange(n_win), h)
    y = 100 + rng.normal(0, 1, n_win * h)
    good = y + rng.normal(0, 1, n_win * h)  # unbiased, small error
    biased = y + 5 + rng.normal(0, 8, n_win * h)  # biased and noisy
    X = np.column_stack([good, biased])
    w, method = choose_weights(X, y, windows)
    assert method == "best-member"
    np.testing.assert_allclose(w, [1.0, 0.0])


def test_method_choice_keeps_a_real_combination() -> None:
    """Two members with opposite biases: their average beats either one on every held-out window."""
    rng = np.random.default_rng(4)
    n_win, h = 6, 12
    windows = np.repeat(np.arange(n_win), h)
    y = 100 + rng.normal(0, 1, n_win * h)
    X = np.column_stack([y + 10 + rng.normal(0, 0.5, n_win * h), y - 10 + rng.normal(0, 0.5, n_win * h)])
    w, method = choose_weights(X, y, windows)
    assert method == "combination"
    np.testing.assert_allclose(w, [0.5, 0.5], atol=0.05)


# --- lead-time buckets and duplicate members --------------------------------------------------------------
@pytest.mark.parametrize(
    ("horizon", "freq", "expected"),
    [
        (288, "5min", (12, 72, 288)),
        (12, "5min", (12,)),
        (48, "30min", (6, 12, 48)),
        (2, "30min", (2,)),
        (24, "1h", (6, 12, 24)),
        (1, "1h", (1,)),
        (80, "5min", (12, 72, 80)),
        (75, "5min", (12, 75)),  # 75 - 72 < 6 steps: the last bucket absorbs the 6-hour edge
    ],
    ids=["5min-day", "5min-hour", "30min-day", "30min-hour", "hourly-day", "hourly-1", "5min-80", "5min-75"],
)
def test_lead_buckets_worked_examples(horizon: int, freq: str, expected: tuple[int, ...]) -> None:
    assert lead_buckets(horizon, freq) == expected


def test_bucket_of_maps_steps_to_the_bucket_end_and_clamps_past_the_last() -> None:
    np.testing.assert_array_equal(
        bucket_of(np.array([1, 12, 13, 72, 73, 288, 400]), (12, 72, 288)), [12, 12, 72, 72, 288, 288, 288]
    )


def lead_backtest(n_windows: int, h: int = 24) -> pd.DataFrame:
    """Hourly backtest where ``near`` is exact for the first 6 steps and ``far`` for the rest."""
    rng = np.random.default_rng(3)
    rows = []
    for w in range(n_windows):
        cutoff = T + pd.Timedelta(days=w)
        y = rng.uniform(50, 100, h)
        step = np.arange(1, h + 1)
        rows.append(
            pd.DataFrame(
                {
                    "unique_id": "a",
                    "ds": cutoff + pd.Timedelta("1h") * step,
                    "cutoff": cutoff,
                    "y": y,
                    "is_outage": False,
                    "near": np.where(step <= 6, y, y + 30.0),
                    "far": np.where(step <= 6, y - 30.0, y),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_weights_are_learned_per_lead_bucket() -> None:
    """One fit, two lead times: the member that is right at each lead gets that bucket's weight."""
    w = learn_weights(lead_backtest(4), ["near", "far"], min_windows=3, freq="1h", lead_ends=(6, 24))
    assert w[LEAD].tolist() == [6, 24]
    np.testing.assert_allclose(w[["near", "far"]].to_numpy(), [[1.0, 0.0], [0.0, 1.0]], atol=1e-8)


def test_combine_uses_each_rows_bucket() -> None:
    from forecaster.ensemble.combine import combine

    cv = lead_backtest(4)
    for m in ("near", "far"):
        for lvl in (80,):
            cv[f"{m}-lo-{lvl}"] = cv[m] - 1.0
            cv[f"{m}-hi-{lvl}"] = cv[m] + 1.0
    w = learn_weights(cv, ["near", "far"], min_windows=3, freq="1h", lead_ends=(6, 24))
    steps = ((cv["ds"] - cv["cutoff"]) // pd.Timedelta("1h")).to_numpy()
    out = combine(cv, w, ["near", "far"], (80,), steps)
    np.testing.assert_allclose(out["ensemble"], cv["y"], atol=1e-6)
    with pytest.raises(ValueError, match="lead-time bucket"):
        combine(cv, w, ["near", "far"], (80,))


def test_identical_members_are_dropped_and_named() -> None:
    cv = backtest(4)
    cv["seasonal"] = cv["y"] + 5.0
    cv["events"] = cv["seasonal"]  # no events in scope: the events member is the baseline
    cv["signals"] = cv["seasonal"] * (1 + 1e-12)  # equal to rounding
    cv["lgbm"] = cv["y"] - 5.0
    members = ["seasonal", "events", "signals", "lgbm"]
    # events is kept (it lifts the forecast when a planned event comes); seasonal and signals are dropped
    assert duplicates(cv[members].to_numpy(), members) == {"seasonal": "events", "signals": "events"}
    w = learn_weights(cv, members, min_windows=3)
    assert w[DROPPED].iloc[0] == "seasonal=events; signals=events"
    assert w["seasonal"].iloc[0] == 0.0 and w["signals"].iloc[0] == 0.0
    np.testing.assert_allclose(w[["events", "lgbm"]].to_numpy()[0].sum(), 1.0)


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"a": 1.0, "b": 1.0, "c": 2.0}, {"b": "a"}),  # no preferred member: the first is kept
        ({"seasonal": 1.0, "signals": 1.0, "lgbm": 2.0}, {"seasonal": "signals"}),
        ({"seasonal": 1.0, "events": 2.0, "signals": 2.0, "lgbm": 1.0}, {"signals": "events", "lgbm": "seasonal"}),
        ({"seasonal": 1.0, "events": 2.0}, {}),
    ],
    ids=["plain", "signals-kept", "two-groups", "none"],
)
def test_duplicate_groups_keep_the_preferred_member(columns: dict[str, float], expected: dict[str, str]) -> None:
    members = list(columns)
    X = np.array([[v * (1 + i) for v in columns.values()] for i in range(5)])
    assert duplicates(X, members) == expected


def test_defaults_are_renormalised_over_the_members_that_remain(monkeypatch: pytest.MonkeyPatch) -> None:
    import forecaster.ensemble.weights as weights

    monkeypatch.setattr(weights, "FEW_WINDOWS", "default")  # one window: the defaults, not inverse-MAE
    cv = backtest(1)
    cv["seasonal"] = cv["y"] + 5.0
    cv["events"] = cv["seasonal"]
    cv["signals"] = cv["seasonal"]
    cv["lgbm"] = cv["y"] - 5.0
    w = learn_weights(cv, ["seasonal", "events", "signals", "lgbm"], min_windows=3)
    assert w[SOURCE].iloc[0] == "default"
    # seasonal (0.4) and signals (0.2) duplicate events (0.3): 0.3 / 0.1 renormalised
    np.testing.assert_allclose(w[["seasonal", "events", "signals", "lgbm"]].to_numpy()[0], [0, 0.75, 0, 0.25])


# --- ordinary rows ---------------------------------------------------------------------------------------
def blizzard_backtest() -> pd.DataFrame:
    """Five windows where ``good`` is ``y`` and ``bad`` is ``y + 20``, but in the fifth (a blizzard) ``good`` is off
    by 500 and ``bad`` exact: over all rows the LAD weights go to ``bad``."""
    cv = backtest(5)
    storm = (cv["cutoff"] == cv["cutoff"].max()).to_numpy()
    cv.loc[storm, "good"] = cv.loc[storm, "y"] + 500.0
    cv.loc[storm, "bad"] = cv.loc[storm, "y"]
    return cv


def test_weights_are_learned_on_the_ordinary_rows() -> None:
    cv = blizzard_backtest()
    storm = (cv["cutoff"] == cv["cutoff"].max()).to_numpy()
    everything = learn_weights(cv, ["good", "bad"], min_windows=3)
    np.testing.assert_allclose(everything[["good", "bad"]].to_numpy()[0], [0.0, 1.0], atol=1e-8)
    ordinary = learn_weights(cv, ["good", "bad"], min_windows=3, ordinary=~storm)
    np.testing.assert_allclose(ordinary[["good", "bad"]].to_numpy()[0], [1.0, 0.0], atol=1e-8)


def test_too_few_ordinary_windows_fall_back_to_every_row() -> None:
    """Only two ordinary windows (< min_windows 3): all five windows are used, as without the flags."""
    cv = blizzard_backtest()
    few = (cv["cutoff"] <= cv["cutoff"].min() + pd.Timedelta("1D")).to_numpy()
    w = learn_weights(cv, ["good", "bad"], min_windows=3, ordinary=few)
    np.testing.assert_allclose(w[["good", "bad"]].to_numpy()[0], [0.0, 1.0], atol=1e-8)
    assert w[SOURCE].iloc[0] == "learned"


# --- fleets ----------------------------------------------------------------------------------------------
def test_fleet_weights_scale_each_series_by_its_mean_docstring_example() -> None:
    """Two small series on which a is exact, one 1,000x larger on which b is: scaled, a takes the weight."""
    from forecaster.ensemble.weights import fleet_weights

    windows = np.repeat(np.arange(4), 2)
    y = np.linspace(1.0, 2.0, 8)
    small = (np.column_stack([y, y + 1.0]), y, windows)
    big = (np.column_stack([1000 * y + 1000.0, 1000 * y]), 1000 * y, windows)
    every, held_out = fleet_weights([small, small, big])
    np.testing.assert_allclose(every, [1.0, 0.0], atol=1e-9)
    assert set(held_out) == {0, 1, 2, 3}
    X = np.vstack([small[0], small[0], big[0]])
    np.testing.assert_allclose(simplex_lad(X, np.concatenate([y, y, 1000 * y])), [0.0, 1.0], atol=1e-9)  # unscaled


def test_the_fleet_is_chosen_where_a_series_own_windows_mislead() -> None:
    """Own rows: b exact in windows 0-2 and 10 off in window 3, a 1 off everywhere. Held out, the series' own
    best member errs 20 on window 3 (b) and 2 on each other window (a): 26; the fleet's a errs 8."""
    from forecaster.ensemble.weights import FleetWeights

    windows = np.repeat(np.arange(4), 2)
    y = np.full(8, 50.0)
    b = y.copy()
    b[windows == 3] += 10.0
    X = np.column_stack([y + 1.0, b])
    fleet = FleetWeights(np.array([1.0, 0.0]), {j: np.array([1.0, 0.0]) for j in range(4)}, np.eye(2))
    w, method = choose_weights(X, y, windows, fleet)
    assert method == "fleet"
    np.testing.assert_allclose(w, [1.0, 0.0])
    assert choose_weights(X, y, windows)[1] != "fleet"  # no fleet: one of the series' own methods


def test_fleet_weights_pass_a_dropped_duplicate_s_weight_to_the_member_it_duplicates() -> None:
    from forecaster.ensemble.weights import FleetWeights

    # members (seasonal, events, lgbm); the series dropped seasonal as a duplicate of events: kept columns events,
    # lgbm; the fleet's seasonal weight goes to events
    fold = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    fw = FleetWeights(np.array([0.2, 0.3, 0.5]), {}, fold)
    np.testing.assert_allclose(fw.all, [0.5, 0.5])
    np.testing.assert_allclose(fw.without("any window"), [0.5, 0.5])


def test_learn_weights_uses_the_fleet_only_with_enough_series() -> None:
    """Series a's last window misleads (good 120 off on its 4 rows, bad 20 off on every row): on its own, a takes
    bad (LAD 400 against 480); held out, its own choice errs 800 and the fleet's good (exact on the other series)
    480, so with four series a takes the fleet's weights; with fewer than three series there is no fleet."""

    def fleet_cv(uid: str, seed: int, mislead: bool) -> pd.DataFrame:
        cv = backtest(5, uid=uid, seed=seed)
        if mislead:
            cv.loc[cv["cutoff"] == cv["cutoff"].max(), "good"] += 120.0
        return cv

    two = pd.concat([fleet_cv("a", 0, True), fleet_cv("b", 1, False)], ignore_index=True)
    w2 = learn_weights(two, ["good", "bad"], min_windows=3).set_index("unique_id")
    assert "fleet" not in set(w2[METHOD]) and w2.loc["a", "good"] < 1.0
    four = pd.concat([fleet_cv(u, i, u == "a") for i, u in enumerate("abcd")], ignore_index=True)
    w4 = learn_weights(four, ["good", "bad"], min_windows=3).set_index("unique_id")
    assert w4.loc["a", METHOD] == "fleet"
    assert w4.loc["a", "good"] == pytest.approx(1.0)


def test_per_series_choices_run_through_map_fn_with_the_same_weights() -> None:
    """``map_fn`` (module docstring, "Fleet scale") gets one picklable item per series and a picklable function: run
    through pickles, in reverse order of submission, the weights equal those of one process, fleet choices included."""
    import pickle

    rng = np.random.default_rng(3)
    parts = []
    for i, uid in enumerate("abcde"):
        cv = backtest(6, uid=uid, h=8, seed=i)
        cv["good"] += rng.normal(0.0, 5.0, len(cv))
        cv["bad"] = cv["y"] + rng.normal(3.0 * i, 4.0, len(cv))
        parts.append(cv)
    cv = pd.concat(parts, ignore_index=True)
    calls: list[int] = []

    def remote(fn, items):  # type: ignore[no-untyped-def]
        calls.append(len(items))
        run = pickle.loads(pickle.dumps(fn))
        done = {k: run(pickle.loads(pickle.dumps(items[k]))) for k in reversed(range(len(items)))}
        return [done[k] for k in range(len(items))]

    one = learn_weights(cv, ["good", "bad"], min_windows=3, freq="5min", lead_ends=(4, 8))
    mapped = learn_weights(cv, ["good", "bad"], min_windows=3, freq="5min", lead_ends=(4, 8), map_fn=remote)
    assert calls == [5]
    pd.testing.assert_frame_equal(one, mapped)
    assert "fleet" in set(one[METHOD]) or len(set(one[METHOD])) > 1  # the fleet candidate was in play
