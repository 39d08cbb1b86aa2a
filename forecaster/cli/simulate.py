"""The operations commands of the ``forecaster`` CLI: ``simulate`` (replicas), and the input helpers ``rightsize``
(requests, ``cli_rightsize``) shares with it.

``simulate`` replays a demand trace through the simulated cluster (``forecaster.simulate.replay``) under the
reactive HPA, the predictive floor and the oracle, and prints their outcomes. It writes JSON and PNG charts
(``forecaster.plots``) on request, and turns bad input into one red line and exit code 2
(``forecaster.cli._bad_input_exits``), never a traceback.

Registered on ``forecaster.cli.app``: ``cli.py`` imports this module at its end. Called by users and tests.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from forecaster import plots
from forecaster.cli import files as io
from forecaster.cli.app import (
    CalOpt,
    ParamOpt,
    TzOpt,
    app,
    bad_input_exits,
    loading_bars,
    make_console,
    parse_member_params,
    progress_bar,
)
from forecaster.cli.inputs import (
    check_output,
    parse_choice,
)
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID, MEMBERS, Y
from forecaster.forecasting.history import MAX_ABS_Y, implausible
from forecaster.forecasting.members import EngineConfig, build_members
from forecaster.scaling.settings import DEFAULT_DECISION_INTERVAL_S, DEFAULT_STARTUP_S, PolicySettings, lead_time_s
from forecaster.simulate import ReplayResult, capacity_for_peak, minute_trace, replay
from forecaster.simulate.bounds import ideal_curve
from forecaster.simulate.forecasting import ForecastSchedule, rolling_forecasts
from forecaster.simulate.hpa import METRICS, Metric
from forecaster.simulate.replay import DEFAULT_METRIC_DELAY_S

SIM_POLICIES: tuple[str, ...] = ("reactive", "predictive", "oracle")


REFRESH_S = 300


TRAIN_DAYS = 7.0


MIN_TRAIN_DAYS = 2.0


DEFAULT_PEAK_PODS = 40


# -- simulate --------------------------------------------------------------------------------------------
def _read_trace(path: Path, unique_id: str | None, tz: str | None, console: Console | None = None) -> pd.Series:
    """One workload's demand (``ds, y``; NaN kept for the replay to fill) as a Series on a UTC index.

    Values beyond ``series.MAX_ABS_Y`` are an error naming the file line (the replay would fill NaN, not
    those); reading shows a progress bar on a terminal."""
    with loading_bars(console or make_console(), path) as (reading, _):
        frame = io.read_history(path, unique_id=unique_id, tz=tz, progress=reading)
    line = io.history_origin(path).at
    huge = implausible(frame[Y].to_numpy(float))
    if huge.any():
        i = int(np.flatnonzero(huge)[0])
        raise InputError(
            f"{path.name} {line(i)}: column 'y' value {frame[Y].iloc[i]:g} is implausible "
            f"(|y| > {MAX_ABS_Y:g}; {int(huge.sum())} such values); fix the file"
        )
    dup = frame.duplicated([ID, DS]).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        same = (frame[ID] == frame[ID].iloc[i]) & (frame[DS] == frame[DS].iloc[i])
        raise InputError(
            f"{path.name} {line(i)}: duplicate timestamp {frame[DS].iloc[i]} (same as {line(int(np.argmax(same)))})"
        )
    ids = sorted(str(v) for v in frame[ID].unique())
    if len(ids) > 1:
        if unique_id is None:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise InputError(f"{path.name}: {len(ids)} workloads ({shown}); choose one with --id")
        if unique_id not in ids:
            raise InputError(f"{path.name}: no rows for --id {unique_id!r} (have {', '.join(ids[:5])})")
        frame = frame[frame[ID] == unique_id]
    return pd.Series(frame[Y].to_numpy(float), index=pd.DatetimeIndex(frame[DS]), name=Y).sort_index()


def replay_window(
    index: pd.DatetimeIndex, forecast_days: float | None, needs_training: bool
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of the replay: the last ``forecast_days`` days, or everything after the first 7 days.

    Without ``forecast_days`` the first ``min(7 days, span - 1 day)`` train the forecaster, so a 4-day trace
    replays its last day; at least 2 days must precede the replay when the predictive policy runs (else an
    ``InputError``), and a trace under 3 days is replayed whole when it does not. ``start`` is rounded up
    to the trace's step (and to 5 minutes, the forecast grid).
    """
    step = pd.Timedelta(pd.Series(index).diff().min()) if len(index) > 1 else pd.Timedelta("1min")
    first, end = index.min(), index.max() + max(step, pd.Timedelta("1min"))
    span_days = (end - first) / pd.Timedelta("1D")
    spans = f"{span_days:.1f} days" if span_days >= 1 else f"{span_days * 24:.1f} hours"
    if forecast_days is not None:
        if forecast_days >= span_days:
            raise InputError(f"--forecast-days {forecast_days:g} is not shorter than the trace ({spans})")
        start = end - pd.Timedelta(days=forecast_days)
    elif span_days < MIN_TRAIN_DAYS + 1:
        if needs_training:
            raise InputError(
                f"the trace spans {spans}; the predictive policy needs at least 3 days "
                f"({MIN_TRAIN_DAYS:g} to train the forecaster, 1 to replay)"
            )
        return first, end
    else:
        start = first + pd.Timedelta(days=min(TRAIN_DAYS, span_days - 1))
    start = start.ceil(max(step, pd.Timedelta(f"{REFRESH_S}s")))
    trained = (start - first) / pd.Timedelta("1D")
    if needs_training and trained < MIN_TRAIN_DAYS:
        raise InputError(
            f"--forecast-days {forecast_days:g} leaves {trained:.1f} days of history to train the forecaster; "
            f"need at least {MIN_TRAIN_DAYS:g}"
        )
    return start, end


def outcomes_table(results: dict[str, ReplayResult], title: str) -> Table:
    """One row per policy: risk (under-provisioned minutes, unserved), cost (replica-minutes), churn."""
    caption = "unserved: demand above ready capacity, summed over minutes; Δ cost: replica-minutes vs reactive"
    table = Table(title=title, caption=caption)
    heads = ["policy", "under-prov. min", "unserved", "replica-min", "Δ cost", "scaling actions", "peak replicas",
             "floor changes", "fallbacks", "filled min"]  # fmt: skip
    for col in heads:
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    base = results["reactive"].outcomes.replica_minutes if "reactive" in results else None
    for name, res in results.items():
        o = res.outcomes
        delta = "—" if not base else f"{100 * (o.replica_minutes / base - 1):+.1f} %"
        table.add_row(
            name, f"{o.under_provisioned_minutes:,}", f"{o.unserved:,.1f}", f"{o.replica_minutes:,.0f}", delta,
            f"{o.scaling_actions:,}", str(o.peak_replicas), f"{o.floor_changes:,}", f"{o.fallback_decisions:,}",
            f"{o.filled_minutes:,}",
        )  # fmt: skip
    return table


def _check_settings(target: float, quantile: str, margin: float, min_replicas: int, max_replicas: int | None) -> None:
    """Validate the knobs before any forecasting, naming the option (``PolicySettings`` names the field)."""
    options = {"target_utilisation": "--target", "quantile": "--quantile", "margin": "--margin",
               "min_replicas": "--min-replicas", "max_replicas": "--max-replicas"}  # fmt: skip
    try:
        PolicySettings(1.0, target, quantile=quantile, margin=margin, min_replicas=min_replicas,
                       max_replicas=max_replicas if max_replicas is not None else max(min_replicas, 1))  # fmt: skip
    except InputError as exc:
        field = str(exc).split(":", 1)[0]
        raise InputError(f"{options.get(field, field)}: {str(exc).split(':', 1)[-1].strip()}") from exc


def _engine_members(members: str, items: list[str]) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """``--members`` and ``--member-param`` checked now, not after minutes of forecasting."""
    names = tuple(m.strip() for m in members.split(",") if m.strip())
    unknown = sorted(set(names) - set(MEMBERS)) or ([] if names else ["(none)"])
    if unknown:
        raise InputError(f"--members: unknown member(s) {unknown}; members are {list(MEMBERS)}")
    params = parse_member_params(items)
    stray = sorted(set(params) - set(names))
    if stray:
        raise InputError(f"--member-param: member(s) {stray} not in --members {list(names)}")
    try:
        build_members(EngineConfig("5min", (80, 95), 6, names, params, 0, 1))
    except (TypeError, ValueError) as exc:
        raise InputError(f"--members/--member-param: {exc}") from exc
    return names, params


@app.command()
def simulate(
    input: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="Demand trace (.csv/.parquet): ds, y (demand per step), optional unique_id; any step."
        ),
    ],
    policy: Annotated[
        str,
        typer.Option(help="reactive (HPA only), predictive (forecast floor + HPA), oracle (perfect foresight) or all."),
    ] = "all",
    capacity_per_pod: Annotated[
        float | None,
        typer.Option(min=0.0, help="Demand one pod serves at 100 % utilisation (default: from --peak-pods)."),
    ] = None,
    peak_pods: Annotated[
        int | None,
        typer.Option(min=1, help="Size pods so the replayed peak needs this many at 100 % (default 40)."),
    ] = None,
    startup: Annotated[
        float, typer.Option(min=0.0, help="Seconds from asking for a pod to it being ready.")
    ] = DEFAULT_STARTUP_S,
    metric: Annotated[
        str, typer.Option(help="What the HPA scales on: cpu (utilisation, capped at 100 % per pod) or requests "
                               "(request rate per pod, uncapped).")
    ] = "cpu",
    metric_delay: Annotated[
        int, typer.Option(min=0, help="Seconds the metrics reach the HPA late (a multiple of 15).")
    ] = DEFAULT_METRIC_DELAY_S,
    target: Annotated[float, typer.Option(help="The HPA's target utilisation, in (0, 1].")] = 0.7,
    quantile: Annotated[
        str, typer.Option(help="Forecast band that sets the floor: median, hi-80, hi-95, ...")
    ] = "hi-80",
    margin: Annotated[float, typer.Option(help="Safety margin on that band (0.1 = plan for 10 % more).")] = 0.0,
    min_replicas: Annotated[int, typer.Option(min=0, help="The HPA's minReplicas.")] = 1,
    max_replicas: Annotated[int | None, typer.Option(min=1, help="The HPA's maxReplicas (default: unbounded).")] = None,
    forecast_days: Annotated[
        float | None,
        typer.Option(help="Replay the last N days (default: all after the first 7 days; earlier days train)."),
    ] = None,
    members: Annotated[
        str, typer.Option(help="Forecast members for the predictive policy, comma-separated (fewer = faster).")
    ] = ",".join(MEMBERS),
    calibration_windows: CalOpt = 7,
    member_param: ParamOpt = None,
    plots_dir: Annotated[
        Path | None, typer.Option("--plots", help="Folder for replay_<policy>.png and pareto.png.")
    ] = None,
    output_json: Annotated[Path | None, typer.Option(help="Write the settings and outcomes as JSON.")] = None,
    unique_id: Annotated[str | None, typer.Option("--id", help="Workload to replay when the file has several.")] = None,
    tz: TzOpt = None,
) -> None:
    """Replay a demand trace through a simulated cluster: reactive HPA vs predictive floor vs oracle."""
    console = make_console()
    with bad_input_exits():
        chosen = list(SIM_POLICIES) if policy.strip().lower() == "all" else [
            parse_choice("--policy", policy, (*SIM_POLICIES, "all"))]  # fmt: skip
        if capacity_per_pod is not None and peak_pods is not None:
            raise InputError("give --capacity-per-pod or --peak-pods, not both")
        if capacity_per_pod is not None and capacity_per_pod <= 0:
            raise InputError(f"--capacity-per-pod {capacity_per_pod:g} must be positive")
        if forecast_days is not None and forecast_days <= 0:
            raise InputError(f"--forecast-days {forecast_days:g} must be positive")
        _check_settings(target, quantile, margin, min_replicas, max_replicas)
        hpa_metric: Metric = "requests" if parse_choice("--metric", metric, METRICS) == "requests" else "cpu"
        if metric_delay % 15:
            raise InputError(f"--metric-delay {metric_delay} must be a multiple of 15 s (the HPA's sync period)")
        check_output("--output-json", output_json, ".json")
        names, params = _engine_members(members, member_param or [])
        demand = _read_trace(input, unique_id, tz, console)
        try:
            minutes = minute_trace(demand, bad_values="fill")
        except InputError as exc:
            raise type(exc)(f"{input.name}: {exc}") from exc
        try:
            start, end = replay_window(pd.DatetimeIndex(demand.index), forecast_days, "predictive" in chosen)
        except InputError as exc:
            raise InputError(f"{input.name}: {exc}") from exc
        part = demand[demand.index >= start]
        cap = capacity_per_pod or capacity_for_peak(part, peak_pods or DEFAULT_PEAK_PODS)
        lead = lead_time_s(startup, DEFAULT_DECISION_INTERVAL_S)  # one decision a minute (DEFAULT_LEAD_TIME_S)
        span = f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
        console.print(f"[dim]{input.name}: replaying {span} ({(end - start) / pd.Timedelta('1D'):.2f} days); "
                      f"capacity per pod {cap:,.4g}, start-up {startup:g} s, lead time {lead:g} s, HPA on {hpa_metric} "
                      f"metrics {metric_delay} s late[/]")  # fmt: skip
        forecasts = None
        if "predictive" in chosen:
            kwargs = {"members": names, "n_windows": calibration_windows, "member_params": params, "seed": 0}
            horizon = max(6, math.ceil(lead / REFRESH_S) + 1)
            schedule = ForecastSchedule(horizon=horizon, forecaster=kwargs)
            refreshes = math.ceil((end - start.ceil("5min")) / pd.Timedelta(f"{REFRESH_S}s"))
            with progress_bar(console, "forecasting (refit daily, refresh 5 min)") as cb:
                # rolling_forecasts counts whole days of refreshes; the bar counts those before ``end``
                forecasts = rolling_forecasts(
                    minutes.series(), start, end, schedule, progress=lambda done, _: cb(min(done, refreshes), refreshes)
                )
                cb(refreshes, refreshes)
            if forecasts.empty:
                console.print(Text(
                    "warning: no forecast could be made from the history before the replay (too short or invalid); "
                    "the predictive policy falls back to the reactive HPA throughout", "yellow"))  # fmt: skip
        results: dict[str, ReplayResult] = {}
        for name in chosen:
            with progress_bar(console, f"replay {name}") as cb:
                results[name] = replay(
                    part, name, capacity_per_pod=cap, startup_s=startup, target_utilisation=target,
                    min_replicas=min_replicas, max_replicas=max_replicas, forecasts=forecasts, quantile=quantile,
                    margin=margin, lead_time_s=None if name == "reactive" else lead, bad_values="fill", progress=cb,
                    metric=hpa_metric, metric_delay_s=metric_delay,
                )  # fmt: skip
        console.print(outcomes_table(results, f"Replay of {input.name}: {span}, HPA target {target:g}"))
        worst = max(r.outcomes.under_provisioned_minutes for r in results.values())
        bound = ideal_curve(part, cap, worst, min_replicas=min_replicas, bad_values="fill")
        at_risk = {n: float(bound[r.outcomes.under_provisioned_minutes]) for n, r in results.items()}
        spent = {
            n: f"{results[n].outcomes.replica_minutes / b:.2f}x spent" if b > 0 else "no pod needed"
            for n, b in at_risk.items()
        }
        console.print(
            "[dim]lower bound (perfect foresight, pods ready instantly) at each policy's under-provisioned "
            "minutes: " + "; ".join(f"{n} {b:,.0f} replica-min ({spent[n]})" for n, b in at_risk.items()) + "[/]"
        )
        if output_json is not None:
            doc = {
                "input": str(input), "start": start, "end": end, "capacity_per_pod": cap, "startup_s": startup,
                "lead_time_s": lead, "metric": hpa_metric, "metric_delay_s": metric_delay,
                "target_utilisation": target, "quantile": quantile, "margin": margin,
                "min_replicas": min_replicas, "max_replicas": max_replicas, "members": list(names),
                "forecasts_issued": 0 if forecasts is None else int(forecasts["issued_at"].nunique()),
                "outcomes": [r.outcomes.as_dict() for r in results.values()],
                "bound_replica_minutes": at_risk,
            }  # fmt: skip
            console.print(f"wrote {io.write_json(doc, output_json)}")
        if plots_dir is not None:
            written = [plots.save_png(plots.replay_chart(r), plots_dir / f"replay_{n}.png") for n, r in results.items()]
            title = f"{input.name}: replica-minutes vs under-provisioned minutes"
            ref = pd.DataFrame({"replica_minutes": bound, "under_provisioned_minutes": np.arange(len(bound))})
            chart = plots.pareto_chart(
                [r.outcomes for r in results.values()],
                title=title,
                references={"bound: perfect foresight, instant pods": ref},
            )
            written.append(plots.save_png(chart, plots_dir / "pareto.png"))
            for path in written:
                console.print(f"wrote {path}")
