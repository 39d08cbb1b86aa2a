"""Request and response bodies of ``/v1`` (pydantic), kept apart from the ``contracts.ports`` records they carry.

Conventions: timestamps are ISO 8601 in UTC (``2024-03-04T00:00:00Z``). A request timestamp is an RFC 3339 string
only (``RFC3339``: ``T`` and ``Z`` upper case, an offset, at most 6 fraction digits, seconds 00..59) with a year in
1970..2200 as written; a number, or text that only looks like a time, is a 422 naming the field. Numbers and booleans
in request bodies are JSON numbers and booleans only (``JsonFloat``, ``JsonInt``, ``JsonBool``: ``true`` is not 1).
Names and ids in requests hold no control character (``NO_CONTROL``; a 400, ``forecaster.api.problems``). Both rules
are ``pattern``s in the OpenAPI document, so a client or a fuzzer can tell valid from invalid without asking.
Numbers that do not exist (a member that failed, NaN) are ``null``.
A forecast is sent column-wise (one array per column, as the Forecast frame and the CSV have them): charts and
notebooks read arrays, and 288 steps x 10 columns cost a tenth of the bytes and time of one object per step.

The what-if bodies live in ``forecaster.api.schemas_whatif``. Pure: pydantic only. Called by the ``routes_*``
modules and ``forecaster.api.convert``.
"""

from __future__ import annotations

import numbers
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

MIN_YEAR, MAX_YEAR = 1970, 2200
EVENT_KINDS = ("campaign", "launch", "sale", "holiday", "custom")
EventKind = Literal["campaign", "launch", "sale", "holiday", "custom"]
RFC3339 = (r"^(19[7-9][0-9]|20[0-9]{2}|21[0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
           r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
"""A request timestamp: RFC 3339 ``date-time`` with upper-case ``T``/``Z``, at most microseconds, no leap second,
the year as written in 1970..2200. The date must also exist (``format: date-time``: no 30 February)."""
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
"""Text without control characters (C0 and DEL): names, labels, ids."""
NO_CONTROL_OR_SPACE = r"^[^\x00-\x20\x7f]+$"
"""A token without control characters or ASCII spaces (workload ids and globs in an event's scope)."""
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RFC3339 = re.compile(RFC3339)


def _rfc3339_text(value: Any) -> Any:
    """Only an RFC 3339 string passes on to the datetime parser (which would read ``0`` as 1970)."""
    if isinstance(value, datetime):  # already parsed (a model built in Python, not from a request)
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise PydanticCustomError(
            "rfc3339", "must be an RFC 3339 time string with an offset and a year in {lo}..{hi}, e.g. "
                       "2024-03-04T00:00:00Z", {"lo": MIN_YEAR, "hi": MAX_YEAR})
    return value


def _utc_in_range(value: datetime) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:  # as written, before conversion (the pattern's rule)
        raise ValueError(f"must be between {MIN_YEAR} and {MAX_YEAR}")
    return value.astimezone(UTC)


def _json_number(value: Any) -> Any:
    """Only a number passes on to the float/int parser (which would read ``true`` as 1 and ``"2"`` as 2)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PydanticCustomError("number_type", "must be a JSON number")
    return value


def json_number_or_none(value: Any) -> Any:
    """``_json_number`` for an optional field (a ``field_validator(mode="before")``: a ``BeforeValidator`` inside
    ``X | None`` makes pydantic write ``ge``/``le`` instead of ``minimum``/``maximum`` into the JSON Schema)."""
    return value if value is None else _json_number(value)


JsonFloat = Annotated[float, BeforeValidator(_json_number)]
"""A number in a request body: a JSON number only (not ``true``, not ``"1.5"``)."""
JsonInt = Annotated[int, BeforeValidator(_json_number)]
"""An integer in a request body: a JSON number with no fraction (``2`` or ``2.0``, as JSON Schema's ``integer``)."""
JsonBool = Annotated[bool, Strict()]
"""A boolean in a request body: ``true`` or ``false`` only (not ``1``, not ``"yes"``)."""
UtcTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_utc_in_range),
                    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339})]
"""A request timestamp (``RFC3339``), converted to UTC."""
Name = Annotated[str, Field(pattern=NO_CONTROL)]
"""Free text in a request (a name, a label): no control characters."""
Number = float | None
"""A value that may be missing (NaN in the frame)."""


# -- pagination --------------------------------------------------------------------------------------------------

def end_after_start(end: datetime, info: ValidationInfo) -> datetime:
    """Validator body shared by every window with ``start`` and ``end``: the end must come after the start."""
    start = info.data.get("start")
    if start is not None and end <= start:
        raise ValueError("must be after start")
    return end

class Links(BaseModel):
    """Links of a page (relative URLs with the same query); ``next``/``prev`` are null at the ends."""

    self: str
    first: str
    last: str
    next: str | None
    prev: str | None


class PageOut(BaseModel):
    """Fields every page carries next to ``items``."""

    total: int = Field(ge=0, description="Items in the whole list.")
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
    links: Links


# -- workloads ---------------------------------------------------------------------------------------------------
class WorkloadOut(BaseModel):
    """A forecast subject (``forecaster.contracts.ports.Workload``) and where to read about it."""

    id: str
    namespace: str
    kind: str = Field(description="`demand` (one demand series) or a resource kind (a container).")
    freq: str = Field(description="Sampling step of its history and forecasts, e.g. `5min`.")
    query: str
    labels: dict[str, str]
    created_at: datetime | None
    links: dict[str, str] = Field(description="`forecast`, `actuals`, `recommendations`, `accuracy`, `decisions`.")


class WorkloadPage(PageOut):
    items: list[WorkloadOut]


# -- forecasts and actuals ---------------------------------------------------------------------------------------
class BandOut(BaseModel):
    """The ``level`` % band: demand stays inside ``[lo, hi]`` with that probability at each step."""

    level: int = Field(ge=1, le=99)
    lo: list[Number]
    hi: list[Number]


class ForecastOut(BaseModel):
    """The latest stored forecast of a workload, column-wise (module docstring)."""

    workload: str
    run_id: str
    issued_at: datetime = Field(description="When the forecast was issued (its origin).")
    model_version: str
    freq: str
    levels: list[int]
    horizon: int = Field(ge=0, description="Steps returned (at most the stored horizon).")
    stored_horizon: int = Field(ge=0, description="Steps in the stored run.")
    backtest_mae: Number = Field(description="Ensemble MAE in the backtest that weighted the members.")
    ds: list[str] = Field(description="Step timestamps (ISO 8601, UTC).")
    ensemble: list[Number]
    bands: list[BandOut] = Field(description="One per requested level, narrowest first.")
    members: dict[str, list[Number]] = Field(description="Each member's point forecast (requested members only).")


class ActualsOut(BaseModel):
    """Observed demand of a workload over ``[start, end]``."""

    workload: str
    start: datetime = Field(description="Start of the window queried.")
    end: datetime = Field(description="End of the window queried, or the newest observation when that is earlier: "
                                      "never after the last value in `ds`.")
    ds: list[str]
    y: list[Number]


# -- decisions, recommendations, accuracy ------------------------------------------------------------------------
class DecisionOut(BaseModel):
    """A recorded scaling or resource decision (``forecaster.contracts.ports.DecisionRecord``).

    ``replicas``: ``value = {"min_replicas": n}``; ``details`` has the band, capacity per pod, reactive floor, bounds.
    ``resources``: ``value = {"containers": {name: {"cpu": {...}, "memory": {...}}}}`` with ``target``,
    ``lower_bound``, ``upper_bound``, ``uncapped_target`` (CPU in cores; memory in whole bytes, integers rounded up);
    the current request and the predicted actual use, when recorded, are in ``details``: ``current_requests`` /
    ``predicted_use`` keyed ``"<container>/<resource>"``, or ``containers.<name>.<resource>.request`` /
    ``.predicted`` (memory again in whole bytes)."""

    id: str
    workload: str
    time: datetime
    kind: str
    mode: str
    applied: bool
    value: dict[str, Any]
    reason: str
    details: dict[str, Any]


class DecisionPage(PageOut):
    items: list[DecisionOut]


class RecommendationOut(BaseModel):
    """The latest decision of each kind for one workload (null when none was recorded yet)."""

    workload: str
    replicas: DecisionOut | None
    resources: DecisionOut | None


class AccuracyOut(BaseModel):
    """Realised accuracy of a workload's forecasts over one window (``forecaster.contracts.ports.AccuracyRecord``)."""

    workload: str
    evaluated_at: datetime
    window_start: datetime
    window_end: datetime
    n_points: int
    mae: Number
    coverage: dict[str, Number] = Field(description="Band level (as text) -> fraction of values inside it.")
    backtest_mae: Number
    drift: bool


class AccuracyPage(PageOut):
    items: list[AccuracyOut]


# -- events ------------------------------------------------------------------------------------------------------
EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$",
                               description="Your id (idempotency key); default: a hash of the other fields.")]
ScopeItem = Annotated[str, Field(min_length=1, max_length=253, pattern=NO_CONTROL_OR_SPACE)]


class EventIn(BaseModel):
    """A business event (DESIGN.md "Events"). Posting the same ``id`` again replaces the event (200)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "spring-sale-2024", "name": "spring sale", "kind": "sale", "start": "2024-03-05T00:00:00Z",
         "end": "2024-03-06T00:00:00Z", "scope": ["shop/*"], "expected_uplift": 0.3}]})

    id: EventId | None = None
    name: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    kind: EventKind
    start: UtcTime
    end: UtcTime = Field(description="Exclusive end; must be after `start` (a rule across two fields, which JSON "
                                     "Schema cannot state: a 422 naming `end`).")
    scope: list[ScopeItem] = Field(default_factory=list, max_length=100,
                                   description="Workload ids or globs (`shop/*`); empty = every workload.")
    expected_uplift: float | None = Field(default=None, ge=0, le=1000, allow_inf_nan=False,
                                          description="Expected relative demand increase, e.g. 0.3 for +30 %.")

    _number = field_validator("expected_uplift", mode="before")(json_number_or_none)

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        return end_after_start(end, info)


class EventOut(BaseModel):
    """A stored business event."""

    id: str
    name: str
    kind: str
    start: datetime
    end: datetime
    scope: list[str]
    expected_uplift: float | None
    created_at: datetime | None


class EventPage(PageOut):
    items: list[EventOut]


# -- health ------------------------------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Readiness: the last forecast cycle is recent (``/readyz``)."""

    status: Literal["ready"]
    last_cycle: datetime
    age_s: float
    max_age_s: float
    source: Literal["job", "store"] = Field(description="`job`: the refresh job's last success in this process; "
                                                        "`store`: the newest stored forecast's issue time.")
