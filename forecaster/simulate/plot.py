"""Charts of a replay: demand against ready capacity and replicas over time, and the cost/risk Pareto chart.

``replay_chart(result)``  top: demand and ready capacity (shaded where demand exceeds it); bottom: desired and
                          ready replicas, the predictive floor (``minReplicas`` written) and what the reactive rule
                          wants for the minute's demand.
``pareto_chart(points)``  replica-minutes (cost) against under-provisioned minutes (risk), one line per policy
                          swept over its knob, the oracle as a star.

Built on ``matplotlib.figure.Figure`` with the Agg canvas, never ``pyplot``, like ``forecaster.plots`` (where
these may move). Called by the CLI, the autoscaling benchmark and notebooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecaster.simulate.result import Outcomes, ReplayResult

FIGSIZE: tuple[float, float] = (11.0, 6.0)
DPI = 120
_POLICY_STYLE: dict[str, dict[str, Any]] = {
    "reactive": {"color": "tab:orange", "marker": "o"},
    "predictive": {"color": "tab:blue", "marker": "s"},
    "oracle": {"color": "tab:green", "marker": "*", "markersize": 16},
}


def _figure(size: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def replay_chart(result: ReplayResult, *, title: str | None = None, start: Any = None, end: Any = None) -> Figure:
    """Demand, ready capacity, replicas and floor over time for one replay (optionally a ``start``-``end`` slice)."""
    frame = result.frame
    if start is not None or end is not None:
        ds = pd.DatetimeIndex(frame["ds"])
        lo = pd.Timestamp(start) if start is not None else ds.min()
        hi = pd.Timestamp(end) if end is not None else ds.max()
        frame = frame.loc[(ds >= lo) & (ds <= hi)]
    fig = _figure()
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = pd.DatetimeIndex(frame["ds"])
    demand = frame["demand"].to_numpy(float)
    capacity = frame["capacity"].to_numpy(float)
    top.plot(x, demand, color="black", linewidth=0.8, label="demand")
    top.plot(x, capacity, color="tab:blue", linewidth=1.0, label="ready capacity")
    top.fill_between(x, capacity, demand, where=demand > capacity, color="tab:red", alpha=0.4, step="mid",
                     label="under-provisioned")
    top.set_ylabel("demand per minute")
    top.legend(loc="upper left", fontsize="small")
    bottom.step(x, frame["desired"], where="post", color="tab:blue", linewidth=1.0, label="desired")
    bottom.plot(x, frame["ready"], color="tab:cyan", linewidth=0.8, label="ready")
    bottom.step(x, frame["floor"], where="post", color="tab:green", linewidth=1.0, linestyle="--", label="floor")
    bottom.step(x, frame["reactive_desired"], where="post", color="tab:orange", linewidth=0.8, alpha=0.8,
                label="reactive rule")
    bottom.set_ylabel("replicas")
    bottom.legend(loc="upper left", fontsize="small", ncols=4)
    o = result.outcomes
    fig.suptitle(title or (f"{o.policy}: {o.under_provisioned_minutes} under-provisioned min, "
                           f"{o.replica_minutes:,.0f} replica-min, {o.scaling_actions} scaling actions"))
    return fig


def _rows(points: Iterable[Outcomes | Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(points, pd.DataFrame):
        return points
    rows = [p.as_dict() if isinstance(p, Outcomes) else dict(p) for p in points]
    return pd.DataFrame(rows)


def pareto_chart(points: Iterable[Outcomes | Mapping[str, Any]] | pd.DataFrame, *, title: str = "") -> Figure:
    """Replica-minutes against under-provisioned minutes, one line per ``policy`` (points sorted by cost), oracle
    points as stars. ``points``: ``Outcomes``, dicts or a frame with ``policy``, ``replica_minutes``,
    ``under_provisioned_minutes`` and optionally ``label`` (the knob value, annotated)."""
    frame = _rows(points)
    for col in ("policy", "replica_minutes", "under_provisioned_minutes"):
        if col not in frame.columns:
            raise ValueError(f"points: column {col!r} is missing")
    fig = _figure((8.0, 5.5))
    ax = fig.subplots()
    for policy, group in frame.groupby("policy", sort=False):
        group = group.sort_values("replica_minutes")
        style = dict(_POLICY_STYLE.get(str(policy), {"marker": "^"}))
        line = "none" if str(policy) == "oracle" else "-"
        ax.plot(group["replica_minutes"], group["under_provisioned_minutes"], linestyle=line, label=str(policy),
                **style)
        if "label" in group.columns:
            for _, row in group.iterrows():
                ax.annotate(str(row["label"]), (row["replica_minutes"], row["under_provisioned_minutes"]),
                            fontsize="x-small", textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("replica-minutes (cost)")
    ax.set_ylabel("under-provisioned minutes (risk)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or "cost against risk: lower-left is better")
    return fig
