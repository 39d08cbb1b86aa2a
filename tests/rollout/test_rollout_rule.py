"""The pure rollout parts (``forecaster.cycle.rollout``): losses, the paired test with its worked example, the rule
table, scoring both models on the same points, and the feedback-loop guard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, hi, lo
from forecaster.cycle.rollout import (
    Evidence,
    RolloutPolicy,
    Scores,
    ShadowLog,
    dm_statistic,
    judge,
    long_run_variance,
    per_pod_demand,
    pinball,
    row_losses,
)

T0 = pd.Timestamp("2024-03-10T12:00Z")


def test_pinball_and_the_row_loss_worked_example() -> None:
    assert pinball(np.array([10.0]), np.array([12.0]), 0.9)[0] == pytest.approx(0.2)
    assert pinball(np.array([10.0]), np.array([6.0]), 0.1)[0] == pytest.approx(0.4)
    frame = pd.DataFrame({Y: [10.0], ENSEMBLE: [8.0], lo(ENSEMBLE, 80): [6.0], hi(ENSEMBLE, 80): [12.0]})
    loss, absolute, inside = row_losses(frame, (80,))
    assert loss[0] == pytest.approx((1 + 0.4 + 0.2) / 3)  # 0.5333
    assert absolute[0] == 2.0 and inside == {80: pytest.approx(np.array([1.0]))}


def test_the_paired_test_worked_example() -> None:
    champion = np.array([4, 6, 5, 5, 4, 6], dtype=float)
    challenger = np.array([3, 4, 4, 3, 3, 4], dtype=float)
    d = 0.98 * champion - challenger
    assert d.tolist() == pytest.approx([0.92, 1.88, 0.9, 1.9, 0.92, 1.88]) and d.mean() == pytest.approx(1.4)
    # K = floor(6^(1/3)) = 1: g_0 = 0.23693, g_1 = -0.19847, lrv = g_0 + 2 (1 - 1/2) g_1 = 0.03847
    assert long_run_variance(d) == pytest.approx(0.23693333 - 0.19846667, rel=1e-6)
    assert dm_statistic(d) == pytest.approx(1.4 / math.sqrt(0.0384667 / 6), rel=1e-5)  # 17.48
    assert dm_statistic(challenger - champion) < -1.645  # not worse


def test_the_paired_test_edge_cases() -> None:
    assert math.isnan(dm_statistic(np.array([])))
    assert dm_statistic(np.array([1.0, 1.0, 1.0])) == math.inf  # constant improvement: no doubt
    assert dm_statistic(np.array([0.0, 0.0])) == 0.0
    assert long_run_variance(np.arange(64.0)) > 0  # K = 4 at n = 64 (not 3 from a floating cube root)


def _evidence(n: int, better: float, worse: float, point: float = 0.0) -> Evidence:
    scores = Scores(1.0, 1.0, {80: 0.8}, 0.1)
    return Evidence(n, scores, scores, better, worse, 0.02, 1.645, 100.0, point)


POLICY = RolloutPolicy(min_points=48, max_points=288, stale_after=pd.Timedelta("3D"))
DAY = pd.Timedelta("1D")


@pytest.mark.parametrize(("evidence", "age", "action", "why"), [
    (None, None, "promote", "no champion"),
    (None, DAY, "wait", "0 of 48 points"),
    (_evidence(10, 5.0, -5.0), DAY, "wait", "10 of 48 points"),  # strong but too few points
    (_evidence(10, 0.0, 0.0), 4 * DAY, "promote", "stale"),
    (_evidence(48, -3.0, 2.0), 4 * DAY, "reject", "worse"),  # proven worse: never serves, stale champion or not
    (_evidence(48, 2.0, -3.0), DAY, "promote", "better by more than 2 %"),
    (_evidence(48, 2.0, -3.0, point=2.0), DAY, "reject", "point forecast worse"),  # wider bands, worse point
    (_evidence(48, 1.0, -1.0), 4 * DAY, "promote", "stale"),
    (_evidence(288, 1.0, -1.0), DAY, "reject", "not better by 2 % after 288 points"),
    (_evidence(100, 1.0, -1.0), DAY, "wait", "no verdict yet"),
], ids=["first-model", "no-points", "too-few-points", "stale-few-points", "worse", "better", "point-worse",
        "stale-no-verdict", "undecided-at-max", "undecided"])
def test_the_rule(evidence: Evidence | None, age: pd.Timedelta | None, action: str, why: str) -> None:
    verdict = judge(evidence, POLICY, age)
    assert verdict.action == action and why in verdict.reason


def _forecast(at: pd.Timestamp, values: list[float], uid: str = "a", width: float = 2.0) -> pd.DataFrame:
    ds = pd.date_range(at + pd.Timedelta("5min"), periods=len(values), freq="5min")
    v = np.asarray(values, dtype=float)
    return pd.DataFrame({ID: uid, DS: ds, ENSEMBLE: v, lo(ENSEMBLE, 80): v - width, hi(ENSEMBLE, 80): v + width})


def test_both_models_are_scored_on_the_same_points() -> None:
    log = ShadowLog((80,), pd.Timedelta("1h"))
    log.add(T0, _forecast(T0, [10, 10]), _forecast(T0, [12, 12]))
    later = T0 + pd.Timedelta("5min")
    log.add(later, _forecast(later, [10, 10]), _forecast(later, [12, 12]))
    history = pd.DataFrame({ID: "a", DS: [T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("10min")], Y: [10.0, 10.0]})
    assert log.score(history) == 2
    # 12:05 is scored against the 12:00 pair only (the 12:05 pair was issued at it); 12:10 against both pairs
    assert log.n_points == 2 and [p.rows for p in log.points.values()] == [1, 2]
    ev = log.evidence(RolloutPolicy())
    assert ev.champion.mae == 0.0 and ev.challenger.mae == 2.0 and ev.challenger.coverage == {80: 1.0}
    assert ev.champion.pinball < ev.challenger.pinball and ev.improvement < 0
    assert ev.mean_actual == 10.0 and ev.mae_worse_statistic == math.inf  # 2 - 1.02 x 0 on both points
    assert len(log.issued) == 2  # 12:10 may be re-fetched: the 12:00 pair, whose last row it is, is kept
    log.score(pd.DataFrame({ID: "a", DS: [T0 + pd.Timedelta("15min")], Y: [10.0]}))
    assert [at for at, _, _ in log.issued] == [later]  # all of the 12:00 pair is in the past now


def test_a_refetched_bucket_replaces_its_point_and_rows_beyond_the_lead_are_not_scored() -> None:
    log = ShadowLog((80,), pd.Timedelta("5min"))
    log.add(T0, _forecast(T0, [10, 10]), _forecast(T0, [11, 11]))
    first = pd.DataFrame({ID: "a", DS: [T0 + pd.Timedelta("5min")], Y: [9.0]})
    log.score(first)
    log.score(first.assign(**{Y: [10.0]}))
    assert log.n_points == 1 and next(iter(log.points.values())).champion_abs == 0.0
    log.score(pd.DataFrame({ID: "a", DS: [T0 + pd.Timedelta("10min")], Y: [10.0]}))
    assert log.n_points == 1  # 12:10 is 10 min after the issue: beyond the 5 min lead


def test_rows_one_model_lacks_are_not_scored_for_either() -> None:
    log = ShadowLog((80,))
    log.add(T0, pd.concat([_forecast(T0, [10]), _forecast(T0, [5], "b")]), _forecast(T0, [12]))
    log.score(pd.DataFrame({ID: ["a", "b"], DS: [T0 + pd.Timedelta("5min")] * 2, Y: [10.0, 5.0]}))
    assert [p.rows for p in log.points.values()] == [1]


@pytest.mark.parametrize(("query", "flagged"), [
    ('sum(rate(http_requests_total{service="web"}[5m]))', ""),
    ('sum(rate(container_cpu_usage_seconds_total{pod=~"web-.*"}[5m]))', ""),
    ('avg(rate(http_requests_total{service="web"}[5m]))', "averages over pods"),
    ('avg by (service) (rate(http_requests_total[5m]))', "averages over pods"),
    ('avg_over_time(sum(rate(http_requests_total[5m]))[10m:])', ""),
    ('sum(rate(http_requests_total[5m])) / count(up{job="web"})', "divides by a count"),
    ('sum(rate(x[5m])) / sum(kube_deployment_status_replicas{deployment="web"})', "divides by a count"),
    ('sum(rate(container_cpu_usage_seconds_total[5m])) / sum(kube_pod_container_resource_requests)', "utilisation"),
    ('rate(container_cpu_usage_seconds_total{pod="web-1"}[5m])', "per pod"),
    ('sum by (pod) (rate(http_requests_total[5m]))', "per pod"),
    ('hpa_cpu_utilization{hpa="web"}', "utilisation"),
], ids=["sum-rate", "total-cpu", "avg", "avg-by", "avg-over-time", "per-count", "per-replicas", "utilisation",
        "cpu-per-pod", "by-pod", "utilization-name"])
def test_the_feedback_loop_guard(query: str, flagged: str) -> None:
    warning = per_pod_demand(query)
    if flagged:
        assert flagged in warning and "sum(rate(http_requests_total[5m]))" in warning
    else:
        assert warning == ""
