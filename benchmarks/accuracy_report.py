"""Issue 17's acceptance checks and the markdown of the accuracy benchmark (``accuracy.py``), from its results.

Every check is computed from the measured results, never typed in: per cell ensemble MAE <= 1.03 x its best
member (mean over cells <= 0.97); cells with >= 21 days of history (the shortest series): <= 0.85 x the best of
naive, snaive_day, snaive_week; ensemble band coverage 80 % in [0.75, 0.85] and 95 % in [0.92, 0.98] in every cell
(pooled over the cell's series and windows; the share of series inside both bounds beside it); 80 % band width /
MAE; on a non-negative trace no negative ensemble value (point or band; members' negatives counted beside); the
input ratios of ``INPUT_TARGETS``; the fit time per series. Also issue 2's older rows, for comparison.
Called by ``accuracy.py`` (after every step and for ``--render-only``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from common import fmt, md_table

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import ENSEMBLE, ID, KNOWN_MEMBERS
from forecaster.evaluation import coverage_col, width_col
from forecaster.evaluation.baselines import BASELINES, SNAIVE_DAY

LEVELS = (80, 95)
INPUT_COLUMNS: tuple[str, ...] = (
    "trace", "horizon", "input", "windows", "n_windows", "n_rows", "mae_with", "mae_without", "ratio", "target",
)
"""Columns of an input-worth row, in the JSON and the markdown."""

# issue 17's acceptance
MAX_OVER_BEST_MEMBER = 1.03
MAX_MEAN_OVER_BEST_MEMBER = 0.97
MAX_OVER_BEST_NAIVE = 0.85
NAIVE_MIN_HISTORY_DAYS = 21  # "every cell with >= 3 weeks of history"
COVERAGE_BOUNDS = {80: (0.75, 0.85), 95: (0.92, 0.98)}

# input worth
INPUT_HORIZON = "1D"
EVENT_MIN_HISTORY_DAYS = 21
INPUT_RUNS: dict[str, tuple[str, ...]] = {"nyc-taxi": ("events",), "bike": ("signals", "events")}
INPUT_TARGETS: dict[tuple[str, str, str], tuple[float, bool]] = {
    # (trace, input, windows) -> (max MAE ratio with / without, bound by the issue; else reported)
    ("nyc-taxi", "events", "event windows"): (0.80, True),
    ("nyc-taxi", "events", "elsewhere"): (1.02, True),
    ("bike", "signals", "rolling windows"): (0.85, True),
    ("bike", "events", "event windows"): (0.80, False),
    ("bike", "events", "elsewhere"): (1.02, False),
}


# ---------------------------------------------------------------- acceptance (issue 17)


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and not np.isfinite(value)) else float(value)


def history_days_of(r: dict[str, Any]) -> float | None:
    """Days of history of a cell's shortest series; for records of runs that did not store it, estimated
    from the rows on the grid per series (``validation``)."""
    if r.get("history_days") is not None:
        return _num(r["history_days"])
    m = re.search(r"(\d+) rows on the grid", r.get("validation", ""))
    if not m or not r.get("n_series") or not r.get("freq"):
        return None
    span = int(m.group(1)) / int(r["n_series"]) * freq_to_timedelta(r["freq"])
    return round(span / pd.Timedelta("1D"), 1)


def cell_checks(r: dict[str, Any]) -> dict[str, Any] | None:
    """Issue 17's per-cell figures and pass flags (None = not applicable or unknown) from a cell record."""
    pooled = {p["model"]: p for p in r.get("pooled", [])}
    ens = pooled.get(ENSEMBLE)
    if ens is None or _num(ens.get("mae")) is None:
        return None
    mae = {m: _num(p.get("mae")) for m, p in pooled.items()}
    ens_mae = float(mae[ENSEMBLE])  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "trace": r["trace"],
        "horizon": r["horizon"],
        "windows": r.get("n_windows"),
        "series": r.get("n_series"),
        "train_days": r.get("train_days"),
        "history_days": history_days_of(r),
    }
    members = {m: v for m in KNOWN_MEMBERS if (v := mae.get(m)) is not None}
    if members:
        best = min(members, key=members.__getitem__)
        out["best_member"] = best
        out["over_best_member"] = ens_mae / members[best] if members[best] > 0 else None
    naives = {b: v for b in BASELINES if (v := mae.get(b)) is not None}
    if naives:
        best = min(naives, key=naives.__getitem__)
        out["best_naive"] = best
        out["over_best_naive"] = ens_mae / naives[best] if naives[best] > 0 else None
    days = out["history_days"]
    out["naive_applies"] = None if days is None else days >= NAIVE_MIN_HISTORY_DAYS
    for level in LEVELS:
        out[f"cov{level}"] = _num(ens.get(coverage_col(level)))
    width = _num(ens.get(width_col(80)))
    out["width80_over_mae"] = width / ens_mae if width is not None and ens_mae > 0 else None
    per = [p for p in r.get("per_series", []) if p.get("model") == ENSEMBLE]
    if per:
        inside = [
            all(lo_b <= (_num(p.get(coverage_col(lv))) or -1.0) <= hi_b for lv, (lo_b, hi_b) in COVERAGE_BOUNDS.items())
            for p in per
        ]
        out["series_cov_ok"] = sum(inside) / len(inside)
    neg = r.get("negatives")
    if neg:
        out["neg_ensemble"] = neg["ensemble"]
        out["neg_members"] = sum(neg["members"].values())
        out["nonneg_trace"] = neg["nonneg_trace"]
    # pass flags
    ob = out.get("over_best_member")
    out["pass_member"] = None if ob is None else ob <= MAX_OVER_BEST_MEMBER
    on = out.get("over_best_naive")
    out["pass_naive"] = None if on is None or out["naive_applies"] is False else on <= MAX_OVER_BEST_NAIVE
    for level, (lo_b, hi_b) in COVERAGE_BOUNDS.items():
        v = out[f"cov{level}"]
        out[f"pass_cov{level}"] = None if v is None else lo_b <= v <= hi_b
    out["pass_nonneg"] = None if not neg or not neg["nonneg_trace"] else neg["ensemble"] == 0
    return out


def acceptance(results: list[dict[str, Any]], inputs: list[dict[str, Any]], fits: list[dict[str, Any]]) -> dict:
    """Every issue-17 check computed from the records: per cell, the mean over cells, the inputs' worth."""
    cells = [c for r in results if (c := cell_checks(r)) is not None]
    ratios = [c["over_best_member"] for c in cells if c.get("over_best_member") is not None]
    mean = float(np.mean(ratios)) if ratios else None
    inp = []
    for row in inputs:
        target = row.get("target")
        ratio_v = row.get("ratio")
        inp.append(
            {
                **{
                    k: row.get(k)
                    for k in (*INPUT_COLUMNS, "binding")
                },
                "pass": None if target is None or ratio_v is None else ratio_v <= target,
                "error": row.get("error"),
            }
        )
    flags = ["pass_member", "pass_naive", "pass_cov80", "pass_cov95", "pass_nonneg"]
    counts = {
        f: [sum(1 for c in cells if c.get(f) is True), sum(1 for c in cells if c.get(f) is not None)] for f in flags
    }
    return {
        "cells": cells,
        "mean_over_best_member": mean,
        "pass_mean_over_best_member": None if mean is None else mean <= MAX_MEAN_OVER_BEST_MEMBER,
        "cell_pass_counts": counts,
        "inputs": inp,
        "fit_time": [{k: f.get(k) for k in ("trace", "series", "fit_s", "s_per_series", "error")} for f in fits],
    }


def _mark(value: Any, ok: bool | None, digits: int = 3) -> str:
    """A table cell: the value and ✓ / ✗ (no mark when the check does not apply or is unknown)."""
    text = fmt(value, digits) if not isinstance(value, str) else value
    return text if ok is None else f"{text} {'✓' if ok else '✗'}"


def _cells_markdown(acc: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The per-cell acceptance table and the count of cells passing each check."""
    lo80, hi80 = COVERAGE_BOUNDS[80]
    lo95, hi95 = COVERAGE_BOUNDS[95]
    parts = [
        "\n"
        f"Per trace x horizon cell: ensemble MAE <= {MAX_OVER_BEST_MEMBER} x its best member; <= "
        f"{MAX_OVER_BEST_NAIVE} x the best naive rule when the cell has >= {NAIVE_MIN_HISTORY_DAYS} days of "
        f"history (its shortest series; else n/a); ensemble coverage 80 % in [{lo80}, {hi80}] and 95 % in "
        f"[{lo95}, {hi95}] (pooled over the cell; 'series in both bands' = share of its series inside both); "
        "80 % band width / MAE; negative ensemble values (point and bands) on a non-negative trace (must be 0; "
        "members' negatives beside). ✓ / ✗ = pass / miss; no mark = not applicable or not recorded.\n\n",
        md_table(rows, list(rows[0]) if rows else []),
    ]
    counts = acc.get("cell_pass_counts", {})
    names = {
        "pass_member": "ens <= 1.03 x best member",
        "pass_naive": "ens <= 0.85 x best naive (>= 21 d)",
        "pass_cov80": "80 % coverage in bounds",
        "pass_cov95": "95 % coverage in bounds",
        "pass_nonneg": "no negative ensemble value",
    }
    summary = [{"check": names[k], "cells passing": f"{v[0]} / {v[1]}"} for k, v in counts.items()]
    summary.append(
        {
            "check": f"mean over cells of ens / best member <= {MAX_MEAN_OVER_BEST_MEMBER}",
            "cells passing": _mark(acc.get("mean_over_best_member"), acc.get("pass_mean_over_best_member")),
        }
    )
    parts.append("\n" + md_table(summary, ["check", "cells passing"]))
    return parts


def acceptance_markdown(acc: dict[str, Any]) -> str:
    """Issue 17's acceptance tables (per cell, the mean over cells, the inputs' worth, fit time)."""
    if not acc["cells"] and not acc["inputs"] and not acc.get("fit_time"):
        return ""
    rows = []
    for c in acc["cells"]:
        days = c.get("history_days")
        rows.append(
            {
                "trace": c["trace"],
                "horizon": c["horizon"],
                "windows": c.get("windows"),
                "history days": fmt(days, 3) if days is not None else "?",
                "ens / best member": _mark(c.get("over_best_member"), c.get("pass_member"))
                + (f" ({c['best_member']})" if c.get("best_member") else ""),
                "ens / best naive": _mark(c.get("over_best_naive"), c.get("pass_naive"))
                + (f" ({c['best_naive']})" if c.get("best_naive") else "")
                + (" n/a" if c.get("naive_applies") is False else ""),
                "cov80": _mark(c.get("cov80"), c.get("pass_cov80")),
                "cov95": _mark(c.get("cov95"), c.get("pass_cov95")),
                "series in both bands": c.get("series_cov_ok"),
                "w80 / MAE": c.get("width80_over_mae"),
                "neg. ensemble": _mark(c.get("neg_ensemble"), c.get("pass_nonneg")),
                "neg. members": c.get("neg_members"),
            }
        )
    parts = ["\n## Acceptance checks (issue 17)\n"]
    if rows:
        parts += _cells_markdown(acc, rows)
    if acc["inputs"]:
        irows = []
        for row in acc["inputs"]:
            target = row.get("target")
            irows.append(
                {
                    **row,
                    "ratio": _mark(row.get("ratio"), row.get("pass")),
                    "target": ("<= " + fmt(target)) + ("" if row.get("binding") else " (reported)")
                    if target is not None
                    else "–",
                    "error": (row.get("error") or "")[:80],
                }
            )
        parts.append(
            "\n### Each input's worth (same engine with and without it, ensemble MAE with / without)\n\n"
            + md_table(
                irows,
                [*INPUT_COLUMNS, "error"],
            )
        )
    if acc.get("fit_time"):
        parts.append(
            "\n### Fit time per series (one `fit` on the run's whole history, horizon 1 day, `n_jobs=1`)\n\n"
            + md_table(acc["fit_time"], ["trace", "series", "fit_s", "s_per_series", "error"])
        )
    return "".join(parts)


ACCEPT_TRACES = ("nasa", "azure")


def pooled_coverage(results: list[dict[str, Any]]) -> dict[int, float | None]:
    """Ensemble band coverage pooled over every trace and horizon (each scored row counts once)."""
    out: dict[int, float | None] = {}
    for level in LEVELS:
        num = den = 0.0
        for r in results:
            ens = {p["model"]: p for p in r.get("pooled", [])}.get(ENSEMBLE)
            if ens and ens.get(coverage_col(level)) is not None:
                num += float(ens[coverage_col(level)]) * float(ens["n"])
                den += float(ens["n"])
        out[level] = num / den if den else None
    return out


def issue2_markdown(results: list[dict[str, Any]]) -> str:
    """Issue 2's acceptance checks (NASA and Azure only), kept next to issue 17's for comparison."""
    rows = []
    for r in results:
        if r["trace"] not in ACCEPT_TRACES or "pooled" not in r:
            continue
        mae = {p["model"]: float(p["mae"]) for p in r["pooled"]}
        members = {m: mae[m] for m in KNOWN_MEMBERS if m in mae}
        best_member = min(members, key=members.__getitem__) if members else None
        ratios = r.get("ratios", {})
        if r["horizon"] == "1h":
            target, value = "ensemble MAE <= 0.85 x best naive", ratios.get("ensemble_mae_over_best_naive")
        else:
            target, value = "ensemble MAE <= 0.85 x snaive_day", ratios.get("ensemble_mae_over_snaive_day")
        row = {
            "trace": r["trace"],
            "horizon": r["horizon"],
            "check": target,
            "value": value,
            "pass": value is not None and value <= 0.85,
        }
        rows.append(row)
        if r["horizon"] == "1h" and best_member is not None and ENSEMBLE in mae:
            rel = mae[ENSEMBLE] / members[best_member]
            rows.append(
                {
                    "trace": r["trace"],
                    "horizon": r["horizon"],
                    "check": f"ensemble MAE <= best member ({best_member})",
                    "value": rel,
                    "pass": rel <= 1.0,
                }
            )
    if not rows:
        return ""
    cov = pooled_coverage(results)
    bounds = {80: (0.75, 0.85), 95: (0.92, 0.98)}
    for level, (lo_b, hi_b) in bounds.items():
        v = cov.get(level)
        rows.append(
            {
                "trace": "all",
                "horizon": "all",
                "check": f"pooled {level} % coverage in [{lo_b}, {hi_b}]",
                "value": v,
                "pass": v is not None and lo_b <= v <= hi_b,
            }
        )
    table = md_table(rows, ["trace", "horizon", "check", "value", "pass"])
    return "\n## Issue 2 checks (kept for comparison)\n\n" + table


def to_markdown(
    results: list[dict[str, Any]],
    meta: dict[str, Any],
    inputs: list[dict[str, Any]] | None = None,
    fits: list[dict[str, Any]] | None = None,
) -> str:
    """The human report: a summary table, issue 17's acceptance, the inputs' worth, then per (trace, horizon)
    the pooled scores and weights. Records of older runs without the newer fields render with dashes."""
    inputs, fits = inputs or [], fits or []
    cols = ["model", "n", "mae", "mase", "pinball", coverage_col(80), coverage_col(95), width_col(80)]
    parts = [
        f"# Accuracy benchmark\n\n`{meta['command']}` at {meta['started_utc']} (commit "
        f"{meta['git_commit']}, {meta['cpus']} CPUs)"
        + (" — quick run" if meta.get("quick") else "")
        + "\n\n## Summary\n\n"
    ]
    summary = []
    for r in results:
        pooled = {p["model"]: p for p in r.get("pooled", [])}
        ens = pooled.get(ENSEMBLE, {})
        summary.append(
            {
                "trace": r["trace"],
                "horizon": r["horizon"],
                "steps": r.get("h_steps"),
                "windows": r["n_windows"],
                "series": r["n_series"],
                "ens/best member": r.get("ratios", {}).get("ensemble_mae_over_best_member"),
                "ens/best naive": r.get("ratios", {}).get("ensemble_mae_over_best_naive"),
                "ens/snaive_day": r.get("ratios", {}).get("ensemble_mae_over_snaive_day"),
                "ens MASE": ens.get("mase"),
                "snaive_day MASE": pooled.get(SNAIVE_DAY, {}).get("mase"),
                "cov80": ens.get(coverage_col(80)),
                "cov95": ens.get(coverage_col(95)),
                "backtest s": r.get("forecaster", {}).get("backtest_s"),
                "note": r.get("error") or r.get("forecaster", {}).get("error", "")[:80],
            }
        )
    parts.append(md_table(summary, list(summary[0])) if summary else "(no accuracy cells in this run)\n")
    parts.append(acceptance_markdown(acceptance(results, inputs, fits)))
    for row in inputs:
        if row.get("days"):
            parts.append(
                f"\n### {row['trace']}: {row['input']} on each event day ({row['horizon']} ahead, cutoff = "
                "the step before local midnight)\n\n"
                + md_table(
                    row["days"], ["day", "events", "cutoff", "n_rows", "mae_with", "mae_without", "ratio", "error"]
                )
            )
    parts.append(issue2_markdown(results))
    for r in results:
        parts.append(f"\n## {r['trace']} — horizon {r['horizon']} ({r['h_steps']} steps of {r['freq']})\n\n")
        if "pooled" in r:
            parts.append(md_table(r["pooled"], cols))
        if len(r.get("weights", [])) > 1:
            wcols = [ID, *(m for m in KNOWN_MEMBERS if any(m in w for w in r["weights"])), "source"]
            parts.append("\nWeights (learned vs default):\n\n" + md_table(r["weights"][:11], wcols))
    return "".join(parts)


def payload(
    meta: dict[str, Any], results: list[dict[str, Any]], inputs: list[dict[str, Any]], fits: list[dict[str, Any]]
) -> dict[str, Any]:
    """The JSON document: everything measured plus the acceptance computed from it."""
    return {
        "meta": meta,
        "results": results,
        "inputs": inputs,
        "fit_time": fits,
        "acceptance": acceptance(results, inputs, fits),
    }
