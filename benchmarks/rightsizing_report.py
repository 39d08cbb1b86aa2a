"""Figures and tables of the right-sizing benchmark: issue 20's acceptance checks, the default policy's trade-off
curve against the VPA rule and the perfect-foresight bound, the cold-start comparison, and the markdown.

Called by ``rightsizing.py``; reads ``results/rightsizing_bounds.json`` (``rightsizing_bounds.py``) when present for
the bound. Pure pandas; no I/O besides that read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from common import RESULTS

from forecaster.contracts.frames import ID

CURVE_PREFIX = "calibrated"
"""Rows whose name starts with this (except the fixed-fallback one) form the default policy's trade-off curve."""


def pct(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}%}"


def _interp(xs: Sequence[float], ys: Sequence[float], x: float) -> float | None:
    """Linear interpolation along points sorted by ``xs``; None outside their range."""
    order = np.argsort(xs)
    xa, ya = np.asarray(xs, float)[order], np.asarray(ys, float)[order]
    if len(xa) == 0 or x < xa[0] or x > xa[-1]:
        return None
    return float(np.interp(x, xa, ya))


def bound(path_name: str = "rightsizing_bounds.json") -> dict[str, Any] | None:
    """The perfect-foresight figures of ``rightsizing_bounds.py`` (None when it has not been run)."""
    path = RESULTS / path_name
    if not path.exists():
        return None
    res = json.loads(path.read_text())
    return {"vpa": res.get("vpa"), **res.get("cpu_foresight", {}), "memory": res.get("memory_foresight"),
            "git_commit": res.get("git_commit"), "command": res.get("command")}


def tradeoff(rows: Mapping[str, Mapping[str, Any]], reference: str) -> dict[str, Any]:
    """The default policy's points (its knob variants) and where the curve crosses the reference's figures."""
    ref = rows[reference]
    curve = [{"row": k, **{m: v[m] for m in ("cpu_slack_median", "cpu_above_request", "memory_overrun_vm_days",
                                             "memory_slack_median", "cores_saved", "gib_saved")}}
             for k, v in rows.items() if k.startswith(CURVE_PREFIX) and "fallback" not in k]
    xs = [p["cpu_above_request"] for p in curve]
    slack = [p["cpu_slack_median"] for p in curve]
    out: dict[str, Any] = {
        "points": curve,
        "cpu_slack_at_reference_risk": _interp(xs, slack, ref["cpu_above_request"]),
        "cpu_slack_at_half_reference_risk": _interp(xs, slack, 0.5 * ref["cpu_above_request"]),
        "cpu_risk_at_reference_slack": _interp(slack, xs, ref["cpu_slack_median"]),
    }
    b = bound()
    if b is not None:
        out["bound"] = b
    return out


def checks(rows: Mapping[str, Mapping[str, Any]], reference: str, default: str,
           timing: Mapping[str, Any]) -> dict[str, str]:
    """Issue 20's acceptance items, with numbers (the default row against the reference row)."""
    d, r = rows[default], rows[reference]
    items = [
        ("CPU slack median no higher than the VPA rule's", d["cpu_slack_median"], r["cpu_slack_median"], 1.0, 1),
        ("CPU time above request at most half the VPA rule's", d["cpu_above_request"], r["cpu_above_request"],
         0.5, 2),
        ("memory-overrun VM-days at most a quarter of the VPA rule's", d["memory_overrun_vm_days"],
         r["memory_overrun_vm_days"], 0.25, 0),
    ]
    out, passed = {}, 0
    for label, mine, theirs, factor, digits in items:
        ok = mine <= factor * theirs
        passed += ok
        show = (lambda v: f"{v:,.0f}") if digits == 0 else (lambda v, k=digits: pct(v, k))
        out[label] = (f"{show(mine)} vs {show(theirs)} (limit {show(factor * theirs)}; "
                      f"{'pass' if ok else 'MISS'})")
    out["all three at once"] = f"{passed} of 3 ({'pass' if passed == 3 else 'MISS'})"
    daily = timing.get("daily_s_median")
    worst = timing.get("daily_s_max")
    if daily is not None:
        out["daily decision <= 5 s"] = (f"median {daily:.2f} s, p90 {timing['daily_s_p90']:.2f} s, max {worst:.2f} s "
                                        f"for {timing['containers_median']} containers "
                                        f"({'pass' if timing['daily_s_p90'] <= 5 else 'MISS'} at the p90)")
    return out


def cold_start(scores: Mapping[str, pd.DataFrame], default: str, fixed: str, late: Sequence[str]) -> dict[str, Any]:
    """Each VM's first three decision days: siblings (the default) against the fixed fallback, for all VMs and for
    those that joined later (``late``)."""
    out: dict[str, Any] = {"late_vms": len(late)}
    for name in (default, fixed):
        sc = scores[name].sort_values([ID, "cutoff"])
        first = sc.groupby(ID, sort=False).head(3)
        for subset, frame in (("all", first), ("joined later", first[first[ID].isin(late)])):
            if frame.empty:
                continue
            n = frame["samples"].to_numpy(float)
            per_vm = frame.groupby(ID)[["cpu_slack", "memory_slack"]].mean()
            out.setdefault(subset, {})[name] = {
                "vms": int(per_vm.shape[0]),
                "cpu_slack_median": float(per_vm["cpu_slack"].median()),
                "cpu_above_request": float((frame["cpu_above_request"] * n).sum() / n.sum()),
                "memory_slack_median": float(per_vm["memory_slack"].median()),
                "memory_overrun_vm_days": int(frame["memory_overrun"].sum()),
            }
    return out


def render(results: Mapping[str, Any]) -> str:
    """Markdown tables of the results."""
    fleet = results["bitbrains"]
    lines = [
        f"Bitbrains Rnd VMs ({fleet['vm_count']} VMs, {fleet['days']} daily decisions; commit "
        f"{results['git_commit']}; `{results['command']}`; {results.get('seconds', 0) / 60:.0f} min in all)", "",
        "| policy | CPU slack median | CPU slack p90 | mem slack median | mem slack p90 | CPU time above request "
        "| mem overrun samples | mem overrun VM-days | CPU changes | mem changes | cores saved | GiB saved |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in fleet["policies"].items():
        lines.append(
            f"| {name} | {pct(v['cpu_slack_median'])} | {pct(v['cpu_slack_p90'])} | {pct(v['memory_slack_median'])} | "
            f"{pct(v['memory_slack_p90'])} | {pct(v['cpu_above_request'], 2)} | {v['memory_overrun_samples']:,} | "
            f"{v['memory_overrun_vm_days']:,} | {v['cpu_changes']:,} | {v['memory_changes']:,} | "
            f"{v['cores_saved']:.1f} | {v['gib_saved']:.1f} |")
    lines += ["", "Acceptance (issue 20; the default policy `calibrated` against the VPA rule on the same VMs and "
              "days):", ""]
    lines += [f"- {k}: {v}" for k, v in results["checks"].items()]
    t = results.get("tradeoff") or {}
    if t:
        lines += ["", "Trade-off curve of the default policy (its knobs; the VPA rule is one point):", "",
                  "| row | CPU slack median | CPU time above request | mem overrun VM-days | mem slack median |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for p in sorted(t["points"], key=lambda p: p["cpu_above_request"]):
            lines.append(f"| {p['row']} | {pct(p['cpu_slack_median'])} | {pct(p['cpu_above_request'], 2)} | "
                         f"{p['memory_overrun_vm_days']:,} | {pct(p['memory_slack_median'])} |")
        lines += ["", f"Along the curve: CPU slack {pct(t['cpu_slack_at_reference_risk'])} at the VPA rule's time "
                  f"above request, {pct(t['cpu_slack_at_half_reference_risk'])} at half of it; at the VPA rule's "
                  f"slack, {pct(t['cpu_risk_at_reference_slack'], 2)} time above request."]
        b = t.get("bound")
        if b:
            lines.append(f"Perfect-foresight bound (`rightsizing_bounds.py`, commit {b.get('git_commit')}): lowest "
                         f"median CPU slack {pct(b.get('slack_at_vpa_risk'))} at the VPA rule's time above request, "
                         f"{pct(b.get('slack_at_half_vpa_risk'))} at half of it; least time above request at the VPA "
                         f"rule's median slack {pct(b.get('risk_at_vpa_slack'), 2)}.")
    cs = results.get("cold_start") or {}
    if cs:
        lines += ["", "Cold start: each VM's first three decision days, siblings against the fixed fallback "
                  f"({cs.get('late_vms', 0)} VMs joined the trace a week or more after it began):", "",
                  "| VMs | row | VMs | CPU slack median | CPU time above request | mem slack median "
                  "| mem overrun VM-days |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for subset in ("all", "joined later"):
            for name, v in (cs.get(subset) or {}).items():
                lines.append(f"| {subset} | {name} | {v['vms']} | {pct(v['cpu_slack_median'])} | "
                             f"{pct(v['cpu_above_request'], 2)} | {pct(v['memory_slack_median'])} | "
                             f"{v['memory_overrun_vm_days']} |")
    tm = results.get("timing")
    if tm:
        lines += ["", f"Timing of the default policy (`RightSizer.update` + `decide` for all VMs, "
                  f"{tm['containers_median']} containers): first fit and decision {tm['first_fit_and_decide_s']} s; "
                  f"then median {tm['daily_s_median']} s a day (update {tm['update_s_median']} s, decide "
                  f"{tm['decide_s_median']} s), p90 {tm['daily_s_p90']} s, max {tm['daily_s_max']} s; load average "
                  f"at the start {results.get('load_average_at_start')} on {results.get('cpus')} CPUs."]
        if "engine_update_and_decide_s_median" in tm:
            lines.append(f"The engine's `forecaster` policy (a second RightSizer, refitted weekly): median "
                         f"{tm['engine_update_and_decide_s_median']} s on update days, "
                         f"{tm['engine_fit_and_decide_s_median']} s on refit days.")
    ta = results.get("timing_alone")
    if ta:
        lines += ["", f"Timed alone (`{ta['command']}`, commit {ta['git_commit']}): the default policy's daily "
                  f"`update` + `decide` for {ta['containers']} containers after a fit on {ta['first_day']} days: "
                  f"median {ta['daily_s_median']} s, max {ta['daily_s_max']} s over {ta['days']} days "
                  f"({ta.get('daily_cpu_s_median', 'n/a')} CPU s median) "
                  f"({ta['daily_with_reports_s_median']} s with the reports); first fit and decision "
                  f"{ta['first_fit_and_decide_s']} s; 1-minute load average {ta['load_1min_median']} on 2 CPUs."]
    aggs = results.get("aggregates") or {}
    if aggs:
        lines += ["", "| aggregate | policy | CPU slack | CPU time above request | changes |",
                  "| --- | --- | ---: | ---: | ---: |"]
        for trace, pol in aggs.items():
            for name, v in pol.items():
                lines.append(f"| {trace} | {name} | {pct(v['cpu_slack_median'])} | {pct(v['cpu_above_request'], 2)} "
                             f"| {v['cpu_changes']} |")
    return "\n".join(lines) + "\n"
