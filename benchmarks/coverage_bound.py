"""How often would a *perfectly calibrated* band pass issue 17's per-cell coverage checks? (a bound, not a model)

Issue 17 asks the 80 % band's coverage to lie in [0.75, 0.85] and the 95 % band's in [0.92, 0.98] in every
trace x horizon cell of ``benchmarks/accuracy.py``. A cell holds ``n`` scored rows: ``w`` windows x ``s`` series x
``k`` steps (fewer where outages are not scored). Even a band whose true coverage is exactly the nominal ``p`` shows
an empirical coverage ``X / n`` that scatters around ``p``, so it fails a narrow interval by chance. Two models
bracket how much:

- *independent rows*: ``X ~ Binomial(n, p)``, the most favourable case (rows of a window are in fact correlated:
  a misjudged day misses in most of its rows);
- *whole blocks*: each window-series block is covered or missed as a whole, ``X / n ~ Binomial(b, p) / b`` with
  ``b = w * s`` blocks, the least favourable case.

The pass probability of a cell is ``P(lo <= X / n <= hi)`` under each model; with one step per window (bike at 1
hour: 14 rows) both coincide. Worked example (bike 1 h, 80 %): ``n = b = 14``; only ``X = 11`` gives a coverage in
[0.75, 0.85] (10 / 14 = 0.714, 12 / 14 = 0.857), so ``P = C(14, 11) 0.8^11 0.2^3 = 0.250``: a perfectly calibrated
band passes that cell one time in four. The probability that every cell passes (cells independent) is the product.

Reads a results JSON of ``benchmarks/accuracy.py`` (``--results``, default ``results/accuracy.json``) and writes
``results/<out>.json`` and ``.md``. Usage::

    python benchmarks/coverage_bound.py --results results/accuracy_issue17_a46fee3.json --out coverage_bound
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import common

TARGETS: dict[int, tuple[float, float]] = {80: (0.75, 0.85), 95: (0.92, 0.98)}
"""Issue 17's coverage interval per band level."""
RESULTS = Path(__file__).resolve().parent / "results"


def pass_probability(n: int, p: float, lo: float, hi: float) -> float:
    """``P(lo <= X / n <= hi)`` for ``X ~ Binomial(n, p)`` (exact sum; ``n`` up to a few hundred thousand)."""
    if n <= 0:
        return float("nan")
    k_lo, k_hi = math.ceil(lo * n - 1e-9), math.floor(hi * n + 1e-9)
    total = 0.0
    for k in range(max(k_lo, 0), min(k_hi, n) + 1):
        log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        total += math.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))
    return min(total, 1.0)


def cell_bound(n_rows: int, n_blocks: int, level: int) -> dict[str, float]:
    """Pass probability of one cell at one level under the two models of the module docstring."""
    lo, hi = TARGETS[level]
    p = level / 100
    return {"independent": pass_probability(n_rows, p, lo, hi), "blocks": pass_probability(n_blocks, p, lo, hi)}


def bounds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell: its rows, blocks, measured coverage and the two pass probabilities per level."""
    rows = []
    for cell in results:
        ens = next((r for r in cell.get("pooled", []) if r.get("model") == "ensemble"), None)
        if ens is None:
            continue
        n_rows = int(ens["n"])
        n_blocks = int(cell["n_windows"]) * int(cell["n_series"])
        row: dict[str, Any] = {
            "trace": cell["trace"],
            "horizon": cell["horizon"],
            "rows": n_rows,
            "blocks": n_blocks,
        }
        for level, (lo, hi) in TARGETS.items():
            cov = float(ens[f"coverage-{level}"])
            b = cell_bound(n_rows, n_blocks, level)
            row[f"cov{level}"] = cov
            row[f"pass{level}"] = lo <= cov <= hi
            row[f"p{level}_independent"] = b["independent"]
            row[f"p{level}_blocks"] = b["blocks"]
        rows.append(row)
    return rows


def everything_passes(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Probability that every cell passes both levels (cells independent), per model."""
    out = {}
    for model in ("independent", "blocks"):
        out[model] = math.prod(r[f"p{level}_{model}"] for r in rows for level in TARGETS)
    return out


def render(rows: list[dict[str, Any]], source: str) -> str:
    cols = ["trace", "horizon", "rows", "blocks", "cov80", "p80_independent", "p80_blocks", "cov95",
            "p95_independent", "p95_blocks"]
    shown = [
        {**r, "cov80": f"{common.fmt(r['cov80'])} {'✓' if r['pass80'] else '✗'}",
         "cov95": f"{common.fmt(r['cov95'])} {'✓' if r['pass95'] else '✗'}"}
        for r in rows
    ]
    headers = ["trace", "horizon", "rows", "blocks", "cov80", "P80 indep.", "P80 blocks", "cov95", "P95 indep.",
               "P95 blocks"]
    table = common.md_table(shown, cols, headers)
    allp = everything_passes(rows)
    expected = {
        m: sum(r[f"p{level}_{m}"] for r in rows for level in TARGETS) for m in ("independent", "blocks")
    }
    passed = sum(int(r[f"pass{level}"]) for r in rows for level in TARGETS)
    return (
        "# Coverage checks a perfectly calibrated band would pass\n\n"
        f"Source: `{source}`. P = probability that a band of exactly nominal coverage lands in the target interval "
        "(80 %: [0.75, 0.85], 95 %: [0.92, 0.98]); `indep.` rows independent, `blocks` each window x series "
        "covered or missed as a whole (`benchmarks/coverage_bound.py` docstring).\n\n"
        f"{table}\n\n"
        f"Checks passed by the engine: {passed} of {2 * len(rows)}. Expected passes for a perfectly calibrated band: "
        f"{expected['independent']:.1f} (independent rows) to {expected['blocks']:.1f} (blocks); probability that "
        f"all {2 * len(rows)} pass: {allp['independent']:.3g} to {allp['blocks']:.3g}.\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--results", type=Path, default=RESULTS / "accuracy.json", help="accuracy.py results JSON")
    parser.add_argument("--out", default="coverage_bound", help="result file name under results/")
    args = parser.parse_args(argv)
    payload = json.loads(args.results.read_text(encoding="utf-8"))
    rows = bounds(payload["results"])
    md = render(rows, str(args.results.name))
    common.write_results(
        args.out, {"meta": common.run_meta(argv), "source": str(args.results.name), "cells": rows,
                   "all_pass": everything_passes(rows)}, md,
    )
    print(md)


if __name__ == "__main__":
    main()
