"""Events from YAML/CSV/ICS files and signals from CSV/Parquet files, validated on the way in.

Called by ``signals.events.load_events``, ``signals.registry`` (file sources) and the CLI.

Events formats (fields as in ``signals.frames``; timestamps ISO 8601 with an offset, or naive plus
``tz``; unknown fields are an error naming the event):

* YAML: a list of mappings, or ``{tz: <zone, optional>, events: [...]}``; ``scope`` may be a list.
* CSV: header ``name,kind,start,end[,scope,expected_uplift,id]``; empty cells are missing values.
* ICS: each VEVENT; SUMMARY -> name, UID -> id, DTSTART/DTEND (or DURATION; an all-day event without
  an end lasts one day), kind from ``X-FORECASTER-KIND`` else the first CATEGORIES value that is a kind
  else ``custom``; ``X-FORECASTER-SCOPE`` and ``X-FORECASTER-UPLIFT`` optional. All-day (DATE) values
  are local days and need ``tz``. Recurring events (RRULE) are refused: expand them first.

Signals formats: CSV or Parquet with ``ds,signal,value,known_in_advance`` (see ``validate_signals``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import icalendar
import pandas as pd
import yaml

from signals.errors import EventsError, SignalsError
from signals.events import overlapping, validate_events
from signals.frames import DS, EVENT_COLUMNS, EVENT_KINDS, validate_signals

EVENT_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".csv", ".ics")
SIGNAL_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")


def _read_yaml(path: Path) -> tuple[pd.DataFrame, str | None]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise EventsError(f"{path.name}: not valid YAML ({exc})") from exc
    file_tz: str | None = None
    if isinstance(doc, dict):
        unknown = sorted(set(doc) - {"events", "tz"})
        if unknown or "events" not in doc:
            raise EventsError(
                f"{path.name}: the top level must be a list of events or have the keys 'events' "
                f"(and optionally 'tz'), got {list(doc)}"
            )
        file_tz = None if doc.get("tz") is None else str(doc["tz"])
        doc = doc["events"]
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise EventsError(f"{path.name}: expected a list of events, got {type(doc).__name__}")
    for n, rec in enumerate(doc, start=1):
        if not isinstance(rec, dict):
            raise EventsError(f"{path.name}: event #{n} is not a mapping of fields (got {rec!r})")
        unknown = [k for k in rec if k not in EVENT_COLUMNS]
        if unknown:
            raise EventsError(
                f"{path.name}: event #{n} ({rec.get('name')!r}): unknown field(s) {unknown}; "
                f"allowed: {list(EVENT_COLUMNS)}"
            )
    return pd.DataFrame.from_records(doc, columns=_present(doc)), file_tz


def _present(records: list[dict[str, Any]]) -> list[str]:
    keys = {k for rec in records for k in rec}
    return [c for c in EVENT_COLUMNS if c in keys] or ["name", "kind", "start", "end"]


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True).replace("", None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EventsError(f"{path.name}: cannot read as CSV ({exc})") from exc


def _ics_kind(comp: Any) -> str:
    explicit = comp.get("X-FORECASTER-KIND")
    if explicit is not None:
        return str(explicit)
    cats = comp.get("CATEGORIES")
    for cat in cats if isinstance(cats, list) else [cats] if cats is not None else []:
        for value in cat.cats:
            if str(value).strip().lower() in EVENT_KINDS:
                return str(value).strip().lower()
    return "custom"


def _read_ics(path: Path) -> pd.DataFrame:
    try:
        cal = icalendar.Calendar.from_ical(path.read_bytes())
    except ValueError as exc:
        raise EventsError(f"{path.name}: not a valid iCalendar file ({exc})") from exc
    rows: list[dict[str, Any]] = []
    for n, comp in enumerate(cal.walk("VEVENT"), start=1):
        name = str(comp.get("SUMMARY", "")).strip()
        where = f"{path.name}: event #{n} ({name!r})"
        if comp.get("RRULE") is not None:
            raise EventsError(
                f"{where}: recurring events (RRULE) are not supported; expand them into single events"
            )
        if comp.get("DTSTART") is None:
            raise EventsError(f"{where}: field 'start' (DTSTART) is missing")
        start = comp.get("DTSTART").dt
        if comp.get("DTEND") is not None:
            end = comp.get("DTEND").dt
        elif comp.get("DURATION") is not None:
            end = start + comp.get("DURATION").dt
        elif isinstance(start, dt.date) and not isinstance(start, dt.datetime):
            end = start + dt.timedelta(days=1)
        else:
            raise EventsError(f"{where}: field 'end' (DTEND or DURATION) is missing")
        uplift = comp.get("X-FORECASTER-UPLIFT")
        scope = comp.get("X-FORECASTER-SCOPE")
        uid = comp.get("UID")
        rows.append(
            {
                "id": None if uid is None else str(uid),
                "name": name,
                "kind": _ics_kind(comp),
                "start": start,
                "end": end,
                "scope": None if scope is None else str(scope),
                "expected_uplift": None if uplift is None else str(uplift),
            }
        )
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))


def load_events(path: str | Path, tz: str | None = None) -> pd.DataFrame:
    """Read an events file (by suffix: .yaml/.yml/.csv/.ics) and return a validated events frame.

    ``tz`` (or a YAML file's top-level ``tz``; the argument wins) localizes naive timestamps.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in EVENT_SUFFIXES:
        raise EventsError(
            f"{p.name}: unsupported events file type {suffix!r}; use one of {list(EVENT_SUFFIXES)}"
        )
    if not p.is_file():
        raise EventsError(f"{p}: no such events file")
    if suffix in (".yaml", ".yml"):
        frame, file_tz = _read_yaml(p)
        return validate_events(frame, source=p.name, tz=tz or file_tz)
    frame = _read_csv(p) if suffix == ".csv" else _read_ics(p)
    return validate_events(frame, source=p.name, tz=tz)


def load_signals(path: str | Path, tz: str | None = None) -> pd.DataFrame:
    """Read a signals file (.csv or .parquet) and return a validated long signals frame."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SIGNAL_SUFFIXES:
        raise SignalsError(
            f"{p.name}: unsupported signals file type {suffix!r}; use one of {list(SIGNAL_SUFFIXES)}"
        )
    if not p.is_file():
        raise SignalsError(f"{p}: no such signals file")
    try:
        frame = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise SignalsError(f"{p.name}: cannot read ({exc})") from exc
    return validate_signals(frame, source=p.name, tz=tz)


class FileEventSource:
    """``EventSource`` over one events file; re-read on every call so edits are picked up."""

    def __init__(self, path: str | Path, tz: str | None = None) -> None:
        self.path = Path(path)
        self.tz = tz

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Events of the file intersecting ``[start, end)``."""
        return overlapping(load_events(self.path, tz=self.tz), start, end)


class FileSignalSource:
    """``SignalSource`` over one signals file; re-read on every call."""

    def __init__(self, path: str | Path, tz: str | None = None) -> None:
        self.path = Path(path)
        self.tz = tz

    def signals(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Rows with ``start <= ds < end``."""
        frame = load_signals(self.path, tz=self.tz)
        mask = (frame[DS] >= start) & (frame[DS] < end)
        return frame.loc[mask.to_numpy()].reset_index(drop=True)
