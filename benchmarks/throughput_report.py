"""The markdown of ``throughput.py``'s results (its module docstring says what each figure is)."""

from __future__ import annotations

from typing import Any

import common
from common import md_table

RUNS = ("pool", "dask2", "dask1")
"""The engine runs ``throughput.py`` knows, in the table's order."""
H = 288
"""Forecast steps of the refresh (``throughput.H``)."""
SINGLE_DAYS = 35


def _loads(r: dict[str, Any]) -> str:
    """The runs' 1-minute load averages before / after, e.g. ``1.2 / 2.9``."""
    runs = [x for x in r.get("runs", []) if "load_1min_before" in x]
    return ", ".join(f"{common.fmt(x['load_1min_before'])} / {common.fmt(x['load_1min_after'])}" for x in runs)


def _partial(r: dict[str, Any], n_series: int) -> str:
    """A note when statsforecast's refresh ran on fewer series than the fit (``--sf-refresh-series``)."""
    done = [x.get("refresh_series") for x in r.get("runs", []) if x.get("refresh_series")]
    if done and done[0] < n_series:
        return f"refresh s: forward of the first {done[0]} series only ({n_series} fitted)"
    return ""


def to_markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    rows = []
    for name in (*RUNS, "statsforecast"):
        r = result.get(name)
        if not r:
            continue
        rows.append({"engine": name, "fit s": r.get("median_fit_s"), "refresh s": r.get("median_refresh_s"),
                     "client serial s": r.get("median_serial_s"),
                     "fit series/min": r.get("fit_series_per_min"),
                     "refresh series/min": r.get("refresh_series_per_min"),
                     "peak RSS MB": r.get("median_maxrss_mb"),
                     "pool/worker peak RSS MB": r.get("median_worker_peak_rss_mb", r.get("median_maxrss_children_mb")),
                     "load 1 min before / after": _loads(r),
                     "runs": r.get("ok_runs"), "note": (r.get("error") or _partial(r, result["n_series"]))[:100]})
    text = (f"# Throughput benchmark\n\n`{meta['command']}` at {meta['started_utc']} (commit "
            f"{meta['git_commit']}, {meta['cpus']} CPUs)\n\n{result['n_series']} series x 14 days at 5 min "
            f"({result['sources']}); chunk {result.get('chunk_series') or 'default'} series; medians of "
            f"{result['repeats']} runs, each in a fresh process.\n\n" + (md_table(rows, list(rows[0])) if rows else ""))
    for key, label in (("ratio_pool", "local pool"), ("ratio_dask2", "2-worker Dask")):
        if result.get(key) is not None:
            text += f"\nfit time ratio forecaster ({label}) / statsforecast: {common.fmt(result[key])}"
    for name in RUNS:
        runs = [r for r in (result.get(name) or {}).get("runs", []) if r.get("phases")]
        if runs:
            text += f"\n\nPhases of the {name} fit (executor calls, wall s; the first run):\n\n" + md_table(
                [*({"call": f"{p['call']} {p['fn']}", "tasks": p["tasks"], "wall s": p["wall_s"]} for p in
                   runs[0]["phases"]), {"call": "client (the rest)", "tasks": "", "wall s": runs[0].get("serial_s")}],
                ["call", "tasks", "wall s"])
    proj = result.get("projection")
    if proj:
        text += ("\n\nProjection `T(W) = S + sum_p max(C_p / W, m_p) + o * n` from the 2-worker run: "
                 f"S = {common.fmt(proj['S_s'])} s, o = {common.fmt(proj['o_s_per_task'])} s/task, "
                 f"n = {proj['tasks']} tasks; C_p (s): "
                 + ", ".join(f"{k} {common.fmt(v)}" for k, v in proj["C_s"].items())
                 + "\n\n" + md_table([{"W": w, f"T(W) s at {result['n_series']}": proj.get(f"T_{w}_s"),
                                       "T(W) s at 10,000 (upper bound)": result["projection_10k"].get(f"T_{w}_s")}
                                      for w in (1, 2, 4, 8, 16, 32)],
                                     ["W", f"T(W) s at {result['n_series']}", "T(W) s at 10,000 (upper bound)"]))
    one = result.get("single")
    if one:
        runs = one.get("runs", [one])
        text += (f"\n\nOne {one.get('days', SINGLE_DAYS)}-day 5-minute series (NASA, {one.get('points', '?')} points), "
                 f"n_jobs=2: fit median {common.fmt(one['fit_s'])} s of {len(runs)} runs ("
                 + ", ".join(f"{common.fmt(r.get('fit_s'))} s at load {common.fmt(r.get('load_1min'))}, "
                             f"{common.fmt(r.get('fit_cpu_s'))} CPU s" for r in runs)
                 + f"), predict {common.fmt(one['predict_s'])} s"
                 if "error" not in one else f"\n\nOne-series fit failed: {one['error'][:200]}")
    ref = result.get("refresh")
    if ref:
        text += (f"\n\nRefresh only, {result['n_series']} series (update of 4 points + predict({H}), "
                 f"predict_threads={ref.get('predict_threads')}): median {common.fmt(ref['refresh_s'])} s wall "
                 f"({common.fmt(ref['ms_per_series'])} ms/series), {common.fmt(ref['refresh_cpu_s'])} s CPU; runs "
                 + ", ".join(f"{common.fmt(w)} s at load {common.fmt(ld)}"
                             for w, ld in zip(ref["refresh_runs_s"], ref["load_1min"], strict=False))
                 + (f"; fit (1 calibration window, pool) {common.fmt(ref['fit_s'])} s" if ref.get("fit_s") else
                    "; fitted artefact reused")
                 if "error" not in ref else f"\n\nRefresh-only run failed: {ref['error'][:200]}")
    lg = result.get("lgbm")
    if lg and "error" not in lg:
        text += ("\n\nlgbm on " + f"{lg['rows']:,} rows, {lg['rounds']} rounds: gathered to one process (the engine, "
                 f"with hold-out and refit) {common.fmt(lg['gathered_fit_s'])} s; the refit alone "
                 f"{common.fmt(lg['refit_only_s'])} s; DaskLGBMRegressor on 2 workers {common.fmt(lg['dask_fit_s'])} s"
                 f" (mean |prediction difference| {common.fmt(lg['prediction_mad'])} vs target spread "
                 f"{common.fmt(lg['target_mad'])})\n")
    return text + "\n"
