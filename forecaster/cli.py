"""The ``forecaster`` command line: ``forecast`` and ``backtest`` here; ``demo`` (``cli_demo``), ``rightsize`` and
``simulate`` (``cli_ops``), ``controller`` and ``serve`` registered on the same ``app`` by the import at the end of
this module (typer + rich).

A face over the Python API: it reads files (``forecaster.io``), calls ``Forecaster``, shows progress bars
and tables, and writes outputs. Bad input (``InputError``, signals/events errors, unreadable artefacts)
prints one red line naming the file, line or column and exits with code 2, never a traceback; a row of a
CSV file is named by its file line (header = line 1, ``io.history_origin``). The library's warnings
(``ForecasterWarning``: short history, default weights) print as yellow lines. Reading and validating a
history show a progress bar on a terminal. Help is click's plain layout (``rich_markup_mode=None``), which
wraps help text but never cuts an option name, whatever the terminal width.
Entry point ``main()`` (``[project.scripts] forecaster``); called by users, notebooks' shell cells, tests.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from forecaster import io, plots
from forecaster.core import Forecaster
from forecaster.engine import EngineConfig, build_members
from forecaster.errors import ArtefactError, ForecasterWarning, InputError, SeriesError
from forecaster.evaluation.metrics import coverage_col, evaluate_pooled
from forecaster.frames import CUTOFF, DS, ENSEMBLE, ID, MEMBERS, hi, lo, validate_levels
from forecaster.models.baselines import BASELINES, SNAIVE_DAY, SNAIVE_WEEK, baseline_backtest
from forecaster.series import Need, SeriesReport, freq_to_timedelta, prepare_history, require_history, steps_per
from signals.errors import SignalsError
from signals.sources.files import load_events, load_signals

EXIT_BAD_INPUT = 2
Progress_ = Callable[[int, int], None]
app = typer.Typer(
    help="Demand forecasts with calibrated uncertainty bands for Kubernetes workloads.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # click's help layout: option names are never cut at narrow widths (issue 16)
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
BAD_VALUES: tuple[str, ...] = ("error", "outage")


# -- option parsing ------------------------------------------------------------------------------------
def _levels(text: str) -> tuple[int, ...]:
    try:
        return validate_levels(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"--levels {text!r}: {exc}; write e.g. 80,95") from exc


def _freq(text: str) -> str:
    try:
        freq_to_timedelta(text)
    except InputError as exc:
        raise InputError(f"--freq: {exc}") from exc
    return text


def _bad_values(text: str) -> str:
    value = text.strip().lower()
    if value not in BAD_VALUES:
        raise InputError(f"--bad-values {text!r}: choose one of {', '.join(BAD_VALUES)}")
    return value


def _member_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["lgbm.num_rounds=30"]`` -> ``{"lgbm": {"num_rounds": 30}}`` (values parsed as JSON, else text)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        member, dot, name = key.strip().partition(".")
        if not (sep and dot and member and name):
            raise InputError(f"--member-param {item!r}: write MEMBER.PARAM=VALUE, e.g. lgbm.num_rounds=30")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(member, {})[name] = value
    return out


# -- shared options (every option's help says its unit and default) --------------------------------------
InputOpt = Annotated[
    Path, typer.Option("--input", "-i", help="History file, .csv or .parquet: columns ds, y, optional unique_id.")
]
IdOpt = Annotated[
    str | None, typer.Option("--id", help="unique_id when the file has no unique_id column (default: file name).")
]
TzOpt = Annotated[
    str | None,
    typer.Option(help="Timezone (IANA, e.g. UTC, Europe/Paris) of timestamps written without an offset."),
]
FreqOpt = Annotated[str, typer.Option(help="Grid frequency of the history (pandas alias).")]
LevelsOpt = Annotated[str, typer.Option(help="Band levels in percent, comma-separated.")]
EventsOpt = Annotated[Path | None, typer.Option(help="Business events file (.yaml/.csv/.ics).")]
SignalsOpt = Annotated[
    Path | None, typer.Option(help="External signals history (.csv/.parquet: ds, signal, value, known_in_advance).")
]
CountryOpt = Annotated[str | None, typer.Option(help="Add this country's public holidays as events (e.g. US).")]
CalOpt = Annotated[
    int, typer.Option(min=0, help="Backtest windows (1 day apart) used to learn weights and calibrate bands.")
]
SeedOpt = Annotated[int, typer.Option(help="Random seed; equal seeds give equal forecasts.")]
JobsOpt = Annotated[int, typer.Option(help="Worker processes for per-series fits (1 = this process, -1 = all cores).")]
BadValuesOpt = Annotated[
    str,
    typer.Option(
        help="What NaN, inf, negative or implausible (|y| > 1e15) values of y do: error (stop, naming the file "
        "line) or outage (mark those rows as outages: imputed, left out of training and scoring)."
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--member-param", help="Member setting MEMBER.PARAM=VALUE, repeatable (e.g. lgbm.num_rounds=30)."),
]


# -- helpers -------------------------------------------------------------------------------------------
def _console() -> Console:
    """Stdout console; 120 columns when not a terminal (logs, pipes) unless ``COLUMNS`` says otherwise."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120
    return console


@contextmanager
def _bad_input_exits() -> Iterator[None]:
    """Turn bad-input errors into one red line on stderr and exit code 2."""
    try:
        yield
    except (InputError, SignalsError, ArtefactError, FileNotFoundError) as exc:
        msg = " ".join(str(exc).split())
        Console(stderr=True, highlight=False).print(Text(f"error: {msg}", style="bold red"), soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@contextmanager
def _library_warnings(console: Console) -> Iterator[None]:
    """Show the library's ``ForecasterWarning``s (short history, default weights) as yellow lines, once each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ForecasterWarning)
        yield
    seen: set[str] = set()
    for w in caught:
        if not issubclass(w.category, ForecasterWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            console.print(Text(f"warning: {w.message}", "yellow"))


@contextmanager
def _loading(console: Console, path: Path) -> Iterator[tuple[Progress_, Progress_]]:
    """Two ``progress(done, total)`` callbacks: reading ``path`` (bytes) and validating it (steps).

    Drawn only on a terminal: in logs and pipes (and tests) the callbacks do nothing."""
    if not console.is_terminal:
        yield (lambda done, total: None), (lambda done, total: None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        reading = bar.add_task(f"reading {path.name}", total=None)
        checking = bar.add_task("validating", total=None, visible=False)

        def validated(done: int, total: int) -> None:
            bar.update(reading, completed=1, total=1)  # reading is over once validation reports
            bar.update(checking, completed=done, total=total, visible=True)

        yield (lambda done, total: bar.update(reading, completed=done, total=total)), validated


@contextmanager
def _progress(console: Console, label: str) -> Iterator[Progress_]:
    """A rich progress bar driven by the ``progress(done, total)`` callback of ``Forecaster``."""
    columns = (SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def read_validated(
    console: Console, path: Path, unique_id: str | None, tz: str | None, freq: str, bad_values: str = "error"
) -> tuple[pd.DataFrame, pd.DataFrame, SeriesReport]:
    """History as read, its validated clean frame and the report. Errors name file lines and suggest
    ``--bad-values outage``; progress is drawn on a terminal (``_loading``)."""
    origin = replace(io.history_origin(path), bad_values_flag="--bad-values outage")
    with _loading(console, path) as (reading, validating):
        history = io.read_history(path, unique_id=unique_id, tz=tz, progress=reading)
        try:
            clean, report = prepare_history(
                history, freq, bad_values="outage" if bad_values == "outage" else "error", origin=origin,
                progress=validating,
            )  # fmt: skip
        except SeriesError as exc:
            raise type(exc)(f"{path.name}: {exc}") from exc
    return history, clean, report


def _read_inputs(
    path: Path,
    unique_id: str | None,
    tz: str | None,
    freq: str,
    events: Path | None,
    signals: Path | None,
    *,
    console: Console | None = None,
    bad_values: str = "error",
    horizon: int | None = None,
    need: Need = "fit",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, str]:
    """History as read, its validated clean frame, events, signals and the validation report.

    With ``horizon``, the history is also checked against what ``need`` requires (``require_history``)."""
    history, clean, report = read_validated(console or _console(), path, unique_id, tz, freq, bad_values)
    ev = load_events(events, tz=tz) if events else None
    sig = load_signals(signals, tz=tz) if signals else None
    if horizon is not None:  # after every file is read: a file's own errors come first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)  # the fit that follows warns, once
            require_history(clean, freq, horizon, report, need=need)
    return history, clean, ev, sig, f"{path.name}: {report}"


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if pd.isna(value) else f"{value:,.{digits}f}"


def _peak(g: pd.DataFrame, steps: int) -> tuple[str, int]:
    """``"514 @ Sat 17:25"`` for the ensemble's peak over the first ``steps`` rows, and its position."""
    i = int(g[ENSEMBLE].iloc[:steps].to_numpy().argmax())
    return f"{g[ENSEMBLE].iloc[i]:,.0f} @ {g[DS].iloc[i]:%a %H:%M}", i


def summary_table(pred: pd.DataFrame, fc: Forecaster) -> Table:
    """Per series: the ensemble's peak over the next hour and the next day (or the whole horizon if
    shorter), the widest band's upper edge at that peak (the capacity to provision), mean band widths and
    the member weights."""
    top, step = max(fc.levels), freq_to_timedelta(fc.freq)
    h = int(pred.groupby(ID).size().min())
    hour, day = (min(max(steps_per(p, fc.freq), 1), h) for p in ("1h", "1D"))
    caption = (
        f"weights (first lead bucket, up to 1 h ahead): {' / '.join(fc.members)}, learned from the backtest "
        "unless marked (default); `explain` shows every bucket"
    )
    table = Table(title="Forecast summary (ensemble, times UTC)", caption=caption)
    heads = [f"peak next {(n * step) / pd.Timedelta('1h'):g} h" for n in (hour, day)]
    heads = ["series", *heads, f"hi-{top} at peak", *(f"{lv} % width" for lv in fc.levels), "weights"]
    for col in heads:
        table.add_column(col, no_wrap=True, justify="left" if col in ("series", "weights") else "right")
    weights = fc.weights_.drop_duplicates(ID, keep="first").set_index(ID)  # the first lead bucket (<= 1 h)
    for uid, g in pred.groupby(ID, sort=True):
        widths = [_fmt((g[hi(ENSEMBLE, lv)] - g[lo(ENSEMBLE, lv)]).mean()) for lv in fc.levels]
        day_peak, i = _peak(g, day)
        row = weights.loc[uid]
        w = "/".join(f"{row[m]:.2f}" for m in fc.members) + (" (default)" if row["source"] == "default" else "")
        table.add_row(str(uid), _peak(g, hour)[0], day_peak, _fmt(g[hi(ENSEMBLE, top)].iloc[i], 0), *widths, w)
    return table


def backtest_metrics(cv: pd.DataFrame, clean: pd.DataFrame, fc: Forecaster, h: int) -> pd.DataFrame:
    """Pooled metrics of the ensemble, each member and the naive baselines (run at the same cutoffs).

    Columns ``model, kind, n, mae, rmse, mase, pinball, coverage-L, width-L`` and ``mae_vs_snaive_day`` /
    ``mae_vs_snaive_week`` (MAE ratio, < 1 = better), one row per model; ``clean`` is the validated history.
    MASE is scaled by the in-sample daily seasonal naive of each window's training history.
    """
    season = steps_per("1D", fc.freq)
    cutoffs = sorted(pd.Timestamp(c) for c in cv[CUTOFF].unique())
    base = baseline_backtest(clean, h, cutoffs, fc.freq, fc.levels)
    ours = evaluate_pooled(cv, clean, [ENSEMBLE, *fc.members], fc.levels, season)
    ours.insert(1, "kind", ["ensemble"] + ["member"] * len(fc.members))
    theirs = evaluate_pooled(base, clean, list(BASELINES), fc.levels, season)
    theirs.insert(1, "kind", "baseline")
    metrics = pd.concat([ours, theirs], ignore_index=True)
    mae = metrics.set_index("model")["mae"]
    for ref in (SNAIVE_DAY, SNAIVE_WEEK):
        metrics[f"mae_vs_{ref}"] = metrics["mae"] / mae[ref]
    return metrics


def metrics_table(metrics: pd.DataFrame, levels: tuple[int, ...], title: str) -> Table:
    """Rich table of ``backtest_metrics``: ensemble (bold), members, then the baselines (dim)."""
    caption = "÷sday, ÷sweek: MAE ratio to the daily / weekly seasonal naive (< 1 beats it); cov: band coverage"
    table = Table(title=title, caption=caption)
    for col in ["model", "MAE", "MASE", "pinball", *(f"cov {lv}" for lv in levels), "÷sday", "÷sweek"]:
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    records = metrics.to_dict("records")
    for r, nxt in zip(records, [*records[1:], None], strict=True):
        cov = [_fmt(100 * r[coverage_col(lv)], 0) + " %" for lv in levels]
        ratios = [_fmt(r[f"mae_vs_{ref}"], 2) for ref in (SNAIVE_DAY, SNAIVE_WEEK)]
        style = {"ensemble": "bold", "baseline": "dim"}.get(r["kind"])
        last = nxt is None or nxt["kind"] != r["kind"]
        cells = [r["model"], _fmt(r["mae"]), _fmt(r["mase"], 3), _fmt(r["pinball"]), *cov, *ratios]
        table.add_row(*cells, style=style, end_section=last)
    return table


def _forecaster(
    freq: str,
    levels: tuple[int, ...],
    horizon: int,
    country: str | None,
    windows: int,
    seed: int,
    n_jobs: int,
    params: dict[str, dict[str, Any]],
    bad_values: str = "error",
) -> Forecaster:
    """A ``Forecaster``; ``--member-param`` names are checked now, not after minutes of fitting."""
    unknown = sorted(set(params) - set(MEMBERS))
    if unknown:
        raise InputError(f"--member-param: unknown member(s) {unknown}; members are {list(MEMBERS)}")
    try:
        build_members(EngineConfig(freq, levels, horizon, MEMBERS, params, seed, n_jobs))
    except TypeError as exc:
        raise InputError(f"--member-param: {exc}") from exc
    return Forecaster(
        freq, levels, horizon, country=country, n_windows=windows, seed=seed, n_jobs=n_jobs, member_params=params,
        bad_values="outage" if bad_values == "outage" else "error",
    )  # fmt: skip


# -- commands ------------------------------------------------------------------------------------------
@app.command()
def forecast(
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="History file (.csv/.parquet: ds, y, optional unique_id); with --model: "
            "newer observations appended without refitting.",
        ),
    ] = None,
    freq: FreqOpt = "5min",
    horizon: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Steps of --freq to forecast (default: one day, 288 at 5min; with --model: the model's horizon).",
        ),
    ] = None,
    levels: LevelsOpt = "80,95",
    events: EventsOpt = None,
    signals: SignalsOpt = None,
    future_signals: Annotated[
        Path | None, typer.Option(help="Signals known in advance over the forecast window (.csv/.parquet).")
    ] = None,
    country: CountryOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Forecast file: .csv, .json or .parquet.")] = Path(
        "forecast.csv"
    ),
    plot: Annotated[Path | None, typer.Option(help="Also write a fan chart PNG of one series here.")] = None,
    plot_id: Annotated[str | None, typer.Option(help="Series drawn by --plot (default: the first).")] = None,
    save_model: Annotated[Path | None, typer.Option(help="Save the fitted forecaster to this .zip artefact.")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Load this .zip artefact instead of fitting (--freq/--levels/... come from it).")
    ] = None,
    calibration_windows: CalOpt = 7,
    seed: SeedOpt = 0,
    n_jobs: JobsOpt = 1,
    member_param: ParamOpt = None,
    unique_id: IdOpt = None,
    tz: TzOpt = None,
    bad_values: BadValuesOpt = "error",
) -> None:
    """Fit the ensemble on a history (or load a saved one), forecast, print a summary, write the forecast.

    Needs at least one day of history per series (else an error); under 2 days + horizon the forecast is
    marked low confidence (members fall back to naive rules, default weights, uncalibrated bands)."""
    console = _console()
    with _bad_input_exits():
        io.check_output_path(output)
        if input is None and model is None:
            raise InputError("give --input (history to fit on) or --model (a saved forecaster)")
        lv, freq, params = _levels(levels), _freq(freq), _member_params(member_param or [])
        bad = _bad_values(bad_values)
        loaded = Forecaster.load(model) if model is not None else None
        if loaded is not None:
            freq = loaded.freq
            console.print(f"loaded {model} (freq {freq}, levels {list(loaded.levels)}, horizon {loaded.horizon})")
        history, ev, sig = None, None, None
        if input is not None:
            h = None if loaded is not None else horizon or steps_per("1D", freq)
            history, _, ev, sig, report = _read_inputs(
                input, unique_id, tz, freq, events, signals, console=console, bad_values=bad, horizon=h,
                need="forecast",
            )  # fmt: skip
            console.print(f"[dim]{report}[/]")
        future = load_signals(future_signals, tz=tz) if future_signals else None
        if loaded is not None:
            if history is not None:
                loaded.bad_values = "outage" if bad == "outage" else "error"
            fc = loaded.update(history, signals=sig) if history is not None else loaded
        else:
            assert history is not None
            fc = _forecaster(
                freq, lv, horizon or steps_per("1D", freq), country, calibration_windows, seed, n_jobs, params, bad
            )
            with _library_warnings(console), _progress(console, "fitting") as cb:
                fc.fit(history, events=ev, signals=sig, progress=cb)
        pred = fc.predict(horizon, future_signals=future, events=ev if loaded is not None else None)
        console.print(summary_table(pred, fc))
        for member, why in fc.member_errors_.items():
            console.print(Text(f"warning: member {member} fell back to the seasonal baseline: {why}", "yellow"))
        console.print(f"wrote {io.write_frame(pred, output)} ({len(pred)} rows)")
        if plot is not None:
            uid = plot_id or str(pred[ID].iloc[0])
            hist = history if history is not None else fc.state.history_tail
            console.print(f"wrote {plots.save_png(plots.fan_chart(hist, pred, uid, fc.levels), plot)}")
        if save_model is not None:
            console.print(f"wrote {fc.save(save_model)}")


@app.command()
def backtest(
    input: InputOpt,
    horizon: Annotated[
        int, typer.Option(min=1, help="Steps of --freq forecast from each cutoff (12 = 1 h at 5min).")
    ] = 12,
    windows: Annotated[int, typer.Option(min=1, help="Number of rolling-origin cutoffs (windows).")] = 14,
    step: Annotated[str, typer.Option(help="Time between cutoffs (pandas Timedelta, e.g. 1D, 6h).")] = "1D",
    freq: FreqOpt = "5min",
    levels: LevelsOpt = "80,95",
    events: EventsOpt = None,
    signals: SignalsOpt = None,
    country: CountryOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the backtest frame (.csv/.json/.parquet).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the metrics table as JSON here.")] = None,
    calibration_windows: CalOpt = 7,
    seed: SeedOpt = 0,
    n_jobs: JobsOpt = 1,
    member_param: ParamOpt = None,
    unique_id: IdOpt = None,
    tz: TzOpt = None,
    bad_values: BadValuesOpt = "error",
) -> None:
    """Rolling-origin backtest: members, ensemble and naive baselines scored at the same cutoffs.

    Needs 2 days + horizon of history per series (one window: 2 days to train on, the horizon to score)."""
    console = _console()
    with _bad_input_exits():
        if output is not None:
            io.check_output_path(output)
        try:
            pd.Timedelta(step)
        except ValueError as exc:
            raise InputError(f"--step {step!r} is not a duration such as 1D or 6h") from exc
        lv, freq, params = _levels(levels), _freq(freq), _member_params(member_param or [])
        bad = _bad_values(bad_values)
        history, clean, ev, sig, report = _read_inputs(
            input, unique_id, tz, freq, events, signals, console=console, bad_values=bad, horizon=horizon,
            need="backtest",
        )  # fmt: skip
        console.print(f"[dim]{report}[/]")
        fc = _forecaster(freq, lv, horizon, country, calibration_windows, seed, n_jobs, params, bad)
        with _library_warnings(console), _progress(console, "backtesting") as cb:
            cv = fc.backtest(history, horizon, windows, step, events=ev, signals=sig, progress=cb)
        metrics = backtest_metrics(cv, clean, fc, horizon)
        cuts = sorted(cv[CUTOFF].unique())
        if len(cuts) < windows:
            console.print(Text(f"warning: {windows} windows asked, {len(cuts)} had history to train on", "yellow"))
        if cuts[0] - clean[DS].min() < pd.Timedelta("7D"):
            console.print(Text("note: snaive_week is the naive rule where less than 7 days precede a cutoff", "dim"))
        span = f"{cuts[0]:%Y-%m-%d %H:%M} .. {cuts[-1]:%Y-%m-%d %H:%M} UTC"
        title = f"Backtest: h={horizon} steps of {freq}, {len(cuts)} windows, cutoffs {span}"
        console.print(metrics_table(metrics, lv, title))
        if output is not None:
            console.print(f"wrote {io.write_frame(cv, output)} ({len(cv)} rows)")
        if json_path is not None:
            doc = {
                "input": str(input),
                "freq": freq,
                "horizon": horizon,
                "windows": windows,
                "step": step,
                "levels": list(lv),
                "cutoffs": [pd.Timestamp(c) for c in cuts],
                "metrics": metrics.to_dict("records"),
                "weights": (fc.backtest_weights_ if fc.backtest_weights_ is not None else pd.DataFrame()).to_dict(
                    "records"
                ),
            }
            console.print(f"wrote {io.write_json(doc, json_path)}")


def main() -> None:
    """Console-script entry point."""
    app()


# Registers controller (cli_controller), demo (cli_demo), simulate (cli_ops), rightsize (cli_rightsize),
# serve (cli_service).
from forecaster import cli_controller, cli_db, cli_demo, cli_keda, cli_ops, cli_rightsize, cli_service  # noqa: E402, F401
