"""``forecaster rightsize``: recommended CPU and memory requests for every container of a usage file.

Reads the usage (and OOM) file, makes one decision of a ``forecaster.RightSizer`` (``fit`` on the file, ``decide``
at ``--now``) under ``--policy`` (default ``calibrated``) and prints per-container and per-namespace (or team)
tables; writes CSV/JSON and PNG charts (``forecaster.plots``) on request; bad input is one red line and exit code 2
(``forecaster.cli._bad_input_exits``), never a traceback.

Registered on ``forecaster.cli.app``: ``cli.py`` imports this module at its end. Called by users and tests.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from forecaster import plots
from forecaster.cli import files as io
from forecaster.cli.app import TzOpt, app, bad_input_exits, make_console, progress_bar
from forecaster.cli.inputs import (
    check_output,
    file_slug,
    format_amount,
    parse_choice,
    parse_duration,
    parse_timestamp,
    read_table,
)
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing import (
    DEFAULT_POLICY,
    POLICIES,
    LowConfidenceWarning,
    RightSizer,
    RightsizingResult,
    UsageError,
)
from forecaster.rightsizing.frames import (
    CPU,
    GIB,
    LOW_CONFIDENCE,
    LOWER_BOUND,
    NAMESPACE,
    RESOURCE,
    SOURCE,
    TARGET,
    TEAM,
    UPPER_BOUND,
    check_columns,
)
from forecaster.rightsizing.sizer import PREDICTIVE_POLICIES


def _pct(value: float, digits: int = 0) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{100 * value:.{digits}f} %"


_REPORT_SCALE = {CPU: 1.0, "memory": GIB}
"""Report amounts (cores, GiB) times this = contract amounts (cores, bytes)."""


def recommendations_table(result: RightsizingResult) -> Table:
    """Per container and resource: request, use p90 / peak, target and bounds, savings, slack, risk."""
    report = {(str(r[ID]), str(r[RESOURCE])): r for r in result.containers.to_dict("records")}
    basis = set(result.containers["basis"].dropna().astype(str))
    use = "predicted" if basis == {"prediction"} else "observed" if "prediction" not in basis else "pred./obs."
    span = f"{result.window / pd.Timedelta('1h'):g} h"
    title = f"Right-sizing: policy {result.policy}, decision at {result.now:%Y-%m-%d %H:%M} UTC, window {span}"
    what = {
        "predicted": f"quantiles of the forecast CPU p99 / memory peak of the next {span}",
        "observed": f"samples of the last {span}",
    }.get(use, "predicted where the source says forecast, else observed")
    caption = (
        f"CPU in cores, memory in MiB/GiB. use ({use}): {what}. risk: probability that use exceeds the target "
        "in the window; overrun: what exceeding it means (CPU is throttled, memory is OOM-killed); low confidence: "
        "less history than the policy needs, so the risk is unknown"
    )
    table = Table(title=title, caption=caption)
    heads = ["container", "resource", "request", "use p90", "use peak", "target", "lower–upper", "savings",
             "slack now → target", "risk", "overrun", "source"]  # fmt: skip
    for col in heads:
        table.add_column(col, justify="left" if col in ("container", "resource", "overrun", "source") else "right")
    recs = result.recommendations
    for i, rec in enumerate(recs.to_dict("records")):
        uid, res = str(rec[ID]), str(rec[RESOURCE])
        row = report.get((uid, res))
        scale = _REPORT_SCALE[res]

        def amount(col: str, row: Any = row, scale: float = scale, res: str = res) -> str:
            return "—" if row is None else format_amount(float(row[col]) * scale, res)

        savings = float(rec["request"]) - float(rec[TARGET])
        slack = "—" if row is None else f"{_pct(float(row['slack']))} → {_pct(float(row['projected_slack']))}"
        low = bool(rec.get(LOW_CONFIDENCE, False))
        style = "yellow" if low else "red" if row is not None and float(row["risk"]) > 0.1 else None  # NaN: False
        risk = "unknown" if low else "—" if row is None else _pct(float(row["risk"]), 1)
        last = i + 1 == len(recs) or str(recs[ID].iloc[i + 1]) != uid
        table.add_row(
            uid, res, format_amount(float(rec["request"]), res), amount("usage_p90"), amount("usage_peak"),
            format_amount(float(rec[TARGET]), res),
            f"{format_amount(float(rec[LOWER_BOUND]), res)}–{format_amount(float(rec[UPPER_BOUND]), res)}",
            format_amount(savings, res), slack, risk, "—" if row is None else str(row["overrun"]),
            f"{rec[SOURCE]}, low confidence" if low else str(rec[SOURCE]), style=style, end_section=last,
        )  # fmt: skip
    return table


def groups_table(groups: pd.DataFrame, by: str) -> Table:
    """Per namespace/team and resource: containers, request, p90 use and target summed, saved, slack, max risk."""
    table = Table(title=f"Per {by}: totals (CPU in cores, memory in GiB; saved = request - target)")
    heads = [by, "resource", "containers", "request", "use p90", "target", "saved", "slack now → target", "max risk"]
    for col in heads:
        table.add_column(col, justify="left" if col in (by, "resource") else "right")
    for r in groups.to_dict("records"):
        digits = 3 if r[RESOURCE] == CPU else 2
        amounts = [f"{float(r[c]):,.{digits}f}" for c in ("request", "usage_p90", "target", "savings")]
        slack = f"{_pct(float(r['slack']))} → {_pct(float(r['projected_slack']))}"
        risk = "unknown" if int(r.get(LOW_CONFIDENCE, 0)) else _pct(float(r["risk_max"]), 1)
        table.add_row(str(r[by]), str(r[RESOURCE]), str(r["containers"]), *amounts, slack, risk)
    return table


def _usage_error(exc: UsageError, usage: Path, ooms: Path | None) -> UsageError:
    """The message with the file names instead of "usage frame" / "OOM frame"."""
    msg = str(exc).replace("usage frame", usage.name)
    if ooms is not None:
        msg = msg.replace("OOM frame", ooms.name)
    return UsageError(msg if usage.name in msg or (ooms and ooms.name in msg) else f"{usage.name}: {msg}")


@app.command()
def rightsize(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Usage file (.csv/.parquet): unique_id, ds, cpu (cores), memory (bytes), cpu_request (cores), "
            "memory_request (bytes); optional cpu_limit, memory_limit, namespace, team, workload, image (labels "
            "that make containers siblings).",
        ),
    ],
    ooms: Annotated[
        Path | None, typer.Option(help="OOM kills (.csv/.parquet): unique_id, ds, optional memory (bytes).")
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="Recommender: calibrated (the default: each container's CPU and memory headroom chosen by its cost "
            "over its last 28 days, memory priced by OOM days and never below its 8-day peak; new containers borrow "
            "from their siblings), vpa (the Kubernetes VPA rule, the baseline), cost-selected (the VPA rule with "
            "the CPU target chosen by cost over 14 days), moving-window (Autopilot-style statistics), forecaster "
            "(engine forecast of next-window use; slower, it fits the engine), forecast-scaled-vpa, keep (current "
            "requests)."
        ),
    ] = DEFAULT_POLICY,
    now: Annotated[
        str | None,
        typer.Option(help="Decision time, ISO 8601 (default: one step after the last sample); only data before it."),
    ] = None,
    window: Annotated[str, typer.Option(help="Window the use figures and the recommendation cover.")] = "24h",
    output_csv: Annotated[
        Path | None, typer.Option(help="Write the recommendations (cores, bytes, reason) as CSV.")
    ] = None,
    output_json: Annotated[
        Path | None,
        typer.Option(help="Write policy, decision time, recommendations, container and group reports as JSON."),
    ] = None,
    plots_dir: Annotated[
        Path | None,
        typer.Option(
            "--plots", help="Folder for a PNG per container (use, request, recommendation) and requested_vs_actual.png."
        ),
    ] = None,
    by: Annotated[str, typer.Option(help="Group the summary by namespace or team.")] = NAMESPACE,
    planned_memory_overruns: Annotated[
        float,
        typer.Option(
            help="Fraction of the policy's memory-window samples you accept above the memory target (each an OOM "
            "risk), e.g. 0.01; default 0: the memory target covers the window's peak."
        ),
    ] = 0.0,
    tz: TzOpt = None,
) -> None:
    """Right-size CPU and memory requests: predicted (or observed) use against requests, targets, savings, risk."""
    console = make_console()
    with bad_input_exits():
        chosen = parse_choice("--policy", policy, tuple(sorted(POLICIES)))
        group = parse_choice("--by", by, (NAMESPACE, TEAM))
        check_output("--output-csv", output_csv, ".csv")
        check_output("--output-json", output_json, ".json")
        when, span = parse_timestamp("--now", now, tz), parse_duration("--window", window)
        if not 0.0 <= planned_memory_overruns < 1.0:
            raise InputError(
                f"--planned-memory-overruns {planned_memory_overruns:g}: give a fraction in [0, 1) "
                "of the memory window's samples, e.g. 0.01"
            )
        usage = read_table(input, "usage", tz)
        kills = read_table(ooms, "OOM", tz) if ooms is not None else None
        try:  # the columns first: everything below reads them
            check_columns(usage, "usage frame")
            if kills is not None:
                check_columns(kills, "OOM frame", (ID, DS))
        except UsageError as exc:
            raise _usage_error(exc, input, ooms) from exc
        if group == TEAM and TEAM not in usage.columns:
            raise InputError(f"--by team: {input.name} has no 'team' column (columns: {list(usage.columns)})")
        started = time.perf_counter()
        predicting = chosen in PREDICTIVE_POLICIES
        label = "predicting next-window use with the forecasting engine" if predicting else "recommending"
        with console.status(f"{label} ({usage[ID].nunique()} containers)"), warnings.catch_warnings():
            warnings.simplefilter("ignore", LowConfidenceWarning)  # printed below from result.warnings
            try:
                sizer = RightSizer(chosen, window=span, retention=None, planned_memory_overruns=planned_memory_overruns)
                result = sizer.fit(usage, kills, when).decide()
            except UsageError as exc:
                raise _usage_error(exc, input, ooms) from exc
        n = result.recommendations[ID].nunique()
        console.print(
            f"[dim]{input.name}: {len(usage)} samples, {n} containers; {time.perf_counter() - started:.1f} s[/]"
        )
        for note in result.warnings:
            console.print(Text(f"warning: {note}", "yellow"), soft_wrap=True)
        console.print(recommendations_table(result))
        groups = result.teams if group == TEAM else result.namespaces
        console.print(groups_table(groups, group))
        saved = groups.groupby(RESOURCE)["savings"].sum()
        console.print(
            f"total saved: {saved.get(CPU, 0.0):,.3f} cores, {saved.get('memory', 0.0):,.2f} GiB "
            "(negative: the containers need more than they request)"
        )
        if output_csv is not None:
            console.print(f"wrote {io.write_frame(result.recommendations, output_csv)}")
        if output_json is not None:
            doc = {
                "input": str(input), "policy": result.policy, "now": result.now,
                "window_h": result.window / pd.Timedelta("1h"),
                "recommendations": result.recommendations.to_dict("records"),
                "containers": result.containers.to_dict("records"), group: groups.to_dict("records"),
            }  # fmt: skip
            console.print(f"wrote {io.write_json(doc, output_json)}")
        if plots_dir is not None:
            ids = [str(v) for v in pd.unique(result.recommendations[ID])]
            files: dict[str, str] = {}
            for uid in ids:  # distinct file names even when two ids slug alike ("a/b" and "a_b")
                name = file_slug(uid)
                files[uid] = name if name not in files.values() else f"{name}-{len(files)}"
            with progress_bar(console, "plots") as cb:
                for k, uid in enumerate(ids):
                    fig = plots.rightsizing_chart(usage, result.recommendations, uid, now=result.now, window=span)
                    plots.save_png(fig, plots_dir / f"{files[uid]}.png")
                    cb(k + 1, len(ids) + 1)
                plots.save_png(
                    plots.requested_vs_actual_chart(result.containers), plots_dir / "requested_vs_actual.png"
                )
                cb(len(ids) + 1, len(ids) + 1)
            console.print(f"wrote {len(ids) + 1} charts to {plots_dir}/")
