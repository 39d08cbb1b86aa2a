"""``forecaster.ensemble.adjust``: the events factor applied to the members that do not model events, and when it is
kept."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.ensemble.adjust import EVENT_AWARE, MIN_EVENT_ROWS, adjusted, event_factor, keeps_adjustment
from forecaster.ensemble.combine import combine

LEVELS = (80,)


def frame(
    seasonal: list[float],
    events: list[float],
    lgbm: list[float],
    y: list[float] | None = None,
    signals: list[float] | None = None,
) -> pd.DataFrame:
    n = len(seasonal)
    out = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")})
    members = [("seasonal", seasonal), ("events", events), ("lgbm", lgbm)]
    members += [("signals", signals)] if signals is not None else []
    for name, values in members:
        out[name] = np.asarray(values, dtype=float)
        out[f"{name}-lo-80"] = out[name] - 10.0
        out[f"{name}-hi-80"] = out[name] + 10.0
    out["y"] = np.asarray(y if y is not None else seasonal, dtype=float)
    return out


def test_worked_example_of_the_docstring() -> None:
    """seasonal 100, events 70 (r = 0.7), signals 110, lgbm 90, weights events 0.2 / signals 0.3 / lgbm 0.5: plain
    92, adjusted 82.1 (lgbm models events itself); on an unlearned event's row lgbm is lifted too: 68.6."""
    f = frame([100.0], [70.0], [90.0], signals=[110.0])
    np.testing.assert_allclose(event_factor(f), [0.7])
    w = pd.DataFrame({"unique_id": ["a"], "seasonal": [0.0], "events": [0.2], "signals": [0.3], "lgbm": [0.5]})
    members = ["seasonal", "events", "signals", "lgbm"]
    rows = np.array([True])
    plain = combine(f, w, members, LEVELS)
    adj = adjusted(f, members, LEVELS, rows)
    np.testing.assert_allclose(plain["ensemble"], [92.0])
    np.testing.assert_allclose(combine(adj, w, members, LEVELS)["ensemble"], [82.1])
    np.testing.assert_allclose(adj[["lgbm", "lgbm-lo-80", "lgbm-hi-80"]], [[90, 80, 100]])  # lgbm untouched
    # bands are scaled with their member: signals' [100, 120] becomes [70, 84]
    np.testing.assert_allclose(adj[["signals-lo-80", "signals-hi-80"]], [[70, 84]])
    unknown = adjusted(f, members, LEVELS, rows, unlearned=np.array([True]))
    np.testing.assert_allclose(unknown[["lgbm", "lgbm-lo-80", "lgbm-hi-80"]], [[63, 56, 70]])
    np.testing.assert_allclose(combine(unknown, w, members, LEVELS)["ensemble"], [68.6])
    assert all(m not in EVENT_AWARE for m in ("seasonal", "signals")) and "lgbm" in EVENT_AWARE


def test_factor_is_one_where_it_cannot_be_read() -> None:
    f = frame([0.0, -5.0, 100.0, 100.0], [10.0, 10.0, np.nan, 1e9], [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(event_factor(f)[:3], [1.0, 1.0, 1.0])
    assert event_factor(f)[3] == np.exp(4.0)  # clipped
    assert (event_factor(f.drop(columns=["events"])) == 1.0).all()


def test_no_event_rows_change_nothing_and_return_the_same_frame() -> None:
    f = frame([100.0, 90.0], [100.0, 90.0], [110.0, 95.0])
    assert adjusted(f, ["seasonal", "events", "lgbm"], LEVELS, np.array([True, True])) is f


def backtest_pair(n_event: int, y_event: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One ordinary row and ``n_event`` event rows (r = 0.7): plain ensemble 98, adjusted 75, actual ``y_event``."""
    n = n_event + 1
    plain = frame([100.0] * n, [100.0] + [70.0] * n_event, [110.0] * n, y=[100.0] + [y_event] * n_event)
    adj = plain.copy()
    plain["ensemble"] = [100.0] + [98.0] * n_event
    adj["ensemble"] = [100.0] + [75.0] * n_event
    return plain, adj


def test_the_adjustment_is_dropped_only_when_enough_event_rows_say_it_harms() -> None:
    assert keeps_adjustment(*backtest_pair(MIN_EVENT_ROWS, 73.0)) == {"a": True}  # it helped
    assert keeps_adjustment(*backtest_pair(MIN_EVENT_ROWS, 97.0)) == {"a": False}  # 22 vs 1 per row: harmful
    assert keeps_adjustment(*backtest_pair(MIN_EVENT_ROWS - 1, 97.0)) == {"a": True}  # too few rows to judge
    no_events = frame([100.0], [100.0], [110.0]).assign(ensemble=[105.0])
    assert keeps_adjustment(no_events, no_events) == {"a": True}
