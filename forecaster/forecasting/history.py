"""Validation of history frames at the edge (the Series contract in DESIGN.md).

``prepare_history`` turns whatever a caller hands us into a clean long frame on one regular grid, or raises
a ``SeriesError`` that names the offending row and column. Rules, in order:

1. Columns ``unique_id`` (str), ``ds`` (tz-aware; converted to UTC), ``y`` (numeric) must exist.
   Tz-naive timestamps are an error (we never guess a timezone).
2. Unsorted rows are sorted by ``(unique_id, ds)``. A duplicate ``(unique_id, ds)`` is an error naming the
   first duplicate.
3. Every timestamp must sit on the ``freq`` grid (``ds`` a whole multiple of ``freq`` from the epoch);
   off-grid stamps (mixed frequencies) are a ``FrequencyError`` naming the first one.
4. NaN, +/-inf, negative and implausible ``y`` (``|y| > MAX_ABS_Y``, 1e15: beyond any request rate, core or
   byte count a workload has; such values overflow the members' arithmetic) are errors reporting their counts
   and first row, unless ``bad_values="outage"``, which turns them into outage rows (counted in the report).
5. Gaps (missing grid points) are reindexed. Every filled row is an *outage* row: ``is_outage`` is True, so
   it is excluded from training targets and scoring. Its ``y`` is imputed so that models needing a
   contiguous series can run: the value one week earlier, else one day earlier, else linear interpolation
   (the same rule fills caller-marked outages such as the NASA trace's hurricane outage).
6. ``is_outage`` may be given by the caller (bool column) or as outage windows; both are merged.

Errors name a row as ``row i`` (its position in the caller's frame) unless an ``Origin`` says otherwise: a frame
read from a CSV file names file lines (``io.history_origin``: header = line 1, so data row ``i`` is line
``i + 2``), and the CLI's errors suggest its ``--bad-values outage`` flag instead of the keyword argument.

How much history (``require_history``), counted in observed (not outage) steps per series. Every member runs
as designed from 2 days + horizon (``FULL_HISTORY`` + h): MSTL needs two daily cycles, lgbm 2 days + horizon, and
a calibration window needs 2 days of training before it and h steps after it. With less, the members fall back
to seasonal-naive rules (last value under one day, ``MIN_HISTORY``), the weights are the defaults and the bands
uncalibrated. What each caller does with less:

- ``Forecaster.fit`` (``need="fit"``) runs on any length (the controller must cope with a new workload), marks
  each short series in ``SeriesReport.low_confidence`` with the reason and issues a ``ShortHistoryWarning``.
- ``forecaster forecast`` (``need="forecast"``) refuses a series under one day (at least 2 steps) with a
  ``SeriesError``: a day-long forecast with bands drawn from 50 minutes would mislead. Above it, as ``fit``.
- ``Forecaster.backtest`` (``need="backtest"``) refuses a series under 2 days + h: it has no window to score.

Pure: pandas and numpy only. Called by ``Forecaster.fit/backtest/update`` and the CLI loaders.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.errors import ForecasterWarning, FrequencyError, SeriesError
from forecaster.contracts.frames import DS, ID, OUTAGE, Y

MAX_ABS_Y = 1e15
"""Largest ``|y|`` a history may hold: 10^15 requests per step, cores or bytes (a petabyte) is beyond any workload.
Larger values are typos or corrupt exports (``1e300``) and overflow the members' squares and sums."""
MIN_HISTORY = pd.Timedelta("1D")
"""Least observed history per series that ``Forecaster.fit`` accepts: one daily cycle."""
FULL_HISTORY = pd.Timedelta("2D")
"""Observed history per series (plus the horizon) every member and one calibration window need."""
Progress = Callable[[int, int], None]
"""``progress(done, total)`` callback of long steps (validation steps here, bytes in ``forecaster.cli.files``)."""


class ShortHistoryWarning(ForecasterWarning):
    """A fit ran on less history than its members need: see ``SeriesReport.low_confidence``."""


@dataclass(frozen=True)
class Origin:
    """How validation errors point at a row of the history, and which fix for bad values they suggest.

    unit             ``"row"`` (default: the position in the caller's frame) or ``"line"`` (a file line).
    first            number of the frame's first row in that unit (CSV files: 2, the header is line 1).
    bad_values_flag  the switch that turns bad values into outages, as the caller spells it.
    """

    unit: str = "row"
    first: int = 0
    bad_values_flag: str = "bad_values='outage'"

    def at(self, position: int) -> str:
        """``"row 12"`` / ``"line 14"`` for the row at ``position`` (0-based) in the caller's frame."""
        return f"{self.unit} {position + self.first}"


@dataclass
class SeriesReport:
    """What validation found and did, per series. ``str(report)`` is a human summary."""

    n_series: int = 0
    n_rows_in: int = 0
    n_rows_out: int = 0
    sorted_rows: bool = False
    gaps_filled: dict[str, int] = field(default_factory=dict)
    bad_values: dict[str, int] = field(default_factory=dict)
    outage_rows: dict[str, int] = field(default_factory=dict)
    constant_series: list[str] = field(default_factory=list)
    low_confidence: dict[str, str] = field(default_factory=dict)
    """Series with less history than the members need (``require_history``): id -> reason."""

    def __str__(self) -> str:
        parts = [f"{self.n_series} series, {self.n_rows_in} rows in, {self.n_rows_out} rows on the grid"]
        if self.sorted_rows:
            parts.append("rows were unsorted and have been sorted")
        if self.gaps_filled:
            parts.append(f"gaps filled (marked outage): {sum(self.gaps_filled.values())} rows")
        if self.bad_values:
            parts.append(f"bad values turned into outages: {self.bad_values}")
        if self.outage_rows:
            parts.append(f"outage rows excluded from training and scoring: {sum(self.outage_rows.values())}")
        if self.constant_series:
            parts.append(f"constant series: {self.constant_series[:5]}")
        if self.low_confidence:
            parts.append(f"low confidence (short history): {sorted(self.low_confidence)[:5]}")
        return "; ".join(parts)


def implausible(y: np.ndarray) -> np.ndarray:
    """Mask of finite values beyond ``MAX_ABS_Y`` (NaN and inf are reported as such, not here)."""
    values = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) > MAX_ABS_Y)


def _to_utc(ds: pd.Series) -> pd.Series:
    if not isinstance(ds.dtype, pd.DatetimeTZDtype):
        try:
            parsed = pd.to_datetime(ds)
        except (ValueError, TypeError) as exc:
            raise SeriesError(f"column 'ds': cannot parse timestamps ({exc})") from exc
        if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
            raise SeriesError(
                "column 'ds': timestamps are timezone-naive; localize them first, e.g. "
                "df['ds'] = df['ds'].dt.tz_localize('UTC') (or the local zone they were recorded in)"
            )
        ds = parsed
    return ds.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _first_row(df: pd.DataFrame, mask: np.ndarray, origin: Origin) -> str:
    idx = int(np.flatnonzero(mask)[0])
    row = df.iloc[idx]
    return f"{origin.at(int(df.index[idx]))} (unique_id={row[ID]!r}, ds={row[DS]})"


def _duplicate(frame: pd.DataFrame, dup: np.ndarray, origin: Origin) -> str:
    """The first duplicate and the row it repeats (the lowest-numbered row with the same key)."""
    idx = int(np.flatnonzero(dup)[0])
    key = frame.iloc[idx]
    same = (frame[ID] == key[ID]).to_numpy() & (frame[DS] == key[DS]).to_numpy()
    seen = min(int(i) for i in frame.index[same] if int(i) != int(frame.index[idx]))
    return f"{_first_row(frame, dup, origin)}, same as {origin.at(seen)}"


def outage_mask_from_windows(frame: pd.DataFrame, windows: pd.DataFrame | None) -> np.ndarray:
    """Boolean mask of rows inside any outage window.

    ``windows`` has ``start`` and ``end`` (UTC, end exclusive) and optionally ``unique_id`` (missing or
    None = every series).
    """
    mask = np.zeros(len(frame), dtype=bool)
    if windows is None or len(windows) == 0:
        return mask
    for col in ("start", "end"):
        if col not in windows.columns:
            raise SeriesError(f"outage windows: missing column {col!r}")
    ds = frame[DS]
    for i, w in enumerate(windows.itertuples(index=False)):
        start, end = pd.Timestamp(w.start), pd.Timestamp(w.end)  # type: ignore[arg-type]
        if start.tzinfo is None or end.tzinfo is None:
            raise SeriesError(f"outage windows: row {i} has timezone-naive start/end")
        if end <= start:
            raise SeriesError(f"outage windows: row {i} ends ({end}) before it starts ({start})")
        inside = ((ds >= start) & (ds < end)).to_numpy()
        uid = getattr(w, ID, None)
        if isinstance(uid, str):
            inside = inside & (frame[ID] == uid).to_numpy()
        mask |= inside
    return mask


def impute_outages(y: np.ndarray, outage: np.ndarray, season_steps: tuple[int, ...]) -> np.ndarray:
    """Fill outage positions of one series: y[t - week], else y[t - day], else linear interpolation.

    Seasonal donors must themselves be observed (not outage) values; applied left to right so a long
    outage takes values from the week (or day) before it.
    """
    out = y.astype(float).copy()
    bad = outage.copy()
    if not bad.any():
        return out
    for t in np.flatnonzero(bad):
        for p in season_steps:
            if t - p >= 0 and not bad[t - p]:
                out[t] = out[t - p]
                bad[t] = False
                break
    if bad.any():
        good = ~bad
        if good.any():
            xs = np.arange(len(out))
            out[bad] = np.interp(xs[bad], xs[good], out[good])
        else:
            out[:] = 0.0
    return out


def prepare_history(
    df: pd.DataFrame,
    freq: str,
    *,
    outages: pd.DataFrame | None = None,
    bad_values: Literal["error", "outage"] = "error",
    origin: Origin = Origin(),
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, SeriesReport]:
    """Validate ``df`` against the Series contract and return ``(clean, report)``.

    ``clean`` has ``unique_id, ds, y, is_outage`` plus any extra (exogenous) columns, one row per grid
    point per series, sorted. See the module docstring for the rules. ``origin`` says how errors name rows;
    ``progress(done, total)`` is called after each of the checks and each series' gap filling.
    """
    report = SeriesReport(n_rows_in=len(df))
    for col in (ID, DS, Y):
        if col not in df.columns:
            raise SeriesError(f"history is missing column {col!r} (have {list(df.columns)})")
    if len(df) == 0:
        raise SeriesError("history is empty")
    step = freq_to_timedelta(freq)
    frame = df.reset_index(drop=True)  # row labels = positions in the caller's frame (used in errors)
    frame[ID] = frame[ID].astype(str)
    total = 6 + int(frame[ID].nunique())
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    frame[DS] = _to_utc(frame[DS])
    if frame[DS].isna().any():
        missing = _first_row(frame, frame[DS].isna().to_numpy(), origin)
        raise SeriesError(f"column 'ds': missing timestamp at {missing}")
    advance()
    try:
        frame[Y] = pd.to_numeric(frame[Y]).astype(float)
    except (ValueError, TypeError) as exc:
        raise SeriesError(f"column 'y': non-numeric value ({exc})") from exc
    advance()

    order = frame.sort_values([ID, DS], kind="stable").index
    if not order.equals(frame.index):  # unique RangeIndex, so this compares positions
        report.sorted_rows = True
        frame = frame.loc[order]
    advance()
    dup = frame.duplicated([ID, DS]).to_numpy()
    if dup.any():
        raise SeriesError(f"duplicate (unique_id, ds) at {_duplicate(frame, dup, origin)}")
    advance()

    ns = frame[DS].astype("int64").to_numpy()
    off = (ns % step.value) != 0
    if off.any():
        where = _first_row(frame, off, origin)
        raise FrequencyError(f"timestamp off the {freq} grid at {where}: mixed frequencies? resample to {freq} first")
    advance()

    yv = frame[Y].to_numpy()
    outage = np.zeros(len(frame), dtype=bool)
    if OUTAGE in frame.columns:
        outage |= frame[OUTAGE].fillna(False).astype(bool).to_numpy()
    outage |= outage_mask_from_windows(frame, outages)
    huge = implausible(yv)
    bad = ~np.isfinite(yv) | (yv < 0) | huge
    bad_caller = bad & ~outage
    if bad_caller.any():
        counts = {
            "NaN": int(np.isnan(yv[bad_caller]).sum()),
            "inf": int(np.isinf(yv[bad_caller]).sum()),
            "negative": int((yv[bad_caller] < 0).sum()),
            f"implausible (|y| > {MAX_ABS_Y:g})": int(huge[bad_caller].sum()),
        }
        counts = {k: v for k, v in counts.items() if v}
        if bad_values == "error":
            raise SeriesError(
                f"column 'y' has invalid demand values {counts}; first at {_first_row(frame, bad_caller, origin)}. "
                "Fix them, mark them as outages (is_outage column or outage windows), "
                f"or pass {origin.bad_values_flag}"
            )
        for uid, n in frame.loc[bad_caller, ID].value_counts().items():
            report.bad_values[str(uid)] = int(n)
    frame[OUTAGE] = outage | bad
    advance()

    # per series (rows are grouped by series, in id order): a series already on a full grid without an outage row is
    # kept as it is, without the per-series pandas work below (``_regular``): the same rows and values as that work
    ids = frame[ID].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    regular, constant = _regular(ns, frame[OUTAGE].to_numpy(dtype=bool), frame[Y].to_numpy(dtype=float), starts, step)
    bounds = np.r_[starts, len(frame)]
    pieces: list[pd.DataFrame] = []
    kept_from: int | None = None  # first row of the current run of regular series
    day, week = steps_per("1D", freq), steps_per("7D", freq)
    for i, uid in enumerate(ids[starts]):
        a, b = int(bounds[i]), int(bounds[i + 1])
        if regular[i]:
            kept_from = a if kept_from is None else kept_from
            if constant[i]:
                report.constant_series.append(str(uid))
            continue
        if kept_from is not None:
            pieces.append(frame.iloc[kept_from:a])
            kept_from = None
        pieces.append(_on_grid(frame.iloc[a:b], str(uid), step, (week, day), report))
        advance()
    if kept_from is not None:
        pieces.append(frame.iloc[kept_from:])
    done += int(regular.sum())
    if progress is not None and regular.any():
        progress(done, total)
    clean = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)
    lead = [ID, DS, Y, OUTAGE]
    clean = clean[lead + [c for c in clean.columns if c not in lead]]
    report.n_series = len(starts)
    report.n_rows_out = len(clean)
    return clean, report


def _regular(
    ns: np.ndarray, outage: np.ndarray, y: np.ndarray, starts: np.ndarray, step: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """Per series of a sorted, de-duplicated, on-grid frame (series ``i`` = rows ``starts[i]`` up to the next start):
    ``(regular, constant)``. Regular: no gap (``(last - first) / step + 1`` equals its row count) and no outage row,
    so ``_on_grid`` would change nothing; constant: regular and ``max(y) == min(y)``. E.g. 5-minute rows at 00:00,
    00:05, 00:15 -> (15 - 0) / 5 + 1 = 4 grid points for 3 rows: a gap, not regular."""
    if len(starts) == 0:
        return np.zeros(0, bool), np.zeros(0, bool)
    counts = np.diff(np.r_[starts, len(ns)])
    ends = starts + counts - 1
    full = (ns[ends] - ns[starts]) // step.value + 1 == counts
    regular = full & ~np.logical_or.reduceat(outage, starts)
    with np.errstate(invalid="ignore"):
        constant = regular & (np.maximum.reduceat(y, starts) - np.minimum.reduceat(y, starts) == 0)
    return regular, constant


def _on_grid(
    g: pd.DataFrame, uid: str, step: pd.Timedelta, seasons: tuple[int, int], report: SeriesReport
) -> pd.DataFrame:
    """One series on its full grid (gaps reindexed as outage rows), outage rows imputed (``impute_outages``), its
    gaps, outage rows and constancy in ``report``."""
    grid = pd.date_range(g[DS].iloc[0], g[DS].iloc[-1], freq=step, tz="UTC")
    if len(grid) != len(g):
        report.gaps_filled[uid] = len(grid) - len(g)
        g = g.set_index(DS).reindex(grid).rename_axis(DS).reset_index()
        g[ID] = uid
        g[OUTAGE] = g[OUTAGE].astype("boolean").fillna(True).astype(bool)
    out_mask = g[OUTAGE].to_numpy(dtype=bool)
    if out_mask.any():
        report.outage_rows[uid] = int(out_mask.sum())
        g = g.copy()
        g[Y] = impute_outages(g[Y].to_numpy(dtype=float), out_mask, seasons)
    yy = g[Y].to_numpy()
    if np.nanmax(yy) - np.nanmin(yy) == 0:
        report.constant_series.append(uid)
    return g


def _span(steps: int, freq: str) -> str:
    """``"50 min"``, ``"11 h"``, ``"1.5 days"``: ``steps`` of ``freq`` in words."""
    td = steps * freq_to_timedelta(freq)
    if td < pd.Timedelta("1h"):
        return f"{td / pd.Timedelta('1min'):g} min"
    if td < pd.Timedelta("1D"):
        return f"{td / pd.Timedelta('1h'):.3g} h"
    return f"{td / pd.Timedelta('1D'):.3g} days"


Need = Literal["fit", "forecast", "backtest"]


def require_history(
    clean: pd.DataFrame, freq: str, horizon: int, report: SeriesReport | None = None, *, need: Need = "fit"
) -> dict[str, str]:
    """Check every series of ``clean`` (from ``prepare_history``) against what ``need`` requires (module docstring).

    Returns the low-confidence series (id -> reason: under ``FULL_HISTORY`` + ``horizon`` observed steps), also
    recorded in ``report.low_confidence``; ``need="fit"`` issues a ``ShortHistoryWarning`` for them.
    ``SeriesError`` naming the shortest series: ``need="forecast"`` under ``MIN_HISTORY`` (one day, at least
    2 steps), ``need="backtest"`` under ``FULL_HISTORY`` + ``horizon``. Worked numbers at 5min with h = 288: low
    confidence under 864 observed steps (576 + 288), a forecast command refuses under 288; a backtest with h = 12
    needs 588.
    """
    minimum = max(steps_per(MIN_HISTORY, freq), 2)
    full = steps_per(FULL_HISTORY, freq) + horizon
    observed = (~clean[OUTAGE].to_numpy(dtype=bool)).astype(int)
    counts = pd.Series(observed).groupby(clean[ID].to_numpy(), sort=True).sum().sort_values(kind="stable")
    limit = {"fit": 0, "forecast": minimum, "backtest": full}[need]
    short = counts[counts < limit]
    if len(short):
        listed = ", ".join(f"{u!r} ({int(n)} observed steps, {_span(int(n), freq)})" for u, n in short.iloc[:3].items())
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        if need == "backtest":
            why = (
                f"a backtest needs at least 2 days + horizon ({full} steps at {freq}) for one window: 2 days to "
                f"train on before the cutoff and the horizon ({horizon} steps) after it to score. Give more history "
                "or a shorter horizon"
            )
        else:
            why = (
                f"a forecast needs at least one day ({minimum} steps at {freq}) to see a daily cycle, and 2 days + "
                f"horizon ({full} steps) for every member and calibrated bands. Give more history (outage rows do "
                "not count)"
            )
        raise SeriesError(f"history too short: series {listed}{more}; {why}")
    low = {
        str(u): (
            f"{int(n)} observed steps ({_span(int(n), freq)}) is under 2 days + horizon ({full} steps): members fall "
            + ("back to the last value (no daily cycle seen)" if n < minimum else "back to seasonal-naive rules")
            + ", weights are the defaults and the bands are not calibrated"
        )
        for u, n in counts[counts < full].items()
    }
    if report is not None:
        report.low_confidence = dict(low)
    if low and need == "fit":
        first = next(iter(low))
        more = f" and {len(low) - 1} more series" if len(low) > 1 else ""
        warnings.warn(f"low-confidence forecast for {first!r}{more}: {low[first]}", ShortHistoryWarning, stacklevel=4)
    return low
