"""The default right-sizing policy's trade-off curve against the VPA rule and the bounds: JSON, markdown and a chart.

Reads ``results/rightsizing.json`` (``rightsizing.py``: the default policy ``calibrated`` at each setting of its risk
knobs, the VPA rule, the other policies), ``results/rightsizing_bounds.json`` (``rightsizing_bounds.py``: the
perfect-foresight bound) and, when present, ``results/rightsizing_variants.json`` (``rightsizing_variants.py``: the
hindsight ceilings of per-container headroom). Writes ``results/rightsizing_tradeoff.json``, ``.md`` and ``.png``:

- left: median CPU slack against CPU time above request: the default's curve (its knob settings, linked), the VPA
  rule and issue 20's target region (slack no higher than the VPA rule's at no more than half its time above
  request), the perfect-foresight bound, the ceilings and the other policies;
- right: memory-overrun VM-days against median memory slack for the same rows and the VPA rule (target: at most a
  quarter of its overrun VM-days).

Run: ``python benchmarks/rightsizing_plot.py`` (seconds; ``rightsizing.py`` calls it after every full run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from common import RESULTS, run_meta, write_results
from rightsizing_report import CURVE_PREFIX, pct

REFERENCE = "vpa rule (reference)"
OTHERS = ("vpa", "cost-selected", "moving-window", "oracle", "forecaster")
CEILINGS = ("best single rule per VM in hindsight (ceiling)", "best rule per VM and day in hindsight (ceiling)")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def curve_rows(rows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The default policy's rows (its knob settings, not the fixed-fallback row), by CPU time above request."""
    keys = ("cpu_slack_median", "cpu_above_request", "memory_slack_median", "memory_overrun_vm_days", "cores_saved")
    pts = [{"row": k, **{m: v[m] for m in keys}} for k, v in rows.items()
           if k.startswith(CURVE_PREFIX) and "fallback" not in k]
    return sorted(pts, key=lambda p: p["cpu_above_request"])


def tradeoff_data(results: Mapping[str, Any], bounds: Mapping[str, Any] | None,
                  variants: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything the chart shows, with the crossings ``rightsizing_report.tradeoff`` computed."""
    rows = results["bitbrains"]["policies"]
    ref = rows[REFERENCE]
    out: dict[str, Any] = {
        "source": {"rightsizing": results.get("git_commit"), "bounds": (bounds or {}).get("git_commit"),
                   "variants": (variants or {}).get("git_commit")},
        "vpa_rule": {k: ref[k] for k in ("cpu_slack_median", "cpu_above_request", "memory_slack_median",
                                         "memory_overrun_vm_days")},
        "target": {"cpu_slack_median_at_most": ref["cpu_slack_median"],
                   "cpu_above_request_at_most": 0.5 * ref["cpu_above_request"],
                   "memory_overrun_vm_days_at_most": 0.25 * ref["memory_overrun_vm_days"]},
        "curve": curve_rows(rows),
        "crossings": {k: v for k, v in (results.get("tradeoff") or {}).items() if k.startswith("cpu_")},
        "others": {k: {m: rows[k][m] for m in ("cpu_slack_median", "cpu_above_request", "memory_slack_median",
                                               "memory_overrun_vm_days")} for k in OTHERS if k in rows},
    }
    if bounds:
        cf = bounds["cpu_foresight"]
        out["perfect_foresight"] = {"curve": cf["curve"], "risk_at_vpa_slack": cf.get("risk_at_vpa_slack"),
                                    "slack_at_half_vpa_risk": cf.get("slack_at_half_vpa_risk")}
    if variants:
        fams = variants["families"]
        out["ceilings"] = {k: fams[k] for k in CEILINGS if k in fams}
        out["median_aware_ceiling_risk_at_vpa_slack"] = variants.get("median_aware_ceiling_risk_at_vpa_slack")
    return out


def draw(data: Mapping[str, Any], path: Any) -> None:
    """The two panels of the module doc, saved as PNG."""
    fig, (ax, mx) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    vpa, target = data["vpa_rule"], data["target"]
    ax.fill_between([0, 100 * target["cpu_above_request_at_most"]], 0, 100 * target["cpu_slack_median_at_most"],
                    color="tab:green", alpha=0.12, label="issue 20 target (CPU)")
    curve = data["curve"]
    ax.plot([100 * p["cpu_above_request"] for p in curve], [100 * p["cpu_slack_median"] for p in curve], "o-",
            color="tab:blue", label="calibrated (default), knob settings")
    for p in curve:
        ax.annotate(p["row"].replace("calibrated", "").strip(" ()") or "default",
                    (100 * p["cpu_above_request"], 100 * p["cpu_slack_median"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=7, color="tab:blue")
    ax.plot(100 * vpa["cpu_above_request"], 100 * vpa["cpu_slack_median"], "s", color="tab:red", ms=9,
            label="VPA rule (reference)")
    pf = data.get("perfect_foresight")
    if pf:
        ax.plot([100 * p["cpu_above_request"] for p in pf["curve"]], [100 * p["median_slack"] for p in pf["curve"]],
                "k--", label="perfect foresight (bound)")
    styles = {CEILINGS[0]: ("tab:purple", ":"), CEILINGS[1]: ("tab:gray", "-.")}
    for name, fam in (data.get("ceilings") or {}).items():
        pts = sorted(fam["points"], key=lambda p: p["cpu_above_request"])
        colour, ls = styles[name]
        ax.plot([100 * p["cpu_above_request"] for p in pts], [100 * p["cpu_slack_median"] for p in pts], ls,
                color=colour, label=name.replace(" (ceiling)", ", simplified replay"))
    mac = data.get("median_aware_ceiling_risk_at_vpa_slack")
    if mac is not None:
        ax.plot(100 * mac, 100 * vpa["cpu_slack_median"], "x", color="tab:purple", ms=9, mew=2,
                label="best lambda per VM in hindsight, risk on the cheapest half")
    for name, v in data["others"].items():
        ax.plot(100 * v["cpu_above_request"], 100 * v["cpu_slack_median"], "^", color="tab:orange", ms=6)
        ax.annotate(name, (100 * v["cpu_above_request"], 100 * v["cpu_slack_median"]), textcoords="offset points",
                    xytext=(5, -10), fontsize=7, color="tab:orange")
    ax.set_xlim(0, 4.0)
    ax.set_ylim(0, 75)
    ax.set_xlabel("CPU time above request, % of all VM samples")
    ax.set_ylabel("CPU slack, median over VMs, %")
    ax.set_title("CPU: slack against time above request (lower left is better)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")

    mx.axhspan(0, target["memory_overrun_vm_days_at_most"], color="tab:green", alpha=0.12,
               label="issue 20 target (memory)")
    mx.plot([100 * p["memory_slack_median"] for p in curve], [p["memory_overrun_vm_days"] for p in curve], "o-",
            color="tab:blue", label="calibrated (default), knob settings")
    mx.plot(100 * vpa["memory_slack_median"], vpa["memory_overrun_vm_days"], "s", color="tab:red", ms=9,
            label="VPA rule (reference)")
    for i, (name, v) in enumerate(data["others"].items()):
        mx.plot(100 * v["memory_slack_median"], v["memory_overrun_vm_days"], "^", color="tab:orange", ms=6)
        mx.annotate(name, (100 * v["memory_slack_median"], v["memory_overrun_vm_days"]), textcoords="offset points",
                    xytext=(5, 3 - 12 * (i % 2)), fontsize=7, color="tab:orange")
    mx.set_xlabel("memory slack, median over VMs, %")
    mx.set_ylabel("memory-overrun VM-days")
    mx.set_title("memory: overrun VM-days against slack", fontsize=10)
    mx.grid(alpha=0.3)
    mx.set_ylim(0, 1.12 * max(vpa["memory_overrun_vm_days"], *(p["memory_overrun_vm_days"] for p in curve)))
    mx.legend(fontsize=7, loc="center left")
    fig.suptitle("Right-sizing on 250 Bitbrains VMs, 89 daily decisions (benchmarks/rightsizing.py)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(data: Mapping[str, Any]) -> str:
    """Markdown of the curve, the VPA point, the target, the bound and the crossings."""
    vpa, target, c = data["vpa_rule"], data["target"], data["crossings"]
    lines = ["![trade-off](rightsizing_tradeoff.png)", "",
             f"Target (issue 20): CPU slack <= {pct(target['cpu_slack_median_at_most'])} at CPU time above request "
             f"<= {pct(target['cpu_above_request_at_most'], 2)}, memory-overrun VM-days <= "
             f"{target['memory_overrun_vm_days_at_most']:,.0f}.", "",
             "| row | CPU slack median | CPU time above request | mem slack median | mem overrun VM-days |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for p in data["curve"]:
        lines.append(f"| {p['row']} | {pct(p['cpu_slack_median'])} | {pct(p['cpu_above_request'], 2)} | "
                     f"{pct(p['memory_slack_median'])} | {p['memory_overrun_vm_days']:,} |")
    lines.append(f"| {REFERENCE} | {pct(vpa['cpu_slack_median'])} | {pct(vpa['cpu_above_request'], 2)} | "
                 f"{pct(vpa['memory_slack_median'])} | {vpa['memory_overrun_vm_days']:,} |")
    lines += ["", f"Along the default's curve: CPU slack {pct(c.get('cpu_slack_at_reference_risk'))} at the VPA rule's "
              f"time above request, {pct(c.get('cpu_slack_at_half_reference_risk'))} at half of it (the target "
              f"point); at the VPA rule's slack, {pct(c.get('cpu_risk_at_reference_slack'), 2)} time above request "
              "(target: half the VPA's)."]
    pf = data.get("perfect_foresight")
    if pf:
        lines.append(f"Perfect foresight: {pct(pf['risk_at_vpa_slack'], 2)} time above request at the VPA rule's "
                     f"slack, {pct(pf['slack_at_half_vpa_risk'])} slack at half its time above request.")
    for name, fam in (data.get("ceilings") or {}).items():
        lines.append(f"{name}: {pct(fam['risk_at_vpa_slack'], 2)} at the VPA rule's slack, "
                     f"{pct(fam['slack_at_half_vpa_risk'])} slack at half its time above request.")
    if data.get("median_aware_ceiling_risk_at_vpa_slack") is not None:
        lines.append(f"Best lambda per VM in hindsight, risk on the cheapest half: "
                     f"{pct(data['median_aware_ceiling_risk_at_vpa_slack'], 2)} at the VPA rule's slack.")
    return "\n".join(lines) + "\n"


def main() -> None:
    results = _load("rightsizing")
    if results is None:
        raise SystemExit("results/rightsizing.json is missing: run `python benchmarks/rightsizing.py` first")
    data = {**run_meta(), **tradeoff_data(results, _load("rightsizing_bounds"), _load("rightsizing_variants"))}
    draw(data, RESULTS / "rightsizing_tradeoff.png")
    write_results("rightsizing_tradeoff", data, render(data))


if __name__ == "__main__":
    main()
