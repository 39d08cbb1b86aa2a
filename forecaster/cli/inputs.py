"""Option values of the operations commands (``simulate``, ``rightsize``): tables, choices, timestamps, durations,
output paths, file-name slugs and amounts, each parsed with an ``InputError`` that names the option."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.cli import files as io
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing.frames import CPU, GIB, MIB

TABLE_SUFFIXES = (".csv", ".parquet")


# -- reading and parsing ---------------------------------------------------------------------------------
def read_table(path: Path, what: str, tz: str | None) -> pd.DataFrame:
    """A CSV/Parquet file as a frame; ``ds`` (when present) parsed to UTC by ``io.parse_timestamps``."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path.name}: unsupported {what} file type {suffix!r}; use one of {list(TABLE_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        raw = pd.read_csv(path, dtype={ID: str, DS: str}) if suffix == ".csv" else pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: cannot read ({exc})") from exc
    if len(raw) == 0:
        raise InputError(f"{path.name}: no data rows")
    if DS in raw.columns:
        raw[DS] = io.parse_timestamps(raw[DS].reset_index(drop=True), path, tz).to_numpy()
    return raw


def parse_choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    v = value.strip().lower()
    if v not in allowed:
        raise InputError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
    return v


def parse_timestamp(option: str, text: str | None, tz: str | None) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r} is not an ISO 8601 timestamp (e.g. 2024-03-01T00:00Z)") from exc
    if ts.tzinfo is None:
        if tz is None:
            raise InputError(f"{option} {text!r} has no UTC offset; write e.g. {text}Z or pass --tz")
        ts = ts.tz_localize(tz)
    return ts.tz_convert("UTC")


def parse_duration(option: str, text: str) -> pd.Timedelta:
    try:
        td = pd.Timedelta(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r} is not a duration such as 24h, 12h or 7D") from exc
    if td <= pd.Timedelta(0):
        raise InputError(f"{option} {text!r} must be positive")
    return td


def check_output(option: str, path: Path | None, suffix: str) -> None:
    if path is not None and path.suffix.lower() != suffix:
        raise InputError(f"{option} {path.name}: the file name must end in {suffix}")


def file_slug(unique_id: str) -> str:
    """A file-name-safe form of a container id: ``shop/cart/app`` -> ``shop_cart_app``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", unique_id).strip("_") or "container"


# -- rightsize: formatting and tables --------------------------------------------------------------------
def format_amount(value: float, resource: str) -> str:
    """A contract amount for a table: CPU in cores with 3 decimals, memory in MiB below 1 GiB, else GiB."""
    if value is None or not np.isfinite(value):
        return "—"
    if resource == CPU:
        return f"{value:,.3f}"
    return f"{value / GIB:,.2f} GiB" if abs(value) >= GIB else f"{value / MIB:,.0f} MiB"
