"""``forecaster forecast`` and ``forecaster backtest``: a face over the ``Forecaster`` API.

Reads files (``forecaster.io``), calls ``Forecaster``, shows progress bars and tables, and writes outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.text import Text

from forecaster import plots
from forecaster.cli import files as io
from forecaster.cli.app import (
    BadValuesOpt,
    CalOpt,
    CountryOpt,
    DaskAddressOpt,
    DaskWorkersOpt,
    EventsOpt,
    FreqOpt,
    IdOpt,
    InputOpt,
    JobsOpt,
    LevelsOpt,
    ParamOpt,
    SeedOpt,
    SignalsOpt,
    TzOpt,
    app,
    bad_input_exits,
    build_forecaster,
    check_dask,
    dask_executor,
    library_warnings,
    make_console,
    parse_bad_values,
    parse_freq,
    parse_levels,
    parse_member_params,
    progress_bar,
    read_inputs,
)
from forecaster.cli.tables import backtest_metrics, metrics_table, summary_table
from forecaster.contracts.clock import steps_per
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import CUTOFF, DS, ID
from forecaster.forecasting.forecaster import Forecaster
from signals.sources.files import load_signals


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
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
    member_param: ParamOpt = None,
    unique_id: IdOpt = None,
    tz: TzOpt = None,
    bad_values: BadValuesOpt = "error",
) -> None:
    """Fit the ensemble on a history (or load a saved one), forecast, print a summary, write the forecast.

    Needs at least one day of history per series (else an error); under 2 days + horizon the forecast is
    marked low confidence (members fall back to naive rules, default weights, uncalibrated bands)."""
    console = make_console()
    with bad_input_exits():
        check_dask(dask_address, dask_workers)
        io.check_output_path(output)
        if input is None and model is None:
            raise InputError("give --input (history to fit on) or --model (a saved forecaster)")
        lv, freq, params = parse_levels(levels), parse_freq(freq), parse_member_params(member_param or [])
        bad = parse_bad_values(bad_values)
        loaded = Forecaster.load(model) if model is not None else None
        if loaded is not None:
            freq = loaded.freq
            console.print(f"loaded {model} (freq {freq}, levels {list(loaded.levels)}, horizon {loaded.horizon})")
        history, ev, sig = None, None, None
        if input is not None:
            h = None if loaded is not None else horizon or steps_per("1D", freq)
            history, _, ev, sig, report = read_inputs(
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
            with dask_executor(dask_address, dask_workers) as ex:
                fc = build_forecaster(
                    freq, lv, horizon or steps_per("1D", freq), country, calibration_windows, seed, n_jobs, params, bad,
                    ex,
                )  # fmt: skip
                with library_warnings(console), progress_bar(console, "fitting") as cb:
                    fc.fit(history, events=ev, signals=sig, progress=cb)
                fc.executor = None  # the cluster is closed below; a saved model must not name it
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
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
    member_param: ParamOpt = None,
    unique_id: IdOpt = None,
    tz: TzOpt = None,
    bad_values: BadValuesOpt = "error",
) -> None:
    """Rolling-origin backtest: members, ensemble and naive baselines scored at the same cutoffs.

    Needs 2 days + horizon of history per series (one window: 2 days to train on, the horizon to score)."""
    console = make_console()
    with bad_input_exits():
        check_dask(dask_address, dask_workers)
        if output is not None:
            io.check_output_path(output)
        try:
            pd.Timedelta(step)
        except ValueError as exc:
            raise InputError(f"--step {step!r} is not a duration such as 1D or 6h") from exc
        lv, freq, params = parse_levels(levels), parse_freq(freq), parse_member_params(member_param or [])
        bad = parse_bad_values(bad_values)
        history, clean, ev, sig, report = read_inputs(
            input, unique_id, tz, freq, events, signals, console=console, bad_values=bad, horizon=horizon,
            need="backtest",
        )  # fmt: skip
        console.print(f"[dim]{report}[/]")
        with dask_executor(dask_address, dask_workers) as ex:
            fc = build_forecaster(freq, lv, horizon, country, calibration_windows, seed, n_jobs, params, bad, ex)
            with library_warnings(console), progress_bar(console, "backtesting") as cb:
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
