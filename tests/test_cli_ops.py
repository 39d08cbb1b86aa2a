"""Tests of ``forecaster rightsize`` and ``forecaster simulate`` (typer's CliRunner) and their helpers.

Right-sizing runs on the committed Bitbrains usage fixture (3 VMs x 10 days at 15 minutes,
``tests/fixtures/usage_small.csv``); simulation on 4 days of the bundled NASA trace, with the predictive
policy kept cheap (seasonal member only, 2 calibration windows, the last 6 hours replayed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner, Result

from forecaster.cli import app
from forecaster.cli.inputs import file_slug, format_amount
from forecaster.cli.simulate import replay_window
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID, Y
from forecaster.datasets import load_nasa_5min
from forecaster.rightsizing import RECOMMENDATION_COLUMNS, rightsize

USAGE = Path(__file__).parent / "fixtures" / "usage_small.csv"
CONTAINERS = ("vm001", "vm004", "vm007")
ENV = {"COLUMNS": "220"}
CHEAP = ["--members", "seasonal", "--calibration-windows", "2", "--forecast-days", "0.25"]
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _png(path: Path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 10_000


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 4 days of the bundled NASA trace (requests per 5 minutes) as a ``ds, y`` CSV."""
    frame = load_nasa_5min()
    frame = frame[frame[DS] < frame[DS].min() + pd.Timedelta("4D")]
    path = tmp_path_factory.mktemp("sim") / "nasa.csv"
    pd.DataFrame({DS: frame[DS].dt.strftime("%Y-%m-%dT%H:%MZ"), Y: frame[Y]}).to_csv(path, index=False)
    return path


# -- help ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["rightsize", "simulate"])
def test_help_mentions_every_option_and_each_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    names = [opt for p in params for opt in p.opts if opt.startswith("--") and opt != "--help"]
    assert len(names) >= 8
    for name in names:
        assert name in result.output, f"{command} --help does not mention {name}"
    for p in params:
        assert getattr(p, "help", None), f"{command}: option {p.name} has no help text"


def test_top_level_help_lists_the_new_commands() -> None:
    result = run("--help")
    assert "rightsize" in result.output and "simulate" in result.output


# -- rightsize -------------------------------------------------------------------------------------------
def test_rightsize_default_policy_is_calibrated(tmp_path: Path) -> None:
    csv = tmp_path / "recs.csv"
    result = run("rightsize", "-i", USAGE, "--output-csv", csv)
    assert result.exit_code == 0, result.output
    assert "Right-sizing: policy calibrated" in result.output and "use (observed)" in result.output
    assert set(pd.read_csv(csv)["policy"]) == {"calibrated"}


def test_rightsize_forecaster_policy_prints_tables_and_writes_csv_json_and_charts(tmp_path: Path) -> None:
    csv, js, charts = tmp_path / "recs.csv", tmp_path / "recs.json", tmp_path / "charts"
    result = run("rightsize", "-i", USAGE, "--policy", "forecaster", "--output-csv", csv, "--output-json", js,
                 "--plots", charts)
    assert result.exit_code == 0, result.output
    for text in (
        "Right-sizing: policy forecaster",
        "decision at 2013-08-11 00:00 UTC",
        "window 24 h",
        "Per namespace",
        "total saved:",
        "throttling",
        "OOM",
        "forecast",
        "use (predicted)",
        *CONTAINERS,
    ):
        assert text in result.output, text
    recs = pd.read_csv(csv)
    assert list(recs.columns) == [*RECOMMENDATION_COLUMNS, "namespace"]
    assert len(recs) == 6 and set(recs[ID]) == set(CONTAINERS) and set(recs["policy"]) == {"forecaster"}
    assert recs["reason"].str.len().min() > 20
    assert (recs["lower_bound"] <= recs["target"]).all() and (recs["target"] <= recs["upper_bound"]).all()
    doc = json.loads(js.read_text())
    assert doc["policy"] == "forecaster" and doc["now"].startswith("2013-08-11T00:00") and doc["window_h"] == 24
    assert len(doc["recommendations"]) == 6 and len(doc["containers"]) == 6
    assert {g["resource"] for g in doc["namespace"]} == {"cpu", "memory"}
    names = sorted(p.name for p in charts.iterdir())
    assert names == ["requested_vs_actual.png", "vm001.png", "vm004.png", "vm007.png"]
    assert all(_png(charts / n) for n in names)


@pytest.mark.parametrize("policy", ["vpa", "cost-selected", "moving-window", "keep"])
def test_rightsize_baseline_policies_match_the_python_api(policy: str, tmp_path: Path) -> None:
    csv = tmp_path / "recs.csv"
    result = run("rightsize", "-i", USAGE, "--policy", policy, "--output-csv", csv)
    assert result.exit_code == 0, result.output
    assert f"policy {policy}" in result.output and "use (observed)" in result.output
    expected = rightsize(pd.read_csv(USAGE), policy=policy).recommendations
    got = pd.read_csv(csv)
    assert got["target"].to_numpy() == pytest.approx(expected["target"].to_numpy())
    if policy == "keep":
        assert "total saved: 0.000 cores, 0.00 GiB" in result.output


def test_rightsize_table_units_cores_and_mib_gib() -> None:
    assert format_amount(2.0, "cpu") == "2.000" and format_amount(0.025, "cpu") == "0.025"
    assert format_amount(600 * 2**20, "memory") == "600 MiB" and format_amount(8 * 2**30, "memory") == "8.00 GiB"
    assert format_amount(float("nan"), "cpu") == "—"
    assert file_slug("shop/cart/app") == "shop_cart_app" and file_slug("///") == "container"


def test_rightsize_now_window_and_team_summary(tmp_path: Path) -> None:
    usage = pd.read_csv(USAGE)
    usage["team"] = usage[ID].map({"vm001": "payments", "vm004": "search", "vm007": "search"})
    path = tmp_path / "usage.parquet"
    usage.assign(ds=pd.to_datetime(usage[DS], utc=True)).to_parquet(path)
    js = tmp_path / "r.json"
    result = run("rightsize", "-i", path, "--policy", "vpa", "--now", "2013-08-06T00:00Z", "--window", "12h",
                 "--by", "team", "--output-json", js)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "decision at 2013-08-06 00:00 UTC, window 12 h" in result.output
    assert "Per team" in result.output and "payments" in result.output and "search" in result.output
    doc = json.loads(js.read_text())
    search = [g for g in doc["team"] if g["team"] == "search"]
    assert {g["containers"] for g in search} == {2}
    assert doc["recommendations"] == json.loads(json.dumps(doc["recommendations"]))  # plain JSON
    samples = {r["unique_id"]: r["samples"] for r in doc["containers"] if r["resource"] == "cpu"}
    assert samples == {"vm001": 48, "vm004": 48, "vm007": 48}  # 12 h of 15-minute samples before --now


def test_rightsize_ooms_raise_the_memory_target(tmp_path: Path) -> None:
    ooms = tmp_path / "ooms.csv"
    ooms.write_text("unique_id,ds\nvm004,2013-08-10T12:00Z\n")
    with_oom, without = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("rightsize", "-i", USAGE, "--policy", "vpa", "--ooms", ooms, "--output-csv", with_oom).exit_code == 0
    assert run("rightsize", "-i", USAGE, "--policy", "vpa", "--output-csv", without).exit_code == 0
    a, b = (pd.read_csv(p).set_index([ID, "resource"])["target"] for p in (with_oom, without))
    assert a[("vm004", "memory")] > 1.2 * b[("vm004", "memory")]
    assert a[("vm001", "memory")] == b[("vm001", "memory")]


def _usage_variant(tmp_path: Path, change: str) -> Path:
    usage = pd.read_csv(USAGE)
    if change == "no-request":
        usage = usage.drop(columns="cpu_request")
    elif change == "negative":
        usage.loc[(usage[ID] == "vm004") & (usage.index % 7 == 3), "cpu"] = -1.0
    elif change == "millicores":
        usage["cpu"], usage["cpu_request"] = usage["cpu"] * 1000, usage["cpu_request"] * 1000
    elif change == "kb":
        usage["memory_request"] = usage["memory_request"] / 1024
    elif change == "naive":
        usage[DS] = usage[DS].str.rstrip("Z")
    elif change == "nan-request":
        usage.loc[usage[ID] == "vm007", "memory_request"] = np.nan
    path = tmp_path / "usage.csv"
    usage.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "extra", "expected"),
    [
        ("no-request", [], ["usage.csv", "missing required column", "cpu_request"]),
        ("negative", [], ["usage.csv", "cpu of vm004 is negative"]),
        ("millicores", [], ["cpu", "vm001", "millicores", "divide by 1000"]),
        ("kb", [], ["memory_request of vm004", "KiB", "multiply by 1024"]),
        ("nan-request", [], ["memory_request of vm007 is missing"]),
        ("naive", [], ["usage.csv line 2", "timezone-naive", "--tz"]),
        (None, ["--policy", "magic"], ["--policy", "magic", "vpa"]),
        (None, ["--window", "soon"], ["--window", "soon"]),
        (None, ["--now", "yesterday"], ["--now", "yesterday"]),
        (None, ["--now", "2013-08-06 00:00"], ["--now", "no UTC offset"]),
        (None, ["--by", "team"], ["--by team", "no 'team' column"]),
        (None, ["--output-csv", "r.json"], ["--output-csv", ".csv"]),
        (None, ["--ooms", "{tmp}/ooms.csv"], ["ooms.csv", "vm999", "no usage samples"]),
        (None, ["--now", "2000-01-01T00:00Z"], ["no sample before now"]),
    ],
    ids=["missing-request", "negative-use", "millicores", "memory-kb", "nan-request", "naive-ds", "bad-policy",
         "bad-window", "bad-now", "naive-now", "no-team", "bad-output", "oom-unknown", "now-too-early"],
)  # fmt: skip
def test_rightsize_bad_input_exits_2_with_one_line_naming_the_field(
    tmp_path: Path, change: str | None, extra: list[str], expected: list[str]
) -> None:
    (tmp_path / "ooms.csv").write_text("unique_id,ds\nvm999,2013-08-05T00:00Z\n")
    path = _usage_variant(tmp_path, change) if change else USAGE
    result = run("rightsize", "-i", path, "--policy", "vpa", *[e.replace("{tmp}", str(tmp_path)) for e in extra])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for part in expected:
        assert part in result.output, (part, result.output)
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_rightsize_missing_file_is_bad_input(tmp_path: Path) -> None:
    result = run("rightsize", "-i", tmp_path / "nope.csv")
    assert result.exit_code == 2 and "no such usage file" in result.output


# -- simulate --------------------------------------------------------------------------------------------
def test_simulate_all_policies_prints_outcomes_and_writes_json_and_charts(trace: Path, tmp_path: Path) -> None:
    js, charts = tmp_path / "sim.json", tmp_path / "charts"
    result = run("simulate", "-i", trace, *CHEAP, "--output-json", js, "--plots", charts)
    assert result.exit_code == 0, result.output
    for text in (
        "replaying 1995-07-04 22:00 .. 1995-07-05 04:00 UTC",
        "lead time 180 s, HPA on cpu metrics 60 s late",
        "under-prov. min",
        "replica-min",
        "reactive",
        "predictive",
        "oracle",
        "fallbacks",
    ):
        assert text in result.output, text
    doc = json.loads(js.read_text())
    outcomes = {o["policy"]: o for o in doc["outcomes"]}
    assert set(outcomes) == {"reactive", "predictive", "oracle"}
    assert all(o["minutes"] == 360 for o in outcomes.values())
    assert doc["lead_time_s"] == 180 and doc["metric"] == "cpu"
    assert doc["members"] == ["seasonal"] and doc["forecasts_issued"] == 72
    assert outcomes["oracle"]["under_provisioned_minutes"] <= outcomes["reactive"]["under_provisioned_minutes"]
    assert outcomes["predictive"]["fallback_decisions"] == 0  # every decision had a fresh forecast
    assert "lower bound (perfect foresight" in result.output
    bound = doc["bound_replica_minutes"]
    assert set(bound) == set(outcomes)
    for name, o in outcomes.items():  # no policy beats perfect foresight with instant pods at its own risk
        assert 0 < bound[name] <= o["replica_minutes"]
    # the bound at the reactive HPA's risk, recomputed from the replayed minutes (ceil(demand / capacity))
    minutes = pd.read_csv(trace).iloc[-72:]
    need = np.ceil(np.repeat(minutes[Y].to_numpy(float), 5) / doc["capacity_per_pod"] - 1e-9).clip(min=1)
    excess = np.sort(need - 1)[::-1]
    expected = need.sum() - excess[: outcomes["reactive"]["under_provisioned_minutes"]].sum()
    assert bound["reactive"] == pytest.approx(expected)
    peak = float(pd.read_csv(trace)[Y].iloc[-72:].max())
    assert doc["capacity_per_pod"] == pytest.approx(peak / 40)  # the replayed peak needs 40 pods at 100 %
    names = sorted(p.name for p in charts.iterdir())
    assert names == ["pareto.png", "replay_oracle.png", "replay_predictive.png", "replay_reactive.png"]
    assert all(_png(charts / n) for n in names)


def test_simulate_reactive_only_replays_a_short_trace_whole(trace: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(trace).iloc[:288]  # one day
    short, js = tmp_path / "day.csv", tmp_path / "day.json"
    frame.to_csv(short, index=False)
    result = run("simulate", "-i", short, "--policy", "reactive", "--capacity-per-pod", "25", "--max-replicas", "20",
                 "--output-json", js)  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(js.read_text())
    (o,) = doc["outcomes"]
    assert o["policy"] == "reactive" and o["minutes"] == 1440 and o["peak_replicas"] <= 20
    assert doc["capacity_per_pod"] == 25


def test_simulate_oracle_with_peak_pods_and_a_gap_filled(trace: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(trace)
    frame.loc[frame.index[-30], Y] = np.nan  # an outage sample: filled, counted
    path, js = tmp_path / "gap.csv", tmp_path / "gap.json"
    frame.to_csv(path, index=False)
    result = run("simulate", "-i", path, "--policy", "oracle", "--peak-pods", "10", "--forecast-days", "0.5",
                 "--output-json", js)  # fmt: skip
    assert result.exit_code == 0, result.output
    (o,) = json.loads(js.read_text())["outcomes"]
    assert o["filled_minutes"] == 5 and o["peak_replicas"] >= 10


def test_replay_window_rules() -> None:
    ten = pd.date_range("2024-01-01", periods=10 * 288, freq="5min", tz="UTC")
    start, end = replay_window(ten, None, True)
    assert start == pd.Timestamp("2024-01-08", tz="UTC") and end == pd.Timestamp("2024-01-11", tz="UTC")
    assert replay_window(ten[: 4 * 288], None, True)[0] == pd.Timestamp("2024-01-04", tz="UTC")  # 3 days train
    assert replay_window(ten, 0.5, True)[0] == pd.Timestamp("2024-01-10 12:00", tz="UTC")
    hourly = pd.date_range("2024-01-01", periods=5 * 24, freq="1h", tz="UTC")
    assert replay_window(hourly, 1.1, True)[0] == pd.Timestamp("2024-01-04 22:00", tz="UTC")  # on the hour grid
    day = ten[:288]
    assert replay_window(day, None, False) == (day[0], day[-1] + pd.Timedelta("5min"))
    with pytest.raises(InputError, match="at least 3"):
        replay_window(day, None, True)
    with pytest.raises(InputError, match=r"leaves 1\.5 days"):
        replay_window(ten[: 4 * 288], 2.5, True)
    with pytest.raises(InputError, match="not shorter than the trace"):
        replay_window(ten, 10, False)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--policy", "magic"], ["--policy", "magic"]),
        (["--capacity-per-pod", "5", "--peak-pods", "40"], ["--capacity-per-pod", "--peak-pods", "not both"]),
        (["--quantile", "hi-200"], ["--quantile", "hi-200"]),
        (["--target", "1.5"], ["--target", "(0, 1]"]),
        (["--min-replicas", "5", "--max-replicas", "2"], ["--max-replicas"]),
        (["--members", "seasonal,prophet"], ["--members", "prophet"]),
        (["--members", "lgbm"], ["--members", "seasonal", "required"]),
        (["--member-param", "seasonal.bogus=1"], ["--member", "bogus"]),
        (["--forecast-days", "2.5"], ["--forecast-days", "leaves 1.5 days"]),
        (["--forecast-days", "9"], ["--forecast-days", "not shorter"]),
        (["--output-json", "out.csv"], ["--output-json", ".json"]),
    ],
    ids=["bad-policy", "both-capacities", "bad-quantile", "bad-target", "bad-bounds", "unknown-member",
         "no-seasonal", "bad-member-param", "too-little-training", "too-long", "bad-output"],
)  # fmt: skip
def test_simulate_bad_options_exit_2_with_one_line(trace: Path, extra: list[str], expected: list[str]) -> None:
    result = run("simulate", "-i", trace, *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for part in expected:
        assert part in result.output, (part, result.output)
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ds,y\n2024-01-01T00:00Z,1\n2024-01-01T00:05Z,2\n", ["t.csv", "spans 0.2 hours", "at least 3 days"]),
        ("ds,y\n2024-01-01T00:00Z,1\n2024-01-01T00:00Z,2\n", ["t.csv", "duplicate"]),
        ("ds,y\n2024-01-01T00:00Z,1\n2024-01-01T00:07Z,2\n2024-01-01T00:10Z,2\n", ["t.csv", "off the"]),
        ("unique_id,ds,y\na,2024-01-01T00:00Z,1\nb,2024-01-01T00:00Z,1\n", ["t.csv", "2 workloads", "--id"]),
        ("ds,requests\n2024-01-01T00:00Z,1\n", ["t.csv", "'y'"]),
    ],
    ids=["too-short", "duplicate", "off-grid", "several-workloads", "missing-y"],
)
def test_simulate_bad_trace_exits_2_naming_the_file(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    result = run("simulate", "-i", path)
    assert result.exit_code == 2, result.output
    for part in expected:
        assert part in result.output, (part, result.output)
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_simulate_picks_one_workload_with_id(trace: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(trace).iloc[:288]
    both = pd.concat([frame.assign(unique_id="a"), frame.assign(unique_id="b", y=frame[Y] * 2)])
    path, js = tmp_path / "two.csv", tmp_path / "two.json"
    both.to_csv(path, index=False)
    result = run("simulate", "-i", path, "--id", "b", "--policy", "reactive", "--capacity-per-pod", "10",
                 "--output-json", js)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(js.read_text())["outcomes"][0]["minutes"] == 1440
    missing = run("simulate", "-i", path, "--id", "c", "--policy", "reactive")
    assert missing.exit_code == 2 and "--id 'c'" in missing.output


# -- issue 16: simulate names file lines and refuses absurd demand ------------------------------------------
def _nasa_lines(rows: int) -> list[str]:
    frame = load_nasa_5min().iloc[:rows]
    return [f"{t:%Y-%m-%dT%H:%MZ},{v:g}" for t, v in zip(frame[DS], frame[Y], strict=True)]


def test_simulate_refuses_an_absurd_value_naming_its_file_line(tmp_path: Path) -> None:
    lines = _nasa_lines(1200)
    lines[700] = lines[700].split(",")[0] + ",1e300"
    path = tmp_path / "t.csv"
    path.write_text("ds,y\n" + "\n".join(lines) + "\n")
    result = run("simulate", "-i", path, "--policy", "reactive")
    assert result.exit_code == 2, result.output
    assert "t.csv line 702: column 'y' value 1e+300 is implausible" in " ".join(result.output.split())


def test_simulate_names_both_file_lines_of_a_duplicate(tmp_path: Path) -> None:
    lines = _nasa_lines(1200)
    lines[1001] = lines[1000].split(",")[0] + ",277"
    path = tmp_path / "dup.csv"
    path.write_text("ds,y\n" + "\n".join(lines) + "\n")
    result = run("simulate", "-i", path, "--policy", "reactive")
    assert result.exit_code == 2, result.output
    assert "dup.csv line 1003: duplicate timestamp" in result.output and "(same as line 1002)" in result.output
