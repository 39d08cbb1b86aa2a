"""The Prometheus ``MetricsSource``: range queries over the HTTP API (``/api/v1/query_range``, httpx) into long
frames, plus two frame helpers for what comes back (``regularise``, ``counter_rate``).

``PrometheusSource.query_range`` rules:

* **Grid.** Evaluation times are the multiples of ``step`` (from the Unix epoch) inside ``[start, end]``, so a
  5-minute query lands on the same 5-minute grid as ``prepare_history``; Prometheus works in milliseconds,
  so ``step`` must be a whole number of them.
* **Chunks.** Prometheus refuses more than 11,000 points per series in one query. A longer range is split
  into consecutive chunks of at most ``max_points`` evaluation times; chunk ``k+1`` starts one step after
  chunk ``k`` ends, so no evaluation time is asked twice or skipped. Results are concatenated, sorted by
  ``unique_id, ds`` and de-duplicated (first answer kept).
* **Frame.** ``unique_id, ds, y`` plus one column per label (``__name__`` excluded; a label called like a
  frame column is renamed ``label_<name>``). ``ds`` is tz-aware UTC, ``y`` float (``NaN``/``+Inf`` as sent).
  ``unique_id`` joins the values of ``id_labels`` with ``/`` (a missing label counts as ``""``, as in PromQL);
  with ``id_labels=None``, all labels sorted by name. Two different series with the same ``unique_id`` are a
  ``PermanentError`` (aggregate, or pass labels that tell them apart). Real gaps stay gaps: no row is invented.

``PrometheusSource.query_batches`` fetches many workloads in ``ceil(N / batch_size)`` range queries (one query
answers a batch by the workload labels, ``promql.batch_demand_query``), ``max_concurrency`` at a time, each with
the rules above and below; same frame as fetching the workloads one by one.

Errors (``forecaster.contracts.errors``): every message names the URL and the query.

==============================================  ====================================================
what happened                                   outcome
==============================================  ====================================================
connection refused/reset, timeout, HTTP 5xx,    retried ``retries`` times with exponential backoff
HTTP 429, ``errorType`` timeout/canceled/       ``backoff_s * 2**i`` plus up to 50 % jitter (at least
unavailable/internal                            ``Retry-After``; at most 30 s), then ``TemporaryError``
HTTP 400/422 (``bad_data``, ``execution``),     ``PermanentError`` at once: retrying cannot fix a bad
other 4xx (401, 403, 404: URL or credentials)   query, a wrong URL or missing credentials
HTTP 2xx whose body is not the Prometheus API   retried like an outage, then ``PermanentError``
(HTML, truncated JSON, wrong ``resultType``)
==============================================  ====================================================

Why garbage bodies are retried first and permanent last: a proxy or load balancer in front of Prometheus
does answer an HTML page once in a while (a restart, a login redirect refresh) and a connection cut mid-body
truncates JSON; both heal within seconds, so one call retries them. A server that answers garbage on every
attempt is not Prometheus (a URL pointing at Grafana or an auth proxy's login page): that is configuration,
so the last error is permanent and the message quotes the content type and the start of the body.

Called by the controller and the scheduler (through the ``MetricsSource`` port) and by notebooks.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

from forecaster.adapters.promql import rate_window, step_for
from forecaster.contracts.errors import InputError, PermanentError, TemporaryError
from forecaster.contracts.frames import DS, ID, OUTAGE, Y
from forecaster.forecasting.history import SeriesReport, prepare_history

log = logging.getLogger(__name__)

API_PATH = "/api/v1/query_range"
SERVER_MAX_POINTS = 11_000
"""Prometheus' hard limit of points per series in one range query."""
MAX_BACKOFF_S = 30.0
"""No single wait between attempts is longer than this (also caps ``Retry-After``)."""
JITTER = 0.5
"""Each backoff is stretched by a random factor in ``[1, 1 + JITTER)`` so clients do not retry in lockstep."""
RETRYABLE_ERROR_TYPES = frozenset({"timeout", "canceled", "unavailable", "internal"})
"""Prometheus ``errorType`` values worth retrying; the others (``bad_data``, ``execution``, ...) are permanent."""
DEFAULT_BATCH = 100
"""Workloads per batched range query (``query_batches``): 100 x 14 days at 5 minutes is 403,200 samples, about
20 MB of JSON, well inside Prometheus' default limits (``--query.max-samples`` 50,000,000)."""
DEFAULT_CONCURRENCY = 4
"""Batched range queries in flight at once: enough to hide latency, few enough not to crowd a shared Prometheus."""
_RESERVED = frozenset({ID, DS, Y, OUTAGE})
_MS = 1_000_000  # nanoseconds per millisecond


@dataclass(frozen=True)
class _Series:
    metric: dict[str, str]
    ts_ms: np.ndarray
    y: np.ndarray


class _RetryableError(Exception):
    """One attempt failed in a way worth retrying; ``garbage`` when the body was not a Prometheus answer."""

    def __init__(self, reason: str, *, garbage: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.garbage = garbage
        self.retry_after = retry_after


class PrometheusSource:
    """``MetricsSource`` over a Prometheus server's HTTP API (see the module docstring for the rules).

    ``url``: base URL including any path prefix (``http://prometheus:9090``, ``https://host/prometheus``).
    ``timeout_s``: per-request connect/read/write timeout (also sent as the query's ``timeout``). ``retries``:
    extra attempts after the first. ``backoff_s``: first wait (doubles each retry). ``max_points``: evaluation
    times per request (at most the server's 11,000). ``headers``: sent with every request (e.g.
    ``Authorization``). ``client``: an ``httpx.Client`` to use (not closed by us; its own timeout applies).
    ``sleep`` and ``rng``: injectable for tests (no real waiting, deterministic jitter).
    """

    def __init__(
        self, url: str, *, timeout_s: float = 10.0, retries: int = 3, backoff_s: float = 0.5,
        max_points: int = SERVER_MAX_POINTS, headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"Prometheus URL {url!r} must start with http:// or https://")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise InputError(f"timeout_s ({timeout_s}) must be > 0, retries ({retries}) and backoff_s "
                             f"({backoff_s}) >= 0")
        if not 1 <= max_points <= SERVER_MAX_POINTS:
            raise InputError(f"max_points={max_points} must be between 1 and {SERVER_MAX_POINTS} (server limit)")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_points = int(max_points)
        self._headers = dict(headers or {})
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=httpx.Timeout(self.timeout_s))
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()

    def close(self) -> None:
        """Close the HTTP client if this source created it."""
        if self._own_client:
            self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the port ---------------------------------------------------------------------------------------------
    def query_range(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
        *, id_labels: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Long frame ``unique_id, ds, y`` (+ label columns) of ``query`` on ``[start, end]`` every ``step``."""
        if isinstance(id_labels, str):
            raise InputError(f"id_labels must be a sequence of label names, not the string {id_labels!r}")
        if not query or not query.strip():
            raise InputError("query is empty")
        series: list[_Series] = []
        for chunk_start, chunk_end, step_ms in self.chunks(start, end, step):
            series += self._request(query, chunk_start, chunk_end, step_ms)
        return _to_frame(series, id_labels, f"query {query!r} at {self.url}")

    def query_batches(
        self, build: Callable[[Sequence[Mapping[str, str]]], str], workloads: Sequence[Mapping[str, str]],
        start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta, *, by: Sequence[str],
        batch_size: int = DEFAULT_BATCH, max_concurrency: int = DEFAULT_CONCURRENCY,
        on_error: Callable[[Sequence[Mapping[str, str]], Exception], None] | None = None,
    ) -> pd.DataFrame:
        """History of many workloads in ``ceil(len(workloads) / batch_size)`` range queries.

        Each workload is a mapping of the labels ``by`` (e.g. ``{"namespace": "shop", "workload": "web"}``);
        ``build(batch)`` gives one query answering all of a batch by those labels (``promql.batch_demand_query``).
        Batches run ``max_concurrency`` at a time, each a ``query_range`` (same chunking, retries and errors: the
        first failed batch's error is raised once all have finished). The frame is ``query_range``'s with
        ``unique_id`` = the ``by`` values joined with ``/`` (``promql.workload_id``), holding only the asked
        workloads (a per-label regex can match others), sorted by ``unique_id, ds``: what fetching each workload
        alone with ``id_labels=by`` gives. A workload with no data has no rows. With ``on_error``, a failed batch
        is handed to ``on_error(batch, error)`` and left out of the frame instead (the caller isolates its workloads,
        e.g. fetches them one by one: ``forecaster.runtime.service.fetch.demand_histories``).
        """
        if batch_size < 1 or max_concurrency < 1:
            raise InputError(f"batch_size ({batch_size}) and max_concurrency ({max_concurrency}) must be >= 1")
        by = tuple(by)
        batches = [workloads[i:i + batch_size] for i in range(0, len(workloads), batch_size)]

        def one(batch: Sequence[Mapping[str, str]]) -> pd.DataFrame:
            frame = self.query_range(build(batch), start, end, step, id_labels=by)
            asked = {"/".join(str(w.get(label, "")) for label in by) for w in batch}
            return frame[frame[ID].isin(asked)]  # each workload from the batch that asked for it

        with ThreadPoolExecutor(max_workers=min(max_concurrency, max(len(batches), 1))) as pool:
            futures = [pool.submit(one, batch) for batch in batches]
            wait(futures)
        frames = []
        for batch, fut in zip(batches, futures, strict=True):
            exc = fut.exception()
            if exc is None:
                frames.append(fut.result())
            elif on_error is not None and isinstance(exc, Exception):
                on_error(batch, exc)
            else:
                raise exc
        if not frames:
            return _to_frame([], by, "no workloads")
        frame = pd.concat(frames, ignore_index=True).drop_duplicates([ID, DS], keep="first")
        return frame.sort_values([ID, DS], kind="stable").reset_index(drop=True)

    def chunks(self, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> list[tuple[int, int, int]]:
        """The requests ``query_range`` makes: ``(start_ms, end_ms, step_ms)`` per chunk, each at most
        ``max_points`` evaluation times, together exactly the step multiples inside ``[start, end]``."""
        start_ns, end_ns = (_utc_ns(t, name) for t, name in ((start, "start"), (end, "end")))
        step_ns = pd.Timedelta(step).value
        if step_ns <= 0 or step_ns % _MS:
            raise InputError(f"step {step!r} must be a positive whole number of milliseconds")
        if end_ns < start_ns:
            raise InputError(f"end ({end}) is before start ({start})")
        step_ms = step_ns // _MS
        first = -(-start_ns // step_ns) * step_ms  # first step multiple at or after start, in ms
        n = (end_ns // _MS - first) // step_ms + 1 if first * _MS <= end_ns else 0
        return [
            (first + i * step_ms, first + (min(i + self.max_points, n) - 1) * step_ms, step_ms)
            for i in range(0, n, self.max_points)
        ]

    # -- HTTP -------------------------------------------------------------------------------------------------
    def _request(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> list[_Series]:
        form = {"query": query, "start": _seconds(start_ms), "end": _seconds(end_ms), "step": _seconds(step_ms),
                "timeout": f"{self.timeout_s:g}"}  # float seconds: Prometheus refuses "2.5s"
        what = f"query {query!r} at {self.url}{API_PATH}"
        attempts = self.retries + 1
        last: _RetryableError | None = None
        for attempt in range(attempts):
            try:
                return self._attempt(form, what)
            except _RetryableError as exc:
                last = exc
                log.info("Prometheus attempt %d/%d failed: %s (%s)", attempt + 1, attempts, exc, what)
                if attempt + 1 < attempts:
                    self._sleep(self._delay(attempt, exc.retry_after))
        assert last is not None
        if last.garbage:
            raise PermanentError(
                f"{what}: the server answered something that is not the Prometheus API on all {attempts} "
                f"attempts ({last}); check that the URL points at Prometheus, not a proxy or login page"
            )
        delay = self._delay(attempts - 1, last.retry_after)
        raise TemporaryError(f"{what}: Prometheus unavailable after {attempts} attempts ({last}); "
                             f"retry in {delay:.0f} s, keeping the last good data", delay_s=delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Wait before attempt ``attempt + 2``: ``backoff_s * 2**attempt * [1, 1.5)``, at least
        ``Retry-After``, at most ``MAX_BACKOFF_S``."""
        delay = self.backoff_s * 2**attempt * (1.0 + JITTER * self._rng.random())
        return min(max(delay, retry_after or 0.0), MAX_BACKOFF_S)

    def _attempt(self, form: dict[str, str], what: str) -> list[_Series]:
        try:
            response = self._client.post(f"{self.url}{API_PATH}", data=form, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise _RetryableError(f"no answer within {self.timeout_s:g} s ({type(exc).__name__})") from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise PermanentError(f"{what}: cannot send the request ({exc})") from exc
        except httpx.TransportError as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        body = _json(response)
        if status == 429 or status >= 500:
            raise _RetryableError(f"HTTP {status}{_error_text(body, response)}", retry_after=_retry_after(response))
        if status in (400, 422):
            raise PermanentError(f"{what}: Prometheus rejected the query (HTTP {status}{_error_text(body, response)});"
                                 " fix the query")
        if not 200 <= status < 300:
            raise PermanentError(f"{what}: HTTP {status}{_error_text(body, response)}; check the URL (path "
                                 "prefix?) and credentials")
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise _RetryableError(f"not a Prometheus API answer: {_snippet(response)}", garbage=True)
        if body["status"] == "error":
            if body.get("errorType") in RETRYABLE_ERROR_TYPES:
                raise _RetryableError(f"Prometheus error{_error_text(body, response)}")
            raise PermanentError(f"{what}: Prometheus error{_error_text(body, response)}; fix the query")
        for warning in body.get("warnings") or ():
            log.warning("Prometheus warning for %s: %s", what, warning)
        try:
            return _parse_matrix(body.get("data"))
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise _RetryableError(f"malformed range-query answer ({exc}): {_snippet(response)}", garbage=True) from exc


# -- wire format ------------------------------------------------------------------------------------------------
def _seconds(ms: int) -> str:
    """Milliseconds as the decimal seconds Prometheus reads, without float rounding: 1500 -> ``1.500``."""
    sign = "-" if ms < 0 else ""
    whole, frac = divmod(abs(ms), 1000)
    return f"{sign}{whole}.{frac:03d}"


def _utc_ns(ts: pd.Timestamp, name: str) -> int:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise InputError(f"{name} ({t}) is timezone-naive; give a UTC timestamp, e.g. pd.Timestamp(..., tz='UTC')")
    return int(t.tz_convert("UTC").as_unit("ns").value)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # JSONDecodeError and bad encodings
        return None


def _snippet(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "no content type")
    text = response.text[:80].replace("\n", " ")
    return f"{kind}, body starts {text!r}"


def _error_text(body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict) and "error" in body:
        return f", {body.get('errorType', 'error')}: {body['error']}"
    return f", {_snippet(response)}" if response.content else ""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers["retry-after"]), 0.0)
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date (rare for 429/503): the exponential backoff applies


def _parse_matrix(data: Any) -> list[_Series]:
    """Series of a ``resultType: matrix`` answer; any other shape raises ``ValueError``/``TypeError``."""
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"resultType {kind!r}, expected 'matrix'")
    out = []
    for item in data["result"]:
        metric = item["metric"]
        if not isinstance(metric, dict):
            raise TypeError("series 'metric' is not an object")
        values = np.asarray(item["values"], dtype=object).reshape(-1, 2)
        ts_ms = np.round(values[:, 0].astype(float) * 1000.0).astype(np.int64)
        out.append(_Series({str(k): str(v) for k, v in metric.items()}, ts_ms, values[:, 1].astype(float)))
    return out


def _unique_id(labels: Mapping[str, str], id_labels: Sequence[str] | None) -> str:
    names = sorted(labels) if id_labels is None else id_labels
    return "/".join(labels.get(name, "") for name in names)


def _to_frame(series: list[_Series], id_labels: Sequence[str] | None, what: str) -> pd.DataFrame:
    owner: dict[str, dict[str, str]] = {}
    ids, label_sets, counts, ts_parts, y_parts = [], [], [], [], []
    for s in series:
        labels = {k: v for k, v in s.metric.items() if k != "__name__"}
        uid = _unique_id(labels, id_labels)
        first = owner.setdefault(uid, s.metric)
        if first != s.metric:
            raise PermanentError(
                f"{what}: series {first} and {s.metric} both have unique_id {uid!r} (id_labels={id_labels}); "
                "aggregate them (sum by/max by) or pass id_labels that tell them apart"
            )
        ids.append(uid)
        label_sets.append(labels)
        counts.append(len(s.ts_ms))
        ts_parts.append(s.ts_ms)
        y_parts.append(s.y)
    names = sorted({name for labels in label_sets for name in labels})
    ts = np.concatenate(ts_parts) if ts_parts else np.array([], dtype=np.int64)
    frame = pd.DataFrame({
        ID: np.repeat(np.array(ids, dtype=object), counts),
        DS: pd.to_datetime(ts, unit="ms", utc=True).as_unit("ns"),
        Y: np.concatenate(y_parts).astype(float) if y_parts else np.array([], dtype=float),
    })
    for name in names:
        column = f"label_{name}" if name in _RESERVED else name
        frame[column] = np.repeat(np.array([labels.get(name) for labels in label_sets], dtype=object), counts)
    frame = frame.sort_values([ID, DS], kind="stable").drop_duplicates([ID, DS], keep="first")
    return frame.reset_index(drop=True)


# -- frame helpers ----------------------------------------------------------------------------------------------
def regularise(frame: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, SeriesReport]:
    """Put a ``query_range`` frame on the ``freq`` grid under the Series contract (``prepare_history``).

    Query with ``step = step_for(freq)`` so every stamp sits on the grid (off-grid stamps are a
    ``FrequencyError``). Each missing grid point between a series' first and last sample becomes a row with
    ``is_outage = True`` (excluded from training and scoring) whose ``y`` is imputed from one week earlier,
    else one day earlier, else by linear interpolation; NaN/inf/negative values (a ``0/0`` rate) are turned
    into outage rows the same way. Label columns are dropped (constant per series; not features). Returns
    ``(frame, report)``: ``unique_id, ds, y, is_outage`` and the counts of filled rows per series.
    """
    return prepare_history(frame[[ID, DS, Y]], freq, bad_values="outage")


def counter_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-second rate of raw cumulative counters (``unique_id, ds, y``), handling resets like Prometheus.

    Between consecutive samples of a series, ``rate = (y[i] - y[i-1]) / (ds[i] - ds[i-1])`` (seconds). A drop
    (``y[i] < y[i-1]``) means the counter was reset (process restart) and counted again from zero, so the
    increase is ``y[i]`` itself. Worked example: samples 100, 160, 30 one minute apart -> rates 1.0, 0.5.
    The first sample of each series has no predecessor and yields no row; each rate is stamped at the later
    sample (the end of its interval). Other columns are kept.
    """
    out = frame.sort_values([ID, DS], kind="stable").reset_index(drop=True)
    grouped = out.groupby(ID, sort=False)
    previous, prev_ds = grouped[Y].shift(), grouped[DS].shift()
    increase = out[Y] - previous
    increase = increase.where(increase >= 0, out[Y])  # reset: the new value counts from zero
    seconds = (out[DS] - prev_ds).dt.total_seconds()
    out[Y] = (increase / seconds).astype(float)
    return out.loc[previous.notna().to_numpy()].reset_index(drop=True)


__all__ = ["PrometheusSource", "counter_rate", "rate_window", "regularise", "step_for"]
