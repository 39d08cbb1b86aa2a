"""Public holidays as business events of kind ``holiday``, from the ``holidays`` package.

Called by the orchestrator (which appends them to the planner's events before fitting the events
member) and by notebooks. Pure: the ``holidays`` package is an offline table, no network.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import holidays as _holidays
import pandas as pd

from signals.errors import EventsError
from signals.events import validate_events
from signals.frames import END, KIND, NAME, SCOPE, START, UPLIFT, empty_events, to_utc


def holiday_events(
    country: str,
    start: Any,
    end: Any,
    subdiv: str | None = None,
    tz: str = "UTC",
    *,
    scope: str | None = None,
) -> pd.DataFrame:
    """Each public holiday of ``country`` (optionally its subdivision) as an event of kind ``holiday``.

    The event covers the *local* calendar day in ``tz``: local midnight to the next local midnight,
    converted to UTC (so it lasts 23 or 25 h across a DST change). E.g. US Independence Day 1995 with
    ``tz="America/New_York"`` is ``1995-07-04 04:00Z`` to ``1995-07-05 04:00Z``. Holidays whose day
    intersects ``[start, end)`` are returned (``start``/``end`` tz-aware, or naive = local in ``tz``).
    Two holidays on one day come as one event with both names (the package joins them with ``"; "``).
    Unknown countries or subdivisions raise ``EventsError``.
    """
    t0 = to_utc(start, where="holiday_events: argument 'start'", tz=tz, error=EventsError)
    t1 = to_utc(end, where="holiday_events: argument 'end'", tz=tz, error=EventsError)
    if t1 <= t0:
        raise EventsError(f"holiday_events: 'end' ({t1}) must be after 'start' ({t0})")
    local0, local1 = t0.tz_convert(tz), t1.tz_convert(tz)
    years = range(local0.year, local1.year + 1)
    try:
        table = _holidays.country_holidays(country, subdiv=subdiv, years=years)
    except NotImplementedError as exc:
        raise EventsError(f"holiday_events: country={country!r}, subdiv={subdiv!r}: {exc}") from exc
    rows = []
    for day, name in sorted(table.items()):
        assert isinstance(day, dt.date)
        day_start = pd.Timestamp(day).tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
        day_end = pd.Timestamp(day + dt.timedelta(days=1)).tz_localize(
            tz, ambiguous=False, nonexistent="shift_forward"
        )
        s, e = day_start.tz_convert("UTC"), day_end.tz_convert("UTC")
        if s < t1 and e > t0:
            rows.append(
                {NAME: str(name), KIND: "holiday", START: s, END: e, SCOPE: scope, UPLIFT: float("nan")}
            )
    if not rows:
        return empty_events()
    where = f"holidays({country}{'-' + subdiv if subdiv else ''})"
    return validate_events(pd.DataFrame(rows), source=where)
