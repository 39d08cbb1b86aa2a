"""Reports, risk and window scoring (report.py, risk.py) on worked numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rs_builders import GIB, MIB, T0, usage_frame

from forecaster.rightsizing.frames import UsageError, validate_usage
from forecaster.rightsizing.report import (
    container_report,
    count_changes,
    group_report,
    sample_slack,
    score_summary,
    score_window,
)
from forecaster.rightsizing.risk import (
    empirical_exceedance,
    exceedance_probability,
    quantile_at,
    quantile_table,
    risk_from_quantiles,
)

NOW = T0 + pd.Timedelta("1h")


@pytest.mark.parametrize(
    ("usage", "req", "expected"),
    [
        ([1.0, 1.5], [2.0, 2.0], 0.375),  # (0.5 + 0.25) / 2
        ([1.0, 1.0], 4.0, 0.75),
        ([3.0], 2.0, -0.5),  # use above the request: negative slack
        ([1.0, 1.0], [0.0, 2.0], 0.5),  # samples without a request are skipped
        ([1.0], 0.0, float("nan")),
    ],
    ids=["worked", "scalar-request", "negative", "skip-zero", "no-request"],
)
def test_sample_slack(usage: list[float], req: list[float] | float, expected: float) -> None:
    got = sample_slack(np.array(usage), np.asarray(req))
    assert got == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    ("levels", "values", "req", "risk"),
    [
        ([0.5, 0.9], [1.0, 2.0], 1.5, 0.30),  # CDF through (0,0), (1,0.5), (2,0.9): F(1.5) = 0.7
        ([0.5, 0.9], [1.0, 2.0], 0.5, 0.75),  # F(0.5) = 0.25
        ([0.5, 0.9], [1.0, 2.0], 3.0, 0.10),  # beyond the table: the whole tail 1 - 0.9
        ([0.5, 0.9], [1.0, 2.0], 2.0, 0.10),
        ([0.9, 0.5], [2.0, 1.0], 1.5, 0.30),  # order of rows does not matter
        ([0.5, 0.9, 0.99], [1.0, 1.0, 2.0], 1.0, 0.10),  # tie: P(use <= 1) >= 0.9
        # crossing quantiles are made monotone, (2, 0.5) and (2, 0.9); at the tie 0.9 counts:
        # CDF through (0, 0) and (2, 0.9) -> F(1.5) = 0.675 -> risk 0.325
        ([0.5, 0.9], [2.0, 1.0], 1.5, 0.325),
        ([1.0], [4.0], 4.0, 0.0),  # a known peak
        ([0.5], [0.0], 0.0, 0.5),  # half the mass at zero
    ],
    ids=["worked", "below", "beyond", "at-top", "unsorted", "tie", "crossing", "peak", "zero"],
)
def test_exceedance_probability(levels: list[float], values: list[float], req: float, risk: float) -> None:
    assert exceedance_probability(np.array(levels), np.array(values), req) == pytest.approx(risk)


def test_exceedance_probability_rejects_bad_tables() -> None:
    with pytest.raises(ValueError, match="levels must lie"):
        exceedance_probability(np.array([1.5]), np.array([1.0]), 1.0)
    with pytest.raises(ValueError, match="as many levels"):
        exceedance_probability(np.array([0.5]), np.array([1.0, 2.0]), 1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.01, 1.0), st.floats(0.0, 100.0)), min_size=1, max_size=8),
    st.floats(0.0, 150.0),
    st.floats(0.0, 150.0),
)
def test_exceedance_is_a_decreasing_probability(table: list[tuple[float, float]], a: float, b: float) -> None:
    levels = np.array([q for q, _ in table])
    values = np.array([v for _, v in table])
    lo, hi = sorted((a, b))
    p_lo = exceedance_probability(levels, values, lo)
    p_hi = exceedance_probability(levels, values, hi)
    assert 0.0 <= p_hi <= p_lo <= 1.0


def test_quantile_at_and_empirical() -> None:
    assert quantile_at(np.array([0.5, 0.9]), np.array([1.0, 2.0]), 0.7) == pytest.approx(1.5)
    assert empirical_exceedance(np.array([1.0, 2.0, 3.0, 4.0]), 2.5) == 0.5
    assert np.isnan(empirical_exceedance(np.array([]), 1.0))


def test_risk_from_quantiles_table() -> None:
    table = pd.DataFrame(
        {"unique_id": ["a", "a"], "resource": ["cpu", "cpu"], "quantile": [0.5, 0.9], "value": [1.0, 2.0]}
    )
    requests = pd.DataFrame({"unique_id": ["a", "b"], "resource": ["cpu", "cpu"], "target": [1.5, 1.0]})
    risk = risk_from_quantiles(table, requests)
    assert risk.iloc[0] == pytest.approx(0.3)
    assert np.isnan(risk.iloc[1])
    with pytest.raises(UsageError, match=r"quantile 1\.5 must lie"):
        risk_from_quantiles(table.assign(quantile=[0.5, 1.5]), requests)


def recs_for(uid: str, cpu: tuple[float, float], mem: tuple[float, float], **labels: str) -> pd.DataFrame:
    """A recommendation frame: (current request, target) per resource."""
    rows = [
        {
            "unique_id": uid,
            "resource": "cpu",
            "request": cpu[0],
            "target": cpu[1],
            "source": "histogram",
            "policy": "t",
        },
        {
            "unique_id": uid,
            "resource": "memory",
            "request": mem[0],
            "target": mem[1],
            "source": "histogram",
            "policy": "t",
        },
    ]
    return pd.DataFrame(rows).assign(**labels)


def test_container_report_worked_numbers() -> None:
    # request 2 cores, use 1 core -> slack 0.5; target 1.5 -> savings 0.5 cores, projected slack 1/3,
    # risk 0 (no sample above 1.5). Memory: request 4 GiB, use 1 GiB, target 1.5 GiB -> slack 0.75,
    # savings 2.5 GiB
    usage = validate_usage(usage_frame(cpu=1.0, memory=GIB, cpu_request=2.0, memory_request=4 * GIB))
    report = container_report(usage, recs_for("shop/cart/app", (2.0, 1.5), (4 * GIB, 1.5 * GIB)), now=NOW)
    cpu, mem = report.iloc[0], report.iloc[1]
    assert (cpu["unit"], mem["unit"]) == ("cores", "GiB")
    assert cpu["slack"] == pytest.approx(0.5) and cpu["savings"] == pytest.approx(0.5)
    assert cpu["projected_slack"] == pytest.approx(1 / 3) and cpu["risk"] == 0.0
    assert (cpu["usage_p50"], cpu["usage_p90"], cpu["usage_peak"], cpu["samples"]) == (1.0, 1.0, 1.0, 12)
    assert mem["slack"] == pytest.approx(0.75) and mem["savings"] == pytest.approx(2.5)
    assert mem["request"] == 4.0 and mem["target"] == 1.5
    assert (cpu["overrun"], mem["overrun"]) == ("throttling", "OOM")
    assert cpu["namespace"] == "shop"  # from the unique_id
    assert cpu["basis"] == "use over the last 24h"


def test_container_report_risk_from_recent_use() -> None:
    # use 0.1 .. 1.2 cores; target 1.0 -> two of twelve samples above: risk 1/6
    usage = validate_usage(usage_frame(cpu=[0.1 * (i + 1) for i in range(12)], cpu_request=2.0))
    report = container_report(usage, recs_for("shop/cart/app", (2.0, 1.0), (GIB, GIB)), now=NOW)
    assert report.iloc[0]["risk"] == pytest.approx(2 / 12)


def test_container_report_from_a_prediction() -> None:
    usage = validate_usage(usage_frame())
    prediction = pd.DataFrame(
        {"unique_id": ["shop/cart/app"] * 2, "resource": ["cpu"] * 2, "quantile": [0.5, 0.9], "value": [1.0, 2.0]}
    )
    report = container_report(usage, recs_for("shop/cart/app", (2.0, 1.5), (GIB, GIB)), now=NOW, prediction=prediction)
    cpu, mem = report.iloc[0], report.iloc[1]
    assert cpu["basis"] == "prediction" and cpu["risk"] == pytest.approx(0.3)
    assert (cpu["usage_p50"], cpu["usage_p90"], cpu["usage_peak"]) == (1.0, 2.0, 2.0)
    assert mem["basis"] == "use over the last 24h"  # no memory rows in the prediction


def test_group_report_sums_and_weights() -> None:
    usage = validate_usage(
        pd.concat(
            [
                usage_frame("shop/a/app", cpu=1.0, cpu_request=2.0, memory=GIB, memory_request=2 * GIB, team="x"),
                usage_frame("shop/b/app", cpu=3.0, cpu_request=4.0, memory=GIB, memory_request=2 * GIB, team="y"),
            ]
        )
    )
    recs = pd.concat(
        [recs_for("shop/a/app", (2.0, 1.5), (2 * GIB, GIB)), recs_for("shop/b/app", (4.0, 3.5), (2 * GIB, GIB))]
    )
    containers = container_report(usage, recs, now=NOW)
    shop = group_report(containers, "namespace")
    cpu = shop.loc[shop["resource"] == "cpu"].iloc[0]
    # requests 2 + 4 = 6 cores, mean use 1 + 3 = 4 -> slack 1 - 4/6 = 1/3; targets 5 -> savings 1 core
    assert (cpu["containers"], cpu["request"], cpu["target"], cpu["savings"]) == (2, 6.0, 5.0, 1.0)
    assert cpu["slack"] == pytest.approx(1 / 3)
    assert cpu["projected_slack"] == pytest.approx(1 - 4 / 5)
    teams = group_report(containers, "team")
    assert list(teams["team"].unique()) == ["x", "y"]
    fleet = group_report(containers, None)
    assert list(fleet["resource"]) == ["cpu", "memory"]
    with pytest.raises(UsageError, match="no column 'region'"):
        group_report(containers, "region")


def test_score_window_worked_numbers() -> None:
    # CPU request 1.0; use 0.5, 1.5, 1.0, 0.8 -> slack (0.5 - 0.5 + 0 + 0.2)/4 = 0.05, above 1/4.
    # memory request 1 GiB; use 0.5, 1.1, 1.2, 0.9 GiB -> 2 overruns
    window = usage_frame(periods=4, cpu=[0.5, 1.5, 1.0, 0.8], memory=[0.5 * GIB, 1.1 * GIB, 1.2 * GIB, 0.9 * GIB])
    scores = score_window(window, recs_for("shop/cart/app", (2.0, 1.0), (2 * GIB, GIB)))
    row = scores.iloc[0]
    assert row["samples"] == 4
    assert row["cpu_slack"] == pytest.approx(0.05)
    assert row["cpu_above_request"] == 0.25
    assert row["memory_overruns"] == 2 and bool(row["memory_overrun"])
    assert row["memory_slack"] == pytest.approx((0.5 - 0.1 - 0.2 + 0.1) / 4)
    # scoring the current requests instead of the targets
    current = score_window(window, recs_for("shop/cart/app", (2.0, 1.0), (2 * GIB, GIB)), column="request").iloc[0]
    assert current["cpu_above_request"] == 0.0 and current["memory_overruns"] == 0
    summary = score_summary(scores)
    assert summary["cpu_above_request"] == 0.25 and summary["memory_overruns"] == 2


def test_score_window_needs_every_recommendation() -> None:
    window = pd.concat([usage_frame("a/x/app", periods=2), usage_frame("b/y/app", periods=2)])
    with pytest.raises(UsageError, match="no cpu recommendation \\(target\\) for container b/y/app"):
        score_window(window, recs_for("a/x/app", (1.0, 1.0), (GIB, GIB)))
    with pytest.raises(UsageError, match="missing column"):
        score_window(window.drop(columns="memory"), recs_for("a/x/app", (1.0, 1.0), (GIB, GIB)))


@pytest.mark.parametrize(
    ("targets", "tolerance", "changes"),
    [([1.0, 1.0, 1.2, 1.1], 0.0, 2), ([1.0, 1.0, 1.2, 1.1], 0.1, 1), ([1.0], 0.0, 0), ([2.0, 1.0, 2.0], 0.0, 2)],
    ids=["any-change", "tolerance", "single", "back-and-forth"],
)
def test_count_changes(targets: list[float], tolerance: float, changes: int) -> None:
    # tolerance 0.1: 1.0 -> 1.2 moves 0.2 > 0.10 (counts); 1.2 -> 1.1 moves 0.1 < 0.12 (does not)
    cutoffs = pd.date_range(T0, periods=len(targets), freq="1D")
    decisions = pd.DataFrame({"unique_id": "a", "resource": "cpu", "target": targets, "cutoff": cutoffs})
    out = count_changes(decisions.iloc[::-1], tolerance=tolerance)  # unsorted input is fine
    assert out.iloc[0]["changes"] == changes
    assert out.iloc[0]["decisions"] == len(targets)


def test_count_changes_needs_columns() -> None:
    with pytest.raises(UsageError, match="missing column"):
        count_changes(pd.DataFrame({"unique_id": ["a"], "resource": ["cpu"], "target": [1.0]}))


def test_memory_report_in_gib() -> None:
    usage = validate_usage(usage_frame(memory=512 * MIB, memory_request=GIB))
    report = container_report(usage, recs_for("shop/cart/app", (1.0, 1.0), (GIB, 768 * MIB)), now=NOW)
    mem = report.iloc[1]
    assert (mem["request"], mem["target"], mem["usage_peak"], mem["savings"]) == (1.0, 0.75, 0.5, 0.25)


def test_quantile_table_from_bands() -> None:
    # point 1.0 with an 80 % band [0.6, 1.8]: quantiles 0.1 -> 0.6, 0.5 -> 1.0, 0.9 -> 1.8
    frame = pd.DataFrame(
        {
            "unique_id": ["a"],
            "resource": ["cpu"],
            "predicted": [1.0],
            "predicted-lo-80": [0.6],
            "predicted-hi-80": [1.8],
        }
    )
    table = quantile_table(frame, "predicted", levels=(80, 95))
    assert list(table["quantile"]) == pytest.approx([0.1, 0.5, 0.9])
    assert list(table["value"]) == [0.6, 1.0, 1.8]
    # request 1.4 sits halfway between the median and the 0.9 quantile: CDF 0.7 -> risk 0.3
    assert risk_from_quantiles(table, frame.assign(target=1.4)).iloc[0] == pytest.approx(0.3)
