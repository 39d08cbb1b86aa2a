"""Throughput benchmark (issue 21): fit and refresh of a fleet on the local pool and on Dask, against statsforecast.

The series (``build_series``): ``--n-series`` windows of 14 days + 1 hour at 5 minutes cut from the real traces in
``../shared/traces``, so every shape is real: 60 % Bitbrains VM CPU (a random VM, a random start: *shifted*),
20 % NASA requests and 20 % Azure CPU (a random start, times a log-normal factor ``exp(N(0, 1))``: *shifted and
scaled*, so levels vary over two orders of magnitude). Outages and gaps are first imputed by
``prepare_history``'s rule; every window is re-timed onto one calendar starting 2024-01-01 00:00 UTC. Seeded.

Runs, each in a fresh child process (``--repeats`` times, median reported), all in the same run:

- ``pool``: ``Forecaster(freq="5min", levels=(80, 95), horizon=288, n_jobs=2).fit(history)`` on the 14 days,
  then three refreshes, each ``fc.update(4 new observations)`` + ``fc.predict(288)`` (no refit), median reported;
- ``dask2`` / ``dask1``: the same with ``executor=DaskExecutor(n_workers=2 | 1)`` (a ``LocalCluster`` of worker
  processes, one thread each), plus Dask's task stream (compute seconds per kind of task) and every worker's peak
  RSS (``VmHWM``);
- ``statsforecast`` (``sf_worker.py`` in ``benchmarks/.venv-statsforecast``, created on first use with the pins
  of ``SF_REQUIREMENTS``: statsforecast 2.1 needs pandas < 3, so it cannot share the project's environment; the
  ``[bench-statsforecast]`` extra in pyproject.toml names the same pin): MSTL + AutoETS, season 288, ``n_jobs=2``;
  its refresh (``forward`` per series, one process) on the first ``--sf-refresh-series`` series only when given
  (at 1,000 series all of them would take most of an hour), reported per series;
- ``lgbm`` (``--lgbm``): the global LightGBM member trained as the engine does (rows sampled from at most 2,000
  series gathered in one process), against ``lightgbm.DaskLGBMRegressor`` on the same rows and parameters split
  over the 2 workers (needs the ``[bench]`` extra: scikit-learn); time, and how far apart their predictions are.

Every executor call of a fit is timed (``TimedExecutor``), so a fit splits into its phases; with the task stream
that gives the projection to ``W`` workers (``project``)::

    T(W) = S + sum_p max(C_p / W, m_p) + o * n

``S`` the client's own serial time (fit minus its executor calls: the final lgbm fit, weights, calibration),
``C_p`` the compute seconds of phase ``p``'s tasks, ``m_p`` its longest task, ``n`` the tasks and ``o`` the
scheduler overhead per task, ``o = sum_p (wall_p - max(C_p / 2, m_p)) / n`` from the 2-worker run.

Every child records the 1-minute load average before and after it (``load_1min_before`` / ``_after``). Peak memory:
the child's own ``VmHWM`` (not inherited across ``exec``), ``ru_maxrss`` of its pool processes, and
each Dask worker's ``VmHWM``. ``--chunk-series`` sets the engine's chunk size (``EngineConfig.chunk_series``).

Writes ``results/throughput.json`` and ``.md`` (``--refresh-only``: ``throughput_refresh.*``; ``--single`` without
fleet runs (``--runs ""``): ``throughput_single.*``). Usage::

    python benchmarks/throughput.py [--traces DIR] [--n-series 1000] [--repeats 1] [--runs pool,dask2,dask1]
                                    [--chunk-series 500] [--lgbm] [--single] [--skip-statsforecast]
                                    [--sf-refresh-series N]
                                    [--refresh-only [--artefact-dir DIR] [--predict-threads N]]

``--single``: ``fit`` of one 35-day 5-minute series (the NASA trace's first 35 days), ``n_jobs=2``, the default
model, timed in its own child process (issue 21: <= 20 s); ``--repeats`` times, median reported, with the load
average (``os.getloadavg``) before each run.

``--refresh-only``: only the refresh of ``--n-series`` series (issue 21: 10,000 in <= 60 s), in a child process:
the fleet is fitted once with one calibration window (``n_windows=1, min_windows=1``: learned weights and per-series
calibration, so the refresh does all it does after a full fit; its cost does not depend on how many windows taught
them) on the local pool, saved under ``--artefact-dir`` (reused by later runs with the same series and commit of the
engine's fitted state), then ``REFRESHES`` refreshes timed (``fc.update`` of 4 new observations per series +
``fc.predict(288)``), wall and CPU seconds, median reported, ``--predict-threads`` (default 1) passed as
``Forecaster.predict_threads`` (LightGBM's threads in ``predict``) when the engine has it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import common
import numpy as np
import pandas as pd
import traces
from common import load_forecaster, progress, run_meta, write_results
from throughput_report import RUNS, SINGLE_DAYS, H, to_markdown

from forecaster.forecasting.history import prepare_history

FREQ = "5min"
FIT_STEPS = 14 * 288
NEW_STEPS = 12
REFRESHES = 3
START = pd.Timestamp("2024-01-01", tz="UTC")
VENV = common.HERE / ".venv-statsforecast"
SF_REQUIREMENTS = (
    "statsforecast==2.1.1", "pandas==2.3.3", "numpy==2.4.6", "scipy==1.17.1", "statsmodels==0.15.0",
    "coreforecast==0.0.20", "utilsforecast==0.2.17", "fugue==0.9.7", "triad==1.0.4", "pyarrow==26.0.1",
)
"""The statsforecast venv's pins (its own ``pip freeze`` at the measured run; the rest resolve from these)."""


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB. Unlike ``ru_maxrss`` it is reset by ``exec``,
    so a child does not inherit its parent's peak; falls back to ``ru_maxrss`` off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _windows(values: np.ndarray, n: int, length: int, rng: np.random.Generator) -> list[np.ndarray]:
    starts = rng.integers(0, len(values) - length + 1, size=n)
    return [values[s : s + length] for s in starts]


def build_series(root: Path, n_series: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``(values[n_series, FIT_STEPS + NEW_STEPS], ids, counts per source)``; see the module docstring."""
    rng = np.random.default_rng(seed)
    length = FIT_STEPS + NEW_STEPS
    n_bb = round(0.6 * n_series)
    n_nasa = round(0.2 * n_series)
    n_azure = n_series - n_bb - n_nasa
    rows: list[np.ndarray] = []
    ids: list[str] = []

    raw = traces.bitbrains_raw(root)
    vms = traces.bitbrains_complete_vms(raw)
    bb, _ = prepare_history(traces.bitbrains_frame(raw, vms), FREQ)
    per_vm = {uid: g["y"].to_numpy() for uid, g in bb.groupby("unique_id")}
    names = sorted(per_vm)
    for i, vm in enumerate(rng.choice(names, size=n_bb)):
        rows += _windows(per_vm[vm], 1, length, rng)
        ids.append(f"bb-{i:05d}-{vm}")
    for name, n in (("nasa", n_nasa), ("azure", n_azure)):
        clean, _ = prepare_history(traces.LOADERS[name](root).frame, FREQ)
        y = clean["y"].to_numpy()
        for i, w in enumerate(_windows(y, n, length, rng)):
            rows.append(w * float(rng.lognormal(0.0, 1.0)))
            ids.append(f"{name}-{i:05d}")
    return np.vstack(rows), np.array(ids), {"bitbrains": n_bb, "nasa": n_nasa, "azure": n_azure}


def save(path: Path, values: np.ndarray, ids: np.ndarray) -> None:
    """The series file both workers read (numpy only, no pickles)."""
    np.savez(path, values=values, ids=ids.astype("U"), fit_steps=FIT_STEPS, h=H, freq=FREQ,
             start_ns=START.value)


def long_frame(values: np.ndarray, ids: np.ndarray, first: int, last: int) -> pd.DataFrame:
    """Columns ``first:last`` of the matrix as the long frame (UTC ``ds``)."""
    ds = pd.date_range(START, periods=values.shape[1], freq=FREQ)[first:last]
    n = values.shape[0]
    return pd.DataFrame({"unique_id": np.repeat(ids, last - first), "ds": np.tile(ds, n),
                         "y": values[:, first:last].ravel()})


class TimedExecutor:
    """Wraps an executor; records each call's function, task count and wall seconds (the fit's phases)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, []
        self.n_workers = getattr(inner, "n_workers", 1)

    def _timed(self, kind: str, fn: Callable[..., Any], n: int, run: Callable[[], list[Any]]) -> list[Any]:
        t0 = time.perf_counter()
        out = run()
        name = getattr(getattr(fn, "func", fn), "__name__", "?").lstrip("_")  # a functools.partial's function
        self.calls.append({"call": kind, "fn": name, "tasks": n, "wall_s": time.perf_counter() - t0})
        return out

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return self._timed("map", fn, len(items), lambda: self.inner.map(fn, items))

    def map_tasks(self, fn: Callable[..., Any], tasks: Sequence[Any], progress: Any = None) -> list[Any]:
        return self._timed("map_tasks", fn, len(tasks), lambda: self.inner.map_tasks(fn, tasks, progress))


def _set_chunk_series(n: int | None) -> None:
    """Give every fit ``EngineConfig.chunk_series = n`` (the engine's default otherwise)."""
    if not n:
        return
    import dataclasses

    from forecaster.forecasting import forecaster as engine

    base = engine.engine_config
    engine.engine_config = lambda fc, h: dataclasses.replace(base(fc, h), chunk_series=n)  # type: ignore[assignment]


def _task_stream(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Compute seconds per kind of task (the key's prefix) from Dask's task stream: count, total, max."""
    out: dict[str, dict[str, float]] = {}
    for rec in records:
        kind = str(rec.get("key", "?")).strip("('\"").split("-", 1)[0].lstrip("_")  # name-uuid: the work's name
        secs = sum(s["stop"] - s["start"] for s in rec.get("startstops", ()) if s.get("action") == "compute")
        row = out.setdefault(kind, {"tasks": 0, "compute_s": 0.0, "max_s": 0.0})
        row["tasks"] += 1
        row["compute_s"] += secs
        row["max_s"] = max(row["max_s"], secs)
    return out


def forecaster_worker(data: Path, run: str, chunk_series: int | None) -> dict[str, Any]:
    """Child-process body: time the fit (phases and task stream on Dask) and the refreshes; peak memory."""
    forecaster_cls, why = load_forecaster()
    if forecaster_cls is None:
        return {"error": why}
    _set_chunk_series(chunk_series)
    npz = np.load(data, allow_pickle=False)
    values, ids = npz["values"], npz["ids"].astype(str)
    history = long_frame(values, ids, 0, FIT_STEPS)
    new = long_frame(values, ids, FIT_STEPS, values.shape[1])
    out: dict[str, Any] = {"n_series": len(ids), "run": run}
    dask_ex = None
    if run.startswith("dask"):
        from forecaster.adapters.dask import DaskExecutor

        dask_ex = DaskExecutor(n_workers=int(run[4:]))
        dask_ex.client.wait_for_workers(int(run[4:]), timeout=300)
        inner: Any = dask_ex
    else:
        from forecaster.forecasting.executor import ProcessExecutor

        inner = ProcessExecutor(2)
    timed = TimedExecutor(inner)
    fc = forecaster_cls(freq=FREQ, levels=(80, 95), horizon=H, executor=timed)
    t0 = time.perf_counter()
    if dask_ex is not None:
        from dask.distributed import get_task_stream

        with get_task_stream(dask_ex.client) as stream:
            fc.fit(history)
        out["task_stream"] = _task_stream(stream.data)
        out["worker_peak_rss_mb"] = dask_ex.worker_peak_rss_mb()
    else:
        fc.fit(history)
    out["fit_s"] = time.perf_counter() - t0
    out["phases"] = timed.calls
    out["serial_s"] = out["fit_s"] - sum(c["wall_s"] for c in timed.calls)
    refreshes = []
    new_ds = np.sort(new["ds"].unique())
    for part in np.array_split(new_ds, REFRESHES):
        t0 = time.perf_counter()
        fc.update(new[new["ds"].isin(part)])
        pred = fc.predict(H)
        refreshes.append(time.perf_counter() - t0)
    out["refresh_s"] = statistics.median(refreshes)
    out["refresh_runs_s"] = refreshes
    out["predict_rows"] = len(pred)
    out["maxrss_mb"] = peak_rss_mb()
    out["maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if dask_ex is not None:
        dask_ex.close()
    return out


def refresh_worker(data: Path, artefact_dir: Path, predict_threads: int) -> dict[str, Any]:
    """Child-process body of ``--refresh-only`` (module docstring)."""
    import os

    forecaster_cls, why = load_forecaster()
    if forecaster_cls is None:
        return {"error": why}
    npz = np.load(data, allow_pickle=False)
    values, ids = npz["values"], npz["ids"].astype(str)
    new = long_frame(values, ids, FIT_STEPS, values.shape[1])
    out: dict[str, Any] = {"n_series": len(ids), "run": "refresh"}
    artefact_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(values.tobytes() + ids.astype("U").tobytes()).hexdigest()[:12]
    path = artefact_dir / f"refresh_{len(ids)}_{digest}.zip"
    if path.exists():
        fc = forecaster_cls.load(path)
        out["fit_s"] = None
        out["artefact"] = str(path)
    else:
        history = long_frame(values, ids, 0, FIT_STEPS)
        fc = forecaster_cls(freq=FREQ, levels=(80, 95), horizon=H, n_jobs=2, n_windows=1, min_windows=1)
        t0 = time.perf_counter()
        fc.fit(history)
        out["fit_s"] = time.perf_counter() - t0
        fc.save(path)
        out["artefact"] = str(path)
    fc.predict_threads = predict_threads  # an artefact saved before the option: set here, read by predict
    out["predict_threads"] = predict_threads
    walls, cpus, loads = [], [], []
    new_ds = np.sort(new["ds"].unique())
    for part in np.array_split(new_ds, REFRESHES):
        loads.append(os.getloadavg()[0])
        c0 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        t0 = time.perf_counter()
        fc.update(new[new["ds"].isin(part)])
        pred = fc.predict(H)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - c0)
    out.update(refresh_s=statistics.median(walls), refresh_runs_s=walls, refresh_cpu_s=statistics.median(cpus),
               refresh_cpu_runs_s=cpus, load_1min=loads, predict_rows=len(pred),
               ms_per_series=1000 * statistics.median(walls) / len(ids), maxrss_mb=peak_rss_mb())
    return out




def single_worker(root: Path) -> dict[str, Any]:
    """Child-process body of ``--single``: ``fit`` of one real series, the NASA trace's first ``SINGLE_DAYS`` days at
    5 minutes (outages imputed as in ``build_series``), ``n_jobs=2``, the default model; then one predict."""
    forecaster_cls, why = load_forecaster()
    if forecaster_cls is None:
        return {"error": why}
    clean, _ = prepare_history(traces.LOADERS["nasa"](root).frame, FREQ)
    first = clean["ds"].min()
    history = clean.loc[clean["ds"] < first + pd.Timedelta(days=SINGLE_DAYS), ["unique_id", "ds", "y"]]
    import os

    fc = forecaster_cls(freq=FREQ, levels=(80, 95), horizon=H, n_jobs=2)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    fc.fit(history)
    fit_s = time.perf_counter() - t0
    cpu_s = time.process_time() - c0 + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    t0 = time.perf_counter()
    fc.predict(H)
    return {"days": SINGLE_DAYS, "points": len(history), "fit_s": fit_s, "predict_s": time.perf_counter() - t0,
            "fit_cpu_s": cpu_s, "load_1min": load, "maxrss_mb": peak_rss_mb()}


def lgbm_worker(data: Path) -> dict[str, Any]:
    """The global lgbm member's training as the engine does it, against ``lightgbm.DaskLGBMRegressor`` on the
    same rows (captured from the engine's own ``lgb.train`` call) on a 2-worker LocalCluster."""
    import lightgbm as lgb

    import forecaster.models.lgbm as lgbm_module
    from forecaster.adapters.dask import DaskExecutor
    from forecaster.forecasting.history import prepare_history as prep
    from forecaster.models.base import FitData

    npz = np.load(data, allow_pickle=False)
    history, _ = prep(long_frame(npz["values"], npz["ids"].astype(str), 0, FIT_STEPS), FREQ)
    seen: list[dict[str, Any]] = []
    real_train = lgbm_module.lgb.train

    def spy(params: dict[str, Any], train_set: Any, num_boost_round: int = 100, **kw: Any) -> Any:
        seen.append({"params": dict(params), "set": train_set, "rounds": num_boost_round})
        return real_train(params, train_set, num_boost_round, **kw)

    lgbm_module.lgb.train = spy  # type: ignore[assignment]
    t0 = time.perf_counter()
    member = lgbm_module.LGBMMember().fit(FitData(history, FREQ, (80, 95), H, seed=0))
    out: dict[str, Any] = {"gathered_fit_s": time.perf_counter() - t0, "rows": member.n_train_rows_,
                           "rounds": member.best_iteration_, "gathered_peak_rss_mb": peak_rss_mb()}
    lgbm_module.lgb.train = real_train  # type: ignore[assignment]
    final = seen[-1]
    dataset = final["set"]
    X, y = np.asarray(dataset.get_data(), dtype=np.float32), np.asarray(dataset.get_label(), dtype=np.float32)
    params = {k: v for k, v in final["params"].items() if k not in {"num_threads", "metric", "verbose"}}
    t0 = time.perf_counter()
    booster = lgb.train({**final["params"]}, lgb.Dataset(X, y, params=final["params"]), final["rounds"])
    out["refit_only_s"] = time.perf_counter() - t0
    import dask.array as da

    with DaskExecutor(n_workers=2) as ex:
        ex.client.wait_for_workers(2, timeout=300)
        dx = da.from_array(X, chunks=(len(X) // 2 + 1, X.shape[1]))
        dy = da.from_array(y, chunks=(len(y) // 2 + 1,))
        dx, dy = ex.client.persist([dx, dy])
        t0 = time.perf_counter()
        model = lgb.DaskLGBMRegressor(client=ex.client, n_estimators=final["rounds"], num_threads=1, **params)
        model.fit(dx, dy)
        out["dask_fit_s"] = time.perf_counter() - t0
        out["dask_worker_peak_rss_mb"] = ex.worker_peak_rss_mb()
        local = model.to_local()
    a, b = booster.predict(X[:50_000]), local.predict(X[:50_000])
    out["prediction_mad"] = float(np.mean(np.abs(a - b)))
    out["target_mad"] = float(np.mean(np.abs(y[:50_000] - np.median(y))))
    return out


def _run_child(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    import os

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update(wall_s=wall, load_1min_before=load, load_1min_after=os.getloadavg()[0])
    return result


def ensure_venv(log: Path) -> Path | str:
    """Python of the statsforecast venv, creating it on first use; a string says why it failed."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import statsforecast, pandas; assert statsforecast.__version__ == '2.1.1'"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    with log.open("w") as fh:
        steps = [[sys.executable, "-m", "venv", str(VENV)],
                 [str(python), "-m", "pip", "install", "--quiet", *SF_REQUIREMENTS]]
        for step in steps:
            if subprocess.run(step, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode != 0:
                return f"venv setup failed at {' '.join(step[:4])}; see {log}"
    return python


def summarise(runs: list[dict[str, Any]], n_series: int) -> dict[str, Any]:
    """Medians over the successful runs, and workloads per minute for fit and refresh."""
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": runs, "ok_runs": len(ok)}
    if not ok:
        out["error"] = runs[-1].get("error") if runs else "not run"
        return out
    for key in ("fit_s", "refresh_s", "serial_s", "maxrss_mb", "maxrss_children_mb", "wall_s", "load_1min_before",
                "load_1min_after"):
        vals = [r[key] for r in ok if key in r]
        if vals:
            out[f"median_{key}"] = statistics.median(vals)
    peaks = [max(r["worker_peak_rss_mb"].values()) for r in ok if r.get("worker_peak_rss_mb")]
    if peaks:
        out["median_worker_peak_rss_mb"] = statistics.median(peaks)
    for key in ("fit", "refresh"):
        secs = out.get(f"median_{key}_s")
        out[f"{key}_series_per_min"] = n_series / secs * 60 if secs else None
    return out


def project(run: dict[str, Any], workers: Sequence[int], scale: float = 1.0) -> dict[str, Any]:
    """``T(W) = S + sum_p max(C_p / W, m_p) + o * n`` (module docstring) from one 2-worker Dask run.

    ``scale`` multiplies the per-series work (``C_p``, ``n``, ``S``) for a fleet ``scale`` times larger: an upper
    bound, as the lgbm tasks and the final lgbm fit in ``S`` do not grow with the fleet."""
    stream, phases = run["task_stream"], run["phases"]
    kinds = [k for k in stream if k != "keep"]
    n = sum(stream[k]["tasks"] for k in kinds)
    busy = sum(max(stream[k]["compute_s"] / 2, stream[k]["max_s"]) for k in kinds)
    overhead = max(0.0, (sum(p["wall_s"] for p in phases) - busy) / max(n, 1))
    out = {"S_s": run["serial_s"], "o_s_per_task": overhead, "tasks": n,
           "C_s": {k: stream[k]["compute_s"] for k in kinds}, "m_s": {k: stream[k]["max_s"] for k in kinds}}
    for w in workers:
        out[f"T_{w}_s"] = (scale * run["serial_s"] + sum(max(scale * stream[k]["compute_s"] / w, stream[k]["max_s"])
                                                          for k in kinds) + overhead * n * scale)
    return out


def _child(args: argparse.Namespace, data: Path, run: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", run, "--data", str(data)]
    return cmd + (["--chunk-series", str(args.chunk_series)] if args.chunk_series else [])


def _save_partial(result: dict[str, Any]) -> None:
    """Keep what is measured so far in ``results/throughput.partial.json``: a long run (10,000 series takes hours)
    that is stopped later still leaves its finished children's figures."""
    common.RESULTS.mkdir(exist_ok=True)
    path = common.RESULTS / "throughput.partial.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(common.clean_json(result), indent=2, default=str) + "\n")
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Throughput benchmark (see the module docstring).")
    parser.add_argument("--traces", type=Path, default=traces.DEFAULT_TRACES)
    parser.add_argument("--n-series", type=int, default=None, help="default 1000 (20 with --quick)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {','.join(RUNS)}")
    parser.add_argument("--chunk-series", type=int, default=None, help="series per work unit (engine default 500)")
    parser.add_argument("--lgbm", action="store_true", help="also time the lgbm member gathered vs DaskLGBMRegressor")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 series (or --n-series), 1 repeat")
    parser.add_argument("--skip-statsforecast", action="store_true")
    parser.add_argument("--sf-refresh-series", type=int, default=None,
                        help="time statsforecast's refresh (forward) on the first N series only (default all)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="per child process, seconds")
    parser.add_argument("--single", action="store_true",
                        help=f"also time fit of one {SINGLE_DAYS}-day 5-minute series (NASA), n_jobs=2")
    parser.add_argument("--refresh-only", action="store_true",
                        help="only time the refresh of --n-series series (fit once, artefact kept in --artefact-dir)")
    parser.add_argument("--artefact-dir", type=Path, default=Path(tempfile.gettempdir()) / "forecaster-throughput",
                        help="where --refresh-only keeps the fitted fleet between runs")
    parser.add_argument("--predict-threads", type=int, default=1,
                        help="Forecaster.predict_threads (LightGBM threads in predict) for --refresh-only")
    parser.add_argument("--worker", choices=[*RUNS, "lgbm", "single", "refresh"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "single":
            body = single_worker(args.traces)
        elif args.worker == "refresh":
            body = refresh_worker(args.data, args.artefact_dir, args.predict_threads)
        else:
            body = lgbm_worker(args.data) if args.worker == "lgbm" else forecaster_worker(
                args.data, args.worker, args.chunk_series)
        print(json.dumps(common.clean_json(body), default=str))
        return
    n_series = args.n_series or (20 if args.quick else 1000)
    repeats = 1 if args.quick else args.repeats
    runs = [r for r in args.runs.split(",") if r] if not args.refresh_only else []
    if args.refresh_only:
        args.skip_statsforecast = True
    result: dict[str, Any] = {"meta": run_meta(), "n_series": n_series, "repeats": repeats,
                              "chunk_series": args.chunk_series}
    with tempfile.TemporaryDirectory() as tmp, progress() as bar:
        total = (1 + repeats * (len(runs) + (0 if args.skip_statsforecast else 1)) + int(args.lgbm)
                 + repeats * int(args.single) + int(args.refresh_only))
        task = bar.add_task("building series", total=total)
        values, ids, counts = build_series(args.traces, n_series)
        result["sources"] = ", ".join(f"{k} {v}" for k, v in counts.items())
        data = Path(tmp) / "series.npz"
        save(data, values, ids)
        bar.advance(task)
        for run in runs:
            out = []
            for i in range(repeats):
                bar.update(task, description=f"forecaster {run} {i + 1}/{repeats}")
                out.append(_run_child(_child(args, data, run), args.timeout))
                bar.advance(task)
            result[run] = summarise(out, n_series)
            _save_partial(result)
        if not args.skip_statsforecast:
            python = ensure_venv(common.HERE / ".venv-statsforecast.log")
            sf_runs = []
            for i in range(repeats):
                bar.update(task, description=f"statsforecast {i + 1}/{repeats}")
                cmd = [str(python), str(common.HERE / "sf_worker.py"), "--data", str(data), "--n-jobs", "2"]
                cmd += ["--refresh-series", str(args.sf_refresh_series)] if args.sf_refresh_series else []
                sf_runs.append({"error": python} if isinstance(python, str) else _run_child(cmd, args.timeout))
                bar.advance(task)
            result["statsforecast"] = summarise(sf_runs, n_series)
            _save_partial(result)
        if args.refresh_only:
            bar.update(task, description=f"refresh of {n_series} series")
            cmd = [*_child(args, data, "refresh"), "--artefact-dir", str(args.artefact_dir),
                   "--predict-threads", str(args.predict_threads)]
            result["refresh"] = _run_child(cmd, args.timeout)
            bar.advance(task)
        if args.single:
            singles = []
            for i in range(repeats):
                bar.update(task, description=f"one {SINGLE_DAYS}-day series {i + 1}/{repeats}")
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "single",
                       "--traces", str(args.traces)]
                singles.append(_run_child(cmd, args.timeout))
                bar.advance(task)
            ok = [r for r in singles if "error" not in r]
            result["single"] = ({**ok[0], "fit_s": statistics.median(r["fit_s"] for r in ok), "runs": singles}
                                if ok else singles[-1])
        if args.lgbm:
            bar.update(task, description="lgbm gathered vs Dask")
            result["lgbm"] = _run_child(_child(args, data, "lgbm"), args.timeout)
            bar.advance(task)
    sf = result.get("statsforecast", {}).get("median_fit_s")
    for run, key in (("pool", "ratio_pool"), ("dask2", "ratio_dask2")):
        fit = result.get(run, {}).get("median_fit_s")
        if fit and sf:
            result[key] = fit / sf
    dask2 = [r for r in result.get("dask2", {}).get("runs", []) if "task_stream" in r]
    if dask2:
        result["projection"] = project(dask2[0], (1, 2, 4, 8, 16, 32))
        result["projection_10k"] = project(dask2[0], (1, 2, 4, 8, 16, 32), scale=10_000 / n_series)
    markdown = to_markdown(result)
    # a refresh-only or single-series-only run does not overwrite the fleet run's results
    name = "throughput" + ("_refresh" if args.refresh_only else "") + ("_single" if args.single and not runs else "")
    json_path, md_path = write_results(name, result, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
