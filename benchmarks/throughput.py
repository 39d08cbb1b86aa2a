"""Throughput benchmark: fit and refresh time and peak memory for many series, against statsforecast.

The series (``build_series``): ``--n-series`` (default 1,000) windows of 14 days + 1 hour at 5 minutes cut
from real traces, so every shape is real: 60 % Bitbrains VM CPU (random VM and start), 20 % NASA requests
and 20 % Azure CPU (random start, i.e. time-shifted, times a log-normal scale factor so the level varies).
Outages and gaps are first imputed by ``forecasting.history.prepare_history``'s rule. All windows are re-timed
onto one calendar starting 2024-01-01 00:00 UTC. Seeded, so every run uses the same series.

Measured, each in a fresh child process (``--repeats`` times, median reported):

- forecaster: ``Forecaster(freq="5min", levels=(80, 95), horizon=288, n_jobs=-1).fit(history)`` on the 14
  days; then three refreshes, each ``fc.update(4 new observations)`` + ``fc.predict(288)`` (no refit),
  median reported;
- statsforecast (``sf_worker.py`` in ``benchmarks/.venv-statsforecast``, created on first use with
  ``python -m venv`` + ``pip install "statsforecast==2.*" "pandas<3"``): MSTL + AutoETS, season 288;
- peak memory: the child's own peak RSS (``VmHWM``, which unlike ``ru_maxrss`` is not inherited from the
  parent across ``exec``), and separately ``ru_maxrss`` of its own worker processes.

Writes ``results/throughput.json`` and ``.md``. Usage::

    python benchmarks/throughput.py [--traces DIR] [--n-series 1000] [--repeats 3] [--skip-statsforecast]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import numpy as np
import pandas as pd
import traces
from common import load_forecaster, md_table, progress, run_meta, write_results

from forecaster.forecasting.history import prepare_history

FREQ = "5min"
FIT_STEPS = 14 * 288
NEW_STEPS = 12
H = 288
REFRESHES = 3
START = pd.Timestamp("2024-01-01", tz="UTC")
VENV = common.HERE / ".venv-statsforecast"
SF_REQUIREMENTS = ("statsforecast==2.*", "pandas<3")


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
        ids.append(f"bb-{i:04d}-{vm}")
    for name, n in (("nasa", n_nasa), ("azure", n_azure)):
        clean, _ = prepare_history(traces.LOADERS[name](root).frame, FREQ)
        y = clean["y"].to_numpy()
        for i, w in enumerate(_windows(y, n, length, rng)):
            rows.append(w * float(rng.lognormal(0.0, 1.0)))
            ids.append(f"{name}-{i:04d}")
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


def forecaster_worker(data: Path) -> dict[str, Any]:
    """Child-process body: time fit, then update + predict; report the child's peak RSS."""
    forecaster_cls, why = load_forecaster()
    if forecaster_cls is None:
        return {"error": why}
    npz = np.load(data, allow_pickle=False)
    values, ids = npz["values"], npz["ids"].astype(str)
    history = long_frame(values, ids, 0, FIT_STEPS)
    new = long_frame(values, ids, FIT_STEPS, values.shape[1])
    out: dict[str, Any] = {"n_series": len(ids)}
    fc = forecaster_cls(freq=FREQ, levels=(80, 95), horizon=H, n_jobs=-1)
    t0 = time.perf_counter()
    fc.fit(history)
    out["fit_s"] = time.perf_counter() - t0
    # three refreshes of 4 new observations each (the hour after the fit), each update + predict(288)
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
    return out


def _run_child(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def ensure_venv(log: Path) -> Path | str:
    """Python of the statsforecast venv, creating it on first use; a string says why it failed."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import statsforecast, pandas; assert pandas.__version__ < '3'"]
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
    for key in ("fit_s", "refresh_s", "maxrss_mb", "maxrss_children_mb", "wall_s"):
        vals = [r[key] for r in ok if key in r]
        if vals:
            out[f"median_{key}"] = statistics.median(vals)
    for key in ("fit", "refresh"):
        secs = out.get(f"median_{key}_s")
        out[f"{key}_series_per_min"] = n_series / secs * 60 if secs else None
    return out


def to_markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    rows = []
    for name in ("forecaster", "statsforecast"):
        r = result.get(name, {})
        rows.append({"engine": name, "fit s": r.get("median_fit_s"), "refresh s": r.get("median_refresh_s"),
                     "fit series/min": r.get("fit_series_per_min"),
                     "refresh series/min": r.get("refresh_series_per_min"),
                     "peak RSS MB": r.get("median_maxrss_mb"),
                     "workers' peak RSS MB": r.get("median_maxrss_children_mb"),
                     "runs": r.get("ok_runs"), "note": (r.get("error") or "")[:100]})
    ratio = result.get("fit_ratio_forecaster_over_statsforecast")
    return (f"# Throughput benchmark\n\n`{meta['command']}` at {meta['started_utc']} (commit "
            f"{meta['git_commit']}, {meta['cpus']} CPUs)\n\n{result['n_series']} series x 14 days at 5 min "
            f"({result['sources']}); medians of {result['repeats']} runs, each in a fresh process.\n\n"
            + md_table(rows, list(rows[0]))
            + f"\nfit time ratio forecaster / statsforecast: {common.fmt(ratio)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Throughput benchmark (see the module docstring).")
    parser.add_argument("--traces", type=Path, default=traces.DEFAULT_TRACES)
    parser.add_argument("--n-series", type=int, default=None, help="default 1000 (20 with --quick)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 series (or --n-series), 1 repeat")
    parser.add_argument("--skip-statsforecast", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child process, seconds")
    parser.add_argument("--worker", choices=["forecaster"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(forecaster_worker(args.data)))
        return
    n_series = args.n_series or (20 if args.quick else 1000)
    repeats = 1 if args.quick else args.repeats
    meta = run_meta()
    result: dict[str, Any] = {"meta": meta, "n_series": n_series, "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp, progress() as bar:
        task = bar.add_task("building series", total=1 + repeats * (1 if args.skip_statsforecast else 2))
        values, ids, counts = build_series(args.traces, n_series)
        result["sources"] = ", ".join(f"{k} {v}" for k, v in counts.items())
        data = Path(tmp) / "series.npz"
        save(data, values, ids)
        bar.advance(task)
        runs = []
        for i in range(repeats):
            bar.update(task, description=f"forecaster run {i + 1}/{repeats}")
            me = str(Path(__file__).resolve())
            cmd = [sys.executable, me, "--worker", "forecaster", "--data", str(data)]
            runs.append(_run_child(cmd, args.timeout))
            bar.advance(task)
        result["forecaster"] = summarise(runs, n_series)
        if not args.skip_statsforecast:
            bar.update(task, description="statsforecast venv")
            python = ensure_venv(common.HERE / ".venv-statsforecast.log")
            sf_runs = []
            for i in range(repeats):
                bar.update(task, description=f"statsforecast run {i + 1}/{repeats}")
                if isinstance(python, str):
                    sf_runs.append({"error": python})
                else:
                    cmd = [str(python), str(common.HERE / "sf_worker.py"), "--data", str(data)]
                    sf_runs.append(_run_child(cmd, args.timeout))
                bar.advance(task)
            result["statsforecast"] = summarise(sf_runs, n_series)
    f, s = result.get("forecaster", {}), result.get("statsforecast", {})
    if f.get("median_fit_s") and s.get("median_fit_s"):
        result["fit_ratio_forecaster_over_statsforecast"] = f["median_fit_s"] / s["median_fit_s"]
    markdown = to_markdown(result)
    json_path, md_path = write_results("throughput", result, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
