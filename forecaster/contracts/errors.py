"""The error tree: every error says what the caller can do about it.

    ForecasterError
    ├── InputError            bad input: clear message naming the row/column/field; nothing was written
    │   ├── SeriesError       the history frame breaks the Series contract (duplicates, NaN, tz-naive, ...)
    │   ├── FrequencyError    mixed or irregular sampling that cannot be put on one grid
    │   ├── EventsError       a business-event record is malformed (raised by ``signals`` as its own type)
    │   └── LeakageError      a feature would use information unavailable at the forecast's issue time
    ├── NotFittedError        predict/explain/save before fit
    ├── ArtefactError         a saved forecaster cannot be loaded (wrong format or incompatible version)
    ├── TemporaryError        an outage worth retrying (``delay_s`` says when); keep the last good forecast
    ├── PermanentError        a fault that retrying will not fix: stop acting, fall back, alert
    │   └── NotFoundError     the object does not exist (HTTP 404)
    └── ConflictError         someone else changed the object first (HTTP 409): re-read and retry

Warnings: ``ForecasterWarning`` (a ``UserWarning``) and its child ``DefaultWeightsWarning`` (the ensemble fell
back to the default weights because too few calibration windows could be learned from).

Called by every layer; imports nothing but the standard library.
"""

from __future__ import annotations


class ForecasterError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(ForecasterError, ValueError):
    """Bad input. The message names the offending row, column or field; nothing was written."""


class SeriesError(InputError):
    """A history frame breaks the Series contract."""


class FrequencyError(InputError):
    """Timestamps that do not sit on one regular grid of the requested frequency."""


class LeakageError(InputError):
    """A feature would use data that does not exist at the forecast's issue time."""


class NotFittedError(ForecasterError, RuntimeError):
    """The object must be fitted first."""


class ArtefactError(ForecasterError):
    """A saved artefact cannot be read or was written by an incompatible version."""


class TemporaryError(ForecasterError):
    """A transient fault. Retry after ``delay_s`` seconds; meanwhile keep the last good result."""

    def __init__(self, message: str, delay_s: float = 5.0) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PermanentError(ForecasterError):
    """A fault retrying will not fix. Stop acting on this input and fall back to the safe behaviour."""


class NotFoundError(PermanentError):
    """The object asked for does not exist (HTTP 404)."""


class ConflictError(ForecasterError):
    """The object changed since it was read (HTTP 409 / stale ``resourceVersion``): re-read, recompute, retry."""


class ForecasterWarning(UserWarning):
    """Something worked, but less well than it should: the message says what and how to fix it."""


class DefaultWeightsWarning(ForecasterWarning):
    """The ensemble uses the default weights (too few calibration windows to learn them from)."""
