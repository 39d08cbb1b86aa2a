"""Tests of ``forecaster.plots``: every chart renders to a non-empty PNG, draws the artists it promises and
leaves no pyplot state behind. Inputs are hand-made (forecast), small replays, and the committed real usage
fixture (``tests/fixtures/usage_small.csv``, three Bitbrains VMs) through ``rightsize``."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from forecaster.contracts.frames import DS, ENSEMBLE, ID, MEMBERS, Y, hi, lo
from forecaster.plots import (
    fan_chart,
    members_chart,
    pareto_chart,
    replay_chart,
    requested_vs_actual_chart,
    rightsizing_chart,
    same_as,
    save_png,
)
from forecaster.rightsizing import RightsizingResult, rightsize
from forecaster.simulate import replay
from forecaster.simulate.bounds import ideal_curve, level_foresight_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVELS = (80, 95)
T0 = pd.Timestamp("2024-03-04T00:00Z")
USAGE = Path(__file__).parent / "fixtures" / "usage_small.csv"


def _history(uid: str = "api", days: int = 3) -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=days * 288, freq="5min", tz="UTC")
    y = 100 + 50 * np.sin(2 * np.pi * np.arange(len(ds)) / 288)
    return pd.DataFrame({ID: uid, DS: ds, Y: y})


def _forecast(history: pd.DataFrame, h: int = 24) -> pd.DataFrame:
    """Hand-made forecast: point 100, 80 % band +-10, 95 % band +-20, members around the point."""
    ds = pd.date_range(history[DS].max() + pd.Timedelta("5min"), periods=h, freq="5min")
    frame = pd.DataFrame({ID: history[ID].iloc[0], DS: ds, ENSEMBLE: np.full(h, 100.0)})
    for level, half in ((80, 10.0), (95, 20.0)):
        frame[lo(ENSEMBLE, level)] = 100.0 - half
        frame[hi(ENSEMBLE, level)] = 100.0 + half
    for i, member in enumerate(MEMBERS):
        frame[member] = 95.0 + 3 * i
    return frame


def _read_png(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return data


def test_fan_chart_draws_nested_bands_history_forecast_and_origin(tmp_path: Path) -> None:
    history = _history()
    other = _history("other")
    forecast = _forecast(history)
    actuals = pd.DataFrame({ID: "api", DS: forecast[DS], Y: 105.0})
    fig = fan_chart(pd.concat([history, other]), forecast, "api", LEVELS, actuals=actuals, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "t"
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(LEVELS)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["history", "forecast (ensemble)", "actual", "forecast origin"]
    hist_line = ax.get_lines()[0]
    # at least a day of history before the origin, never the other series' points
    assert len(hist_line.get_xdata()) == 288
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95 % band" in legend and "80 % band" in legend
    data = _read_png(save_png(fig, tmp_path / "charts" / "fan.png"))
    assert len(data) > 10_000


def test_fan_chart_without_history_uses_the_forecast_start() -> None:
    forecast = _forecast(_history())
    fig = fan_chart(_history().iloc[0:0], forecast, "api", LEVELS)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["forecast (ensemble)", "forecast origin"]


def test_fan_chart_unknown_series_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        fan_chart(_history(), _forecast(_history()), "nope", LEVELS)


def test_members_chart_draws_each_member_and_the_ensemble(tmp_path: Path) -> None:
    forecast = _forecast(_history())
    fig = members_chart(forecast, "api", [*MEMBERS, "absent"])
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == [*MEMBERS, "ensemble"]
    assert _read_png(save_png(fig, tmp_path / "members.png"))


def _demand() -> pd.Series:
    x = np.arange(240)
    return pd.Series(100 + 80 * (x > 100) + 20 * np.sin(x / 10), index=pd.date_range(T0, periods=240, freq="1min"))


def test_replay_chart_draws_demand_capacity_and_replicas(tmp_path: Path) -> None:
    result = replay(_demand(), "oracle", capacity_per_pod=10.0)
    fig = replay_chart(result)
    top, bottom = fig.axes
    assert [line.get_label() for line in top.get_lines()] == ["demand", "ready capacity"]
    assert [line.get_label() for line in bottom.get_lines()] == ["desired", "ready", "reactive rule"]
    assert "oracle" in fig.get_suptitle()
    assert len(_read_png(save_png(fig, tmp_path / "replay.png"))) > 10_000


def test_replay_chart_keeps_replicas_visible_over_the_floor_and_draws_the_reactive_replay(tmp_path: Path) -> None:
    predictive = replay(_demand(), "oracle", capacity_per_pod=10.0)
    reactive = replay(_demand(), "reactive", capacity_per_pod=10.0)
    fig = replay_chart(predictive, reactive=reactive, title="oracle against reactive")
    top, bottom = fig.axes
    floor = next(c for c in bottom.collections if c.get_label() == "floor (minReplicas)")
    lines = {line.get_label(): line for line in bottom.get_lines()}
    assert set(lines) == {"desired", "ready", "reactive rule", "ready, reactive HPA alone"}
    assert all(line.get_zorder() > floor.get_zorder() for line in lines.values()), "no line hides under the floor"
    desired, ready = lines["desired"], lines["ready"]
    assert desired.get_linewidth() > 2 * ready.get_linewidth() and ready.get_zorder() > desired.get_zorder()
    assert desired.get_color() != ready.get_color()
    np.testing.assert_array_equal(lines["ready, reactive HPA alone"].get_ydata(), reactive.frame["ready"])
    assert lines["ready, reactive HPA alone"].get_linestyle() == ":"
    assert "ready capacity, reactive HPA alone" in [line.get_label() for line in top.get_lines()]
    title = fig.get_suptitle()
    assert "oracle against reactive" in title and "oracle:" in title and "reactive:" in title
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert "under-provisioned, reactive HPA alone" in legend
    assert _read_png(save_png(fig, tmp_path / "replay-vs-reactive.png"))


def test_charts_name_the_units_of_their_axes() -> None:
    history = _history()
    forecast = _forecast(history)
    assert fan_chart(history, forecast, "api", LEVELS, unit="requests per 5 min").axes[0].get_ylabel() == (
        "demand (requests per 5 min)")
    assert fan_chart(history, forecast, "api", LEVELS).axes[0].get_ylabel() == "demand (units of y)"
    assert members_chart(forecast, "api", MEMBERS, unit="requests/s").axes[0].get_ylabel() == "demand (requests/s)"
    top, bottom = replay_chart(replay(_demand(), capacity_per_pod=10.0), unit="requests per minute").axes
    assert "(requests per minute)" in top.get_ylabel() and bottom.get_ylabel() == "replicas (pods)"
    assert bottom.get_xlabel() == "time (UTC)"


def test_members_chart_says_which_members_equal_each_other() -> None:
    forecast = _forecast(_history())
    forecast["events"] = forecast["seasonal"]
    forecast["signals"] = forecast["seasonal"]
    forecast["lgbm"] = forecast[ENSEMBLE]
    forecast.loc[3, "lgbm"] += 0.5  # differs at one step: not equal
    fig = members_chart(forecast, "api", MEMBERS)
    lines = fig.axes[0].get_lines()
    labels = [line.get_label() for line in lines]
    assert labels == ["seasonal", "events (= seasonal)", "signals (= seasonal)", "lgbm", "ensemble"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "events (= seasonal)" in legend
    styles = {line.get_label(): line for line in lines}
    assert styles["seasonal"].get_linestyle() == "-"
    dashes = {styles[n].get_linestyle() for n in ("events (= seasonal)", "signals (= seasonal)")}
    assert "-" not in dashes and len(dashes) == 2, "two lines over the same one get different dash patterns"
    assert styles["ensemble"].get_zorder() < min(styles[n].get_zorder() for n in labels[:-1])
    forecast["lgbm"] = forecast[ENSEMBLE]
    labels = [line.get_label() for line in members_chart(forecast, "api", MEMBERS).axes[0].get_lines()]
    assert "lgbm (= ensemble)" in labels


def test_same_as_worked_example() -> None:
    frame = pd.DataFrame({"seasonal": [1.0, 2.0], "events": [1.0, 2.0], "lgbm": [1.0, 3.0], ENSEMBLE: [1.0, 3.0],
                          "signals": [np.nan, 2.0]})
    assert same_as(frame, ["seasonal", "events", "signals", "lgbm"], also=[ENSEMBLE]) == {
        "events": "seasonal", "lgbm": "ensemble"}


def test_replay_chart_shades_under_provisioned_minutes_and_slices_a_window() -> None:
    result = replay(_demand(), capacity_per_pod=10.0)
    assert result.outcomes.under_provisioned_minutes > 0  # the step at minute 100 outruns start-up
    fig = replay_chart(result, start=T0 + pd.Timedelta("1h"), end=T0 + pd.Timedelta("2h"), title="window")
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 61
    assert any(isinstance(c, PolyCollection) for c in fig.axes[0].collections)
    assert fig.get_suptitle() == "window"


def test_pareto_chart_draws_one_line_per_policy_from_outcomes_and_dicts(tmp_path: Path) -> None:
    demand = _demand()
    targets = (0.5, 0.7, 0.9)
    points = [replay(demand, capacity_per_pod=10.0, target_utilisation=t).outcomes for t in targets]
    rows = [{**o.as_dict(), "label": f"target {t}"} for o, t in zip(points, targets, strict=True)]
    rows.append({**replay(demand, "oracle", capacity_per_pod=10.0).outcomes.as_dict(), "label": "oracle"})
    fig = pareto_chart(rows, title="test")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"reactive", "oracle"}
    assert len(lines["reactive"].get_xdata()) == 3 and lines["oracle"].get_linestyle() == "None"
    assert sorted(lines["reactive"].get_xdata()) == list(lines["reactive"].get_xdata())  # sorted by cost
    assert {t.get_text() for t in ax.texts} == {"target 0.5", "target 0.7", "target 0.9", "oracle"}
    assert _read_png(save_png(fig, tmp_path / "pareto.png"))
    assert _read_png(save_png(pareto_chart(points), tmp_path / "p2.png"))


def test_pareto_chart_draws_reference_curves_dashed_within_the_points_risk_range() -> None:
    demand = _demand()
    rows = [replay(demand, capacity_per_pod=10.0, target_utilisation=t).outcomes for t in (0.5, 0.9)]
    cap = 10.0
    top = max(o.under_provisioned_minutes for o in rows)
    bound = ideal_curve(demand, cap, top)
    refs = {"bound": pd.DataFrame({"replica_minutes": bound, "under_provisioned_minutes": np.arange(len(bound))}),
            "level": level_foresight_curve(demand, cap, window=15)}
    plain = pareto_chart(rows).axes[0]
    ax = pareto_chart(rows, references=refs).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"bound", "level"} <= set(lines)
    assert lines["bound"].get_linestyle() == "--" and lines["level"].get_linestyle() == ":"
    assert ax.get_ylim() == plain.get_ylim()  # the points set the risk range...
    assert ax.get_xlim()[1] == plain.get_xlim()[1] and ax.get_xlim()[0] <= plain.get_xlim()[0]  # ...cost widens left
    assert max(lines["level"].get_ydata()) <= plain.get_ylim()[1]
    # the bound is never above the reactive points: no policy beats perfect foresight with instant pods
    assert min(lines["bound"].get_xdata()) <= min(o.replica_minutes for o in rows)
    with pytest.raises(ValueError, match=r"references\['x'\]: column 'replica_minutes'"):
        pareto_chart(rows, references={"x": pd.DataFrame({"under_provisioned_minutes": [1]})})


def test_pareto_chart_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="replica_minutes"):
        pareto_chart(pd.DataFrame({"policy": ["reactive"]}))


@pytest.fixture(scope="module")
def rightsized() -> tuple[pd.DataFrame, RightsizingResult]:
    usage = pd.read_csv(USAGE)
    return usage, rightsize(usage, policy="vpa")


def test_rightsizing_chart_draws_use_request_and_the_recommendation(
    rightsized: tuple[pd.DataFrame, RightsizingResult], tmp_path: Path
) -> None:
    usage, result = rightsized
    fig = rightsizing_chart(usage, result.recommendations, "vm004", now=result.now, window=result.window)
    cpu, memory = fig.axes
    assert cpu.get_ylabel() == "CPU (cores)" and memory.get_ylabel() == "memory (GiB)"
    for ax, resource in ((cpu, "cpu"), (memory, "memory")):
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels[:4] == ["use", "request", "recommended target", "current request"]
        assert len(ax.get_lines()[0].get_xdata()) == (usage["unique_id"] == "vm004").sum()
        target_line = ax.get_lines()[2]
        rec = result.recommendations.set_index(["unique_id", "resource"]).loc[("vm004", resource)]
        scale = 1.0 if resource == "cpu" else 2.0**30
        assert target_line.get_ydata()[0] == pytest.approx(rec["target"] / scale)
        x0, x1 = (pd.Timestamp(v) for v in target_line.get_xdata())
        assert x0 == result.now and x1 - x0 == pd.Timedelta("24h")
        assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the lower-upper band
    assert "vm004" in fig.get_suptitle() and "vpa" in fig.get_suptitle()
    assert len(_read_png(save_png(fig, tmp_path / "vm004.png"))) > 10_000


def test_rightsizing_chart_draws_limits_and_defaults_now_to_one_step_after_the_last_sample() -> None:
    usage = pd.read_csv(USAGE)
    usage = usage[usage["unique_id"] == "vm001"].assign(cpu_limit=4.0)
    recs = rightsize(usage, policy="keep").recommendations
    fig = rightsizing_chart(usage, recs, "vm001")
    assert "limit" in [line.get_label() for line in fig.axes[0].get_lines()]
    assert "limit" not in [line.get_label() for line in fig.axes[1].get_lines()]
    assert "2013-08-11 00:00" in fig.get_suptitle()  # last sample 23:45 + 15 min


def test_rightsizing_chart_unknown_container_is_a_clear_error(
    rightsized: tuple[pd.DataFrame, RightsizingResult],
) -> None:
    usage, result = rightsized
    with pytest.raises(ValueError, match="'nope'"):
        rightsizing_chart(usage, result.recommendations, "nope")


def test_requested_vs_actual_chart_draws_three_bars_per_container_and_the_peak(
    rightsized: tuple[pd.DataFrame, RightsizingResult], tmp_path: Path
) -> None:
    _, result = rightsized
    fig = requested_vs_actual_chart(result.containers)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.patches) == 3 * 3  # request, use p90, target for 3 containers
        assert [t.get_text() for t in ax.get_xticklabels()] == ["vm001", "vm004", "vm007"]  # largest request first
        assert [line.get_label() for line in ax.get_lines()] == ["peak use"]
    assert "observed" in fig.get_suptitle()
    assert len(_read_png(save_png(fig, tmp_path / "fleet.png"))) > 10_000


def test_requested_vs_actual_chart_cpu_only_and_missing_columns() -> None:
    frame = pd.DataFrame({ID: ["a", "b"], "resource": "cpu", "request": [2.0, 1.0], "usage_p90": [0.5, 0.2],
                          "target": [0.6, 0.3], "basis": "prediction"})  # fmt: skip
    fig = requested_vs_actual_chart(frame, title="t")
    assert len(fig.axes) == 1 and fig.get_suptitle() == "t"
    assert "predicted" in requested_vs_actual_chart(frame).get_suptitle()
    with pytest.raises(ValueError, match="usage_p90"):
        requested_vs_actual_chart(frame.drop(columns="usage_p90"))


def test_no_pyplot_figures_are_left_behind(rightsized: tuple[pd.DataFrame, RightsizingResult]) -> None:
    before = plt.get_fignums()
    history = _history()
    fan_chart(history, _forecast(history), "api", LEVELS)
    members_chart(_forecast(history), "api", MEMBERS)
    result = replay(_demand(), capacity_per_pod=10.0)
    replay_chart(result)
    pareto_chart([result.outcomes])
    usage, rs = rightsized
    rightsizing_chart(usage, rs.recommendations, "vm001")
    requested_vs_actual_chart(rs.containers)
    assert plt.get_fignums() == before


def test_pareto_front_keeps_only_non_dominated_points() -> None:
    """Worked example of ``pareto_front``: (3, 7) is dominated by (2, 5); ties in cost keep the less risky."""
    from forecaster.plots import pareto_front

    pts = pd.DataFrame({"replica_minutes": [3, 1, 4, 2, 2], "under_provisioned_minutes": [7, 9, 1, 5, 6]})
    front = pareto_front(pts)
    assert list(zip(front["replica_minutes"], front["under_provisioned_minutes"], strict=True)) == [
        (1, 9), (2, 5), (4, 1)]
