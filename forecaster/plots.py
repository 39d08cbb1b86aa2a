"""Every chart of the project: one module, matplotlib ``Figure`` objects, nothing drawn on pyplot's state.

``fan_chart``     history, the ensemble forecast and its nested bands (what demand to plan for).
``members_chart`` each member's point forecast against the ensemble (why the ensemble says what it says).
``save_png``      write a figure to a PNG file.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, never through ``pyplot``, so no
global figure registry grows and nothing needs closing; a figure is freed when its last reference goes.
Band column names come from ``forecaster.frames``. Called by ``forecaster.cli`` and the notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecaster.frames import DS, ENSEMBLE, ID, Y, hi, lo

FIGSIZE: tuple[float, float] = (11.0, 4.8)
DPI = 120
HISTORY_SPANS = 3
"""``fan_chart`` shows this many forecast-lengths of history before the origin (at least one day)."""
_BAND_ALPHA = (0.18, 0.32, 0.46, 0.6)
_COLOR = "tab:blue"


def _new_figure() -> Figure:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
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
) -> Figure:
    """History, ensemble forecast and its bands for one series, as a new ``Figure``.

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
    ax.set_ylabel("demand (y)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", ncols=2)
    fig.autofmt_xdate()
    return fig


def members_chart(forecast: pd.DataFrame, unique_id: str, members: Sequence[str]) -> Figure:
    """Each member's point forecast (thin lines) against the ensemble (thick) for one series.

    What a planner reads: members close together mean the forecast rests on agreeing evidence; a member
    far from the others (e.g. ``events`` lifting a campaign day, ``signals`` reacting to a known input)
    is where the ensemble's weights matter, so check ``forecaster forecast``'s learned weights and the
    backtest errors before trusting that member's story. Members missing from ``forecast`` are skipped.
    """
    fc = _one(forecast, unique_id, "forecast")
    fig = _new_figure()
    ax = fig.add_subplot()
    for member in members:
        if member in fc.columns:
            ax.plot(fc[DS], fc[member], lw=1.0, alpha=0.85, label=member)
    ax.plot(fc[DS], fc[ENSEMBLE], color="black", lw=2.2, label="ensemble")
    ax.set_title(f"{unique_id}: member forecasts vs ensemble")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("demand (y)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", ncols=3)
    fig.autofmt_xdate()
    return fig


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (``DPI`` dots per inch); parent folders are created. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", dpi=DPI)
    return p
