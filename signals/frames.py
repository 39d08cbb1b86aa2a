"""Column names, kinds and validation of the ``signals`` long frames (DESIGN.md "Contracts").

Events frame: ``name, kind, start, end`` (UTC, end exclusive) plus optional ``scope``, ``expected_uplift``
and ``id``; validated by ``signals.events.validate_events``.
Signals frame: ``ds, signal, value, known_in_advance``; validated here by ``validate_signals``.

Every module of ``signals`` (and the forecaster's members) takes column names from here. Pure: pandas only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from signals.errors import SignalsError

# --- events ---------------------------------------------------------------------------------------------
NAME = "name"
KIND = "kind"
START = "start"
END = "end"
SCOPE = "scope"
"""None/NaN = every workload; else comma-separated workload ids or fnmatch globs (``"checkout-*,api"``)."""
UPLIFT = "expected_uplift"
"""Relative uplift a planner expects, 0.3 = +30 %; used when history has no event of that kind."""
EVENT_ID = "id"
"""Stable id; defaults to a hash of name/kind/start (``signals.events.event_id``)."""

EVENT_KINDS: tuple[str, ...] = ("campaign", "launch", "sale", "holiday", "custom")
EVENT_REQUIRED: tuple[str, ...] = (NAME, KIND, START, END)
EVENT_COLUMNS: tuple[str, ...] = (EVENT_ID, NAME, KIND, START, END, SCOPE, UPLIFT)

# --- signals --------------------------------------------------------------------------------------------
DS = "ds"
SIGNAL = "signal"
VALUE = "value"
KNOWN = "known_in_advance"
"""True for values known before they happen (calendars, schedules, weather forecasts); False for values
only observed (sentiment), which may enter a model only lagged by at least the horizon."""
SIGNAL_COLUMNS: tuple[str, ...] = (DS, SIGNAL, VALUE, KNOWN)

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and the contract's dtypes."""
    return pd.DataFrame(
        {
            EVENT_ID: pd.Series([], dtype=object),
            NAME: pd.Series([], dtype=object),
            KIND: pd.Series([], dtype=object),
            START: pd.Series([], dtype="datetime64[ns, UTC]"),
            END: pd.Series([], dtype="datetime64[ns, UTC]"),
            SCOPE: pd.Series([], dtype=object),
            UPLIFT: pd.Series([], dtype=float),
        }
    )


def empty_signals() -> pd.DataFrame:
    """A signals frame with no rows and the contract's dtypes."""
    return pd.DataFrame(
        {
            DS: pd.Series([], dtype="datetime64[ns, UTC]"),
            SIGNAL: pd.Series([], dtype=object),
            VALUE: pd.Series([], dtype=float),
            KNOWN: pd.Series([], dtype=bool),
        }
    )


def to_utc(
    value: Any, *, where: str, tz: str | None = None, error: type[SignalsError] = SignalsError
) -> pd.Timestamp:
    """Parse one timestamp and return it in UTC.

    Accepts ISO strings, ``datetime``, ``date`` (midnight) and ``pd.Timestamp``. A value without a timezone
    is localized to ``tz`` when given, else it is an error (we never guess a zone). ``where`` names the
    row and field in the message, e.g. ``"events.csv: row 3 ('Black Friday'): field 'start'"``.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        raise error(f"{where}: missing timestamp")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise error(f"{where}: cannot parse {value!r} as a timestamp ({exc})") from exc
    if pd.isna(ts):
        raise error(f"{where}: missing timestamp")
    if ts.tzinfo is None:
        if tz is None:
            raise error(
                f"{where}: timestamp {value!s} has no timezone; write it with an offset "
                "(e.g. 2024-11-29T00:00:00-05:00) or pass tz='America/New_York' (the zone it was written in)"
            )
        try:
            ts = ts.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except Exception as exc:
            raise error(f"{where}: cannot localize {value!s} to tz={tz!r} ({exc})") from exc
    return ts.tz_convert("UTC").as_unit("ns")


def to_utc_column(col: pd.Series, *, where: str, tz: str | None = None) -> pd.Series:
    """Vectorised ``to_utc`` for a whole column; falls back to row-by-row parsing to name a bad row."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        out: pd.Series = col.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return out
    if pd.api.types.is_datetime64_dtype(col.dtype) and tz is not None:
        try:
            out = col.dt.tz_localize(tz).dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
            return out
        except Exception:  # the row-by-row pass below names the bad row
            pass
    values = [to_utc(v, where=f"{where} row {i}", tz=tz) for i, v in enumerate(col.tolist())]
    return pd.Series(pd.DatetimeIndex(values, tz="UTC"), index=col.index, dtype="datetime64[ns, UTC]")


def to_bool(value: Any, *, where: str) -> bool:
    """``True/False``, ``1/0`` or the strings true/false/yes/no (any case); anything else is an error."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SignalsError(f"{where}: {value!r} is not a boolean (use true/false)")


def validate_signals(df: pd.DataFrame, source: str = "signals", tz: str | None = None) -> pd.DataFrame:
    """Check ``df`` against the Signals contract and return a clean copy sorted by ``signal, ds``.

    Rules: the four columns exist and no others; ``ds`` tz-aware (naive only with ``tz``), converted to
    UTC; ``signal`` a non-empty string; ``value`` finite float; ``known_in_advance`` boolean and constant
    per signal; no duplicate ``(signal, ds)``. Errors are ``SignalsError`` naming ``source``, row and field.
    """
    missing = [c for c in SIGNAL_COLUMNS if c not in df.columns]
    if missing:
        raise SignalsError(f"{source}: missing column(s) {missing} (have {list(df.columns)})")
    extra = [c for c in df.columns if c not in SIGNAL_COLUMNS]
    if extra:
        raise SignalsError(f"{source}: unknown column(s) {extra}; allowed: {list(SIGNAL_COLUMNS)}")
    frame = df.reset_index(drop=True)
    out = pd.DataFrame({DS: to_utc_column(frame[DS], where=f"{source}: field 'ds',", tz=tz)})
    names = []
    for i, s in enumerate(frame[SIGNAL].tolist()):
        if not isinstance(s, str) or not s.strip():
            raise SignalsError(f"{source}: row {i}: field 'signal' must be a non-empty string, got {s!r}")
        names.append(s.strip())
    out[SIGNAL] = pd.Series(names, dtype=object)
    values = pd.to_numeric(frame[VALUE], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SignalsError(
            f"{source}: row {i} (signal {names[i]!r}): field 'value' is {frame[VALUE].tolist()[i]!r}, "
            f"not a finite number ({int(bad.sum())} bad row(s) in all)"
        )
    out[VALUE] = values
    out[KNOWN] = [
        to_bool(v, where=f"{source}: row {i}: field 'known_in_advance'") for i, v in enumerate(frame[KNOWN])
    ]
    for name, g in out.groupby(SIGNAL, sort=False):
        if g[KNOWN].nunique() > 1:
            i = int(g.index[(g[KNOWN] != g[KNOWN].iloc[0]).to_numpy()][0])
            raise SignalsError(
                f"{source}: row {i}: field 'known_in_advance' for signal {name!r} disagrees with earlier rows"
                " (it must be constant per signal)"
            )
    dup = out.duplicated([SIGNAL, DS]).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise SignalsError(f"{source}: row {i}: duplicate (signal, ds) = ({names[i]!r}, {out[DS].iloc[i]})")
    return out.sort_values([SIGNAL, DS], kind="stable").reset_index(drop=True)


def known_map(signals: pd.DataFrame) -> dict[str, bool]:
    """``{signal: known_in_advance}`` of a validated signals frame."""
    first = signals.drop_duplicates(SIGNAL)
    return {str(s): bool(k) for s, k in zip(first[SIGNAL], first[KNOWN], strict=True)}
