"""Every chart of the project: one module, matplotlib ``Figure`` objects, nothing drawn on pyplot's state.

``fan_chart``                 history, the ensemble forecast and its nested bands (what demand to plan for).
``members_chart``             each member's point forecast against the ensemble (why the ensemble says what).
``replay_chart``              a simulated replay: demand vs ready capacity, replicas and the predictive floor.
``pareto_chart``              replica-minutes (cost) against under-provisioned minutes (risk), per policy.
``rightsizing_chart``         one container's CPU and memory use, its request over time and the recommendation.
``requested_vs_actual_chart`` per container: request, predicted or observed use, recommended target.
``save_png``                  write a figure to a PNG file.

Every value axis names its unit: ``unit`` is the demand's (e.g. ``"requests per 5 min"``; default "units of y",
as the input had them), replicas are pods, CPU cores and memory GiB. Lines that coincide say so in the legend
(``"events (= seasonal)"``) and are drawn dashed over each other, so no series vanishes under another.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, never through ``pyplot``, so no
global figure registry grows and nothing needs closing; a figure is freed when its last reference goes.
Band column names come from ``forecaster.contracts.frames``. Called by ``forecaster.cli``, ``forecaster.cli.simulate``,
the benchmarks and the notebooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, hi, lo
from forecaster.rightsizing.frames import (
    CPU,
    GIB,
    LIMIT_OF,
    LOWER_BOUND,
    MEMORY,
    POLICY,
    REQUEST_OF,
    RESOURCE,
    TARGET,
    UPPER_BOUND,
)
from forecaster.simulate.result import Outcomes, ReplayResult

FIGSIZE: tuple[float, float] = (11.0, 4.8)
DPI = 120
HISTORY_SPANS = 3
"""``fan_chart`` shows this many forecast-lengths of history before the origin (at least one day)."""
_BAND_ALPHA = (0.18, 0.32, 0.46, 0.6)
_COLOR = "tab:blue"
DEFAULT_UNIT = "units of y"
"""The demand axis label's unit when the caller does not know it (the input's own)."""
_DASHES: tuple[str, ...] = ("--", ":", "-.")
"""Dash patterns of lines drawn over an equal one, in turn."""


def _demand_label(unit: str) -> str:
    return f"demand ({unit or DEFAULT_UNIT})"


def same_as(frame: pd.DataFrame, columns: Sequence[str], also: Sequence[str] = ()) -> dict[str, str]:
    """Column -> the first earlier column of ``columns`` (then of ``also``) it equals at every step (same missing
    steps, values within 1e-9 relative), for the columns that equal one. A chart labels such a line
    ``"<column> (= <other>)"``: drawn over each other, one would hide the other.

    Worked example: seasonal 1, 2; events 1, 2; lgbm 1, 3; ensemble 1, 3 -> ``{"events": "seasonal",
    "lgbm": "ensemble"}`` (with ``also=["ensemble"]``)."""
    values = {c: frame[c].to_numpy(dtype=float) for c in [*columns, *also] if c in frame.columns}
    out: dict[str, str] = {}
    for i, col in enumerate(c for c in columns if c in values):
        for other in [*[c for c in columns if c in values][:i], *[a for a in also if a in values]]:
            a, b = values[col], values[other]
            if np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                out[col] = other
                break
    return out


def _new_figure(size: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _one(frame: pd.DataFrame, unique_id: str, what: str) -> pd.DataFrame:
    if ID in frame.columns:
        frame = frame[frame[ID] == unique_id]
    if len(frame) == 0:
        raise ValueError(f"{what}: no rows for unique_id {unique_id!r}")
    return frame.sort_values(DS)


def fan_chart(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    unique_id: str,
    levels: Sequence[int],
    actuals: pd.DataFrame | None = None,
    title: str | None = None,
    unit: str = DEFAULT_UNIT,
) -> Figure:
    """History, ensemble forecast and its bands for one series, as a new ``Figure``; ``unit`` is the demand's
    (the y axis label), e.g. ``"requests per 5 min"``.

    Draws the recent history (``HISTORY_SPANS`` forecast-lengths, at least a day), a dashed vertical line
    at the forecast origin (the last observed timestamp), the ensemble point forecast, one shaded band
    per level (the widest palest, nested inside each other) and, when ``actuals`` (``unique_id, ds, y``)
    are given, the observed values over the forecast window.

    What a planner reads: the point line is the expected demand; the ``L`` % band is the range demand
    should stay inside ``L`` % of the time, so its upper edge is the capacity to provision for a risk of
    ``(100 - L) / 2`` % of under-provisioning at each step. A band that widens fast with the horizon says
    to plan over a shorter lead time; actuals leaving the bands more often than the levels promise say
    the calibration is off (check ``forecaster backtest`` coverage).
    """
    fc = _one(forecast, unique_id, "forecast")
    origin = fc[DS].iloc[0]
    hist = history[history[ID] == unique_id] if ID in history.columns else history
    hist = hist[hist[DS] < origin].sort_values(DS)
    if len(hist):
        origin = hist[DS].iloc[-1]
        span = max(HISTORY_SPANS * (fc[DS].iloc[-1] - origin), pd.Timedelta("1D"))
        hist = hist[hist[DS] > origin - span]
    fig = _new_figure()
    ax = fig.add_subplot()
    if len(hist):
        ax.plot(hist[DS], hist[Y], color="0.25", lw=1.0, label="history")
    ordered = sorted(levels, reverse=True)
    for i, level in enumerate(ordered):
        alpha = _BAND_ALPHA[min(i, len(_BAND_ALPHA) - 1)]
        ax.fill_between(
            fc[DS],
            fc[lo(ENSEMBLE, level)],
            fc[hi(ENSEMBLE, level)],
            color=_COLOR,
            alpha=alpha,
            lw=0,
            label=f"{level} % band",
        )
    ax.plot(fc[DS], fc[ENSEMBLE], color=_COLOR, lw=1.6, label="forecast (ensemble)")
    if actuals is not None and len(actuals):
        act = _one(actuals, unique_id, "actuals")
        act = act[(act[DS] > origin) & (act[DS] <= fc[DS].iloc[-1])]
        ax.plot(act[DS], act[Y], color="tab:red", lw=0, marker=".", ms=4, label="actual")
    ax.axvline(origin, color="0.4", ls="--", lw=1.0, label="forecast origin")
    ax.set_title(title or f"{unique_id}: forecast from {origin:%Y-%m-%d %H:%M} UTC")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(_demand_label(unit))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", ncols=2)
    fig.autofmt_xdate()
    return fig


def members_chart(forecast: pd.DataFrame, unique_id: str, members: Sequence[str], *,
                  unit: str = DEFAULT_UNIT) -> Figure:
    """Each member's point forecast (thin lines) over the ensemble (thick, drawn underneath) for one series.

    A member equal to an earlier one or to the ensemble at every step (``same_as``) is labelled
    ``"events (= seasonal)"`` and drawn dashed, so the line under it still shows. ``unit``: the demand's.

    What a planner reads: members close together mean the forecast rests on agreeing evidence; a member
    far from the others (e.g. ``events`` lifting a campaign day, ``signals`` reacting to a known input)
    is where the ensemble's weights matter, so check ``forecaster forecast``'s learned weights and the
    backtest errors before trusting that member's story. Members missing from ``forecast`` are skipped.
    """
    fc = _one(forecast, unique_id, "forecast")
    present = [m for m in members if m in fc.columns]
    equal = same_as(fc, present, also=[ENSEMBLE])
    fig = _new_figure()
    ax = fig.add_subplot()
    dashed = 0
    for member in present:
        style: dict[str, Any] = {"lw": 1.0, "alpha": 0.85, "zorder": 3}
        label = member
        if member in equal:
            label = f"{member} (= {equal[member]})"
            style.update(ls=_DASHES[dashed % len(_DASHES)], lw=1.6, alpha=1.0, zorder=4 + dashed)
            dashed += 1
        ax.plot(fc[DS], fc[member], label=label, **style)
    ax.plot(fc[DS], fc[ENSEMBLE], color="black", lw=2.2, label="ensemble", zorder=2)
    ax.set_title(f"{unique_id}: member forecasts vs ensemble")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(_demand_label(unit))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", ncols=3)
    fig.autofmt_xdate()
    return fig


# -- autoscaling: replays and the cost/risk trade-off -----------------------------------------------------
REPLAY_FIGSIZE: tuple[float, float] = (11.0, 6.0)
_POLICY_STYLE: dict[str, dict[str, Any]] = {
    "reactive": {"color": "tab:orange", "marker": "o"},
    "predictive": {"color": "tab:blue", "marker": "s"},
    "oracle": {"color": "tab:green", "marker": "*", "markersize": 16},
}


def _window(frame: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    if start is None and end is None:
        return frame
    ds = pd.DatetimeIndex(frame["ds"])
    first = pd.Timestamp(start) if start is not None else ds.min()
    last = pd.Timestamp(end) if end is not None else ds.max()
    return frame.loc[(ds >= first) & (ds <= last)]


def _headroom(ax: Any, share: float = 0.3) -> float:
    """An upper y limit leaving the top ``share`` of the panel free for its legend (nothing drawn under it)."""
    top = max(ax.dataLim.y1, 1e-9) if np.isfinite(ax.dataLim.y1) else 1.0
    return float(top / (1.0 - share))


def _summary(o: Outcomes) -> str:
    return (f"{o.policy}: {o.under_provisioned_minutes} under-provisioned min, {o.replica_minutes:,.0f} replica-min, "
            f"{o.scaling_actions} scaling actions")


def replay_chart(result: ReplayResult, *, reactive: ReplayResult | None = None, title: str | None = None,
                 start: Any = None, end: Any = None, unit: str = "demand units per minute") -> Figure:
    """Demand, ready capacity, replicas and floor over time for one replay (optionally a ``start``-``end`` slice),
    against ``reactive`` (the same demand replayed under the reactive HPA alone) when given.

    Top panel (``unit``: the replay's demand unit, per minute): demand and ready capacity (ready pods x capacity per
    pod), shaded red where demand exceeds it (the under-provisioned minutes); the reactive replay's ready capacity
    dotted orange, its under-provisioned minutes hatched. Bottom panel (pods): the ``minReplicas`` floor the policy
    wrote as a green shaded step area, the replicas asked for (``desired``, a wide pale line) and ready (a thin dark
    line on top), what the reactive rule wants for the minute's demand, and the reactive replay's ready pods dotted;
    lines never hide under the floor's area.

    What a planner reads: red slivers right after demand rises are the start-up delay the reactive HPA cannot
    hide; a predictive floor that climbs before the rise removes them (compare the hatched reactive minutes). A floor
    far above the reactive line for long stretches is paid for in replica-minutes (the title gives the totals).
    """
    frame = _window(result.frame, start, end)
    base = _window(reactive.frame, start, end) if reactive is not None else None
    fig = _new_figure(REPLAY_FIGSIZE)
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = pd.DatetimeIndex(frame["ds"])
    demand = frame["demand"].to_numpy(float)
    capacity = frame["capacity"].to_numpy(float)
    top.plot(x, demand, color="black", linewidth=0.8, label="demand", zorder=4)
    top.plot(x, capacity, color="tab:blue", linewidth=1.2, label="ready capacity", zorder=3)
    top.fill_between(
        x, capacity, demand, where=demand > capacity, color="tab:red", alpha=0.4, step="mid", label="under-provisioned"
    )
    if base is not None:
        bx = pd.DatetimeIndex(base["ds"])
        bd, bc = base["demand"].to_numpy(float), base["capacity"].to_numpy(float)
        top.plot(bx, bc, color="tab:orange", linewidth=1.2, linestyle=":", label="ready capacity, reactive HPA alone",
                 zorder=3)
        top.fill_between(bx, bc, bd, where=bd > bc, facecolor="none", edgecolor="tab:orange", hatch="////",
                         linewidth=0.0, step="mid", label="under-provisioned, reactive HPA alone")
    top.set_ylim(0, _headroom(top))
    top.set_ylabel(f"demand, capacity\n({unit})")
    top.legend(loc="upper left", fontsize="small", ncols=2 if base is not None else 1)
    bottom.fill_between(x, 0, frame["floor"].to_numpy(float), step="post", color="tab:green", alpha=0.22, lw=0,
                        label="floor (minReplicas)", zorder=1)
    bottom.step(x, frame["desired"], where="post", color="tab:blue", linewidth=3.2, alpha=0.45, label="desired",
                zorder=3)
    bottom.step(x, frame["ready"], where="post", color="navy", linewidth=1.0, label="ready", zorder=4)
    bottom.step(
        x, frame["reactive_desired"], where="post", color="tab:orange", linewidth=0.9, alpha=0.9, label="reactive rule",
        zorder=5,
    )
    if base is not None:
        bottom.step(pd.DatetimeIndex(base["ds"]), base["ready"], where="post", color="tab:red", linewidth=1.1,
                    linestyle=":", label="ready, reactive HPA alone", zorder=5)
    bottom.set_ylabel("replicas (pods)")
    bottom.set_xlabel("time (UTC)")
    bottom.set_ylim(0, _headroom(bottom))
    bottom.legend(loc="upper left", fontsize="small", ncols=5)
    summary = _summary(result.outcomes) + ("" if reactive is None else f"\n{_summary(reactive.outcomes)}")
    fig.suptitle(f"{title}\n{summary}" if title and reactive is not None else title or summary)
    return fig


def _outcome_rows(points: Iterable[Outcomes | Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(points, pd.DataFrame):
        return points
    return pd.DataFrame([p.as_dict() if isinstance(p, Outcomes) else dict(p) for p in points])


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The non-dominated rows (no other row is cheaper and at most as risky), sorted by cost.

    Worked example: (cost, risk) = (1, 9), (2, 5), (3, 7), (4, 1) -> (1, 9), (2, 5), (4, 1): (3, 7) costs more
    than (2, 5) for more risk."""
    ordered = points.sort_values(["replica_minutes", "under_provisioned_minutes"])
    risk = ordered["under_provisioned_minutes"].to_numpy(float)
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], risk[:-1]]))
    return ordered[risk < best_before]


def pareto_chart(
    points: Iterable[Outcomes | Mapping[str, Any]] | pd.DataFrame,
    *,
    title: str = "",
    references: Mapping[str, pd.DataFrame] | None = None,
) -> Figure:
    """Replica-minutes against under-provisioned minutes, one line per ``policy`` (points sorted by cost).

    ``points``: ``Outcomes``, dicts or a frame with ``policy``, ``replica_minutes``,
    ``under_provisioned_minutes`` and optionally ``label`` (the knob value, annotated). Each policy's line
    joins its Pareto front (``pareto_front``); dominated sweep points are faint and unlabelled. Oracle points
    are stars without a line.

    What a planner reads: lower-left is better. At a vertical line through a reactive point, the predictive
    curve below it is the risk removed at equal cost; at a horizontal line, the predictive point to its left
    is the cost saved at equal risk. The oracle marks what perfect foresight would reach.

    ``references``: optional named curves (frames with ``replica_minutes`` and ``under_provisioned_minutes``,
    e.g. ``forecaster.simulate.bounds`` curves) drawn dashed in grey within the risk range the points set; the
    cost axis widens to the left to show them.
    """
    frame = _outcome_rows(points)
    for col in ("policy", "replica_minutes", "under_provisioned_minutes"):
        if col not in frame.columns:
            raise ValueError(f"points: column {col!r} is missing")
    fig = _new_figure((8.0, 5.5))
    ax = fig.add_subplot()
    for policy, group in frame.groupby("policy", sort=False):
        group = group.sort_values(["replica_minutes", "under_provisioned_minutes"])
        style = dict(_POLICY_STYLE.get(str(policy), {"marker": "^"}))
        oracle = str(policy) == "oracle"
        front = group if oracle else pareto_front(group)
        if len(front) < len(group):  # dominated sweep points: faint markers, no line, no label
            rest = group.drop(front.index)
            ax.plot(rest["replica_minutes"], rest["under_provisioned_minutes"], linestyle="none", alpha=0.25,
                    color=style.get("color"), marker=style.get("marker", "^"))
        cost, risk = front["replica_minutes"], front["under_provisioned_minutes"]
        ax.plot(cost, risk, linestyle="none" if oracle else "-", label=str(policy), **style)
        if "label" in front.columns:
            for c, r, text in zip(cost, risk, front["label"], strict=True):
                ax.annotate(str(text), (c, r), fontsize="x-small", textcoords="offset points", xytext=(4, 4))
    (left, right), ylim = ax.get_xlim(), ax.get_ylim()
    for i, (name, ref) in enumerate((references or {}).items()):
        for col in ("replica_minutes", "under_provisioned_minutes"):
            if col not in ref.columns:
                raise ValueError(f"references[{name!r}]: column {col!r} is missing")
        front = pareto_front(ref)
        front = front[front["under_provisioned_minutes"] <= ylim[1]]
        ax.plot(front["replica_minutes"], front["under_provisioned_minutes"], color="0.45",
                linestyle=("--", ":", "-.")[i % 3], linewidth=1.2, label=str(name))
        if len(front):  # widen to the left so the part of the curve within the points' risk range shows
            left = min(left, float(front["replica_minutes"].min()) - 0.03 * (right - left))
    ax.set_xlim(left, right)
    ax.set_ylim(ylim)
    ax.set_xlabel("replica-minutes (cost)")
    ax.set_ylabel("under-provisioned minutes (risk)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or "cost against risk: lower-left is better")
    return fig


# -- right-sizing: one container over time, and the fleet's requests against use ---------------------------
RESOURCE_SCALE: dict[str, tuple[float, str]] = {CPU: (1.0, "CPU (cores)"), MEMORY: (GIB, "memory (GiB)")}
"""Per resource: divide contract amounts (cores, bytes) by the scale to get the axis unit, and its label."""


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps (or ISO 8601 text) as tz-aware UTC; naive values are taken as UTC."""
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.to_datetime(values, utc=True, format="ISO8601")
    return values.dt.tz_convert("UTC") if values.dt.tz is not None else values.dt.tz_localize("UTC")


def rightsizing_chart(
    usage: pd.DataFrame,
    recommendations: pd.DataFrame,
    unique_id: str,
    *,
    now: Any = None,
    window: str | pd.Timedelta = "24h",
    title: str | None = None,
) -> Figure:
    """One container's CPU (top) and memory (bottom) use over time, its request, and the recommendation.

    ``usage``: the usage frame (``forecaster.rightsizing.frames``: ``unique_id, ds, cpu, memory, cpu_request,
    memory_request``, optional limits); ``recommendations``: the recommendation frame (``resource, target,
    lower_bound, upper_bound``). Draws use (thin line), the request as a step line over time (and the
    limit, dotted, when the usage has one), then over ``[now, now + window)`` the recommended target (thick)
    inside its lower-upper band, with the current request carried on (dotted) for comparison. ``now``
    defaults to one sampling step after the last sample (``rightsize``'s default decision time).

    What an operator reads: the gap between the request line and the use line is slack paid for and unused;
    the target should sit just above the recurring peaks of memory (an overrun there is an OOM kill) and
    above most CPU peaks (an overrun there is throttling). A band far wider than the target says the
    prediction is unsure (short history): expect the next recommendation to move.
    """
    u = usage[usage[ID].astype(str) == unique_id] if ID in usage.columns else usage
    if len(u) == 0:
        raise ValueError(f"usage: no rows for unique_id {unique_id!r}")
    u = u.assign(**{DS: _utc(u[DS])}).sort_values(DS)
    recs = recommendations[recommendations[ID].astype(str) == unique_id].set_index(RESOURCE)
    span = pd.Timedelta(window)
    steps = u[DS].diff().dropna()
    when = pd.Timestamp(now) if now is not None else u[DS].iloc[-1] + (steps.median() if len(steps) else span * 0)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    fig = _new_figure((11.0, 6.4))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, resource in zip(axes, (CPU, MEMORY), strict=True):
        scale, label = RESOURCE_SCALE[resource]
        ax.plot(u[DS], u[resource] / scale, color="0.3", lw=0.8, label="use")
        request = u[REQUEST_OF[resource]] / scale
        ax.step(u[DS], request, where="post", color="tab:orange", lw=1.4, label="request")
        limit = LIMIT_OF[resource]
        if limit in u.columns and np.isfinite(u[limit].to_numpy(float)).any():
            ax.step(u[DS], u[limit] / scale, where="post", color="tab:red", lw=1.0, ls=":", label="limit")
        if resource in recs.index:
            rec = {str(k): v for k, v in recs.loc[recs.index == resource].iloc[0].items()}
            x = [when, when + span]
            lower, upper = float(rec[LOWER_BOUND]) / scale, float(rec[UPPER_BOUND]) / scale
            ax.fill_between(x, [lower] * 2, [upper] * 2, color="tab:green", alpha=0.2, lw=0, label="lower-upper bound")
            ax.plot(x, [float(rec[TARGET]) / scale] * 2, color="tab:green", lw=2.4, label="recommended target")
            ax.plot(x, [float(request.iloc[-1])] * 2, color="tab:orange", lw=1.0, ls=":", label="current request")
            ax.axvline(when, color="0.4", ls="--", lw=1.0)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="x-small", ncols=3)
    axes[-1].set_xlabel("time (UTC)")
    policy = str(recs[POLICY].iloc[0]) if POLICY in recs.columns and len(recs) else "recommended"
    fig.suptitle(title or f"{unique_id}: use and request; {policy} recommendation from {when:%Y-%m-%d %H:%M} UTC")
    fig.autofmt_xdate()
    return fig


def requested_vs_actual_chart(containers: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Per container, grouped bars: current request, p90 use (predicted or observed) and recommended target.

    ``containers``: ``RightsizingResult.containers`` (``forecaster.rightsizing.container_report``; amounts in
    cores and GiB), one panel per resource present. The peak use is a black tick over the use bar.

    What a planner reads: a request bar towering over the use bar is slack (money); the target bar is what
    right-sizing would book instead, and the difference between the first and third bars, summed, is the
    projected saving. A peak tick above the target marks a container whose recommendation accepts some risk
    (throttling for CPU, an OOM kill for memory); the report's ``risk`` column gives the probability.
    """
    for col in (ID, RESOURCE, "request", "usage_p90", "target"):
        if col not in containers.columns:
            raise ValueError(f"containers: column {col!r} is missing (pass RightsizingResult.containers)")
    resources = [r for r in (CPU, MEMORY) if (containers[RESOURCE] == r).any()]
    if not resources:
        raise ValueError("containers: no cpu or memory rows to draw")
    n = int(containers[ID].nunique())
    fig = _new_figure((max(8.0, min(0.5 * n + 4.0, 24.0)), 3.2 * len(resources) + 0.8))
    axes = np.atleast_1d(fig.subplots(len(resources), 1, squeeze=False)[:, 0])
    bars = (("request", "current request", "tab:orange"), ("usage_p90", "use p90", "0.45"),
            ("target", "recommended target", "tab:green"))  # fmt: skip
    for ax, resource in zip(axes, resources, strict=True):
        rows = containers[containers[RESOURCE] == resource].sort_values("request", ascending=False)
        x = np.arange(len(rows))
        for i, (col, label, color) in enumerate(bars):
            ax.bar(x + (i - 1) * 0.27, rows[col].to_numpy(float), width=0.27, color=color, label=label)
        if "usage_peak" in rows.columns:
            ax.plot(x, rows["usage_peak"].to_numpy(float), ls="none", marker="_", ms=14, mew=2, color="black",
                    label="peak use")  # fmt: skip
        ax.set_xticks(x, [str(v) for v in rows[ID]], rotation=30 if len(rows) > 6 else 0, ha="right")
        ax.set_ylabel(RESOURCE_SCALE[resource][1])
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper right", fontsize="x-small", ncols=4)
    basis = set(containers.get("basis", pd.Series(dtype=object)).dropna().astype(str))
    what = "predicted" if basis == {"prediction"} else "observed" if "prediction" not in basis else "predicted/observed"
    fig.suptitle(title or f"requested vs {what} use and recommended requests, per container")
    return fig


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (``DPI`` dots per inch); parent folders are created. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", dpi=DPI)
    return p
