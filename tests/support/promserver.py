"""A real Prometheus for integration tests: OpenMetrics text from frames, backfill with promtool, start/stop.

Measured facts this module is built on (Debian prometheus 2.42):

* ``promtool tsdb create-blocks-from openmetrics FILE DIR`` wants timestamps in *seconds* (milliseconds are
  accepted silently and land in the wrong year), samples sorted per series, and a final ``# EOF`` line.
  Its default 2-hour blocks make hundreds of blocks from a few days of history (5 s to write, slow start);
  ``--max-block-duration=2400h`` writes one block per 100 days (0.1 s).
* The server starts without systemd in well under a second. Retention deletes blocks at start-up counted
  from the newest sample, so retention is set to 100 years (our fixtures are real traces from 1995/2013).
* Queries are capped at 11,000 points per series.

Fixture conventions (``demand_family``, ``container_families``): a row stamped ``ds`` describes the bucket
``[ds, ds + bucket)`` (the traces' convention); Prometheus stamps a value at the *end* of the window it
describes, so every sample is written at ``ds + bucket`` and a query at ``ds + bucket`` gives back the row's
value. Counters start at ``initial`` (default 0) at the first bucket's start; OOM kills reset the CPU counter.

Used by ``tests/adapters`` and (later) the controller's acceptance test.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from support.binaries import require_binary
from support.net import free_port

VALUE = "value"
MAX_BLOCK_DURATION = "2400h"
RETENTION = "100y"


@dataclass(frozen=True)
class Family:
    """One metric family to backfill: ``frame`` has ``ds`` (tz-aware), ``value`` and one column per label.

    ``name`` is the sample name (counters end in ``_total``); ``kind`` is ``"gauge"`` or ``"counter"``.
    """

    name: str
    kind: str
    frame: pd.DataFrame
    help: str = ""

    @property
    def family_name(self) -> str:
        """OpenMetrics family name: a counter's name without ``_total``."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


def epoch_ns(ds: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch of tz-aware timestamps, whatever their pandas resolution."""
    return ds.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # shortest text that reads back as the same float


def _timestamp(ns: int) -> str:
    """Seconds with millisecond decimals (what Prometheus stores), exact: 1500 ms -> ``1.500``."""
    whole, frac = divmod(ns // 1_000_000, 1000)
    return f"{whole}.{frac:03d}"


def to_openmetrics(*families: Family) -> str:
    """OpenMetrics text of ``families``: ``# TYPE``/``# HELP`` per family, then each series' samples sorted by
    time (timestamps in seconds), series ordered by labels, and the closing ``# EOF``."""
    lines: list[str] = []
    for fam in families:
        if fam.kind not in ("gauge", "counter"):
            raise ValueError(f"{fam.name}: kind must be gauge or counter, got {fam.kind!r}")
        if fam.kind == "counter" and not fam.name.endswith("_total"):
            raise ValueError(f"{fam.name}: an OpenMetrics counter's samples end in _total")
        frame = fam.frame
        if not isinstance(frame["ds"].dtype, pd.DatetimeTZDtype):
            raise ValueError(f"{fam.name}: ds must be tz-aware")
        labels = sorted(c for c in frame.columns if c not in ("ds", VALUE))
        lines.append(f"# TYPE {fam.family_name} {fam.kind}")
        if fam.help:
            lines.append(f"# HELP {fam.family_name} {_escape(fam.help)}")
        ordered = frame.assign(_ns=epoch_ns(frame["ds"]))
        ordered = ordered.sort_values([*labels, "_ns"], kind="stable")
        for key, rows in ordered.groupby(labels, sort=False, dropna=False) if labels else [((), ordered)]:
            values = key if isinstance(key, tuple) else (key,)
            text = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(labels, values, strict=True))
            head = f"{fam.name}{{{text}}}" if labels else fam.name
            if rows["_ns"].duplicated().any():
                raise ValueError(f"{head}: two samples at the same time")
            lines += [f"{head} {_number(v)} {_timestamp(t)}" for v, t in zip(rows[VALUE], rows["_ns"], strict=True)]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(text: str, data_dir: Path) -> None:
    """Write ``text`` (OpenMetrics) as TSDB blocks into ``data_dir`` with promtool; raise with its stderr."""
    promtool = require_binary("promtool")
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / f"{data_dir.name}.om"
    source.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", f"--max-block-duration={MAX_BLOCK_DURATION}",
         "--quiet", str(source), str(data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({result.returncode}): {result.stderr.strip()}")



@dataclass
class PromServer:
    """A running Prometheus: ``url`` of its HTTP API; ``stop()`` ends it (idempotent). A context manager."""

    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, n: int = 20) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def __enter__(self) -> PromServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_prometheus(tmp_dir: Path, openmetrics_text: str | None = None, *, ready_timeout_s: float = 30.0
                     ) -> PromServer:
    """Backfill ``openmetrics_text`` (if any) and start Prometheus on a free loopback port; return when
    ``/-/ready`` answers 200. The process is killed if it does not become ready (the error quotes its log)."""
    binary = require_binary("prometheus")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    data_dir = tmp_dir / "data"
    if openmetrics_text is not None:
        backfill(openmetrics_text, data_dir)
    config = tmp_dir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")  # no scrape targets
    for _ in range(3):  # another process may take the free port between our probe and the bind
        port = free_port()
        log_path = tmp_dir / f"prometheus-{port}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
                 f"--storage.tsdb.retention.time={RETENTION}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        server = PromServer(f"http://127.0.0.1:{port}", process, data_dir, log_path)
        try:
            if _wait_ready(server, ready_timeout_s):
                return server
        except BaseException:
            server.stop()
            raise
        server.stop()
        if "address already in use" not in server.log_tail(50):
            break
    raise RuntimeError(f"Prometheus did not become ready within {ready_timeout_s} s:\n{server.log_tail()}")


def _wait_ready(server: PromServer, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.url}/-/ready").status_code == 200:
                    return True
            time.sleep(0.05)
    return False


# -- fixture builders -------------------------------------------------------------------------------------------
def counter_frame(ds: pd.Series, increments: Iterable[float], bucket: pd.Timedelta,
                  resets: Iterable[pd.Timestamp] = (), *, initial: float = 0.0) -> pd.DataFrame:
    """Cumulative counter samples ``ds, value`` from per-bucket increments.

    ``initial`` at the first bucket's start, then ``initial + sum(increments so far)`` at each bucket's end.
    At a reset time (a bucket start) the counter restarts from zero: that bucket's sample is its own increment.
    Buckets absent from ``ds`` (gaps) write no sample and add nothing.

    ``initial`` > 0 stands for a process that was running before the history starts. It matters for the first
    rate: Prometheus stops extrapolating a ``rate`` window at the point where the counter would reach zero, so
    a counter that is 0 inside the window gives a lower first rate (increase / window instead of increase /
    sample interval).
    """
    starts = pd.to_datetime(ds, utc=True).reset_index(drop=True)
    inc = np.asarray(list(increments), dtype=float)
    reset_set = {pd.Timestamp(t) for t in resets}
    values, total = [], float(initial)
    for start, step in zip(starts, inc, strict=True):
        total = step if start in reset_set else total + step
        values.append(total)
    stamps = pd.concat([starts.iloc[:1], starts + bucket], ignore_index=True)
    return pd.DataFrame({"ds": stamps, VALUE: [float(initial), *values]})


def demand_family(frame: pd.DataFrame, name: str, labels: Mapping[str, str], bucket: pd.Timedelta, *,
                  initial: float = 0.0) -> Family:
    """A request counter (``name`` ends in ``_total``) from a Series frame of counts per bucket (``ds, y``)."""
    counter = counter_frame(frame["ds"], frame["y"], bucket, initial=initial)
    return Family(name, "counter", counter.assign(**labels), help="Requests served")


def container_families(usage: pd.DataFrame, bucket: pd.Timedelta, ooms: pd.DataFrame | None = None, *,
                       initial_cpu_s: float = 0.0, cgroup_noise: bool = True) -> list[Family]:
    """cAdvisor and kube-state-metrics families from a right-sizing usage frame with ``namespace``, ``pod`` and
    ``container`` columns (``cpu`` cores, ``memory`` bytes, ``cpu_request``, ``memory_request``).

    * ``container_cpu_usage_seconds_total``: CPU seconds, ``counter_frame`` of ``cpu * bucket`` from
      ``initial_cpu_s``; an OOM kill restarts the container, so its counter resets at the kill's bucket.
    * ``container_memory_working_set_bytes``, ``kube_pod_container_resource_requests`` (cpu in ``core``,
      memory in ``byte``): gauges.
    * OOM kills (``ooms``: ``unique_id, ds`` with ``ds`` a bucket start): ``kube_pod_container_status_restarts_total``
      rises by one at the kill bucket's end, and ``kube_pod_container_status_last_terminated_reason`` with
      ``reason="OOMKilled"`` is 1 from then on (absent before, as kube-state-metrics does).
    * ``cgroup_noise``: like real cAdvisor, also the pod-level cgroup (``container=""``, the pod's sum) and the
      pause container (``container="POD"``), which the queries must leave out.
    """
    seconds = bucket.total_seconds()
    kills = ooms if ooms is not None else pd.DataFrame({"unique_id": [], "ds": []})
    cpu, memory, requests, restarts, reasons = [], [], [], [], []
    for uid, rows in usage.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=True):
        labels = {k: str(rows[k].iloc[0]) for k in ("namespace", "pod", "container")}
        ends = rows["ds"].reset_index(drop=True) + bucket
        kill_starts = sorted(pd.to_datetime(kills.loc[kills["unique_id"] == uid, "ds"], utc=True))
        counter = counter_frame(rows["ds"], rows["cpu"] * seconds, bucket, kill_starts, initial=initial_cpu_s)
        cpu.append(counter.assign(**labels))
        memory.append(pd.DataFrame({"ds": ends, VALUE: rows["memory"].to_numpy()}).assign(**labels))
        for resource, unit, column in (("cpu", "core", "cpu_request"), ("memory", "byte", "memory_request")):
            requests.append(pd.DataFrame({"ds": ends, VALUE: rows[column].to_numpy()})
                            .assign(**labels, resource=resource, unit=unit))
        kill_ends = np.array([(k + bucket).as_unit("ns").value for k in kill_starts], dtype=np.int64)
        count = np.searchsorted(kill_ends, epoch_ns(ends), side="right")
        restarts.append(pd.DataFrame({"ds": ends, VALUE: count.astype(float)}).assign(**labels))
        if kill_starts:
            after = ends[ends >= kill_starts[0] + bucket]
            reasons.append(pd.DataFrame({"ds": after, VALUE: 1.0}).assign(**labels, reason="OOMKilled"))
    cpu_frame, memory_frame = pd.concat(cpu, ignore_index=True), pd.concat(memory, ignore_index=True)
    if cgroup_noise:
        cpu_frame, memory_frame = _with_cgroup_noise(cpu_frame, memory_frame)
    families = [
        Family("container_cpu_usage_seconds_total", "counter", cpu_frame),
        Family("container_memory_working_set_bytes", "gauge", memory_frame),
        Family("kube_pod_container_resource_requests", "gauge", pd.concat(requests, ignore_index=True)),
        Family("kube_pod_container_status_restarts_total", "counter", pd.concat(restarts, ignore_index=True)),
    ]
    if reasons:
        families.append(Family("kube_pod_container_status_last_terminated_reason", "gauge",
                               pd.concat(reasons, ignore_index=True)))
    return families


def _with_cgroup_noise(cpu: pd.DataFrame, memory: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add per pod the pod-level cgroup (``container=""``: the sum of its containers) and a pause container
    (``container="POD"``: 0.001 CPU seconds per sample, 1 MiB)."""
    keys = ["namespace", "pod", "ds"]
    pod_cpu = cpu.groupby(keys, as_index=False)[VALUE].sum().assign(container="")
    pod_memory = memory.groupby(keys, as_index=False)[VALUE].sum().assign(container="")
    pause_cpu = pod_cpu.assign(container="POD")
    pause_cpu[VALUE] = pause_cpu.groupby(["namespace", "pod"]).cumcount() * 0.001
    pause_memory = pod_memory.assign(container="POD", value=float(2**20))
    return (pd.concat([cpu, pod_cpu, pause_cpu], ignore_index=True),
            pd.concat([memory, pod_memory, pause_memory], ignore_index=True))


# -- the committed real-trace fixture ---------------------------------------------------------------------------
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NASA_BUCKET = pd.Timedelta("5min")
USAGE_BUCKET = pd.Timedelta("15min")
NASA_DAYS = 9
NASA_LABELS = {"namespace": "nasa", "service": "ksc"}
NASA_INITIAL = 1_000_000.0
"""Requests the counter had served before the extract starts (a running server; see ``counter_frame``)."""
INITIAL_CPU_S = 50_000.0
"""CPU seconds each container had used before the extract starts."""
NAMESPACE_OF = {"vm001": "rnd", "vm004": "rnd", "vm007": "batch"}


@dataclass(frozen=True)
class PromData:
    """What ``real_trace_data`` backfills (provenance: ``tests/fixtures/prometheus/SOURCE.md``).

    ``nasa``: Series frame ``unique_id, ds, y`` of requests per 5 minutes. ``usage``: usage frame (15-minute
    buckets) with ``namespace``, ``pod``, ``container`` and ``unique_id = namespace/pod/container``.
    ``ooms``: ``unique_id, ds`` of the injected kill (its bucket start). ``families``: what was written.
    """

    nasa: pd.DataFrame = field(repr=False)
    usage: pd.DataFrame = field(repr=False)
    ooms: pd.DataFrame
    families: tuple[Family, ...] = field(repr=False)

    def nasa_counter(self) -> pd.Series:
        """The request counter as backfilled, indexed by sample time."""
        ds = pd.concat([self.nasa["ds"].iloc[:1], self.nasa["ds"] + NASA_BUCKET], ignore_index=True)
        total = np.concatenate([[0.0], self.nasa["y"].cumsum().to_numpy()]) + NASA_INITIAL
        return pd.Series(total, index=pd.DatetimeIndex(ds))

    def expected_usage(self) -> pd.DataFrame:
        """The usage frame as Prometheus answers it: stamped at bucket ends, sorted by ``unique_id, ds``."""
        out = self.usage.assign(ds=self.usage["ds"] + USAGE_BUCKET)
        return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def real_trace_data() -> PromData:
    """Real traces as Prometheus series, from files committed in the project (nothing from ``../shared``):

    * ``http_requests_total{namespace="nasa",service="ksc"}``: the first 9 days of the bundled NASA-HTTP
      requests per 5 minutes (``forecaster.datasets.load_nasa_5min``) as a request counter.
    * Bitbrains VMs 1, 4, 7 of ``tests/fixtures/usage_small.csv`` (15-minute buckets, each with one real
      30-minute gap) as containers ``<namespace>/<vm>/main`` (vm001 and vm004 in ``rnd``, vm007 in
      ``batch``) through ``container_families``, with one OOM kill of vm001 in the bucket of its memory peak.
    """
    from forecaster.datasets import load_nasa_5min

    nasa = load_nasa_5min()
    nasa = nasa.loc[nasa["ds"] < nasa["ds"].iloc[0] + pd.Timedelta(days=NASA_DAYS), ["unique_id", "ds", "y"]]
    usage = pd.read_csv(FIXTURES / "usage_small.csv")
    usage["ds"] = pd.to_datetime(usage["ds"], utc=True).dt.as_unit("ns")
    usage["pod"] = usage["unique_id"]
    usage["container"] = "main"
    usage["namespace"] = usage["pod"].map(NAMESPACE_OF)
    usage["unique_id"] = usage["namespace"] + "/" + usage["pod"] + "/main"
    vm1 = usage.loc[usage["pod"] == "vm001"]
    ooms = pd.DataFrame({"unique_id": [vm1["unique_id"].iloc[0]], "ds": [vm1.loc[vm1["memory"].idxmax(), "ds"]]})
    families = (demand_family(nasa, "http_requests_total", NASA_LABELS, NASA_BUCKET, initial=NASA_INITIAL),
                *container_families(usage, USAGE_BUCKET, ooms, initial_cpu_s=INITIAL_CPU_S))
    return PromData(nasa.reset_index(drop=True), usage, ooms, families)
