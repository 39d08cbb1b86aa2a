"""Rules across fields that JSON Schema cannot state (``end`` after ``start``, a window's length, ``max_replicas`` at
least ``min_replicas``), in one table: the OpenAPI document lists them per operation (``x-rules``, and in the
operation's description), the server enforces them (a 422 naming the field; the routes and ``schemas``), and
``conform`` turns a request that breaks them into one that keeps them, changing only the fields they name.

``conform`` is what a client generator or a property-based test needs to stay among *valid* requests: schemathesis
draws requests from the schema alone, so without it about half of its "valid" windows have ``end`` before ``start``.
It never makes an invalid request valid in any other way: a field that breaks the schema itself (not a timestamp,
out of range) is left as it is, and so is the request.

Pure: standard library only. Called by ``forecaster.api.app`` (OpenAPI), the schemathesis test and
``benchmarks/api_contract.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from forecaster.api.schemas import MAX_YEAR, MIN_YEAR, RFC3339

_TIME = re.compile(RFC3339)


@dataclass(frozen=True)
class Rule:
    """One rule across fields of one operation."""

    operation: str
    """``METHOD /path`` as in the OpenAPI document."""
    text: str


RULES = (
    Rule("GET /v1/actuals/{workload}", "`end` must be after `start`"),
    Rule("GET /v1/actuals/{workload}", "the window `[start, end]` is at most `max_actuals_days` (31) days"),
    Rule("GET /v1/decisions", "`end` must be after `start` (or `since`)"),
    Rule("GET /v1/decisions", "`start` and its deprecated name `since` are not given together"),
    Rule("POST /v1/events", "`end` must be after `start`"),
    Rule("POST /v1/what-if", "`end` must be after `start`, and each `events[i].end` after its `start`"),
    Rule("POST /v1/what-if", "the window `[start, end]` is at most `whatif_max_minutes` (10,080) minutes"),
    Rule("POST /v1/what-if", "`policy.max_replicas` is at least `policy.min_replicas`"),
)


def rules_of(operation: str) -> list[str]:
    """The texts of the rules of ``operation`` (``METHOD /path``)."""
    return [r.text for r in RULES if r.operation == operation]


def add_to_openapi(doc: dict[str, Any]) -> dict[str, Any]:
    """Each operation with rules gets ``x-rules`` and a sentence in its description."""
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            texts = rules_of(f"{method.upper()} {path}")
            if texts:
                op["x-rules"] = texts
                op["description"] = (op.get("description", "") + "\n\nRules across fields (a 422 naming the "
                                     "field): " + "; ".join(texts) + ".").strip()
    return doc


def _integer(value: Any) -> bool:
    """A JSON Schema ``integer``: ``3`` or ``3.0``, not ``true``."""
    return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _written(value: Any) -> datetime | None:
    """An RFC 3339 time as written (its own offset kept), or None."""
    if not isinstance(value, str) or not _TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _text(value: datetime) -> str | None:
    """``value`` as RFC 3339 text in its own offset, or None when its year as written is out of range."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return None
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ordered(start: Any, end: Any) -> tuple[Any, Any]:
    """``(start, end)`` with ``end`` after ``start``: ``end`` one second after ``start`` (in its offset), else
    ``start`` one second before ``end``, else a fixed window; unchanged when they already are, or either is not an
    RFC 3339 time (the schema's business)."""
    first, last = _written(start), _written(end)
    if first is None or last is None or last > first:
        return start, end
    moved = _text(first + timedelta(seconds=1))
    if moved is not None:
        return start, moved
    earlier = _text(last - timedelta(seconds=1))
    if earlier is not None:
        return earlier, end
    return "2000-01-01T00:00:00Z", "2000-01-01T00:00:01Z"


def _window(values: dict[str, Any], start_key: str, max_span: timedelta | None) -> dict[str, Any]:
    """Drop ``end`` when it is not after ``values[start_key]`` or the window is longer than ``max_span`` (both
    routes default the end to one day after the start)."""
    first, last = _time(values.get(start_key)), _time(values.get("end"))
    if first is not None and last is not None and (last <= first or (max_span and last - first > max_span)):
        values = {k: v for k, v in values.items() if k != "end"}
    return values


def _ordered_in(item: Any) -> Any:
    """``item`` with its ``start``/``end`` ordered (``_ordered``) when it has both."""
    if not isinstance(item, dict) or "start" not in item or "end" not in item:
        return item
    start, end = _ordered(item["start"], item["end"])
    return {**item, "start": start, "end": end}


def conform(operation: str, query: dict[str, Any] | None, body: Any, *, max_actuals_days: float = 31.0,
            whatif_max_minutes: int = 7 * 24 * 60) -> tuple[dict[str, Any] | None, Any]:
    """``(query, body)`` of a request to ``operation`` changed so it keeps ``RULES`` (module docstring)."""
    if operation == "GET /v1/actuals/{workload}" and query:
        query = _window(dict(query), "start", timedelta(days=max_actuals_days))
    elif operation == "GET /v1/decisions" and query:
        query = dict(query)
        if "start" in query and "since" in query:
            query.pop("since")
        query = _window(query, "start" if "start" in query else "since", None)
    elif operation == "POST /v1/events" and isinstance(body, dict):
        body = _ordered_in(body)
    elif operation == "POST /v1/what-if" and isinstance(body, dict):
        body = _window(dict(body), "start", timedelta(minutes=whatif_max_minutes))
        if isinstance(body.get("events"), list):
            body["events"] = [_ordered_in(e) for e in body["events"]]
        policy = body.get("policy")
        bounds = ("min_replicas", "max_replicas")
        if (isinstance(policy, dict) and all(_integer(policy.get(k)) for k in bounds)
                and policy["max_replicas"] < policy["min_replicas"]):
            body["policy"] = {**policy, "max_replicas": policy["min_replicas"]}
    return query, body
