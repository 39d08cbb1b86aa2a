"""The ``forecaster`` typer app and what every command shares: option types and parsers, the console, the
one-line exit on bad input, library warnings as yellow lines, progress bars, reading and validating a history.

Bad input (``InputError``, signals/events errors, unreadable artefacts) prints one red line naming the file, line or
column and exits with code 2, never a traceback; a row of a CSV file is named by its file line (header = line 1,
``files.history_origin``). The library's warnings (``ForecasterWarning``: short history, default weights) print as
yellow lines. Reading and validating a history show a progress bar on a terminal. Help is click's plain layout
(``rich_markup_mode=None``), which wraps help text but never cuts an option name, whatever the terminal width.
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
from rich.text import Text

from forecaster.cli import files as io
from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import ArtefactError, ForecasterWarning, InputError, SeriesError
from forecaster.contracts.frames import MEMBERS, validate_levels
from forecaster.forecasting.forecaster import Forecaster
from forecaster.forecasting.history import Need, SeriesReport, prepare_history, require_history
from forecaster.forecasting.members import EngineConfig, Executor, build_members
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
def parse_levels(text: str) -> tuple[int, ...]:
    try:
        return validate_levels(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"--levels {text!r}: {exc}; write e.g. 80,95") from exc


def parse_freq(text: str) -> str:
    try:
        freq_to_timedelta(text)
    except InputError as exc:
        raise InputError(f"--freq: {exc}") from exc
    return text


def parse_bad_values(text: str) -> str:
    value = text.strip().lower()
    if value not in BAD_VALUES:
        raise InputError(f"--bad-values {text!r}: choose one of {', '.join(BAD_VALUES)}")
    return value


def parse_member_params(items: list[str]) -> dict[str, dict[str, Any]]:
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


DaskAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        envvar="FORECASTER_DASK_ADDRESS",
        help="Run the fits on the Dask scheduler at this address (tcp://HOST:8786; k8s/dask/); replaces --n-jobs.",
    ),
]


DaskWorkersOpt = Annotated[
    int | None,
    typer.Option("--dask-workers", min=1, help="Run the fits on an in-process Dask LocalCluster of N worker processes"),
]


def check_dask(address: str | None, workers: int | None) -> None:
    """``--dask-address`` and ``--dask-workers`` together are bad input (checked before reading any file)."""
    if address and workers:
        raise InputError("give --dask-address (a running scheduler) or --dask-workers (a local cluster), not both")


@contextmanager
def dask_executor(address: str | None, workers: int | None) -> Iterator[Executor | None]:
    """The executor ``--dask-address`` / ``--dask-workers`` ask for (closed afterwards), or None (``--n-jobs``)."""
    check_dask(address, workers)
    if not address and not workers:
        yield None
        return
    # imported here, not at the top: dask starts (and its import costs ~1 s) only when a command asks for it
    from forecaster.adapters.dask import DaskExecutor

    with DaskExecutor(address, n_workers=workers or 2) as executor:
        yield executor


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
def make_console() -> Console:
    """Stdout console; 120 columns when not a terminal (logs, pipes) unless ``COLUMNS`` says otherwise."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120
    return console


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn bad-input errors into one red line on stderr and exit code 2."""
    try:
        yield
    except (InputError, SignalsError, ArtefactError, FileNotFoundError) as exc:
        msg = " ".join(str(exc).split())
        Console(stderr=True, highlight=False).print(Text(f"error: {msg}", style="bold red"), soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@contextmanager
def library_warnings(console: Console) -> Iterator[None]:
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
def loading_bars(console: Console, path: Path) -> Iterator[tuple[Progress_, Progress_]]:
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
def progress_bar(console: Console, label: str) -> Iterator[Progress_]:
    """A rich progress bar driven by the ``progress(done, total)`` callback of ``Forecaster``."""
    columns = (SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def read_validated(
    console: Console, path: Path, unique_id: str | None, tz: str | None, freq: str, bad_values: str = "error"
) -> tuple[pd.DataFrame, pd.DataFrame, SeriesReport]:
    """History as read, its validated clean frame and the report. Errors name file lines and suggest
    ``--bad-values outage``; progress is drawn on a terminal (``loading_bars``)."""
    origin = replace(io.history_origin(path), bad_values_flag="--bad-values outage")
    with loading_bars(console, path) as (reading, validating):
        history = io.read_history(path, unique_id=unique_id, tz=tz, progress=reading)
        try:
            clean, report = prepare_history(
                history, freq, bad_values="outage" if bad_values == "outage" else "error", origin=origin,
                progress=validating,
            )  # fmt: skip
        except SeriesError as exc:
            raise type(exc)(f"{path.name}: {exc}") from exc
    return history, clean, report


def read_inputs(
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
    history, clean, report = read_validated(console or make_console(), path, unique_id, tz, freq, bad_values)
    ev = load_events(events, tz=tz) if events else None
    sig = load_signals(signals, tz=tz) if signals else None
    if horizon is not None:  # after every file is read: a file's own errors come first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)  # the fit that follows warns, once
            require_history(clean, freq, horizon, report, need=need)
    return history, clean, ev, sig, f"{path.name}: {report}"


def build_forecaster(
    freq: str,
    levels: tuple[int, ...],
    horizon: int,
    country: str | None,
    windows: int,
    seed: int,
    n_jobs: int,
    params: dict[str, dict[str, Any]],
    bad_values: str = "error",
    executor: Executor | None = None,
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
        bad_values="outage" if bad_values == "outage" else "error", executor=executor,
    )  # fmt: skip
