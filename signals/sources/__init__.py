"""Concrete event and signal sources (files today; HTTP and stores live in forecaster adapters).

Only this subpackage and ``signals.registry`` may touch the outside world (the filesystem here).
"""

from signals.sources.files import FileEventSource, FileSignalSource, load_events, load_signals

__all__ = ["FileEventSource", "FileSignalSource", "load_events", "load_signals"]
