"""PromQL for our workloads: query steps, rate windows, escaped selectors, the resource queries, and the fetches
that run them through any ``MetricsSource`` and shape the answers into our frames.

Query builders are pure string functions; every label value goes through ``quote`` (PromQL string escaping),
so a namespace or regex can never break out of its matcher. The queries (cAdvisor and kube-state-metrics names
from ``forecaster.contracts.metric_names``):

=================  ==========================================================================================
demand             the policy's own PromQL, passed through (``demand_query``)
CPU (cores)        ``sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{namespace="ns",
                   pod=~"re", container!="", container!="POD"}[W]))`` - ``container=""`` is the pod-level cgroup
                   (the sum of its containers) and ``POD`` the pause container; both would double-count.
memory (bytes)     ``max by (namespace, pod, container) (container_memory_working_set_bytes{...same...})`` - the
                   working set is what the kernel's OOM killer weighs; ``max`` folds duplicate scrapes.
requests           ``max by (namespace, pod, container) (kube_pod_container_resource_requests{namespace="ns",
                   pod=~"re", resource="cpu"|"memory"})`` - cores and bytes (kube-state-metrics ``unit`` label).
OOM kills          restarts ``kube_pod_container_status_restarts_total`` and
                   ``kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}``, combined client-side
                   by ``oom_kills`` (kube-state-metrics keeps only the *last* reason, so a kill is a restart
                   while that reason says OOMKilled).
=================  ==========================================================================================

A range query's value at ``ds`` describes the window *ending* at ``ds`` (``rate`` looks back ``W``; a gauge is
its latest sample within the 5-minute lookback), so every frame here is stamped at window ends.

Called by the controller (``fetch_demand``, ``fetch_container_usage``, ``fetch_ooms``) and the tests. Imports no
HTTP client: the fetches take the ``MetricsSource`` port, so they run over ``PrometheusSource`` or a fake.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence

import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import PermanentError
from forecaster.contracts.frames import DS, ID, Y
from forecaster.contracts.ports import MetricsSource
from forecaster.rightsizing.frames import CPU, CPU_REQUEST, MEMORY, MEMORY_REQUEST, NAMESPACE

log = logging.getLogger(__name__)

POD = "pod"
CONTAINER = "container"
CONTAINER_LABELS: tuple[str, ...] = (NAMESPACE, POD, CONTAINER)
"""Labels that name a container; ``unique_id`` of the usage and OOM frames is ``namespace/pod/container``."""
DEFAULT_SCRAPE_INTERVAL = pd.Timedelta("30s")
"""The usual kubelet/cAdvisor and kube-state-metrics scrape interval (Prometheus Operator default)."""
OOM_REASON = "OOMKilled"

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=", "!=", "=~", "!~")


# -- steps and windows ------------------------------------------------------------------------------------------
def step_for(freq: str) -> pd.Timedelta:
    """Query step for a forecast frequency: one evaluation per grid point (``"5min"`` -> 300 s, ``"1h"`` ->
    3600 s). Raises ``FrequencyError`` for a non-fixed frequency such as ``"MS"``."""
    return freq_to_timedelta(freq)


def duration(td: pd.Timedelta | str) -> str:
    """PromQL duration literal, rounded up to whole seconds: ``1h``, ``6m``, ``330s``."""
    seconds = math.ceil(pd.Timedelta(td).total_seconds())
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {td!r}")
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rate_window(step: pd.Timedelta | str, scrape_interval: pd.Timedelta | str = DEFAULT_SCRAPE_INTERVAL) -> str:
    """Range ``W`` for ``rate(x[W])`` at this query step: ``max(step + scrape_interval, 4 * scrape_interval)``.

    ``step + scrape`` makes consecutive windows overlap by one scrape, so every increase between two samples
    falls inside some window (none is lost between steps); ``4 * scrape`` leaves at least two samples in a
    window after a missed scrape (``rate`` needs two). It is Grafana's ``$__rate_interval`` rule. Worked
    example: step 5 min, scrape 30 s -> ``max(330 s, 120 s)`` = ``"330s"``; step 15 s -> ``"2m"``.
    """
    step_td, scrape = pd.Timedelta(step), pd.Timedelta(scrape_interval)
    if step_td <= pd.Timedelta(0) or scrape <= pd.Timedelta(0):
        raise ValueError(f"step ({step!r}) and scrape_interval ({scrape_interval!r}) must be positive")
    return duration(max(step_td + scrape, 4 * scrape))


# -- escaping and selectors --------------------------------------------------------------------------------------
def quote(value: str) -> str:
    """A PromQL double-quoted string literal: backslash, double quote and newline escaped.

    ``quote('a"b')`` -> ``"a\\"b"``. Regex values are quoted the same way (the regex sees the unescaped text).
    """
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def matcher(label: str, op: str, value: str) -> str:
    """One label matcher, e.g. ``matcher("pod", "=~", "web-.*")`` -> ``pod=~"web-.*"``; label and operator checked."""
    if not _LABEL_NAME.fullmatch(label):
        raise ValueError(f"{label!r} is not a valid Prometheus label name")
    if op not in _OPS:
        raise ValueError(f"label matcher operator {op!r} is not one of {_OPS}")
    return f"{label}{op}{quote(value)}"


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1,m2,...}`` from matchers built by ``matcher``."""
    if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", metric):
        raise ValueError(f"{metric!r} is not a valid Prometheus metric name")
    return f"{metric}{{{','.join(matchers)}}}"


def _container_matchers(namespace: str, pod_regex: str, *, real_containers: bool = True) -> list[str]:
    if not namespace:
        raise ValueError("namespace must not be empty")
    if not pod_regex:
        raise ValueError("pod_regex must not be empty (use '.+' for every pod)")
    out = [matcher(NAMESPACE, "=", namespace), matcher(POD, "=~", pod_regex)]
    if real_containers:
        out += [matcher(CONTAINER, "!=", ""), matcher(CONTAINER, "!=", "POD")]
    return out


_BY_CONTAINER = "by (namespace, pod, container)"


# -- query builders ----------------------------------------------------------------------------------------------
def demand_query(query: str) -> str:
    """The policy's demand PromQL, passed through unchanged (stripped); an empty query is a ``ValueError``."""
    if not query or not query.strip():
        raise ValueError("the demand query is empty: set spec.demand.query to a PromQL expression")
    return query.strip()


def container_cpu_query(namespace: str, pod_regex: str, window: str) -> str:
    """CPU cores in use per container: ``sum by (namespace, pod, container) (rate(cpu_seconds{...}[window]))``."""
    sel = selector("container_cpu_usage_seconds_total", *_container_matchers(namespace, pod_regex))
    return f"sum {_BY_CONTAINER} (rate({sel}[{window}]))"


def container_memory_query(namespace: str, pod_regex: str) -> str:
    """Working-set bytes per container: ``max by (namespace, pod, container) (working_set{...})``."""
    sel = selector("container_memory_working_set_bytes", *_container_matchers(namespace, pod_regex))
    return f"max {_BY_CONTAINER} ({sel})"


def container_requests_query(namespace: str, pod_regex: str, resource: str) -> str:
    """Requested cores (``resource="cpu"``) or bytes (``"memory"``) per container, from kube-state-metrics."""
    if resource not in (CPU, MEMORY):
        raise ValueError(f"resource must be 'cpu' or 'memory', got {resource!r}")
    sel = selector(
        "kube_pod_container_resource_requests",
        *_container_matchers(namespace, pod_regex, real_containers=False), matcher("resource", "=", resource),
    )
    return f"max {_BY_CONTAINER} ({sel})"


def container_restarts_query(namespace: str, pod_regex: str) -> str:
    """Restart count per container (kube-state-metrics counter), raw: ``oom_kills`` diffs it client-side."""
    sel = selector("kube_pod_container_status_restarts_total",
                   *_container_matchers(namespace, pod_regex, real_containers=False))
    return f"max {_BY_CONTAINER} ({sel})"


def container_oom_reason_query(namespace: str, pod_regex: str) -> str:
    """1 while a container's last termination was an OOM kill (kube-state-metrics)."""
    sel = selector(
        "kube_pod_container_status_last_terminated_reason",
        *_container_matchers(namespace, pod_regex, real_containers=False), matcher("reason", "=", OOM_REASON),
    )
    return f"max {_BY_CONTAINER} ({sel})"


# -- batches of workloads ------------------------------------------------------------------------------------------
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def regex_alternation(values: Sequence[str]) -> str:
    """An RE2 alternation matching exactly ``values`` (PromQL anchors ``=~`` at both ends), metacharacters
    escaped: ``["web", "a.b"]`` -> ``web|a\\.b`` (sorted, duplicates dropped)."""
    if not values:
        raise ValueError("no values to match")
    return "|".join(_REGEX_META.sub(r"\\\1", str(v)) for v in sorted(set(values)))


def batch_demand_query(metric: str, by: Sequence[str], batch: Sequence[Mapping[str, str]], *,
                       window: str | None = None, aggregation: str = "sum") -> str:
    """One query for a batch of workloads, each named by its values of the labels ``by``:
    ``sum by (namespace, workload) (rate(metric{namespace=~"a|b", workload=~"x|y"}[W]))`` (``window`` given:
    a counter's per-second rate; None: the gauge itself). Per label, a regex over the batch's values, so the
    answer can hold label combinations outside the batch (``a/y`` above): ``PrometheusSource.query_batches``
    keeps only the asked ones. E.g. ``batch_demand_query("http_requests_total", ["namespace", "workload"],
    [{"namespace": "shop", "workload": "web"}], window="6m")`` ->
    ``sum by (namespace, workload) (rate(http_requests_total{namespace=~"shop",workload=~"web"}[6m]))``."""
    if aggregation not in {"sum", "max", "min", "avg"}:
        raise ValueError(f"aggregation {aggregation!r} is not one of sum, max, min, avg")
    if not by:
        raise ValueError("by: name at least one label that identifies a workload")
    missing = [dict(w) for w in batch if any(not w.get(label) for label in by)]
    if missing:
        raise ValueError(f"workloads {missing[:3]} lack a value for one of the labels {list(by)}")
    sel = selector(metric, *(matcher(label, "=~", regex_alternation([w[label] for w in batch])) for label in by))
    inner = f"rate({sel}[{window}])" if window else sel
    return f"{aggregation} by ({', '.join(by)}) ({inner})"


def tagged_union_query(queries: Mapping[str, str], label: str) -> str:
    """One query answering several arbitrary queries, each series tagged with its query's key in ``label``:
    ``label_replace((q1), "label", "k1", "", "") or label_replace((q2), "label", "k2", "", "")``. ``label_replace``
    with an empty source and regex sets the label on every series; the tags make every label set distinct, so ``or``
    keeps all series of all queries (Prometheus evaluates each as if asked alone). Fetched with
    ``id_labels=[label]``, the rows of key ``k`` are those of ``q_k``. E.g. ``tagged_union_query({"a": "up"}, "w")``
    -> ``label_replace((up), "w", "a", "", "")``."""
    if not queries:
        raise ValueError("queries: give at least one")
    if not _LABEL_NAME.fullmatch(label):
        raise ValueError(f"{label!r} is not a valid Prometheus label name")
    return " or ".join(f'label_replace(({q}), {quote(label)}, {quote(k)}, "", "")' for k, q in queries.items())


def workload_id(workload: Mapping[str, str], by: Sequence[str]) -> str:
    """A workload's ``unique_id`` in batched answers: its ``by`` label values joined with ``/`` (the rule of
    ``PrometheusSource.query_range``'s ``id_labels``)."""
    return "/".join(str(workload.get(label, "")) for label in by)


# -- fetches (through the MetricsSource port) ---------------------------------------------------------------------
def fetch_demand(source: MetricsSource, workload_id: str, query: str, start: pd.Timestamp, end: pd.Timestamp,
                 step: pd.Timedelta) -> pd.DataFrame:
    """Demand history of one workload as a Series frame ``unique_id (= workload_id), ds, y``.

    The query must return at most one series (no answer gives an empty frame: no history yet); several series
    are a ``PermanentError`` naming the query (aggregate them, e.g. ``sum(rate(...))``).
    """
    frame = source.query_range(demand_query(query), start, end, step, id_labels=None)
    n = frame[ID].nunique()
    if n > 1:
        raise PermanentError(
            f"demand query {query!r} of {workload_id} returns {n} series (e.g. {sorted(frame[ID].unique())[:3]}); "
            "it must return one: aggregate it, e.g. sum(...)"
        )
    return pd.DataFrame({ID: workload_id, DS: frame[DS], Y: frame[Y]}).reset_index(drop=True)


def _container_frame(source: MetricsSource, query: str, start: pd.Timestamp, end: pd.Timestamp,
                     step: pd.Timedelta, column: str) -> pd.DataFrame:
    frame = source.query_range(query, start, end, step, id_labels=CONTAINER_LABELS)
    out = frame[[ID, DS, Y]].rename(columns={Y: column})
    for label in CONTAINER_LABELS:
        out[label] = frame[label] if label in frame.columns else ""
    return out


def fetch_container_usage(source: MetricsSource, namespace: str, pod_regex: str, start: pd.Timestamp,
                          end: pd.Timestamp, step: pd.Timedelta, *,
                          scrape_interval: pd.Timedelta | str = DEFAULT_SCRAPE_INTERVAL) -> pd.DataFrame:
    """The right-sizing usage frame of the matching containers (``forecaster.rightsizing.frames``).

    Columns ``unique_id`` (``namespace/pod/container``), ``ds``, ``cpu`` (cores, ``rate`` over
    ``rate_window(step, scrape_interval)``), ``memory`` (working-set bytes), ``cpu_request`` (cores),
    ``memory_request`` (bytes), ``namespace``, ``pod``, ``container``; sorted by ``unique_id, ds``.
    Rules: a row exists only where both CPU and memory were observed (gaps stay gaps, nothing is invented);
    requests change only when a pod is recreated, so a missing request sample takes the container's previous
    (else next) value; a container with no request series at all gets 0 (kube-state-metrics exports none for
    a resource without a request: BestEffort), and a warning is logged when *no* container has one (is
    kube-state-metrics scraped?). No containers matched: an empty frame with these columns.
    """
    window = rate_window(step, scrape_interval)
    cpu = _container_frame(source, container_cpu_query(namespace, pod_regex, window), start, end, step, CPU)
    memory = _container_frame(source, container_memory_query(namespace, pod_regex), start, end, step, MEMORY)
    usage = cpu.merge(memory[[ID, DS, MEMORY]], on=[ID, DS], how="inner")
    if usage.empty:
        return _empty_usage()
    for column, resource in ((CPU_REQUEST, CPU), (MEMORY_REQUEST, MEMORY)):
        query = container_requests_query(namespace, pod_regex, resource)
        requests = _container_frame(source, query, start, end, step, column)
        if requests.empty:
            log.warning("no %s series for %s/%s: requests taken as 0 (is kube-state-metrics scraped?)",
                        "kube_pod_container_resource_requests", namespace, pod_regex)
        usage = usage.merge(requests[[ID, DS, column]], on=[ID, DS], how="outer")
        usage = usage.sort_values([ID, DS], kind="stable")
        usage[column] = usage.groupby(ID, sort=False)[column].transform(lambda s: s.ffill().bfill()).fillna(0.0)
        usage = usage.dropna(subset=[CPU, MEMORY])  # request-only rows are not usage samples
    columns = [ID, DS, CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST, *CONTAINER_LABELS]
    return usage[columns].astype({CPU: float, MEMORY: float}).reset_index(drop=True)


def _empty_usage() -> pd.DataFrame:
    cols: dict[str, pd.Series] = {ID: pd.Series([], dtype=object), DS: pd.Series([], dtype="datetime64[ns, UTC]")}
    cols.update({c: pd.Series([], dtype=float) for c in (CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST)})
    cols.update({c: pd.Series([], dtype=object) for c in CONTAINER_LABELS})
    return pd.DataFrame(cols)


def oom_kills(restarts: pd.DataFrame, oom_reason: pd.DataFrame) -> pd.DataFrame:
    """OOM kill times from two container frames (``unique_id, ds, y`` on the same step grid).

    A kill is a rise of the restart count between consecutive observed points of a container, at a time the
    last-terminated reason says ``OOMKilled`` (``oom_reason.y == 1`` at that ``ds``); it is stamped at the
    point where the rise is first seen (so within one step after the kill). Several restarts within one step
    count as one kill (kube-state-metrics keeps only the last reason); a kill before the first point of the
    range is not seen. Returns ``unique_id, ds`` plus any container label columns of ``restarts``.
    """
    extra = [c for c in CONTAINER_LABELS if c in restarts.columns]
    r = restarts.sort_values([ID, DS], kind="stable")
    rose = r.groupby(ID, sort=False)[Y].diff().to_numpy() > 0
    candidates = r.loc[rose, [ID, DS, *extra]]
    oom = oom_reason.loc[oom_reason[Y].to_numpy() == 1, [ID, DS]]
    kills = candidates.merge(oom, on=[ID, DS], how="inner")
    return kills.sort_values([ID, DS], kind="stable").reset_index(drop=True)


def fetch_ooms(source: MetricsSource, namespace: str, pod_regex: str, start: pd.Timestamp, end: pd.Timestamp,
               step: pd.Timedelta) -> pd.DataFrame:
    """The right-sizing OOM frame of the matching containers: ``unique_id, ds, namespace, pod, container``,
    one row per kill (rule on ``oom_kills``). ``memory`` is left out: ``validate_ooms`` fills it from usage."""
    restarts = _container_frame(source, container_restarts_query(namespace, pod_regex), start, end, step, Y)
    reason = _container_frame(source, container_oom_reason_query(namespace, pod_regex), start, end, step, Y)
    kills = oom_kills(restarts, reason)
    kills[DS] = kills[DS].astype("datetime64[ns, UTC]")
    return kills[[ID, DS, *CONTAINER_LABELS]] if len(kills) else _empty_ooms()


def _empty_ooms() -> pd.DataFrame:
    cols: dict[str, pd.Series] = {ID: pd.Series([], dtype=object), DS: pd.Series([], dtype="datetime64[ns, UTC]")}
    cols.update({c: pd.Series([], dtype=object) for c in CONTAINER_LABELS})
    return pd.DataFrame(cols)


__all__ = [
    "CONTAINER_LABELS", "batch_demand_query", "container_cpu_query", "container_memory_query",
    "container_oom_reason_query", "container_requests_query", "container_restarts_query", "demand_query", "duration",
    "fetch_container_usage", "fetch_demand", "fetch_ooms", "matcher", "oom_kills", "quote", "rate_window",
    "regex_alternation", "selector", "step_for", "tagged_union_query", "workload_id",
]
