"""``ServiceSettings``: what the scheduled jobs, the worker and ``forecaster serve`` need, validated once at the edge.

    settings = ServiceSettings.from_env()                       # FORECASTER_* variables + mounted Secret files
    settings = ServiceSettings(store_url="sqlite:///x.db", refresh_interval_s=60)

Sources, later wins: the defaults below, files in the Secret directory (``FORECASTER_SECRETS_DIR``; one file per
field, named after the field, e.g. ``store_url``, ``read_tokens``, ``write_tokens``, as Kubernetes mounts a Secret),
then environment variables ``FORECASTER_<FIELD>`` (upper case). Lists (tokens, levels) are comma-separated;
``model_options`` is a JSON object of ``Forecaster`` keyword arguments. A bad value raises ``InputError`` naming the
variable or file.

Pure (reads only the mapping and directory it is given; ``from_env()`` defaults to ``os.environ``). Called by
``runtime.service``, ``forecaster.runtime.scheduler``, the worker and the CLI; the API copies its fields through
``forecaster.api.config.api_settings``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from forecaster.contracts.errors import InputError

ENV_PREFIX = "FORECASTER_"
SECRETS_DIR_ENV = "FORECASTER_SECRETS_DIR"
MASK = "***"
SECRET_FIELDS = ("read_tokens", "write_tokens")
"""Fields that are secrets as a whole; ``store_url`` and ``prometheus_url`` hide only their password."""
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "token", "secret", "key", "auth")


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The secret parts of ``url``: the password of ``user:password@host`` (as written and percent-decoded) and the
    values of query parameters named like a secret (``password``, ``sslpassword``, ``token``...)."""
    if not url:
        return ()
    out: list[str] = []
    try:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return ()
    if ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        out += [password, unquote(password)]
    out += [value for key, value in query if any(k in key.lower() for k in _SECRET_QUERY_KEYS)]
    return tuple(dict.fromkeys(s for s in out if s))


def mask_url(url: str | None) -> str | None:
    """``url`` with its secrets (``url_secrets``) replaced by ``***``: ``postgresql+psycopg://u:***@db/forecaster``."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not url_secrets(url):
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    query = "&".join(f"{key}={MASK}" if any(k in key.lower() for k in _SECRET_QUERY_KEYS) else f"{key}={value}"
                     for key, value in parse_qsl(parts.query, keep_blank_values=True))
    return (f"{parts.scheme}://{userinfo}{at}{host}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


SCRUB_MIN_CHARS = 4
"""Shorter secrets are not searched for in free text (replacing every "b" would garble the text and hide nothing)."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret of at least ``SCRUB_MIN_CHARS`` characters replaced by ``***``
    (longest first)."""
    for secret in sorted({s for s in secrets if len(s) >= SCRUB_MIN_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


@dataclass(frozen=True, repr=False)
class ServiceSettings:
    """Settings of the service (defaults in brackets; durations in seconds). ``repr``/``str`` never show a token or
    a password: tokens are counted, URLs shown with ``***`` for their password (``mask_url``)."""

    store_url: str = "sqlite:///forecaster.db"
    """SQLAlchemy URL of the store: a SQLite file (default ``sqlite:///forecaster.db``) or
    ``postgresql+psycopg://user:password@host:5432/db``. Also holds the scheduler's job table."""
    prometheus_url: str | None = None
    """Base URL of the Prometheus HTTP API, e.g. ``http://prometheus:9090`` (None: no Prometheus; demo only)."""
    workloads_file: Path | None = None
    """YAML file listing the workloads (``forecaster.runtime.service.registry``) (None: no workloads, or the demo's)."""
    artefact_dir: Path = Path("artefacts")
    """Folder for fitted models written by the refit job (``artefacts``)."""
    refresh_interval_s: float = 300.0
    """Forecast refresh: fetch history, predict, store, decide (300 = 5 min)."""
    refit_interval_s: float = 86_400.0
    """Refit of the ensemble with backtest-learned weights (86,400 = daily)."""
    accuracy_interval_s: float = 3_600.0
    """Accuracy evaluation of stored forecasts against actuals (3,600 = hourly)."""
    controller_interval_s: float = 60.0
    """Controller cycle, when ``controller_enabled`` (60)."""
    controller_enabled: bool = False
    """Run the controller's cycle as a scheduled job (False)."""
    misfire_grace_s: float = 120.0
    """A run that could not start on time still starts if at most this late; missed runs are coalesced (120)."""
    run_on_start: bool = True
    """Run the refresh (and accuracy) job right after the scheduler starts instead of one interval later (True)."""
    history_days: float = 14.0
    """History fetched for fitting, in days (14)."""
    actuals_days: float = 1.0
    """Most recent history saved as actuals on each refresh, in days (1); the accuracy job reads them back."""
    retention_days: float = 30.0
    """The daily refit job deletes forecast runs (but each workload's latest), actuals and accuracy records older
    than this many days (30); decisions and events are kept."""
    horizon_s: float = 86_400.0
    """Forecast horizon (86,400 = one day ahead)."""
    levels: tuple[int, ...] = (80, 95)
    """Band levels in percent ((80, 95))."""
    model_options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``Forecaster`` keyword arguments (JSON in the environment), e.g. ``{"n_windows": 3}`` ({})."""
    accuracy_window_s: float = 86_400.0
    """Window the accuracy job scores, ending now (86,400 = the last day)."""
    drift_multiple: float = 3.0
    """Drift when realised MAE > this x the backtest MAE (3): forecasts fall back to the most reliable member and
    scaling to the reactive floor until it clears."""
    drift_min_points: int = 6
    """Scored points needed before drift may be declared (6)."""
    pod_startup_s: float = 120.0
    """Pod start-up time; the scaling lead time is this plus the refresh interval (120)."""
    rightsize_policy: str = "calibrated"
    """Right-sizing policy name for container recommendations (``vpa``; see ``forecaster.rightsizing.POLICIES``)."""
    workload_pause_s: float = 0.0
    """Pause between workloads inside one job, spreading load on the metrics source (0). Tests use it to kill a
    worker in the middle of a refresh."""
    read_tokens: tuple[str, ...] = ()
    """API bearer tokens allowed to read (())."""
    write_tokens: tuple[str, ...] = ()
    """API bearer tokens allowed to write (and read) (())."""
    anonymous_reads: bool = False
    """API: allow GET requests without a token (False)."""
    max_concurrent_requests: int = 2
    """API admission control: requests inside the app at once (2); ``forecaster.api.config.ApiSettings``."""
    max_queued_requests: int = 32
    """API admission control: requests waiting for a slot (32); more are refused at once with 503."""
    max_queue_wait_s: float = 0.02
    """API admission control: longest wait for a slot, in seconds (0.02), then 503."""
    max_loop_lag_s: float = 0.01
    """API admission control: refuse (503) while the event loop runs more than this late for two heartbeat periods in
    a row, in seconds (0.01; 0 = never)."""
    retry_after_s: int = 1
    """API admission control: ``Retry-After`` of a refusal, in seconds (1)."""
    rollout: bool = True
    """Model rollout (``forecaster.cycle.rollout``): a refit runs in shadow as a challenger and serves only once it
    beats the champion on the same points (True); False: every refit serves at once (no model history is kept, so
    there is nothing to roll back to)."""
    rollout_margin: float = 0.02
    """Rollout: relative improvement of the mean pinball loss a challenger must show to be promoted (0.02 = 2 %)."""
    rollout_min_points: int = 48
    """Rollout: scored buckets before a verdict (48: 4 hours at 5 minutes)."""
    rollout_max_points: int = 288
    """Rollout: scored buckets after which an undecided challenger is kept out (288)."""
    rollout_stale_after_s: float = 259_200.0
    """Rollout: a champion older than this is replaced by the next refit at once (259,200 = 3 days)."""
    dask_address: str | None = None
    """Dask scheduler the refits run on, ``tcp://host:8786`` (``k8s/dask``; ``FORECASTER_DASK_ADDRESS``) (None: this
    process, or a LocalCluster with ``dask_workers``)."""
    dask_workers: int = 0
    """Refits on an in-process Dask ``LocalCluster`` of this many worker processes (0: none); not with
    ``dask_address``."""
    shard_size: int = 500
    """Workloads per model (500): the refit fits each frequency group in shards of at most this many workloads, one
    artefact each (``forecaster.runtime.service.shards``)."""
    shard_concurrency: int = 2
    """Shards refitted at once (2); their fits share the executor (a Dask cluster, or this process)."""
    fetch_batch: int = 100
    """Workloads per batched range query when the metrics source batches (Prometheus) (100)."""
    fetch_concurrency: int = 4
    """Batched range queries in flight at once (4)."""

    def __post_init__(self) -> None:
        # normalise the types a caller may pass loosely (str paths, lists), then validate
        object.__setattr__(self, "artefact_dir", Path(self.artefact_dir))
        if self.workloads_file is not None:
            object.__setattr__(self, "workloads_file", Path(self.workloads_file))
        for name in ("levels", "read_tokens", "write_tokens"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "model_options", dict(self.model_options))
        self.validate()

    def validate(self) -> None:
        """``InputError`` naming the first bad field."""
        if not self.store_url:
            raise InputError("store_url: must not be empty")
        for name in ("refresh_interval_s", "refit_interval_s", "accuracy_interval_s", "controller_interval_s",
                     "misfire_grace_s", "history_days", "actuals_days", "retention_days", "horizon_s",
                     "accuracy_window_s", "drift_multiple"):
            if not float(getattr(self, name)) > 0:
                raise InputError(f"{name}: {getattr(self, name)!r} must be > 0")
        for name in ("max_concurrent_requests", "retry_after_s"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name}: {getattr(self, name)!r} must be >= 1")
        for name in ("max_queued_requests", "max_queue_wait_s", "max_loop_lag_s"):
            if float(getattr(self, name)) < 0:
                raise InputError(f"{name}: {getattr(self, name)!r} must be >= 0")
        for name in ("pod_startup_s", "workload_pause_s"):
            if float(getattr(self, name)) < 0:
                raise InputError(f"{name}: {getattr(self, name)!r} must be >= 0")
        if self.drift_min_points < 1:
            raise InputError(f"drift_min_points: {self.drift_min_points!r} must be >= 1")
        if not 0 <= self.rollout_margin < 1:
            raise InputError(f"rollout_margin: {self.rollout_margin!r} must be in [0, 1)")
        if not 1 <= self.rollout_min_points <= self.rollout_max_points:
            raise InputError(f"rollout_min_points/rollout_max_points: need 1 <= {self.rollout_min_points!r} <= "
                             f"{self.rollout_max_points!r}")
        for name in ("shard_size", "shard_concurrency", "fetch_batch", "fetch_concurrency"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name}: {getattr(self, name)!r} must be >= 1")
        if self.dask_workers < 0:
            raise InputError(f"dask_workers: {self.dask_workers!r} must be >= 0")
        if self.dask_address and self.dask_workers:
            raise InputError("dask_address/dask_workers: give a scheduler address or a LocalCluster size, not both")
        if self.dask_address and "://" not in self.dask_address:
            raise InputError(f"dask_address: {self.dask_address!r} is not an address such as tcp://dask-scheduler:8786")
        if not self.rollout_stale_after_s > 0:
            raise InputError(f"rollout_stale_after_s: {self.rollout_stale_after_s!r} must be > 0")
        for level in self.levels:
            if int(level) != level or not 0 < level < 100:
                raise InputError(f"levels: {level!r} is not an integer percentage in 1..99")

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                text = f"<{len(value)} token{'s' if len(value) != 1 else ''}>"
            elif f.name in ("store_url", "prometheus_url"):
                text = repr(mask_url(value))
            else:
                text = repr(value)
            shown.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    __str__ = __repr__

    @property
    def secret_values(self) -> frozenset[str]:
        """Every secret these settings hold (tokens, the store's and Prometheus's passwords): the API scrubs them
        from error bodies and log lines (``forecaster.api.config.ApiSettings.secret_values``)."""
        return frozenset([*self.read_tokens, *self.write_tokens, *url_secrets(self.store_url),
                          *url_secrets(self.prometheus_url)])

    @property
    def lead_time_s(self) -> float:
        """Scaling lead time: pod start-up plus the refresh interval (a floor stays until the next refresh)."""
        return self.pod_startup_s + self.refresh_interval_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, secrets_dir: str | Path | None = None,
                 **overrides: Any) -> ServiceSettings:
        """Settings from the Secret directory and ``FORECASTER_*`` variables (see module docstring), then
        ``overrides`` (already typed values)."""
        env = os.environ if environ is None else environ
        folder = secrets_dir if secrets_dir is not None else env.get(SECRETS_DIR_ENV)
        raw: dict[str, tuple[str, str]] = {}
        if folder:
            root = Path(folder)
            if not root.is_dir():
                raise InputError(f"{SECRETS_DIR_ENV}: {root} is not a directory")
            for f in fields(cls):
                path = root / f.name
                if path.is_file():
                    raw[f.name] = (path.read_text(encoding="utf-8").strip(), f"secret file {path}")
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if var in env:
                raw[f.name] = (env[var], var)
        values = {name: _parse(name, text, source) for name, (text, source) in raw.items()}
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> ServiceSettings:
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)


def _parse(name: str, text: str, source: str) -> Any:
    """One field from its text form; ``InputError`` naming ``source`` when it does not parse."""
    default = getattr(ServiceSettings(), name)
    try:
        if name in ("read_tokens", "write_tokens"):
            return tuple(t.strip() for t in text.replace("\n", ",").split(",") if t.strip())
        if name == "levels":
            return tuple(int(v) for v in text.split(",") if v.strip())
        if name == "model_options":
            value = json.loads(text) if text.strip() else {}
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError("expected true or false")
            return lowered in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if name == "workloads_file":
            return Path(text.strip()) if text.strip() else None
        if name == "artefact_dir":
            return Path(text.strip())
        if name in ("prometheus_url", "dask_address"):
            return text.strip() or None
        return text.strip()
    except ValueError as exc:
        raise InputError(f"{source}: {scrub(text[:40], url_secrets(text))!r} is not a valid {name} ({exc})") from None
