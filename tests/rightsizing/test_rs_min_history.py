"""Each policy states the history it needs (``Policy.min_history``); below it a recommendation is ``low_confidence``:
a warning, a mark on the row and in its reason, and no risk figure (too little history to know it).

The issue's case: ``forecaster rightsize`` on 2.5 hours of samples cut memory from 8 GiB to 1.3 GiB and said
"risk 0.0 %".
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rs_builders import T0, history, usage_frame
from typer.testing import CliRunner

from forecaster.cli import app
from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing import LowConfidenceWarning, rightsize
from forecaster.rightsizing.api import PREDICTIVE_POLICIES
from forecaster.rightsizing.frames import LOW_CONFIDENCE, RECOMMENDATION_COLUMNS
from forecaster.rightsizing.policies import MIN_HISTORY, POLICIES, get_policy
from forecaster.rightsizing.recommend import recommend

USAGE = Path(__file__).resolve().parents[1] / "fixtures" / "usage_small.csv"


def first_hours(hours: float) -> pd.DataFrame:
    usage = pd.read_csv(USAGE)
    ds = pd.to_datetime(usage[DS], utc=True)
    return usage[ds < ds.min() + pd.Timedelta(hours=hours)].reset_index(drop=True)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_registered_policy_states_the_history_it_needs(name: str) -> None:
    table = pd.DataFrame(columns=[ID, "resource", "statistic", "source", "predicted", "predicted-hi-80",
                                  "predicted-hi-95", "reason"])
    policy = get_policy(name, prediction=table) if name in PREDICTIVE_POLICIES else get_policy(name)
    assert isinstance(policy.min_history, pd.Timedelta)
    assert policy.min_history == (pd.Timedelta(0) if name == "keep" else MIN_HISTORY)


def test_history_span_worked_example() -> None:
    # 10 fifteen-minute samples from 00:00 to 02:15, now 02:30: min(2.5 h since the first, 10 x 15 min) = 2.5 h
    h = history([1.0] * 10, step="15min")
    assert h.span == pd.Timedelta("2.5h")
    # the same 10 samples spread over two days (a gap of 45 h): they cover 10 x 15 min, not two days
    ds = [*pd.date_range(T0, periods=5, freq="15min"), *pd.date_range(T0 + pd.Timedelta("46h"), periods=5,
                                                                     freq="15min")]
    assert history([1.0] * 10, ds=ds, step="15min").span == pd.Timedelta("2.5h")
    assert history([], step="15min").span == pd.Timedelta(0)


@pytest.mark.parametrize("policy", ["forecaster", "vpa", "autopilot", "cost-selected"])
def test_two_and_a_half_hours_are_low_confidence_with_a_warning_and_no_risk(policy: str) -> None:
    with pytest.warns(LowConfidenceWarning, match=r"vm001.*2\.5 h of history.*needs 24 h"):
        result = rightsize(first_hours(2.5), policy=policy)
    recs = result.recommendations
    assert recs[LOW_CONFIDENCE].all()
    assert all(r.startswith("low confidence: 2.5 h of history, policy ") for r in recs["reason"])
    assert result.containers["risk"].isna().all(), "too little history to know the risk: not 0.0 %"
    assert result.containers[LOW_CONFIDENCE].all()
    assert result.namespaces["risk_max"].isna().all() and result.namespaces[LOW_CONFIDENCE].eq(3).all()
    assert result.warnings and "low confidence" in result.warnings[0]


def test_enough_history_is_not_low_confidence() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowConfidenceWarning)
        result = rightsize(first_hours(48), policy="vpa")
    assert not result.recommendations[LOW_CONFIDENCE].any()
    assert result.containers["risk"].notna().all() and result.warnings == ()


def test_keep_needs_no_history() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowConfidenceWarning)
        recs = recommend(usage_frame(periods=3), policy="keep")
    assert not recs[LOW_CONFIDENCE].any()


def test_low_confidence_is_per_container() -> None:
    old = usage_frame("a", periods=2 * 288, start=T0)
    new = usage_frame("b", periods=12, start=T0 + pd.Timedelta("2D") - pd.Timedelta("1h"))
    with pytest.warns(LowConfidenceWarning, match="1 container"):
        recs = recommend(pd.concat([old, new], ignore_index=True), policy="vpa")
    flags = recs.groupby(ID)[LOW_CONFIDENCE].all()
    assert flags.to_dict() == {"a": False, "b": True}
    assert LOW_CONFIDENCE in RECOMMENDATION_COLUMNS and recs[LOW_CONFIDENCE].dtype == np.bool_


def test_cli_marks_low_confidence_and_shows_no_risk_figure(tmp_path: Path) -> None:
    path, csv = tmp_path / "short.csv", tmp_path / "recs.csv"
    first_hours(2.5).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["rightsize", "-i", str(path), "--output-csv", str(csv)], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "warning: low confidence" in result.output and "2.5 h of history" in result.output
    assert "0.0 %" not in result.output and "unknown" in result.output
    got = pd.read_csv(csv)
    assert got[LOW_CONFIDENCE].all() and got["reason"].str.startswith("low confidence").all()
