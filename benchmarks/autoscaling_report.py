"""Issue 19's acceptance checks and the markdown of the autoscaling benchmark (``autoscaling.py``), from its results.

Every check is computed from the replayed outcomes, never typed in. Per trace and metric mode, with the reactive
HPA at 70 % (``R70``: replica-minutes ``C70``, under-provisioned minutes ``U70``) and the joint policy at its default
risk budget (``J``: ``Cj``, ``Uj``):

(a) ``Cj <= C70`` and ``Uj <= U70 / 2`` (``Uj == 0`` when ``U70 == 0``);
(b) at equal under-provisioned minutes, the replica-minutes the joint policy saves against the reactive curve are at
    least half of what 15-minute level foresight saves: ``R(Uj) - Cj >= 0.5 x (R(Uj) - L(Uj))``, where ``R(u)`` is the
    reactive Pareto frontier (targets 50-90 %) interpolated in ``log(1 + u)`` and ``L(u)`` the cheapest point of the
    level-foresight curve with at most ``u`` short minutes (``forecaster.simulate.bounds``: the true centred 15-minute
    mean known exactly, pods ready at once, the best fixed headroom). Below the reactive curve's risk range ``R`` is
    its least risky point (a stand-in that understates the joint policy's saving); above it there is no figure.

Also computed: the same (b) for the best point of the budget sweep, the perfect-foresight bound ``B(Uj)`` (no policy
spends less at that risk), and the best fixed bank setting in hindsight (a reference, not a product figure).
Called by ``autoscaling.py`` (after each trace and for ``--rescore``). Run as a script, it merges the results of
separate runs (e.g. one process per trace: ``--output autoscaling_azure``) into one table:
``python benchmarks/autoscaling_report.py autoscaling_azure autoscaling_nyc-taxi autoscaling_bike --output NAME``
writes ``results/NAME.json``/``.md``; each source run's command, commit and start time head the markdown.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

LEVEL_WINDOW = 15
"""Minutes of the level-foresight reference (the issue's "15-minute mean known exactly")."""
RISK_SHARE = 0.5
"""(a): at most this share of reactive at 70 %'s under-provisioned minutes."""
LEVEL_SHARE = 0.5
"""(b): at least this share of level foresight's saving."""
DEFAULT_LABEL = "default"


def reactive_cost(reactive: pd.DataFrame, under: float) -> float | None:
    """``R(u)``: replica-minutes of the reactive Pareto frontier at ``under`` under-provisioned minutes.

    The frontier keeps, per under-provisioned count, the cheapest reactive point, and only points cheaper than every
    point with fewer short minutes; between them cost is linear in ``log(1 + u)``. Below the range: the least risky
    point's cost; above it: None."""
    r = reactive.groupby("under_provisioned_minutes")["replica_minutes"].min().reset_index()
    r = r.sort_values("under_provisioned_minutes")
    r = r[r["replica_minutes"] < r["replica_minutes"].cummin().shift(1, fill_value=np.inf)]
    x = np.log1p(r["under_provisioned_minutes"].to_numpy(float))
    y = r["replica_minutes"].to_numpy(float)
    xu = float(np.log1p(under))
    if xu > x.max():
        return None
    return float(y[0]) if xu <= x.min() else float(np.interp(xu, x, y))


def level_cost(level: pd.DataFrame, under: float) -> float | None:
    """``L(u)``: the cheapest level-foresight point with at most ``under`` short minutes (None if none)."""
    ok = level[level["under_provisioned_minutes"] <= under + 1e-9]
    return None if ok.empty else float(ok["replica_minutes"].min())


def equal_risk(reactive: pd.DataFrame, level: pd.DataFrame, cost: float, under: float) -> dict[str, Any]:
    """Check (b) for one point: its saving and level foresight's at its under-provisioned minutes."""
    r, lv = reactive_cost(reactive, under), level_cost(level, under)
    if r is None or lv is None:
        return {"reactive_at_u": r, "level_at_u": lv, "saving": None, "level_saving": None, "share": None,
                "pass": None}
    saving, level_saving = r - cost, r - lv
    share = saving / level_saving if level_saving > 0 else None
    ok = saving >= LEVEL_SHARE * level_saving if level_saving > 0 else saving >= 0
    return {"reactive_at_u": r, "level_at_u": lv, "saving": saving, "level_saving": level_saving, "share": share,
            "pass": bool(ok)}


def acceptance(rows: list[dict[str, Any]], level: pd.DataFrame, ideal: np.ndarray) -> dict[str, Any]:
    """(a) and (b) for one trace and metric mode (module docstring)."""
    df = pd.DataFrame(rows)
    reactive = df[df["policy"] == "reactive"]
    base = reactive[np.isclose(reactive["target_utilisation"], 0.7)].iloc[0]
    joint = df[df["policy"] == "joint"]
    j = joint[joint["label"] == DEFAULT_LABEL].iloc[0]
    c70, u70 = float(base["replica_minutes"]), int(base["under_provisioned_minutes"])
    cj, uj = float(j["replica_minutes"]), int(j["under_provisioned_minutes"])
    allowed = RISK_SHARE * u70
    risk_ok = uj <= allowed if u70 > 0 else uj == 0
    out: dict[str, Any] = {
        "reactive70": {"replica_minutes": c70, "under_minutes": u70},
        "joint": {"replica_minutes": cj, "under_minutes": uj, "cost_vs_reactive70": cj / c70 - 1},
        "a": {"cost_ok": cj <= c70, "risk_ok": bool(risk_ok), "allowed_under_minutes": allowed,
              "pass": bool(cj <= c70 and risk_ok)},
        "b": equal_risk(reactive, level, cj, uj),
        "ideal_at_joint_risk": float(ideal[min(uj, len(ideal) - 1)]),
    }
    sweep = [(equal_risk(reactive, level, float(p["replica_minutes"]), int(p["under_provisioned_minutes"])),
              str(p["label"])) for _, p in joint.iterrows()]
    scored = [(s["share"], label, s) for s, label in sweep if s["share"] is not None]
    if scored:
        _, label, s = max(scored, key=lambda x: x[0])
        out["b_best"] = {"label": label, **s}
    fixed = df[df["policy"] == "fixed"]
    cheap = fixed[(fixed["replica_minutes"] <= c70) & (fixed["under_provisioned_minutes"] <= allowed if u70 else
                                                        fixed["under_provisioned_minutes"] == 0)]
    if len(cheap):
        h = cheap.sort_values(["replica_minutes", "under_provisioned_minutes"]).iloc[0]
        out["hindsight"] = {"label": str(h["label"]), "replica_minutes": float(h["replica_minutes"]),
                            "under_minutes": int(h["under_provisioned_minutes"])}
    return out


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "–" if x is None else format(x, fmt)


def _a_cell(a: dict[str, Any]) -> str:
    j, r = a["joint"], a["reactive70"]
    verdict = "pass" if a["a"]["pass"] else "**MISS**"
    return (f"{verdict}: {j['replica_minutes']:,.0f} replica-min (bound <= {r['replica_minutes']:,.0f}), "
            f"{j['under_minutes']:,} under-min (bound <= {a['a']['allowed_under_minutes']:,.1f})")


def _b_cell(b: dict[str, Any]) -> str:
    if b.get("pass") is None:
        return "– (outside the reactive curve's range)"
    verdict = "pass" if b["pass"] else "**MISS**"
    share = "–" if b["share"] is None else f"{b['share']:.0%}"
    return (f"{verdict}: saves {b['saving']:,.0f} vs level foresight's {b['level_saving']:,.0f} = {share} "
            f"(bound >= {LEVEL_SHARE:.0%})")


def render(results: dict[str, Any]) -> str:
    """Markdown: acceptance per trace and metric, the budget sweep, the choices made, the reactive curve."""
    sources = results.get("sources") or [results]
    lines = [f"`{s['command']}` (commit {s['git_commit']}, {s['started_utc']})" for s in sources] + [""]
    lines += ["| trace | metrics | reactive 70 % (replica-min / under-min) | joint, default budget | (a) cost <= "
              "reactive 70 %, under-min <= half | (b) equal-risk saving >= 50 % of 15-min level foresight's | best "
              "budget on (b) | perfect-foresight bound at the joint's risk |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, tr in results["traces"].items():
        for mode, m in tr["modes"].items():
            a = m["acceptance"]
            j, r = a["joint"], a["reactive70"]
            best = a.get("b_best")
            best_cell = "–" if not best else (f"{best['label']}: {best['share']:.0%}" if best["share"] is not None
                                              else best["label"])
            lines.append(f"| {name} | {mode} | {r['replica_minutes']:,.0f} / {r['under_minutes']:,} | "
                         f"{j['replica_minutes']:,.0f} / {j['under_minutes']:,} ({j['cost_vs_reactive70']:+.1%}) | "
                         f"{_a_cell(a)} | {_b_cell(a['b'])} | {best_cell} | {a['ideal_at_joint_risk']:,.0f} |")
    lines += ["", "Joint policy per risk budget (replica-min / under-provisioned min; the choice is re-made each "
              "day from the replay of the days before):", ""]
    budgets = list(next(iter(next(iter(results["traces"].values()))["modes"].values()))["budgets"])
    lines += ["| trace | metrics | " + " | ".join(budgets) + " |", "| --- | --- | " + " | ".join("---:" for _ in
                                                                                              budgets) + " |"]
    for name, tr in results["traces"].items():
        for mode, m in tr["modes"].items():
            cells = []
            for b in budgets:
                row = next(r for r in m["rows"] if r["policy"] == "joint" and r["budget"] == b)
                cells.append(f"{row['replica_minutes']:,.0f} / {row['under_provisioned_minutes']:,}")
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "Settings the default budget chose (days per setting; `stale` = no change for lack of input):", ""]
    for name, tr in results["traces"].items():
        for mode, m in tr["modes"].items():
            counts = pd.Series([c["setting"] + (" (stale)" if c["stale"] else "") for c in m["choices"]])
            shown = ", ".join(f"{k} x{v}" for k, v in counts.value_counts().items())
            lines.append(f"- {name}, {mode}: {shown}")
    lines += ["", "Reactive curve (replica-min / under-provisioned min per HPA target):", ""]
    targets = [f"{r['target_utilisation']:.2f}" for r in next(iter(next(iter(results["traces"].values()))["modes"]
                                                                   .values()))["rows"] if r["policy"] == "reactive"]
    lines += ["| trace | metrics | " + " | ".join(targets) + " |", "| --- | --- | " + " | ".join("---:" for _ in
                                                                                              targets) + " |"]
    for name, tr in results["traces"].items():
        for mode, m in tr["modes"].items():
            cells = [f"{r['replica_minutes']:,.0f} / {r['under_provisioned_minutes']:,}" for r in m["rows"]
                     if r["policy"] == "reactive"]
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "Best fixed bank setting in hindsight meeting (a) (a reference: no policy knows it in advance):", ""]
    for name, tr in results["traces"].items():
        for mode, m in tr["modes"].items():
            h = m["acceptance"].get("hindsight")
            text = "none" if not h else f"{h['label']}: {h['replica_minutes']:,.0f} / {h['under_minutes']:,}"
            lines.append(f"- {name}, {mode}: {text}")
    return "\n".join(lines) + "\n"


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' results as one: their traces and, under ``sources``, each run's command, commit, start time and
    traces; the rest of the first part's metadata. A trace in a later part adds its metric modes to an earlier
    part's when both replayed the same window (e.g. ``--metrics cpu`` and ``--metrics requests`` as two processes),
    else replaces it."""
    out: dict[str, Any] = {**parts[0], "traces": {}, "sources": []}
    for part in parts:
        for source in part.get("sources") or [part]:
            out["sources"].append({k: source.get(k) for k in ("command", "git_commit", "started_utc")} |
                                  {"traces": list(part["traces"])})
        for name, trace in part["traces"].items():
            known = out["traces"].get(name)
            if known is not None and known["window"] == trace["window"]:
                out["traces"][name] = {**known, "modes": {**known["modes"], **trace["modes"]}}
            else:
                out["traces"][name] = trace
    return out


def main() -> None:
    import json

    from common import RESULTS, write_results

    ap = argparse.ArgumentParser(description="Merge autoscaling results files into one table.")
    ap.add_argument("names", nargs="+", help="results names under benchmarks/results (without .json)")
    ap.add_argument("--output", required=True, help="results name to write (.json and .md)")
    args = ap.parse_args()
    merged = merge([json.loads((RESULTS / f"{n}.json").read_text()) for n in args.names])
    md = render(merged)
    write_results(args.output, merged, md)
    print(md)


if __name__ == "__main__":
    main()
