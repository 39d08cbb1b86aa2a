"""Tests of ``forecaster.planning``: the worked examples of its docstrings, the weekly profile, scenario factors
(growth, events, regions), node packing, per-period aggregation and costs, and the input errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.errors import InputError
from forecaster.planning import (
    EPOCH,
    HOME,
    MONTH,
    PLAN_COLUMNS,
    PlannedEvent,
    Region,
    Scenario,
    learned_uplift,
    node_fit,
    peak_margin,
    period_start,
    plan_capacity,
    plan_totals,
    scenario_demand,
    seasonal_profile,
)
from forecaster.scaling.capacity import replicas_for_demand

MONDAY = pd.Timestamp("2024-01-29T00:00Z")
NODE = {"node_cpu_cores": 8.0, "node_memory_gib": 32.0, "node_cost_per_hour": 0.40}


def hourly(values: list[float] | np.ndarray, start: pd.Timestamp = MONDAY, column: str = "y") -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(values), freq="1h")
    return pd.DataFrame({"ds": ds, column: np.asarray(values, dtype=float)})


def week_forecast(start: pd.Timestamp = MONDAY, weeks: int = 1) -> pd.DataFrame:
    """A forecast-shaped frame on an hourly grid whose ensemble equals the hour of the week (0..167)."""
    ds = pd.date_range(start, periods=168 * weeks, freq="1h")
    slot = ((ds - EPOCH) / pd.Timedelta("1h")).to_numpy() % 168
    return pd.DataFrame({
        "unique_id": "web", "ds": ds, "ensemble": slot, "ensemble-lo-80": slot * 0.9, "ensemble-hi-80": slot * 1.1,
        "ensemble-lo-95": slot * 0.8, "ensemble-hi-95": slot * 1.2, "seasonal": slot,
    })  # fmt: skip


# -- node_fit --------------------------------------------------------------------------------------------------
def test_node_fit_worked_example() -> None:
    fit = node_fit(2.0, 4.0, 8.0, 32.0, headroom=0.1)
    assert fit.usable_cpu_cores == pytest.approx(7.2)
    assert fit.usable_memory_gib == pytest.approx(28.8)
    assert fit.pods_per_node == 3  # min(floor(3.6), floor(7.2), 110)


@pytest.mark.parametrize(
    ("pod", "node", "max_pods", "expected"),
    [
        ((0.5, 1.0), (8.0, 32.0), 110, 14),  # CPU binds: floor(7.2 / 0.5)
        ((0.25, 8.0), (8.0, 32.0), 110, 3),  # memory binds: floor(28.8 / 8)
        ((0.01, 0.01), (8.0, 32.0), 110, 110),  # the kubelet's pod limit binds
        ((0.72, 1.0), (8.0, 32.0), 110, 10),  # exactly 10 fit: float noise must not drop one
    ],
    ids=["cpu-binds", "memory-binds", "pod-limit-binds", "exact-fit"],
)
def test_node_fit_takes_the_binding_resource(
    pod: tuple[float, float], node: tuple[float, float], max_pods: int, expected: int
) -> None:
    assert node_fit(*pod, *node, headroom=0.1, max_pods_per_node=max_pods).pods_per_node == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((16.0, 4.0, 8.0, 32.0, 0.1), "does not fit"),
        ((2.0, 4.0, 8.0, 32.0, 1.0), "headroom"),
        ((0.0, 4.0, 8.0, 32.0, 0.1), "pod_cpu_cores"),
        ((2.0, 4.0, 8.0, float("nan"), 0.1), "node_memory_gib"),
    ],
    ids=["pod-too-big", "headroom-1", "zero-cpu", "nan-memory"],
)
def test_node_fit_rejects_bad_input(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        node_fit(*args)


# -- plan_capacity ---------------------------------------------------------------------------------------------
def test_plan_capacity_docstring_worked_example() -> None:
    plan = plan_capacity(hourly([1000.0] * 24), capacity_per_pod=20.0, pod_cpu_cores=0.5, pod_memory_gib=1.0, **NODE)
    assert list(plan.columns) == list(PLAN_COLUMNS)
    row = plan.iloc[0]
    assert len(plan) == 1 and row["region"] == HOME and row["period_start"] == MONDAY
    assert row["replicas"] == 72  # ceil(1000 / (20 * 0.7)) = ceil(71.43)
    assert (row["cpu_cores"], row["memory_gib"]) == (36.0, 72.0)
    assert row["nodes"] == 6  # ceil(72 / 14)
    assert row["nodes_bound"] == 5  # max(ceil(36 / 7.2), ceil(72 / 28.8)) = max(5, 3)
    assert row["hours"] == 24.0 and row["node_hours"] == 144.0
    assert row["cost_static"] == pytest.approx(57.60)
    assert row["cost_autoscaled"] == pytest.approx(57.60)


def test_identical_pods_need_more_nodes_than_the_fractional_bound() -> None:
    # 70 req/s at 10 per pod and 0.7 -> exactly 10 pods (not 11: float noise is tolerated); 2 cores / 4 GiB each
    plan = plan_capacity(hourly([70.0] * 2), capacity_per_pod=10.0, pod_cpu_cores=2.0, pod_memory_gib=4.0, **NODE)
    row = plan.iloc[0]
    assert row["replicas"] == 10
    assert row["nodes_bound"] == 3  # 20 cores / 7.2 usable -> 2.78 -> 3
    assert row["nodes"] == 4  # 3 pods per node -> ceil(10 / 3)


@pytest.mark.parametrize("demand", [0.0, 0.3, 6.9, 7.0, 7.01, 95.0, 1234.5])
def test_replicas_follow_the_scaling_rule(demand: float) -> None:
    plan = plan_capacity(hourly([demand] * 2), capacity_per_pod=10.0, pod_cpu_cores=0.1, pod_memory_gib=0.1,
                         min_replicas=0, **NODE)  # fmt: skip
    assert plan["replicas"].iloc[0] == replicas_for_demand(demand, 10.0, 0.7)


def test_min_replicas_keeps_a_pod_and_a_node_for_zero_demand() -> None:
    plan = plan_capacity(hourly([0.0] * 3), capacity_per_pod=10.0, pod_cpu_cores=1.0, pod_memory_gib=1.0, **NODE)
    assert plan[["replicas", "nodes", "nodes_bound"]].iloc[0].tolist() == [1, 1, 1]


def test_static_cost_pays_for_the_peak_all_period_autoscaled_follows_demand() -> None:
    # 3 pods per node: 12 h needing 5 pods (2 nodes), then 12 h needing 9 pods (3 nodes)
    values = [35.0] * 12 + [63.0] * 12  # 35 / 7 = 5 pods, 63 / 7 = 9 pods
    plan = plan_capacity(hourly(values), capacity_per_pod=10.0, pod_cpu_cores=2.0, pod_memory_gib=4.0, **NODE)
    row = plan.iloc[0]
    assert (row["replicas"], row["nodes"]) == (9, 3)
    assert row["cost_static"] == pytest.approx(3 * 24 * 0.40)
    assert row["node_hours"] == pytest.approx(12 * 2 + 12 * 3)
    assert row["cost_autoscaled"] == pytest.approx(60 * 0.40)
    assert row["cost_autoscaled"] < row["cost_static"]


def test_periods_follow_utc_calendar_days_weeks_and_months() -> None:
    frame = hourly(np.arange(24 * 14, dtype=float))  # Mon 29 Jan .. Sun 11 Feb 2024, rising demand
    kw = {"capacity_per_pod": 10.0, "pod_cpu_cores": 0.5, "pod_memory_gib": 1.0, **NODE}
    days = plan_capacity(frame, period="day", **kw)
    weeks = plan_capacity(frame, period="week", **kw)
    months = plan_capacity(frame, period="month", **kw)
    assert len(days) == 14 and (days["hours"] == 24).all()
    assert weeks["period_start"].tolist() == [MONDAY, MONDAY + pd.Timedelta("7D")]
    assert months["period_start"].tolist() == [pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-02-01T00:00Z")]
    assert months["hours"].tolist() == [72.0, 264.0]  # 29-31 Jan, 1-11 Feb
    assert months["peak_demand"].tolist() == [71.0, 335.0]
    assert weeks["replicas"].iloc[1] == math.ceil(335 / 7)


def test_margin_plans_for_more_demand() -> None:
    plan = plan_capacity(hourly([70.0] * 2), capacity_per_pod=10.0, pod_cpu_cores=1.0, pod_memory_gib=1.0,
                         margin=0.2, **NODE)  # fmt: skip
    assert plan["replicas"].iloc[0] == 12  # ceil(70 * 1.2 / 7)
    assert plan["peak_demand"].iloc[0] == pytest.approx(84.0)
    with pytest.raises(InputError, match="margin"):
        plan_capacity(hourly([70.0] * 2), capacity_per_pod=10.0, pod_cpu_cores=1.0, pod_memory_gib=1.0,
                      margin=-1.0, **NODE)  # fmt: skip


def test_peak_margin_worked_example() -> None:
    # daily forecast peaks 100, 200, 400 against actual peaks 110, 180, 460 -> ratios 1.1, 0.9, 1.15
    rows = []
    for day, (f, a) in enumerate([(100.0, 110.0), (200.0, 180.0), (400.0, 460.0)]):
        start = MONDAY + pd.Timedelta(days=day)
        rows.append(pd.DataFrame({"ds": [start, start + pd.Timedelta("12h")], "ensemble": [f / 2, f],
                                  "y": [a, a / 3]}))  # the peaks need not fall on the same step
    scored = pd.concat(rows, ignore_index=True)
    assert peak_margin(scored) == pytest.approx(0.15)
    assert peak_margin(scored, quantile=0.5) == pytest.approx(0.1)
    assert peak_margin(scored, quantile=0.0) == 0.0  # never below 0: 0.9 - 1 is clipped
    assert peak_margin(scored.assign(ensemble=scored["ensemble"] * 2), period="week") == 0.0


@pytest.mark.parametrize(
    ("frame", "kw", "message"),
    [
        (hourly([1.0, 2.0]), {}, "column 'ensemble' is missing"),
        (hourly([1.0, 2.0]).assign(ensemble=1.0), {"quantile": 2.0}, "quantile"),
        (hourly([1.0, 2.0]).assign(ensemble=float("nan")), {}, "no row"),
        (hourly([1.0, 2.0]).assign(ensemble=0.0), {}, "forecast peak is 0"),
    ],
    ids=["no-forecast", "bad-quantile", "all-nan", "zero-forecast"],
)
def test_peak_margin_rejects_bad_input(frame: pd.DataFrame, kw: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        peak_margin(frame, **kw)


def test_period_start_rejects_unknown_period() -> None:
    with pytest.raises(InputError, match="period 'quarter'"):
        period_start(pd.Series(pd.date_range(MONDAY, periods=2, freq="1h")), "quarter")


def test_default_column_is_the_widest_upper_band() -> None:
    frame = week_forecast()
    kw = {"capacity_per_pod": 1.0, "pod_cpu_cores": 0.1, "pod_memory_gib": 0.1, "period": "week", **NODE}
    assert plan_capacity(frame, **kw)["peak_demand"].iloc[0] == pytest.approx(167 * 1.2)
    assert plan_capacity(frame, column="ensemble", **kw)["peak_demand"].iloc[0] == pytest.approx(167)


@pytest.mark.parametrize(
    ("frame", "kw", "message"),
    [
        (hourly([1.0, -1.0]), {}, "y is -1.0 at 2024-01-29 01:00"),
        (hourly([1.0, float("nan")]), {}, "must be finite"),
        (hourly([1.0, 2.0]).assign(ds=lambda f: f["ds"].dt.tz_localize(None)), {}, "tz-aware"),
        (hourly([1.0, 2.0]), {"column": "ensemble"}, "column 'ensemble'"),
        (hourly([1.0, 2.0]), {"capacity_per_pod": 0.0}, "capacity_per_pod"),
        (hourly([1.0, 2.0]), {"target_utilisation": 1.5}, "target_utilisation"),
        (hourly([1.0]), {}, "two timestamps"),
    ],
    ids=["negative", "nan", "naive", "missing-column", "zero-capacity", "bad-target", "one-row"],
)
def test_plan_capacity_rejects_bad_input(frame: pd.DataFrame, kw: dict[str, float], message: str) -> None:
    args = {"capacity_per_pod": 10.0, "pod_cpu_cores": 1.0, "pod_memory_gib": 1.0, **NODE, **kw}
    with pytest.raises(InputError, match=message):
        plan_capacity(frame, **args)


# -- seasonal_profile ------------------------------------------------------------------------------------------
def test_profile_slot_zero_is_monday_midnight_utc_and_round_trips() -> None:
    start = MONDAY + pd.Timedelta("3D5h")  # a Thursday: the fold must not depend on where the frame starts
    profile = seasonal_profile(week_forecast(start))
    assert profile.columns == ("ensemble", "ensemble-lo-80", "ensemble-hi-80", "ensemble-lo-95", "ensemble-hi-95")
    assert profile.values.shape == (168, 5)
    assert profile.values[0, 0] == 0.0 and profile.values[167, 0] == 167.0
    later = pd.date_range(MONDAY + pd.Timedelta("35D"), periods=168, freq="1h")  # five weeks on
    np.testing.assert_allclose(profile.at(later)["ensemble"], np.arange(168))


def test_profile_averages_repeated_slots_and_reads_history() -> None:
    two = hourly(np.r_[np.full(168, 10.0), np.full(168, 20.0)])
    profile = seasonal_profile(two)
    assert profile.columns == ("y",)
    np.testing.assert_allclose(profile.values[:, 0], 15.0)


def test_profile_shift_reads_the_value_that_many_hours_later() -> None:
    profile = seasonal_profile(week_forecast())
    noon = pd.DatetimeIndex([MONDAY + pd.Timedelta("12h")])
    assert profile.at(noon, pd.Timedelta("6h"))["ensemble"].iloc[0] == 18.0


@pytest.mark.parametrize(
    ("frame", "kw", "message"),
    [
        (week_forecast().iloc[:100], {}, "covers 100 of the 168 slots"),
        (pd.concat([week_forecast(), week_forecast().assign(unique_id="api")]), {}, "pass unique_id"),
        (week_forecast(), {"unique_id": "db"}, "no rows for unique_id 'db'"),
        (week_forecast(), {"period": "5h30min"}, "multiple of the frame's step"),
        (week_forecast().drop(columns=["ensemble"]), {}, "neither"),
    ],
    ids=["short", "two-series", "unknown-id", "bad-period", "no-value-column"],
)
def test_profile_rejects_bad_input(frame: pd.DataFrame, kw: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        seasonal_profile(frame, **kw)


def test_profile_picks_one_series_by_id() -> None:
    both = pd.concat([week_forecast(), week_forecast().assign(unique_id="api", ensemble=1.0)])
    assert seasonal_profile(both, ["ensemble"], unique_id="api").values[:, 0].tolist() == [1.0] * 168


# -- scenarios -------------------------------------------------------------------------------------------------
def flat_profile(value: float = 100.0) -> object:
    return seasonal_profile(hourly([value] * 168))


def test_growth_compounds_monthly_and_events_multiply() -> None:
    # worked example of the module docstring: 5 %/month, 3 months on, uplift 0.5 -> 1.05^3 * 1.5
    when = MONDAY + 3 * MONTH
    campaign = PlannedEvent("campaign", when, when + pd.Timedelta("1D"), uplift=0.5)
    scenario = Scenario("grow", growth_per_month=0.05, events=(campaign,), anchor=MONDAY)
    assert scenario.growth_at(pd.DatetimeIndex([MONDAY - MONTH, MONDAY, when]), MONDAY).tolist() == pytest.approx(
        [1.0, 1.0, 1.157625])  # fmt: skip
    out = scenario_demand(flat_profile(), scenario, when - pd.Timedelta("1h"), when + pd.Timedelta("1h"))
    assert out["event_factor"].tolist() == [1.0, 1.5]
    assert out["y"].iloc[1] == pytest.approx(100 * 1.157625 * 1.5)
    unanchored = Scenario("grow", growth_per_month=0.05)  # anchored at the start of the planned span
    assert scenario_demand(flat_profile(), unanchored, when, when + pd.Timedelta("1h"))["y"].iloc[0] == 100.0


def test_growth_anchor_and_shrinking() -> None:
    scenario = Scenario("shrink", growth_per_month=-0.1, anchor=MONDAY - MONTH)
    out = scenario_demand(flat_profile(), scenario, MONDAY, MONDAY + pd.Timedelta("1h"))
    assert out["y"].iloc[0] == pytest.approx(90.0)


def test_overlapping_events_multiply_and_respect_regions() -> None:
    day = pd.Timedelta("1D")
    events = (PlannedEvent("sale", MONDAY, MONDAY + day, 0.5), PlannedEvent("eu launch", MONDAY, MONDAY + day, 1.0,
                                                                            regions=("eu",)))  # fmt: skip
    scenario = Scenario("both", events=events, regions=(Region("eu", share=0.5),))
    out = scenario_demand(flat_profile(), scenario, MONDAY, MONDAY + pd.Timedelta("1h"))
    by_region = out.set_index("region")["y"]
    assert by_region[HOME] == pytest.approx(150.0)
    assert by_region["eu"] == pytest.approx(100 * 0.5 * 1.5 * 2.0)
    assert out["region"].tolist() == [HOME, "eu"]


def test_region_ramps_up_linearly_after_go_live_and_is_time_shifted() -> None:
    go = MONDAY + pd.Timedelta("2D")
    region = Region("eu", share=0.4, go_live=go, ramp_days=10, shift_hours=6)
    ds = pd.DatetimeIndex([go - pd.Timedelta("1h"), go, go + pd.Timedelta("5D"), go + pd.Timedelta("20D")])
    np.testing.assert_allclose(region.share_at(ds), [0.0, 0.0, 0.2, 0.4])
    instant = Region("eu", share=0.4, go_live=go)
    np.testing.assert_allclose(instant.share_at(ds), [0.0, 0.4, 0.4, 0.4])
    shifted = Scenario("eu", regions=(Region("eu", 1.0, shift_hours=6),))
    out = scenario_demand(seasonal_profile(week_forecast()), shifted, MONDAY + pd.Timedelta("12h"),
                          MONDAY + pd.Timedelta("13h"))  # fmt: skip
    assert out.set_index("region").loc["eu", "ensemble"] == 18.0  # home's 18:00 value at 12:00 UTC


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PlannedEvent("x", MONDAY, MONDAY, 0.1), "must be after start"),
        (lambda: PlannedEvent("x", MONDAY, MONDAY + pd.Timedelta("1h"), -1.0), "above -1"),
        (lambda: PlannedEvent("x", "2024-01-01", "2024-01-02T00:00Z", 0.1), "no timezone"),
        (lambda: Region(HOME, 0.5), "reserved"),
        (lambda: Region("eu", -0.5), "share"),
        (lambda: Region("eu", 0.5, ramp_days=-1), "ramp_days"),
        (lambda: Scenario("s", regions=(Region("eu", 0.5), Region("eu", 0.2))), "repeat"),
        (lambda: Scenario("s", events=(PlannedEvent("x", MONDAY, MONDAY + pd.Timedelta("1h"), 0.1, ("apac",)),)),
         "unknown region"),
        (lambda: Scenario("s", growth_per_month=-1.0), "growth_per_month"),
    ],
    ids=["empty-event", "uplift-minus-one", "naive-start", "home-reserved", "negative-share", "negative-ramp",
         "duplicate-region", "unknown-event-region", "growth-minus-one"],
)  # fmt: skip
def test_scenario_parts_reject_bad_input(build: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build()  # type: ignore[operator]


def test_scenario_demand_rejects_an_empty_span() -> None:
    with pytest.raises(InputError, match="must be after start"):
        scenario_demand(flat_profile(), Scenario("s"), MONDAY, MONDAY)


def test_learned_uplift_worked_example_ignores_lead_and_decay() -> None:
    bins = pd.DataFrame({
        "kind": ["launch"] * 5 + ["holiday"], "phase": ["lead", "event", "event", "event", "decay", "event"],
        "factor": [3.0, 1.2, 1.6, 1.4, 5.0, 0.7],
    })  # fmt: skip
    assert learned_uplift(bins, "launch") == pytest.approx(0.4)
    assert learned_uplift(bins, "launch", "max") == pytest.approx(0.6)
    assert learned_uplift(bins, "holiday") == pytest.approx(-0.3)
    with pytest.raises(InputError, match="no learned 'event' bins for kind 'sale'"):
        learned_uplift(bins, "sale")
    with pytest.raises(InputError, match="statistic"):
        learned_uplift(bins, "launch", "median")


# -- end to end: profile -> scenario -> plan -> totals ---------------------------------------------------------
def test_months_ahead_plan_grows_with_the_scenario_and_totals_add_regions() -> None:
    profile = seasonal_profile(week_forecast())
    start, end = pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-06-01T00:00Z")
    scenario = Scenario("grow+eu", growth_per_month=0.1, regions=(Region("eu", 0.5, go_live="2024-04-01T00:00Z"),))
    demand = scenario_demand(profile, scenario, start, end)
    plan = plan_capacity(demand, capacity_per_pod=5.0, pod_cpu_cores=0.5, pod_memory_gib=1.0, period="month", **NODE)
    home = plan[plan["region"] == HOME].set_index("period_start")
    assert home["replicas"].is_monotonic_increasing and home["replicas"].iloc[-1] > home["replicas"].iloc[0]
    eu = plan[plan["region"] == "eu"].set_index("period_start")
    assert eu[["replicas", "nodes", "cost_static"]].iloc[0].tolist() == [0, 0, 0.0]  # not live yet: no cluster
    assert not np.signbit(eu[["cost_static", "cost_autoscaled", "node_hours"]].to_numpy(float)).any()  # no -0.0
    assert eu["replicas"].iloc[1] > 1
    totals = plan_totals(plan)
    assert len(totals) == 3 and (totals["regions"] == 2).all()
    assert totals["nodes"].tolist() == plan.groupby("period_start", sort=False)["nodes"].sum().tolist()
    assert totals["cost_static"].sum() == pytest.approx(plan["cost_static"].sum())
    with pytest.raises(InputError, match="missing column"):
        plan_totals(plan.drop(columns=["nodes"]))
