"""``forecaster rightsize`` (typer's CliRunner): misnamed columns, planned memory overruns, low-confidence output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from forecaster.cli import app
from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing.frames import UsageError, validate_usage

USAGE = Path(__file__).resolve().parents[1] / "fixtures" / "usage_small.csv"
ENV = {"COLUMNS": "220"}


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _one_red_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


@pytest.mark.parametrize("name", ["container", "id", "pod"])
@pytest.mark.parametrize("policy", ["vpa", "forecaster"])
def test_an_id_column_under_another_name_is_one_line_naming_it(tmp_path: Path, name: str, policy: str) -> None:
    path = tmp_path / "f.csv"
    pd.read_csv(USAGE).rename(columns={ID: name}).to_csv(path, index=False)
    out = _one_red_line(run("rightsize", "--input", path, "--policy", policy))
    assert "f.csv" in out and "unique_id" in out and f"'{name}'" in out, out


def test_validation_names_the_missing_column_and_a_likely_candidate() -> None:
    frame = pd.read_csv(USAGE).rename(columns={ID: "container"})
    with pytest.raises(UsageError, match=r"missing required column\(s\) \['unique_id'\].*'container'.*unique_id"):
        validate_usage(frame)
    with pytest.raises(UsageError, match=r"missing required column\(s\) \['ds'\]"):
        validate_usage(pd.read_csv(USAGE).drop(columns=DS))


def test_planned_memory_overruns_option(tmp_path: Path) -> None:
    safe, risky = tmp_path / "safe.csv", tmp_path / "risky.csv"
    assert run("rightsize", "-i", USAGE, "--policy", "keep", "--output-csv", safe).exit_code == 0
    result = run("rightsize", "-i", USAGE, "--policy", "keep", "--planned-memory-overruns", "0.05",
                 "--output-csv", risky)
    assert result.exit_code == 0, result.output
    a, b = (pd.read_csv(p).set_index([ID, "resource"]) for p in (safe, risky))
    assert (b["target"] <= a["target"]).all()
    assert _one_red_line(run("rightsize", "-i", USAGE, "--planned-memory-overruns", "1.5")).count(
        "--planned-memory-overruns") == 1
