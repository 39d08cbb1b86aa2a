"""``forecaster demo``: the whole loop on the bundled NASA trace, with the same service ``forecaster serve`` runs.

1. Backtest: 1-hour forecasts at daily cutoffs, every member and the ensemble against seasonal-naive baselines.
2. Service: ``runtime.service.demo_service`` on an embedded SQLite store (``forecaster.db``) replays simulated
   hours of the trace: fit (backtest-learned weights, calibrated bands), refresh every ``REFRESH`` (forecast,
   Recommend-mode replica floor and container requests with reasons), hourly accuracy against realised demand.
3. Simulated cluster: the replayed window's demand (requests per minute) through the reactive HPA alone and with the
   predictive floor fed by the forecasts the service stored (``forecaster.simulate.replay``).
4. Outputs: fan chart of the latest stored forecast with actuals, members chart, replay chart, forecast CSV, the
   model artefact and the store.

Not pure (writes files, prints); registered on ``forecaster.cli.app`` (imported at the end of ``forecaster.cli``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecaster import plots
from forecaster.cli import files as io
from forecaster.cli.app import SeedOpt, app, build_forecaster, make_console, progress_bar
from forecaster.cli.tables import backtest_metrics, metrics_table
from forecaster.contracts.frames import DS, ENSEMBLE, ID, MEMBERS, Y
from forecaster.contracts.ports import ForecastRun
from forecaster.datasets import load_nasa_5min, nasa_events
from forecaster.evaluation import coverage_col
from forecaster.forecasting.history import prepare_history
from forecaster.runtime.settings import ServiceSettings

ATTRIBUTION = (
    "Data: NASA-HTTP trace (requests to the NASA Kennedy Space Center WWW server, July 1995), collected by "
    "Jim Dumoulin (NASA KSC), published by the Internet Traffic Archive (ita.ee.lbl.gov), freely "
    "redistributable. 5-minute sums, UTC; see forecaster/data/ATTRIBUTION.md. Container use: Bitbrains "
    "GWA-T-12 (TU Delft Grid Workloads Archive)."
)
REFRESH = pd.Timedelta("30min")
"""Simulated time between the demo's refresh cycles (the service's default is 5 min; 30 keeps the demo short)."""
STALE_AFTER_S = 2 * REFRESH.total_seconds()
"""The simulated floor treats a forecast as stale after two missed refreshes."""
MINUTES_PER_BUCKET = 5
"""The trace counts requests per 5 minutes; the simulator works in requests per minute."""


@dataclass(frozen=True)
class DemoPlan:
    """How much work ``forecaster demo`` does (full vs ``--quick``)."""

    history_days: int  # days of history before the replay starts
    backtest_windows: int  # daily cutoffs of the 1-hour backtest
    calibration_windows: int  # windows each fit learns weights and bands from
    replay_hours: int  # simulated hours the service runs
    member_params: dict[str, dict[str, Any]]


DEMO_FULL = DemoPlan(14, 5, 4, 24, {"lgbm": {"num_rounds": 100, "num_threads": 1}})
DEMO_QUICK = DemoPlan(8, 2, 3, 6, {"lgbm": {"num_rounds": 30, "num_threads": 1}})


COVERAGE_TARGETS: dict[int, tuple[float, float]] = {80: (0.75, 0.85), 95: (0.92, 0.98)}
"""What a calibrated band should hold in a backtest (issue 17's acceptance ranges)."""


def coverage_line(metrics: pd.DataFrame, levels: tuple[int, ...]) -> str:
    """One line: how much of the actuals each ensemble band held in the backtest, against its target range."""
    row = metrics[metrics["model"] == ENSEMBLE].iloc[0]
    parts = []
    for level in levels:
        cov = float(row[coverage_col(level)])
        lo_t, hi_t = COVERAGE_TARGETS.get(level, (level / 100 - 0.05, level / 100 + 0.05))
        verdict = "within" if lo_t <= cov <= hi_t else "outside"
        parts.append(f"{level} % band held {cov:.0%} of the actuals ({verdict} {lo_t:.0%}-{hi_t:.0%})")
    return "Calibration in this backtest: " + "; ".join(parts)


def explore_command(db: Path, demo_now: pd.Timestamp) -> str:
    """The ``forecaster serve`` command that continues the demo in the API: its store, and the demo clock where the
    replay stopped. Without ``--demo-now`` the clock would start at day 8 of the trace, before the stored model's
    training end: the store refuses such forecasts (a run issued a week before its own points)."""
    return f"forecaster serve --demo --demo-now {demo_now:%Y-%m-%dT%H:%MZ} --store-url sqlite:///{db}"


def _bar(console: Console) -> Progress:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def _stored_forecasts(runs: list[ForecastRun]) -> pd.DataFrame:
    """The runs as one long frame with ``issued_at`` (the simulator's ``FrameProvider`` input)."""
    return pd.concat([run.frame.assign(issued_at=run.issued_at) for run in runs], ignore_index=True)


def _per_minute(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Requests per 5 minutes -> requests per minute (the simulator's unit)."""
    return frame.assign(**{c: frame[c] / MINUTES_PER_BUCKET for c in columns})


def _recommendations_table(service: Any, workload_id: str) -> Table:
    table = Table(title=f"Latest recommendations for {workload_id} (Recommend mode: nothing is changed)")
    table.add_column("kind")
    table.add_column("value")
    table.add_column("reason", overflow="fold")
    decisions = service.store.list_decisions(workload_id=workload_id, limit=50).items
    latest: dict[str, Any] = {}
    for decision in decisions:
        if decision.kind not in latest or decision.time > latest[decision.kind].time:
            latest[decision.kind] = decision
    if "replicas" in latest:
        d = latest["replicas"]
        table.add_row("replicas", f"minReplicas {d.value.get('min_replicas')}", d.reason)
    if "resources" in latest:
        d = latest["resources"]
        for name, rec in d.value.get("containers", {}).items():
            cpu, mem = rec["cpu"], rec["memory"]
            table.add_row(
                f"container {name}",
                f"cpu {cpu['target'] * 1000:.0f}m, memory {mem['target'] / 2**20:.0f}Mi",
                "target (lower-upper): cpu "
                f"{cpu['lower_bound'] * 1000:.0f}-{cpu['upper_bound'] * 1000:.0f}m, memory "
                f"{mem['lower_bound'] / 2**20:.0f}-{mem['upper_bound'] / 2**20:.0f}Mi",
            )
    return table


def _replay_table(results: dict[str, Any]) -> Table:
    table = Table(title="Simulated cluster over the replayed window (2-minute pod start-up, HPA target 70 %)")
    for col in ("policy", "under-provisioned min", "unserved requests", "replica-minutes", "scaling actions"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, result in results.items():
        o = result.outcomes
        table.add_row(
            name,
            f"{o.under_provisioned_minutes}",
            f"{o.unserved:,.0f}",
            f"{o.replica_minutes:,.0f}",
            f"{o.scaling_actions}",
        )
    return table


@app.command()
def demo(
    output_dir: Annotated[
        Path, typer.Option(help="Folder for forecaster.db, charts, forecast.csv and the model artefact.")
    ] = Path("forecaster-demo"),
    quick: Annotated[
        bool, typer.Option(help="Smaller run (8 days of history, 2 backtest windows, 6 simulated hours).")
    ] = False,
    seed: SeedOpt = 0,
) -> None:
    """The whole loop on the bundled NASA trace: backtest, the service's jobs on SQLite, a simulated cluster."""
    logger = logging.getLogger("forecaster")
    previous = logger.level
    logger.setLevel(logging.ERROR)  # the tables below report failures; restored after (the CLI may run in-process)
    try:
        _run_demo(output_dir, quick, seed)
    finally:
        logger.setLevel(previous)


def _run_demo(output_dir: Path, quick: bool, seed: int) -> None:
    # imported here: the service stack (SQLAlchemy, APScheduler) loads only when the demo runs, not for every CLI call
    from forecaster.runtime.service import WorkloadError, demo_service
    from forecaster.runtime.service.demo import DEMAND_UNIT  # lazy (see above)
    from forecaster.simulate import replay  # lazy (see above)

    console = make_console()
    plan = DEMO_QUICK if quick else DEMO_FULL
    started = time.perf_counter()
    console.print(Panel(ATTRIBUTION, title="forecaster demo", expand=False))
    trace, events = load_nasa_5min(), nasa_events()
    replay_start = trace[DS].min() + pd.Timedelta(days=plan.history_days)
    replay_end = replay_start + pd.Timedelta(hours=plan.replay_hours)
    history = trace[trace[DS] < replay_start]
    levels = (80, 95)

    console.print(
        f"1/4 backtest: 1-hour forecasts (12 steps) at {plan.backtest_windows} daily cutoffs, "
        f"{plan.history_days} days of history"
    )
    clean, _ = prepare_history(history, "5min")
    fc = build_forecaster("5min", levels, 12, None, plan.calibration_windows, seed, 1, plan.member_params)
    with progress_bar(console, "backtesting") as cb:
        cv = fc.backtest(history, 12, plan.backtest_windows, "1D", events=events, progress=cb)
    metrics = backtest_metrics(cv, clean, fc, 12)
    console.print(metrics_table(metrics, levels, "Accuracy at 1 h (ratios < 1 beat the seasonal-naive baseline)"))
    console.print(coverage_line(metrics, levels))

    output_dir.mkdir(parents=True, exist_ok=True)
    db = output_dir / "forecaster.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)  # each demo starts from an empty store
    settings = ServiceSettings(
        store_url=f"sqlite:///{db.resolve()}",
        artefact_dir=output_dir / "artefacts",
        history_days=float(plan.history_days),
        refresh_interval_s=REFRESH.total_seconds(),
        levels=levels,
        model_options={"n_windows": plan.calibration_windows, "member_params": plan.member_params, "seed": seed},
    )
    service = demo_service(settings, now=replay_start)
    workload = service.registry.ids[0]
    cycles = pd.date_range(replay_start, replay_end, freq=REFRESH)
    console.print(
        f"2/4 service on {db}: fit, then {len(cycles)} refresh cycles over {plan.replay_hours} simulated "
        f"hours ({replay_start:%Y-%m-%d %H:%M} to {replay_end:%H:%M} UTC), hourly accuracy"
    )
    failures: dict[str, str] = {}
    with _bar(console) as bar:
        task = bar.add_task("refresh cycles (the first one fits)", total=len(cycles))
        for now in cycles:
            try:
                service.run_demo_cycle(now)
            except WorkloadError as exc:
                failures.update(exc.errors)
            bar.advance(task)
    for wid, error in failures.items():
        console.print(f"[red]{wid}: {error}[/red]")
    runs = service.store.forecasts_issued_between(workload, replay_start, replay_end)
    latest = service.store.latest_forecast(workload)
    if latest is None or not runs:
        console.print("[red]the service stored no forecast; see the errors above[/red]")
        raise typer.Exit(1)
    console.print(_recommendations_table(service, workload))
    accuracy = service.store.list_accuracy(workload, limit=1).items
    if accuracy:
        a = accuracy[0]
        cover = ", ".join(f"{lv} % band holds {v:.0%}" for lv, v in sorted(a.coverage.items()))
        backtest = "n/a" if a.backtest_mae is None else f"{a.backtest_mae:.1f}"
        console.print(
            f"accuracy of stored forecasts over the last day ({a.n_points} points): MAE {a.mae:.1f} "
            f"requests/5 min (backtest {backtest}); {cover}; drift {'YES' if a.drift else 'no'}"
        )

    console.print("3/4 simulated cluster: reactive HPA vs predictive floor on the stored forecasts")
    spec = next(s for s in service.registry if s.id == workload)
    window = trace[(trace[DS] >= replay_start) & (trace[DS] < replay_end)]
    demand = pd.Series(window[Y].to_numpy() / MINUTES_PER_BUCKET, index=pd.DatetimeIndex(window[DS]))
    stored = _stored_forecasts(runs)
    value_cols = [c for c in stored.columns if c == ENSEMBLE or c.startswith(f"{ENSEMBLE}-")]
    knobs: dict[str, Any] = {
        "capacity_per_pod": (spec.capacity_per_pod or 60.0) / MINUTES_PER_BUCKET,
        "startup_s": 120.0,
        "target_utilisation": spec.target_utilisation,
        "min_replicas": spec.min_replicas,
        "max_replicas": spec.max_replicas,
    }
    results = {
        "reactive HPA": replay(demand, "reactive", **knobs),
        "predictive floor + HPA": replay(
            demand,
            "predictive",
            forecasts=_per_minute(stored, value_cols),
            policy_settings={"stale_after_s": STALE_AFTER_S},
            **knobs,
        ),
    }
    console.print(_replay_table(results))

    console.print(f"4/4 write results to {output_dir}/")
    pred = latest.frame.assign(**{ID: workload}) if ID not in latest.frame.columns else latest.frame
    actual = trace[(trace[DS] >= latest.issued_at - pd.Timedelta("2D"))].assign(**{ID: workload})
    past, future = actual[actual[DS] < latest.issued_at], actual[actual[DS] >= latest.issued_at]
    written = [
        plots.save_png(
            plots.fan_chart(
                past,
                pred,
                workload,
                levels,
                actuals=future,
                unit=DEMAND_UNIT,
                title=f"{workload}: forecast issued {latest.issued_at:%Y-%m-%d %H:%M} UTC",
            ),
            output_dir / "fan_chart.png",
        ),
        plots.save_png(
            plots.members_chart(pred, workload, [m for m in MEMBERS if m in pred.columns], unit=DEMAND_UNIT),
            output_dir / "members_chart.png",
        ),
        plots.save_png(
            plots.replay_chart(
                results["predictive floor + HPA"],
                reactive=results["reactive HPA"],
                title="predictive floor + HPA against the reactive HPA alone",
                unit="requests per minute",
            ),
            output_dir / "replay_chart.png",
        ),
        io.write_frame(pred, output_dir / "forecast.csv"),
    ]
    artefact = service.store.latest_artefact()
    if artefact is not None:
        written.append(Path(artefact.path))
    written.append(db)
    for path in written:
        console.print(f"  wrote {path}")
    console.print(f"done in {time.perf_counter() - started:.0f} s; explore it with:")
    console.print(explore_command(db, replay_end), soft_wrap=True, highlight=False)  # one line, for copy and paste
