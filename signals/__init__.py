"""Business-event and external-signal providers for the forecaster (never imports ``forecaster``).

Public surface: the frame contracts (``signals.frames``), events (``validate_events``, ``load_events``,
``events_for``, ``event_features``), holidays (``holiday_events``), signals (``validate_signals``,
``load_signals``, ``to_grid``), the leakage guard, the source ports and the registry. Imported by the
forecaster's members and orchestrator, the CLI and notebooks.
"""

from signals.align import to_grid
from signals.base import EventSource, SignalSource
from signals.calendar import holiday_events
from signals.errors import EventsError, LeakageError, SignalsError
from signals.events import event_features, events_for, load_events, validate_events
from signals.frames import EVENT_KINDS, validate_signals
from signals.guard import assert_no_future, check_lags, lagged_features
from signals.registry import SourceRegistry
from signals.sources.files import load_signals

__all__ = [
    "EVENT_KINDS",
    "EventSource",
    "EventsError",
    "LeakageError",
    "SignalSource",
    "SignalsError",
    "SourceRegistry",
    "assert_no_future",
    "check_lags",
    "event_features",
    "events_for",
    "holiday_events",
    "lagged_features",
    "load_events",
    "load_signals",
    "to_grid",
    "validate_events",
    "validate_signals",
]
