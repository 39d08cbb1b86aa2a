"""Files in and out of the CLI: history CSV/Parquet -> long frame, frames -> CSV/JSON/Parquet.

``read_history`` reads a history file into the Series contract's long frame ``unique_id, ds (UTC), y``
(plus ``is_outage`` when the file has it) and raises ``InputError`` naming the file, line and column of
the first problem. It checks what only the file can tell (columns, timestamp text, timezone, numbers);
``forecaster.forecasting.history.prepare_history`` then checks the frame (duplicates, grid, bad values), naming file
lines through ``history_origin(path)``: the one rule (header = line 1, data row ``i`` = line ``i + 2``;
Parquet rows by position) both modules use. CSV files are read in chunks of ``CHUNK_ROWS`` rows so a
``progress(bytes_read, file_bytes)`` callback can show how far a large file has got.

``write_frame`` / ``write_json`` write outputs by suffix. The durable store is ``forecaster.adapters.store``.

Called by ``forecaster.cli`` (and notebooks). Reads and writes local files only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID, OUTAGE, Y
from forecaster.forecasting.history import Origin, Progress

HISTORY_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".json", ".parquet")
_AWARE = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"
"""A timestamp text with an explicit offset after its time of day: ``...T04:00Z``, ``... 04:00+02:00``."""


CHUNK_ROWS = 250_000
"""Rows per CSV chunk (about 10 MB of a ``unique_id,ds,y`` file): the unit of reading progress."""


def history_origin(path: Path) -> Origin:
    """How errors name a data row of this file: CSV line numbers (header = line 1), else positions."""
    return Origin("line", 2) if path.suffix.lower() == ".csv" else Origin()


def _where(path: Path, i: int) -> str:
    """Human position of data row ``i`` (0-based): ``api.csv line 14`` / ``api.parquet row 12``."""
    return f"{path.name} {history_origin(path).at(i)}"


def _read_chunks(path: Path, chunk_rows: int, progress: Progress | None) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks (one for Parquet), each on a fresh RangeIndex; ``progress`` after each."""
    suffix = path.suffix.lower()
    if suffix not in HISTORY_SUFFIXES:
        raise InputError(f"{path.name}: unsupported history file type {suffix!r}; use one of {list(HISTORY_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such history file")
    size = path.stat().st_size
    errors = (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError)
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            if progress is not None:
                progress(size, size)
            yield frame.reset_index(drop=True)
            return
        with path.open("rb") as fh:
            reader = pd.read_csv(fh, dtype={ID: str, DS: str}, chunksize=max(int(chunk_rows), 1))
            chunks = iter(reader)
            while (chunk := next(chunks, None)) is not None:
                if progress is not None:
                    progress(min(fh.tell(), size), size)
                yield chunk.reset_index(drop=True)
        if progress is not None:
            progress(size, size)
    except errors as exc:
        raise InputError(f"{path.name}: cannot read ({exc})") from exc


@dataclass
class TimestampStyle:
    """What the ``ds`` text of the chunks read so far looked like: the first row without an offset, if any,
    and whether any row had one (a file mixing both is an error naming that first offset-less row)."""

    first_naive: tuple[int, str] | None = None
    any_aware: bool = False

    def check(self, path: Path) -> None:
        if self.first_naive is not None and self.any_aware:
            i, text = self.first_naive
            raise InputError(
                f"{_where(path, i)}: column 'ds' mixes timestamps with and without a UTC offset "
                f"({text!r} has none); write every timestamp the same way"
            )


def parse_timestamps(
    raw: pd.Series, path: Path, tz: str | None = None, *, offset: int = 0, style: TimestampStyle | None = None
) -> pd.Series:
    """Column ``ds`` -> tz-aware UTC timestamps.

    Text must be ISO 8601. With an offset (``2024-03-01T00:00Z``, ``+01:00``) it is converted to UTC and
    ``tz`` is not used; without one it is local time in ``tz`` (an IANA zone such as ``Europe/Paris``);
    naive text without ``tz`` is an error, as is a file mixing both. Parquet datetime columns follow the
    same rule (naive -> ``tz``). ``raw`` may be one chunk of a file: ``offset`` is its first data row and
    ``style`` carries what earlier chunks looked like (so naive text without ``tz`` fails at the first
    chunk, and a mix is found across chunks).
    """
    style = style if style is not None else TimestampStyle()
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = pd.Series(pd.to_datetime(raw), index=raw.index)
        naive_col = not isinstance(parsed.dtype, pd.DatetimeTZDtype)
    else:
        text = raw.astype("string").str.strip()
        missing = text.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise InputError(f"{_where(path, offset + i)}: column 'ds' is empty")
        aware = text.str.contains(_AWARE, regex=True).to_numpy(dtype=bool)
        if not aware.all() and style.first_naive is None:
            i = int(np.flatnonzero(~aware)[0])
            style.first_naive = (offset + i, str(text.iloc[i]))
        style.any_aware = style.any_aware or bool(aware.any())
        style.check(path)
        naive_col = not aware.any()
        parsed = pd.to_datetime(text, format="ISO8601", utc=not naive_col, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{_where(path, offset + i)}: column 'ds' value {text.iloc[i]!r} is not an ISO 8601 timestamp "
                "(e.g. 2024-03-01T00:05Z)"
            )
    if naive_col:
        if tz is None:
            first = raw.iloc[0] if len(raw) else ""
            raise InputError(
                f"{_where(path, offset)}: column 'ds' has timezone-naive timestamps ({str(first)!r}); "
                "pass --tz with the zone they were recorded in (e.g. --tz UTC or --tz Europe/Paris)"
            )
        try:
            parsed = parsed.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except Exception as exc:  # zone name errors and DST gaps/overlaps come as several types
            raise InputError(f"{path.name}: column 'ds': cannot localize to tz={tz!r} ({exc})") from exc
    return parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _history_rows(
    raw: pd.DataFrame, path: Path, offset: int, unique_id: str | None, tz: str | None, style: TimestampStyle
) -> pd.DataFrame:
    """One chunk of a history file (data rows ``offset`` ...) as ``unique_id, ds, y[, is_outage]``."""
    if ID in raw.columns:
        ids = raw[ID]
        empty = ids.isna().to_numpy() | (ids.astype("string").str.strip() == "").fillna(True).to_numpy()
        if empty.any():
            raise InputError(f"{_where(path, offset + int(np.flatnonzero(empty)[0]))}: column 'unique_id' is empty")
        uid = ids.astype(str).str.strip()
    else:
        uid = pd.Series(unique_id or path.stem, index=raw.index, dtype=str)
    y = pd.to_numeric(raw[Y], errors="coerce")
    not_num = (y.isna() & raw[Y].notna()).to_numpy()
    if not_num.any():
        i = int(np.flatnonzero(not_num)[0])
        raise InputError(f"{_where(path, offset + i)}: column 'y' value {raw[Y].iloc[i]!r} is not a number")
    ds = parse_timestamps(raw[DS], path, tz, offset=offset, style=style)
    out = pd.DataFrame({ID: uid.to_numpy(dtype=object), DS: ds, Y: y.astype(float)})
    if OUTAGE in raw.columns:
        out[OUTAGE] = [_flag(v, path, offset + i) for i, v in enumerate(raw[OUTAGE].tolist())]
    return out


def read_history(
    path: str | Path,
    *,
    unique_id: str | None = None,
    tz: str | None = None,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Read a history CSV or Parquet file into ``unique_id, ds, y[, is_outage]``.

    Columns: ``ds`` and ``y`` are required; ``unique_id`` is optional (default ``unique_id`` argument,
    else the file name without suffix, e.g. ``api.csv`` -> ``api``); ``is_outage`` (0/1, true/false)
    is optional. Other columns are ignored. Timestamps: see ``parse_timestamps``. ``y`` must be numeric;
    an empty ``y`` cell is kept as NaN for ``prepare_history`` to report. The result's row ``i`` is data
    row ``i`` of the file (``history_origin(path).at(i)`` names it). CSV files are read ``chunk_rows``
    at a time, calling ``progress(bytes_read, file_bytes)`` after each chunk.
    """
    p = Path(path)
    style, parts, offset = TimestampStyle(), [], 0
    for raw in _read_chunks(p, chunk_rows, progress):
        missing = [c for c in (DS, Y) if c not in raw.columns]
        if missing:
            raise InputError(f"{p.name}: missing column(s) {missing} (have {list(raw.columns)}); need ds, y")
        if len(raw):
            parts.append(_history_rows(raw, p, offset, unique_id, tz, style))
            offset += len(raw)
    if not parts:
        raise InputError(f"{p.name}: no data rows")
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if OUTAGE in out.columns:
        out[OUTAGE] = out[OUTAGE].astype(bool)
    return out


def _flag(value: Any, path: Path, i: int) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in {"1", "1.0", "true", "t", "yes"}:
        return True
    if text in {"0", "0.0", "false", "f", "no", ""}:
        return False
    raise InputError(f"{_where(path, i)}: column 'is_outage' value {value!r} is not 0/1 or true/false")


def _check_suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise InputError(f"{path.name}: unsupported {what} file type {suffix!r}; use one of {list(allowed)}")
    return suffix


def check_output_path(path: str | Path) -> Path:
    """Fail early (before any fitting) when an output's suffix is not .csv/.json/.parquet."""
    p = Path(path)
    _check_suffix(p, OUTPUT_SUFFIXES, "output")
    return p


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` by suffix: ``.csv`` (ISO 8601 UTC timestamps), ``.json`` (list of records,
    ISO timestamps) or ``.parquet``. Parent folders are created."""
    p = Path(path)
    suffix = _check_suffix(p, OUTPUT_SUFFIXES, "output")
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(p, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    elif suffix == ".json":
        frame.to_json(p, orient="records", date_format="iso", date_unit="s", indent=1)
    else:
        frame.to_parquet(p, index=False)
    return p


def jsonable(value: Any) -> Any:
    """Recursively make ``value`` JSON-safe: NaN/inf -> None, numpy scalars -> Python, timestamps -> ISO."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` (made safe by ``jsonable``) as indented JSON; parent folders are created."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return p
