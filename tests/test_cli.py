"""Tests of the ``forecaster`` command line (typer's CliRunner): help, forecast, backtest, demo, bad input.

Fits are kept small (4.5 days of the bundled NASA trace, 12-step horizons, 2 calibration windows, a
30-round single-thread LightGBM) so the whole file runs in well under a minute of CPU.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner, Result

from forecaster.cli import app
from forecaster.contracts.frames import DS, ENSEMBLE, ID, MEMBERS, Y, forecast_columns, hi, lo
from forecaster.datasets import load_nasa_5min
from forecaster.evaluation.baselines import BASELINES

LEVELS = (80, 95)
SMALL = [
    "--calibration-windows", "2",
    "--member-param", "lgbm.num_rounds=30",
    "--member-param", "lgbm.num_threads=1",
]  # fmt: skip
ENV = {"COLUMNS": "200"}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4.5 days of the NASA trace as history CSVs, plus an events file and a known-in-advance signal.

    ``history``: unique_id column, UTC offsets. ``local``: no unique_id, naive server-local (EDT) stamps.
    ``signals`` covers the history, ``future`` the next 12 steps (a smooth daily "campaign_spend" curve).
    """
    base = tmp_path_factory.mktemp("cli")
    frame = load_nasa_5min()
    frame = frame[frame[DS] < frame[DS].min() + pd.Timedelta("4D12h")]
    pd.DataFrame({ID: "web", DS: frame[DS].dt.strftime("%Y-%m-%dT%H:%MZ"), Y: frame[Y]}).to_csv(
        base / "history.csv", index=False
    )
    local = frame[DS].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d %H:%M")
    pd.DataFrame({DS: local, Y: frame[Y]}).to_csv(base / "web.csv", index=False)
    ds = pd.date_range(frame[DS].min(), frame[DS].max() + pd.Timedelta("1h"), freq="5min")
    spend = 10 + np.sin(2 * np.pi * np.arange(len(ds)) / 288)
    sig = pd.DataFrame({DS: ds, "signal": "campaign_spend", "value": spend, "known_in_advance": True})
    sig.iloc[:-12].to_csv(base / "signals.csv", index=False)
    sig.iloc[-12:].to_csv(base / "future.csv", index=False)
    (base / "events.yaml").write_text(
        "- {name: Independence Day, kind: holiday, start: 1995-07-04T04:00Z, end: 1995-07-05T04:00Z}\n"
    )
    return {p.stem: p for p in base.iterdir()}


@pytest.mark.parametrize("command", ["forecast", "backtest", "demo"])
def test_help_mentions_every_option(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    group = typer.main.get_command(app)
    params = group.commands[command].params  # type: ignore[attr-defined]
    names = [opt for p in params for opt in p.opts if opt.startswith("--") and opt != "--help"]
    assert len(names) >= 3
    for name in names:
        assert name in result.output, f"{command} --help does not mention {name}"
    for p in params:
        assert getattr(p, "help", None), f"{command}: option {p.name} has no help text"
    # defaults written in the help text survive rich markup (square brackets would be swallowed)
    assert "default: file name" in result.output or command == "demo"


def test_top_level_help_lists_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("forecast", "backtest", "demo"):
        assert command in result.output


def _assert_nested(frame: pd.DataFrame) -> None:
    lo95, lo80, hi80, hi95 = (
        frame[c] for c in (lo(ENSEMBLE, 95), lo(ENSEMBLE, 80), hi(ENSEMBLE, 80), hi(ENSEMBLE, 95))
    )
    assert (lo95 <= lo80).all() and (lo80 <= frame[ENSEMBLE]).all()
    assert (frame[ENSEMBLE] <= hi80).all() and (hi80 <= hi95).all()
    assert (hi95 > lo95).any()


def test_forecast_writes_contract_csv_chart_and_model_then_reuses_the_model(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out, fan, model = tmp_path / "f.csv", tmp_path / "fan.png", tmp_path / "fc.zip"
    args = ["forecast", "-i", str(files["web"]), "--tz", "America/New_York", "--horizon", "12", "-o", str(out)]
    args += ["--events", str(files["events"]), "--signals", str(files["signals"])]
    args += ["--future-signals", str(files["future"]), "--country", "US"]
    result = run(*args, "--plot", str(fan), "--save-model", str(model), *SMALL)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == [ID, DS, *forecast_columns(LEVELS, MEMBERS)]
    assert len(frame) == 12 and set(frame[ID]) == {"web"}  # unique_id from the file name
    assert frame[DS].iloc[0] == "1995-07-05T16:00:00Z"  # one step after the last observation, EDT -> UTC
    assert np.isfinite(frame[forecast_columns(LEVELS)].to_numpy()).all()
    _assert_nested(frame)
    for text in ("Forecast summary", "peak next 1 h", "web", "wrote"):
        assert text in result.output
    assert fan.read_bytes()[:4] == b"\x89PNG" and model.stat().st_size > 0

    again = run(
        "forecast", "--model", str(model), "--horizon", "6", "--future-signals", str(files["future"]),
        "--output", str(tmp_path / "f.json"),
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    records = json.loads((tmp_path / "f.json").read_text())
    assert len(records) == 6
    assert [r[ENSEMBLE] for r in records] == pytest.approx(frame[ENSEMBLE].iloc[:6].tolist())


def test_backtest_prints_metrics_and_writes_json_and_frame(files: dict[str, Path], tmp_path: Path) -> None:
    js, cv_path = tmp_path / "m.json", tmp_path / "cv.parquet"
    result = run(
        "backtest", "-i", str(files["history"]), "--horizon", "12", "--windows", "2", "--step", "1D",
        "--events", str(files["events"]),
        "--json", str(js), "--output", str(cv_path), *SMALL,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("Backtest", "MASE", "pinball", "cov 80", "cov 95", "÷sday", ENSEMBLE, *MEMBERS, *BASELINES):
        assert text in result.output
    doc = json.loads(js.read_text())
    assert doc["horizon"] == 12 and len(doc["cutoffs"]) == 2
    by_model = {m["model"]: m for m in doc["metrics"]}
    assert set(by_model) == {ENSEMBLE, *MEMBERS, *BASELINES}
    assert by_model[ENSEMBLE]["kind"] == "ensemble" and by_model["snaive_day"]["kind"] == "baseline"
    for name in (ENSEMBLE, "naive", "snaive_day", "snaive_week"):
        row = by_model[name]
        assert row["n"] == 24 and row["mae"] > 0 and row["mase"] > 0
        assert 0 <= row["coverage-80"] <= row["coverage-95"] <= 1
    assert by_model["snaive_day"]["mae_vs_snaive_day"] == pytest.approx(1.0)
    assert by_model[ENSEMBLE]["mae_vs_snaive_day"] == pytest.approx(
        by_model[ENSEMBLE]["mae"] / by_model["snaive_day"]["mae"]
    )
    cv = pd.read_parquet(cv_path)
    assert len(cv) == 24 and {"cutoff", Y}.issubset(cv.columns)


def test_demo_quick_runs_backtest_service_and_simulated_cluster(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run("demo", "--quick", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    for text in ("Internet Traffic Archive", "Accuracy at 1 h", "snaive_week", "Latest recommendations",
                 "minReplicas", "container app", "Simulated cluster", "predictive floor + HPA", "done in"):
        assert text in result.output
    assert re.search(r"Calibration in this backtest: 80 % band held \d+% of the actuals \((within|outside) 75%-85%\)",
                     " ".join(result.output.split()))
    for name in ("fan_chart.png", "members_chart.png", "replay_chart.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
    forecast = pd.read_csv(out / "forecast.csv")
    assert len(forecast) == 288
    _assert_nested(forecast)
    assert len(list((out / "artefacts").glob("*.zip"))) == 1
    with sqlite3.connect(out / "forecaster.db") as con:
        runs = con.execute("select count(*) from forecasts").fetchone()[0]
        points = con.execute("select count(*) from forecast_points").fetchone()[0]
        kinds = dict(con.execute("select kind, count(*) from decisions group by kind").fetchall())
        accuracy = con.execute("select count(*) from accuracy").fetchone()[0]
    # 6 simulated hours refreshed every 30 min: 13 cycles, each one stored run of 288 points and two decisions
    assert runs == 13 and points == 13 * 288
    assert kinds == {"replicas": 13, "resources": 13}
    assert accuracy >= 6


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "extra", "expected"),
    [
        ("unique_id,ds,y\na,2024-01-01T00:00Z,1\na,2024-01-01T00:00Z,2\n", [], ["duplicate", "unique_id", "ds"]),
        ("ds,y\n2024-01-01 00:00,1\n2024-01-01 00:05,2\n", [], ["'ds'", "timezone-naive", "--tz"]),
        ("ds,requests\n2024-01-01T00:00Z,1\n", [], ["missing column", "'y'"]),
        ("ds,y\n2024-01-01T00:00Z,1\n2024-01-01T00:05Z,-3\n", [], ["'y'", "negative"]),
        ("ds,y\n2024-01-01T00:00Z,1\n2024-01-01T00:03Z,2\n", [], ["off the 5min grid"]),
        ("ds,y\n2024-01-01T00:00Z,1\n", ["--levels", "80,120"], ["--levels", "120"]),
        ("ds,y\n2024-01-01T00:00Z,1\n", ["--output", "out.xlsx"], ["unsupported output file type"]),
        ("ds,y\n2024-01-01T00:00Z,1\n", ["--events", "{tmp}/events.yaml"], ["events.yaml", "kind"]),
    ],
    ids=["duplicate", "naive-no-tz", "missing-y", "negative", "off-grid", "bad-levels", "bad-output", "bad-events"],
)
@pytest.mark.parametrize("command", ["forecast", "backtest"])
def test_bad_input_exits_2_with_one_line_naming_the_column(
    tmp_path: Path, command: str, text: str, extra: list[str], expected: list[str]
) -> None:
    history = _write(tmp_path / "h.csv", text)
    _write(
        tmp_path / "events.yaml", "- {name: launch, kind: party, start: 2024-01-01T00:00Z, end: 2024-01-02T00:00Z}\n"
    )
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    if command == "backtest" and "--output" in extra:
        extra = ["--json", "x.json", "--output", "out.xlsx"]
    result = run(command, "--input", str(history), *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for part in expected:
        assert part in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_forecast_without_input_or_model_is_explained(tmp_path: Path) -> None:
    result = run("forecast", "--output", str(tmp_path / "f.csv"))
    assert result.exit_code == 2
    assert "--input" in result.output and "--model" in result.output


# -- issue 16: too little or absurd history, file lines, --bad-values, progress, help width -----------------------
def _nasa_csv(path: Path, rows: int, edit: dict[int, str] | None = None) -> Path:
    """The first ``rows`` 5-minute rows of the NASA trace as ``ds,y``; ``edit`` replaces data row i's line."""
    frame = load_nasa_5min().iloc[:rows]
    lines = [f"{t:%Y-%m-%dT%H:%MZ},{v:g}" for t, v in zip(frame[DS], frame[Y], strict=True)]
    for i, text in (edit or {}).items():
        lines[i] = text
    path.write_text("ds,y\n" + "\n".join(lines) + "\n")
    return path


def _one_red_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return " ".join(result.output.split())


def test_forecast_on_50_minutes_is_an_error_stating_the_minimum(tmp_path: Path) -> None:
    path = _nasa_csv(tmp_path / "short.csv", 10)
    msg = _one_red_line(run("forecast", "-i", str(path), "-o", str(tmp_path / "f.csv")))
    assert "'short' (10 observed steps, 50 min)" in msg and "at least one day (288 steps at 5min)" in msg
    assert not (tmp_path / "f.csv").exists()


def test_forecast_on_a_day_and_a_half_is_marked_low_confidence(tmp_path: Path) -> None:
    path = _nasa_csv(tmp_path / "young.csv", 432)
    result = run("forecast", "-i", str(path), "--horizon", "12", "-o", str(tmp_path / "f.csv"), *SMALL)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "low confidence (short history): ['young']" in out  # the validation report
    assert "warning: low-confidence forecast for 'young': 432 observed steps (1.5 days)" in out
    assert "2 days + horizon (588 steps)" in out


def test_backtest_without_room_for_one_window_states_what_it_needs(tmp_path: Path) -> None:
    path = _nasa_csv(tmp_path / "young.csv", 500)
    msg = _one_red_line(run("backtest", "-i", str(path), "--horizon", "12", *SMALL))
    assert "'young' (500 observed steps" in msg and "backtest needs at least 2 days + horizon (588 steps" in msg


def test_an_absurd_value_is_an_error_naming_its_file_line(tmp_path: Path) -> None:
    path = _nasa_csv(tmp_path / "huge.csv", 2880, {1500: "1995-07-06T09:00Z,1e300"})
    for command in ("forecast", "backtest"):
        msg = _one_red_line(run(command, "-i", str(path), "-o", str(tmp_path / "f.csv")))
        assert "huge.csv:" in msg and "implausible (|y| > 1e+15)': 1" in msg and "line 1502 " in msg, msg


def test_a_duplicate_is_named_by_both_file_lines(tmp_path: Path) -> None:
    path = _nasa_csv(tmp_path / "dup.csv", 2000)
    lines = path.read_text().splitlines()
    lines[1002] = lines[1001].split(",")[0] + ",277"  # file line 1003 repeats the timestamp of line 1002
    path.write_text("\n".join(lines) + "\n")
    msg = _one_red_line(run("forecast", "-i", str(path)))
    assert "dup.csv: duplicate (unique_id, ds) at line 1003" in msg and "same as line 1002" in msg
    assert "row" not in msg


def test_nan_error_suggests_the_flag_which_turns_bad_values_into_outages(tmp_path: Path) -> None:
    path = _nasa_csv(tmp_path / "gappy.csv", 720, {100: "1995-07-01T12:20Z,", 101: "1995-07-01T12:25Z,-1"})
    msg = _one_red_line(run("forecast", "-i", str(path), "--horizon", "12"))
    assert "{'NaN': 1, 'negative': 1}" in msg and "first at line 102" in msg and "--bad-values outage" in msg
    assert "bad_values=" not in msg
    out = tmp_path / "f.csv"
    args = ["-i", str(path), "--horizon", "12", "--bad-values", "outage", *SMALL]
    result = run("forecast", *args, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "bad values turned into outages: {'gappy': 2}" in " ".join(result.output.split())
    assert len(pd.read_csv(out)) == 12
    assert "--bad-values" in _one_red_line(run("forecast", "-i", str(path), "--bad-values", "maybe"))


def test_reading_and_validating_show_progress_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    import forecaster.cli.forecast as cli

    path = _nasa_csv(tmp_path / "short.csv", 10)
    plain = run("forecast", "-i", str(path))
    assert "reading short.csv" not in plain.output and "validating" not in plain.output
    monkeypatch.setattr(cli, "make_console", lambda: Console(force_terminal=True, width=120))
    shown = run("forecast", "-i", str(path))
    assert "reading short.csv" in shown.output and "validating" in shown.output
    assert shown.exit_code == 2  # progress first, then the one-line error


def _commands() -> dict[str, object]:
    """Every command that takes options, by its path (``"db upgrade"`` for a command of a group)."""
    out: dict[str, object] = {}

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        elif path:
            out[" ".join(path)] = cmd

    walk(typer.main.get_command(app), ())
    return out


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_shows_every_option_name_whole_at_80_columns(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    params = _commands()[command].params  # type: ignore[attr-defined]
    names = [opt for p in params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")]
    assert names
    words = set(result.output.replace(",", " ").replace("/", " ").split())
    for name in names:
        assert name in words, f"{command} --help at 80 columns cuts or drops {name}"
    assert "…" not in result.output


def test_demo_coverage_line_reads_the_backtest_metrics() -> None:
    from forecaster.cli.demo import coverage_line

    metrics = pd.DataFrame({"model": ["ensemble", "lgbm"], "coverage-80": [0.8, 0.5], "coverage-95": [0.99, 0.9]})
    line = coverage_line(metrics, (80, 95))
    assert line == ("Calibration in this backtest: 80 % band held 80% of the actuals (within 75%-85%); "
                    "95 % band held 99% of the actuals (outside 92%-98%)")
