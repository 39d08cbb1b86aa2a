"""Named event and signal sources, held by an explicit registry object (no import-time globals).

The orchestrator builds one ``SourceRegistry`` from configuration (``add_file`` for paths, ``register_*``
for adapters such as the HTTP API's event store) and asks it for everything in a window: the registry is
itself an ``EventSource`` and a ``SignalSource`` (the union of its sources). Called by the orchestrator,
CLI and notebooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from signals.base import EventSource, SignalSource
from signals.errors import SignalsError
from signals.events import validate_events
from signals.frames import empty_events, empty_signals, validate_signals
from signals.sources.files import EVENT_SUFFIXES, SIGNAL_SUFFIXES, FileEventSource, FileSignalSource


def event_source_from_path(path: str | Path, tz: str | None = None) -> FileEventSource:
    """A file ``EventSource`` (.yaml/.yml/.csv/.ics); the file is checked to exist and read lazily."""
    p = Path(path)
    if p.suffix.lower() not in EVENT_SUFFIXES:
        raise SignalsError(f"{p.name}: not an events file; use one of {list(EVENT_SUFFIXES)}")
    if not p.is_file():
        raise SignalsError(f"{p}: no such events file")
    return FileEventSource(p, tz=tz)


def signal_source_from_path(path: str | Path, tz: str | None = None) -> FileSignalSource:
    """A file ``SignalSource`` (.csv/.parquet); the file is checked to exist and read lazily."""
    p = Path(path)
    if p.suffix.lower() not in SIGNAL_SUFFIXES:
        raise SignalsError(f"{p.name}: not a signals file; use one of {list(SIGNAL_SUFFIXES)}")
    if not p.is_file():
        raise SignalsError(f"{p}: no such signals file")
    return FileSignalSource(p, tz=tz)


class SourceRegistry:
    """Event and signal sources by name. Names are unique per kind; re-registering needs ``replace=True``."""

    def __init__(self) -> None:
        self._events: dict[str, EventSource] = {}
        self._signals: dict[str, SignalSource] = {}

    def register_events(self, name: str, source: EventSource, replace: bool = False) -> None:
        """Add an event source under ``name``."""
        if not isinstance(source, EventSource):
            raise SignalsError(
                f"event source {name!r}: {type(source).__name__} has no events(start, end) method"
            )
        if name in self._events and not replace:
            raise SignalsError(f"event source {name!r} is already registered (pass replace=True)")
        self._events[name] = source

    def register_signals(self, name: str, source: SignalSource, replace: bool = False) -> None:
        """Add a signal source under ``name``."""
        if not isinstance(source, SignalSource):
            raise SignalsError(
                f"signal source {name!r}: {type(source).__name__} has no signals(start, end) method"
            )
        if name in self._signals and not replace:
            raise SignalsError(f"signal source {name!r} is already registered (pass replace=True)")
        self._signals[name] = source

    def add_file(
        self, name: str, path: str | Path, kind: Literal["events", "signals"], tz: str | None = None
    ) -> None:
        """Register a file source (``kind`` says which: a .csv file could be either)."""
        if kind == "events":
            self.register_events(name, event_source_from_path(path, tz=tz))
        elif kind == "signals":
            self.register_signals(name, signal_source_from_path(path, tz=tz))
        else:
            raise SignalsError(f"add_file: kind={kind!r}; use 'events' or 'signals'")

    def event_source(self, name: str) -> EventSource:
        """The event source called ``name``."""
        if name not in self._events:
            raise SignalsError(f"no event source {name!r}; registered: {sorted(self._events)}")
        return self._events[name]

    def signal_source(self, name: str) -> SignalSource:
        """The signal source called ``name``."""
        if name not in self._signals:
            raise SignalsError(f"no signal source {name!r}; registered: {sorted(self._signals)}")
        return self._signals[name]

    def names(self) -> dict[str, list[str]]:
        """``{"events": [...], "signals": [...]}``, sorted."""
        return {"events": sorted(self._events), "signals": sorted(self._signals)}

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Union of every event source's events in ``[start, end)``, re-validated (ids must stay unique)."""
        frames = [src.events(start, end) for _, src in sorted(self._events.items())]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_events()
        return validate_events(pd.concat(frames, ignore_index=True), source="registry events")

    def signals(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Union of every signal source's values in ``[start, end)``; a duplicate (signal, ds) is an error."""
        frames = [src.signals(start, end) for _, src in sorted(self._signals.items())]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_signals()
        return validate_signals(pd.concat(frames, ignore_index=True), source="registry signals")
