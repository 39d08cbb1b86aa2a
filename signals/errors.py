"""The error tree of the ``signals`` package; raised by every module here, caught by its callers.

    SignalsError(ValueError)  bad signal/event input or configuration; the message names the source,
    │                         the row and the field; nothing was written
    ├── EventsError           a business-event record is malformed (events.yaml, CSV, ICS, API)
    └── LeakageError          a feature would use information unavailable at the forecast's issue time

``signals`` never imports ``forecaster``; the forecaster maps these onto its own tree (both are
``ValueError``, so ``except ValueError`` catches either). Standard library only.
"""

from __future__ import annotations


class SignalsError(ValueError):
    """Bad signals/events input. The message names the source, the offending row and field."""


class EventsError(SignalsError):
    """A business-event record breaks the Events contract."""


class LeakageError(SignalsError):
    """A feature would use data that does not exist at the forecast's issue time."""
