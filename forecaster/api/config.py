"""What the HTTP API needs to know, as one frozen value: tokens and their scopes, anonymous reads, limits.

``ApiSettings`` is built once at the edge (``forecaster serve`` from ``ServiceSettings``, tests directly) and handed
to ``create_app``; nothing here reads the environment. ``api_settings(obj)`` accepts an ``ApiSettings`` or any
settings object with the same attribute names (e.g. ``runtime.settings.ServiceSettings``) and copies the fields
it has, so the API does not import the service layer.

Pure: standard library only (and ``runtime.settings.scrub``). Called by ``forecaster.api.app`` and
``forecaster.cli.serve``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from forecaster.contracts.metric_names import MAX_EXPORTED_WORKLOADS
from forecaster.runtime.settings import scrub

READ = "read"
WRITE = "write"
SCOPES: tuple[str, ...] = (READ, WRITE)
"""Token scopes. ``write`` implies ``read`` (a token that may change events may also look at them)."""


@dataclass(frozen=True, repr=False)
class ApiSettings:
    """Settings of the HTTP API (defaults in brackets). ``repr``/``str`` never show a token or a secret: tokens are
    counted per scope, ``secret_values`` only counted."""

    tokens: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Bearer token -> its scopes (``read``, ``write``). Empty: every write is refused with 401 ({})."""
    anonymous_reads: bool = False
    """Let requests without a token call the GET endpoints of ``/v1`` (False: reads need a ``read`` token).
    ``forecaster serve`` turns it on for a loopback ``--host`` and for ``--demo`` unless told otherwise."""
    ready_max_age_s: float = 900.0
    """``/readyz`` answers 503 when the last forecast cycle is older than this, in seconds (900 = 15 min)."""
    metrics_refresh_s: float = 15.0
    """``/metrics`` re-reads the latest forecasts and accuracy from the store at most this often, in seconds (15)."""
    metrics_max_workloads: int = MAX_EXPORTED_WORKLOADS
    """Cardinality limit of ``/metrics``: per-workload gauges for at most this many workloads (by id order; default
    10,000). The workloads beyond it are skipped and counted in ``forecaster_exporter_workloads_dropped_total``."""
    forecast_cache_s: float = 5.0
    """``GET /v1/forecasts`` answers from memory, refreshed in the background once an answer is older than this, in
    seconds (5; 0 = read the store on every request). See ``forecaster.api.cache``."""
    max_body_bytes: int = 1_048_576
    """Largest request body in bytes (1 MiB); larger bodies get 413."""
    max_actuals_days: float = 31.0
    """Longest window ``/v1/actuals`` returns, in days (31)."""
    whatif_max_minutes: int = 7 * 24 * 60
    """Longest what-if replay, in minutes (10,080 = 7 days)."""
    whatif_max_events: int = 50
    """Most extra uplift windows in one what-if request (50)."""
    whatif_max_runs: int = 600
    """Most stored forecast runs one what-if replays against (600); more are thinned evenly, keeping the last."""
    whatif_concurrency: int = 2
    """What-if replays running at once per process (2); further requests wait up to 30 s, then get 503."""
    max_concurrent_requests: int = 2
    """Admission control (``forecaster.api.admission``): requests inside the app at once (2). ``/healthz``,
    ``/readyz`` and ``/metrics`` are never counted nor refused."""
    max_queued_requests: int = 32
    """Admission control: requests waiting for one of those slots, first in first out (32); more are refused at once
    with 503 and ``Retry-After``."""
    max_queue_wait_s: float = 0.02
    """Admission control: longest wait in that queue, in seconds (0.02); a request still waiting is refused (503)."""
    max_loop_lag_s: float = 0.01
    """Admission control: requests are refused (503) while the event loop runs more than this late for two heartbeat
    periods in a row, in seconds (0.01; 0 = never): the signal that catches a flood of cheap requests, which never wait
    for a slot."""
    retry_after_s: int = 1
    """``Retry-After`` of an admission refusal, in seconds (1)."""
    secret_values: frozenset[str] = frozenset()
    """Other secrets of the process (the store's and Prometheus's passwords; ``api_settings`` copies
    ``ServiceSettings.secret_values``): replaced by ``***``, like the tokens, in every error body and API log line."""

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "tokens":
                scopes = ", ".join(sorted("+".join(sorted(s)) for s in value.values()))
                text = f"<{len(value)} token{'s' if len(value) != 1 else ''}{': ' + scopes if scopes else ''}>"
            elif f.name == "secret_values":
                text = f"<{len(value)} hidden>"
            else:
                text = repr(value)
            shown.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    __str__ = __repr__

    @property
    def secrets(self) -> frozenset[str]:
        """Every string the API must never write into an error body or a log line: the tokens and
        ``secret_values``."""
        return frozenset(self.tokens) | self.secret_values

    def scrub(self, text: str) -> str:
        """``text`` with every secret (``secrets``) replaced by ``***``."""
        return scrub(text, self.secrets)


def parse_tokens(spec: str | Mapping[str, Iterable[str]] | None) -> dict[str, frozenset[str]]:
    """Tokens from ``"tok1:read,tok2:read+write"`` (or a mapping token -> scopes); ``ValueError`` names a bad one.

    ``write`` implies ``read``: ``"t:write"`` gives ``t`` both scopes."""
    if spec is None:
        return {}
    items: Iterable[tuple[str, Iterable[str]]]
    if isinstance(spec, str):
        pairs = []
        for n, part in enumerate((p.strip() for p in spec.split(",")), start=1):
            if not part:
                continue
            token, sep, scope_text = part.rpartition(":")
            if not sep or not token:  # the entry is not echoed: it is (or holds) a secret
                raise ValueError(f"tokens: entry {n} has no scope; write TOKEN:SCOPES, e.g. s3cret:read+write")
            pairs.append((token, scope_text.split("+")))
        items = pairs
    else:
        items = spec.items()
    out: dict[str, frozenset[str]] = {}
    for token, scopes in items:
        wanted = {str(s).strip().lower() for s in scopes if str(s).strip()}
        unknown = wanted - set(SCOPES)
        if unknown:
            raise ValueError(f"tokens: unknown scope(s) {sorted(unknown)}; use {' or '.join(SCOPES)}")
        if WRITE in wanted:
            wanted.add(READ)
        out[str(token)] = frozenset(wanted)
    return out


def _tokens_of(value: Any) -> dict[str, frozenset[str]]:
    """Tokens from the shapes a settings object may hold: a mapping token -> scopes, a mapping scope -> tokens
    (``{"read": [...], "write": [...]}``), or the ``parse_tokens`` text."""
    if value is None or isinstance(value, str):
        return parse_tokens(value)
    if isinstance(value, Mapping) and value and set(map(str, value)) <= set(SCOPES):
        by_token: dict[str, set[str]] = {}
        for scope, tokens in value.items():
            for token in [tokens] if isinstance(tokens, str) else tokens:
                by_token.setdefault(str(token), set()).add(str(scope))
        return parse_tokens(by_token)
    if isinstance(value, Mapping):
        return parse_tokens({k: [v] if isinstance(v, str) else v for k, v in value.items()})
    raise ValueError(f"tokens: cannot read {type(value).__name__}")


def api_settings(source: ApiSettings | Any | None = None, **overrides: Any) -> ApiSettings:
    """An ``ApiSettings`` from ``source`` (an ``ApiSettings``, or any object with some of its attribute names, e.g.
    ``ServiceSettings``), with ``overrides`` applied last. Tokens may also come as ``read_tokens`` /
    ``write_tokens`` attributes (iterables of tokens)."""
    if isinstance(source, ApiSettings) and not overrides:
        return source
    values: dict[str, Any] = {}
    names = [f.name for f in fields(ApiSettings)]
    if source is not None:
        for name in names:
            if hasattr(source, name) and getattr(source, name) is not None:
                values[name] = getattr(source, name)
        if "tokens" in values:
            values["tokens"] = _tokens_of(values["tokens"])
        elif hasattr(source, "read_tokens") or hasattr(source, "write_tokens"):
            by_scope = {READ: list(getattr(source, "read_tokens", ()) or ()),
                        WRITE: list(getattr(source, "write_tokens", ()) or ())}
            values["tokens"] = _tokens_of({k: v for k, v in by_scope.items() if v})
    values.update(overrides)
    if "tokens" in values and not isinstance(values["tokens"], dict):
        values["tokens"] = _tokens_of(values["tokens"])
    if "secret_values" in values:
        values["secret_values"] = frozenset(str(s) for s in values["secret_values"] if s)
    return ApiSettings(**values)
