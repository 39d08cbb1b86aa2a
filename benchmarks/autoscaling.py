"""Autoscaling benchmark: reactive HPA vs predictive floor + HPA vs oracle, replayed minute by minute.

Protocol (DESIGN.md "Measuring / Autoscaling"; issue 4):

- Traces (``../shared/traces``): NASA requests per minute, Azure V2 fleet CPU cores (5-minute samples held
  over their minutes), Alibaba 2018 cluster CPU % (30-second samples averaged per minute). Each is replayed
  over its last ``--days`` days (default 14; Alibaba, 7.8 days long, over its last 4); earlier data only
  trains the forecaster.
- Capacity per pod so that the replayed peak minute needs 40 pods at 100 % (``capacity_for_peak``);
  pods are ready 120 s after they are asked for and billed from then.
- Reactive: the simulated HPA (``forecaster.simulate.hpa``) at target utilisation 0.50 ... 0.90.
- Predictive: the same HPA plus a ``minReplicas`` floor from the forecasting engine, refitted daily and
  refreshed every 5 minutes during the replay on data before each issue time
  (``forecaster.simulate.forecasting.rolling_forecasts``, busiest minute per 5-minute bucket); lead time =
  start-up + refresh interval (7 min). Swept: HPA target (0.7/0.8/0.9/0.95), band (median, hi-80, hi-95),
  margin (0/5/10/25 %), and the utilisation the floor is sized at (the HPA target or 1.0).
- Oracle: the floor from the true future demand (same post-processing), at the same HPA targets.
- Outcomes: under-provisioned minutes (demand above ready capacity), unserved demand, replica-minutes,
  scaling actions. Both Pareto curves and the oracle points are plotted per trace.

Acceptance figures computed here: (a) among predictive points costing no more replica-minutes than the
reactive HPA at 70 %, the fewest under-provisioned minutes, as a reduction against it (target >= 90 %);
(b) the largest replica-minute saving of a predictive point against the reactive curve interpolated at the
same under-provisioned minutes (target >= 15 %); (c) the oracle gap; (d) the bound on (b): the largest saving
*any* policy could show at equal under-provisioned minutes, from the perfect-foresight, instant-pod minimum
``forecaster.simulate.bounds`` (a (b) target above it cannot be met on that trace); (e) the level-foresight
reference: (a) and (b) for policies that know the true centred 5/15/60-minute mean of the demand but not the
minutes inside it (``level_foresight_curve``), which shows whether a target needs foresight of the bursts.

Run: ``python benchmarks/autoscaling.py`` (~25 min the first time: the rolling forecasts are cached in
``benchmarks/.cache``; sweeps take ~2 min per trace), ``--quick`` (2 days of NASA, small sweep).
Writes ``benchmarks/results/autoscaling.json``/``.md`` and ``autoscaling_<trace>.png``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import traces  # noqa: E402
from common import RESULTS, progress, run_meta, write_results  # noqa: E402

from forecaster.plots import pareto_chart, replay_chart  # noqa: E402
from forecaster.simulate import capacity_for_peak, replay  # noqa: E402
from forecaster.simulate.bounds import cheapest_within, ideal_curve, level_foresight_curve  # noqa: E402
from forecaster.simulate.forecasting import ForecastSchedule, forecast_errors, rolling_forecasts  # noqa: E402

CACHE = traces.CACHE
STARTUP_S = 120
REFRESH = "5min"
LEAD_TIME_S = STARTUP_S + 300
REACTIVE_TARGETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
PREDICTIVE_TARGETS = (0.7, 0.8, 0.9, 0.95)
BANDS = ("ensemble", "hi-80", "hi-95")
MARGINS = (0.0, 0.05, 0.1, 0.25)
"""Predictive knobs: HPA target x band x margin x the floor's own utilisation (the HPA target, or 1.0: the
forecast is of each 5-minute bucket's busiest minute, which the floor may size at full capacity)."""


def minute_demand(name: str) -> pd.Series:
    """The trace as demand per minute on a tz-aware index (NaN where the trace has no data)."""
    root = traces.DEFAULT_TRACES
    if name == "nasa":
        m = traces.nasa_minutes(root)
        return pd.Series(m["requests"].where(m["observed"]).to_numpy(float), index=pd.DatetimeIndex(m["ds"]))
    if name == "azure":
        f = traces.load_azure(root).frame
        s = pd.Series(f["y"].to_numpy(float), index=pd.DatetimeIndex(f["ds"]))
        return s.resample("1min").ffill(limit=4)
    if name == "alibaba":
        raw = pd.read_csv(root / "alibaba2018-machine-agg" / "machine_usage_days_1_to_8_grouped_30_seconds.csv")
        ds = traces.ALIBABA_ANCHOR + pd.to_timedelta(np.arange(len(raw)) * 30, unit="s")
        s = pd.Series(raw["cpu_util_percent"].to_numpy(float), index=pd.DatetimeIndex(ds))
        return s.resample("1min").mean()
    raise SystemExit(f"unknown trace {name!r}")


def replay_window(demand: pd.Series, days: float) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last ``days`` days of the trace, starting at a midnight (UTC)."""
    end = pd.DatetimeIndex(demand.dropna().index).max() + pd.Timedelta("1min")
    start = (end - pd.Timedelta(days=days)).ceil("1D")
    return start, end


def cached_forecasts(name: str, demand: pd.Series, start: pd.Timestamp, end: pd.Timestamp,
                     schedule: ForecastSchedule) -> tuple[pd.DataFrame, float]:
    """Rolling forecasts for the replay window (cached by trace, window and schedule); seconds spent."""
    key = json.dumps([name, str(start), str(end), asdict(schedule)], sort_keys=True, default=str)
    path = CACHE / f"autoscaling_{name}_{hashlib.sha1(key.encode()).hexdigest()[:10]}.parquet"
    if path.exists():
        return pd.read_parquet(path), 0.0
    t0 = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(f"{name}: rolling forecasts", total=1)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        frame = rolling_forecasts(demand.loc[: end - pd.Timedelta("1ns")], start, end, schedule, progress=tick)
    CACHE.mkdir(exist_ok=True)
    frame.to_parquet(path)
    return frame, time.perf_counter() - t0


def sweep(name: str, demand: pd.Series, forecasts: pd.DataFrame,
          quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All replays of one trace; returns the outcome rows and the replays to plot.

    The circuit breaker stays closed here (no ``backtest_mae`` is given: the only honest one would come from
    a backtest before the window, and the unit tests cover the breaker); staleness still applies."""
    cap = capacity_for_peak(demand, 40)
    common: dict[str, Any] = {"capacity_per_pod": cap, "startup_s": STARTUP_S, "bad_values": "fill",
                              "keep_decisions": False, "max_replicas": 400}
    runs: list[tuple[str, str, dict[str, Any]]] = []
    for t in REACTIVE_TARGETS if not quick else (0.5, 0.7, 0.9):
        runs.append(("reactive", f"{t:.2f}", {"policy": "reactive", "target_utilisation": t}))
    for t in PREDICTIVE_TARGETS if not quick else (0.7, 0.9):
        for band in BANDS:
            for margin in MARGINS if not quick else (0.0,):
                for fu in sorted({t, 1.0}):
                    runs.append(("predictive", f"{t:g}/{band}/+{margin:.0%}/u{fu:g}", {
                        "policy": "predictive", "target_utilisation": t, "quantile": band, "margin": margin,
                        "lead_time_s": LEAD_TIME_S, "forecasts": forecasts,
                        "policy_settings": {"stale_after_s": 1800, "target_utilisation": fu}}))
        runs.append(("oracle", f"{t:g}", {"policy": "oracle", "target_utilisation": t,
                                             "lead_time_s": LEAD_TIME_S}))
    rows: list[dict[str, Any]] = []
    keep: dict[str, Any] = {}
    with progress() as bar:
        task = bar.add_task(f"{name}: replays", total=len(runs))
        for policy, label, kw in runs:
            t0 = time.perf_counter()
            res = replay(demand, **common, **kw)
            row = {**res.outcomes.as_dict(), "policy": policy, "label": label,
                   "target_utilisation": kw["target_utilisation"], "quantile": kw.get("quantile"),
                   "margin": kw.get("margin"), "seconds": round(time.perf_counter() - t0, 2)}
            rows.append(row)
            if (policy, label) in (("reactive", "0.70"), ("oracle", "0.7")):
                keep[policy] = res
            bar.advance(task)
    best = acceptance(rows)
    if best.get("best_label"):
        kw = next(k for p, lab, k in runs if p == "predictive" and lab == best["best_label"])
        keep["predictive"] = replay(demand, **{**common, "keep_decisions": True}, **kw)
    return rows, {"capacity_per_pod": cap, "acceptance": best, "replays": keep}


def _interp_cost(reactive: pd.DataFrame, under: float) -> float | None:
    """Replica-minutes of the reactive Pareto frontier at ``under`` under-provisioned minutes.

    The frontier keeps, for each under-provisioned count, the cheapest reactive point, and only points cheaper
    than every point with fewer under-provisioned minutes; between them cost is linear in log(1 + under).
    None outside the frontier's range (no extrapolation)."""
    r = reactive.groupby("under_provisioned_minutes", as_index=False)["replica_minutes"].min()
    r = r.sort_values("under_provisioned_minutes")
    r = r[r["replica_minutes"] < r["replica_minutes"].cummin().shift(1, fill_value=np.inf)]
    x = np.log1p(r["under_provisioned_minutes"].to_numpy(float))
    y = r["replica_minutes"].to_numpy(float)
    xu = float(np.log1p(under))
    if xu < x.min() or xu > x.max():
        return None
    return float(np.interp(xu, x, y))


def ideal_figures(rows: list[dict[str, Any]], window: pd.Series, cap: float) -> dict[str, Any]:
    """Perfect-foresight, instant-pod bounds (``forecaster.simulate.bounds``) against the reactive sweep.

    ``ideal_zero_risk``: fewest replica-minutes with no short minute. ``max_possible_equal_risk_saving``: the
    largest saving any policy could show against the reactive frontier at equal under-provisioned minutes
    (the best over the frontier's range of ``1 - B(u) / reactive(u)``); a (b) target above it is out of reach."""
    reactive = pd.DataFrame([r for r in rows if r["policy"] == "reactive"])
    top = int(reactive["under_provisioned_minutes"].max())
    curve = ideal_curve(window, cap, top, bad_values="fill")
    best, at = -np.inf, 0
    for u in range(top + 1):
        cost = _interp_cost(reactive, float(u))
        if cost and 1 - curve[u] / cost > best:
            best, at = 1 - curve[u] / cost, u
    return {"ideal_zero_risk": float(curve[0]), "max_possible_equal_risk_saving": float(best),
            "max_possible_at_under_minutes": at}


LEVEL_WINDOWS = (5, 15, 60)
"""Minutes over which the level-foresight reference knows the future mean (``forecaster.simulate.bounds``)."""


def level_figures(rows: list[dict[str, Any]], window: pd.Series, cap: float) -> dict[str, Any]:
    """The acceptance figures (a) and (b) for policies that know the future *level* exactly.

    Per ``LEVEL_WINDOWS`` width ``w``: the level-foresight curve (instant pods, the best fixed headroom over the
    true centred ``w``-minute mean; ``level_foresight_curve``), then (a) its cheapest point with at most 10 % of the
    reactive-70 % under-provisioned minutes, against that reactive point's cost, and (b) its largest saving
    against the reactive frontier at equal under-provisioned minutes. A policy that only forecasts the level
    is not expected to beat these; where they miss a target, the target needs foresight of the bursts."""
    reactive = pd.DataFrame([r for r in rows if r["policy"] == "reactive"])
    base = reactive[reactive["label"] == "0.70"].iloc[0]
    allowed = int(np.floor(0.1 * base["under_provisioned_minutes"]))
    out: dict[str, Any] = {"allowed_under_minutes": allowed}
    for w in LEVEL_WINDOWS:
        curve = level_foresight_curve(window, cap, window=w, bad_values="fill")
        cost_a = cheapest_within(curve, allowed)
        best, at = None, None
        for _, p in curve.iterrows():
            cost = _interp_cost(reactive, float(p["under_provisioned_minutes"]))
            if cost and (best is None or 1 - p["replica_minutes"] / cost > best):
                best, at = 1 - p["replica_minutes"] / cost, int(p["under_provisioned_minutes"])
        out[str(w)] = {"a_cost": cost_a, "a_fits": None if cost_a is None else bool(cost_a <= base["replica_minutes"]),
                       "b_saving": best, "b_at_under_minutes": at}
    return out


def chart_references(rows: list[dict[str, Any]], window: pd.Series, cap: float) -> dict[str, pd.DataFrame]:
    """Reference curves for the Pareto chart: the perfect-foresight bound and 15-minute level foresight."""
    top = int(max(r["under_provisioned_minutes"] for r in rows))
    bound = ideal_curve(window, cap, top, bad_values="fill")
    return {
        "bound: perfect foresight, instant pods": pd.DataFrame(
            {"replica_minutes": bound, "under_provisioned_minutes": np.arange(len(bound))}),
        "reference: 15-min level foresight": level_foresight_curve(window, cap, window=15, bad_values="fill"),
    }


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's acceptance figures from one trace's sweep (module docstring)."""
    df = pd.DataFrame(rows)
    reactive = df[df["policy"] == "reactive"]
    pred = df[df["policy"] == "predictive"]
    base = reactive[reactive["label"] == "0.70"].iloc[0]
    out: dict[str, Any] = {"reactive70_replica_minutes": float(base["replica_minutes"]),
                           "reactive70_under_minutes": int(base["under_provisioned_minutes"])}
    cheap = pred[pred["replica_minutes"] <= base["replica_minutes"]]
    if len(cheap):
        b = cheap.sort_values(["under_provisioned_minutes", "replica_minutes"]).iloc[0]
        red = 1 - b["under_provisioned_minutes"] / max(base["under_provisioned_minutes"], 1)
        out.update(best_label=str(b["label"]), best_under_minutes=int(b["under_provisioned_minutes"]),
                   best_replica_minutes=float(b["replica_minutes"]), under_reduction=float(red))
    else:
        out.update(best_label=None, under_reduction=None)
    savings = []
    for _, p in pred.iterrows():
        cost = _interp_cost(reactive, float(p["under_provisioned_minutes"]))
        if cost:
            savings.append((1 - p["replica_minutes"] / cost, str(p["label"]), int(p["under_provisioned_minutes"])))
    if savings:
        s, label, under = max(savings)
        out.update(equal_risk_saving=float(s), equal_risk_label=label, equal_risk_under_minutes=under)
    else:
        out.update(equal_risk_saving=None)
    orc = df[df["policy"] == "oracle"]
    o = orc[orc["target_utilisation"] == 0.7].iloc[0]
    out.update(oracle_under_minutes=int(o["under_provisioned_minutes"]),
               oracle_replica_minutes=float(o["replica_minutes"]))
    if out.get("best_replica_minutes"):
        out["oracle_gap_replica_minutes"] = float(out["best_replica_minutes"] / o["replica_minutes"] - 1)
        out["oracle_gap_under_minutes"] = int(out["best_under_minutes"] - o["under_provisioned_minutes"])
    return out


def render(results: dict[str, Any]) -> str:
    """Markdown: per trace, the acceptance figures and the sweep table."""
    lines = [f"`{results['command']}` (commit {results['git_commit']}, {results['started_utc']})", ""]
    lines += ["| trace | reactive 70 % (replica-min / under-min) | best predictive at <= its cost | under-min "
              "reduction (>= 90 %) | best saving at equal under-min (>= 15 %) | bound on that saving | oracle 70 % | "
              "forecast MAE / mean |", "| --- | --- | --- | ---: | ---: | ---: | --- | ---: |"]
    for name, tr in results["traces"].items():
        a = tr["acceptance"]
        red = "–" if a.get("under_reduction") is None else f"{a['under_reduction']:.1%}"
        sav = "–" if a.get("equal_risk_saving") is None else (
            f"{a['equal_risk_saving']:.1%} ({a['equal_risk_label']}, {a['equal_risk_under_minutes']} under-min)")
        ideal = tr.get("ideal") or {}
        bound = "–" if "max_possible_equal_risk_saving" not in ideal else (
            f"{ideal['max_possible_equal_risk_saving']:.1%} (at {ideal['max_possible_at_under_minutes']} under-min)")
        best = "none" if not a.get("best_label") else (
            f"{a['best_label']}: {a['best_replica_minutes']:,.0f} / {a['best_under_minutes']}")
        lines.append(f"| {name} | {a['reactive70_replica_minutes']:,.0f} / {a['reactive70_under_minutes']} | {best} | "
                     f"{red} | {sav} | {bound} | {a['oracle_replica_minutes']:,.0f} / {a['oracle_under_minutes']} | "
                     f"{tr['forecast_mae_ratio']:.3f} |")
    lines += ["", "Level foresight (a reference, not a bound): instant pods and the best fixed headroom over the true "
              "centred w-minute mean of the demand (`forecaster.simulate.bounds.level_foresight_curve`). (a) its "
              "cheapest point with at most 10 % of the reactive-70 % under-provisioned minutes; (b) its best saving "
              "against the reactive frontier at equal under-provisioned minutes.", "",
              "| trace | allowed under-min for (a) | " + " | ".join(
                  f"w={w}: (a) replica-min (fits?) | w={w}: (b) saving" for w in LEVEL_WINDOWS) + " |",
              "| --- | ---: | " + " | ".join("---: | ---:" for _ in LEVEL_WINDOWS) + " |"]
    for name, tr in results["traces"].items():
        lv = tr.get("level")
        if not lv:
            continue
        cells = []
        for w in LEVEL_WINDOWS:
            f = lv[str(w)]
            cells.append("none" if f["a_cost"] is None else f"{f['a_cost']:,.0f} ({'yes' if f['a_fits'] else 'no'})")
            cells.append("–" if f["b_saving"] is None else f"{f['b_saving']:.1%} (at {f['b_at_under_minutes']})")
        lines.append(f"| {name} | {lv['allowed_under_minutes']} | " + " | ".join(cells) + " |")
    for name, tr in results["traces"].items():
        lines += ["", f"### {name} ({tr['window']}; capacity per pod {tr['capacity_per_pod']:.3g}; "
                  f"![pareto](autoscaling_{name}.png))", "",
                  "| policy | knob (target/band/margin) | replica-min | under-prov min | unserved | actions |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
        for r in tr["rows"]:
            lines.append(f"| {r['policy']} | {r['label']} | {r['replica_minutes']:,.0f} | "
                         f"{r['under_provisioned_minutes']} | {r['unserved']:,.0f} | {r['scaling_actions']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", default="nasa,azure,alibaba", help="comma-separated: nasa, azure, alibaba")
    ap.add_argument("--days", type=float, default=14.0, help="replayed days per trace (Alibaba: at most 4)")
    ap.add_argument("--quick", action="store_true", help="NASA only, 2 days, small sweep")
    ap.add_argument("--rescore", action="store_true",
                    help="recompute the acceptance figures and tables from results/autoscaling.json (no replays)")
    args = ap.parse_args()
    if args.rescore:
        results = json.loads((RESULTS / "autoscaling.json").read_text())
        for name, tr in results["traces"].items():
            tr["acceptance"] = acceptance(tr["rows"])
            start, end = (pd.Timestamp(x.replace(" UTC", ""), tz="UTC") for x in tr["window"].split(" .. "))
            window = minute_demand(name).loc[start: end - pd.Timedelta("1ns")]
            tr["ideal"] = ideal_figures(tr["rows"], window, tr["capacity_per_pod"])
            tr["level"] = level_figures(tr["rows"], window, tr["capacity_per_pod"])
            fig = pareto_chart(pd.DataFrame(tr["rows"]), title=f"{name}: replica-minutes vs under-provisioned minutes",
                               references=chart_references(tr["rows"], window, tr["capacity_per_pod"]))
            fig.savefig(RESULTS / f"autoscaling_{name}.png", dpi=110)
        md = render(results)
        write_results("autoscaling", results, md)
        print(md)
        return
    names = ["nasa"] if args.quick else args.traces.split(",")
    results: dict[str, Any] = {**run_meta(), "traces": {}}
    schedule = ForecastSchedule(freq="5min", agg="max", refit_every="1D", refresh_every=REFRESH, horizon=6)
    results["schedule"] = asdict(schedule)
    for name in names:
        demand = minute_demand(name)
        days = 2.0 if args.quick else (min(args.days, 4.0) if name == "alibaba" else args.days)
        start, end = replay_window(demand, days)
        forecasts, secs = cached_forecasts(name, demand, start, end, schedule)
        err = forecast_errors(forecasts, demand.loc[:end], schedule.freq, schedule.agg)
        mae = float(err["abs_error"].mean())
        window = demand.loc[start: end - pd.Timedelta("1ns")]
        rows, info = sweep(name, window, forecasts, args.quick)
        keep = info.pop("replays")
        results["traces"][name] = {
            "window": f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC", "forecast_seconds": round(secs, 1),
            "forecast_mae": mae, "forecast_mae_ratio": mae / float(err["y"].mean()), **info, "rows": rows,
            "ideal": ideal_figures(rows, window, info["capacity_per_pod"]),
            "level": level_figures(rows, window, info["capacity_per_pod"]),
        }
        fig = pareto_chart(pd.DataFrame(rows), title=f"{name}: replica-minutes vs under-provisioned minutes",
                           references=chart_references(rows, window, info["capacity_per_pod"]))
        RESULTS.mkdir(exist_ok=True)
        fig.savefig(RESULTS / f"autoscaling_{name}.png", dpi=110)
        if "predictive" in keep:
            day0 = pd.Timestamp(start) + pd.Timedelta("1D")
            fig = replay_chart(keep["predictive"], title=f"{name}: predictive floor + HPA (one day)",
                               start=day0, end=day0 + pd.Timedelta("1D"))
            fig.savefig(RESULTS / f"autoscaling_{name}_day.png", dpi=110)
    md = render(results)
    write_results("autoscaling_quick" if args.quick else "autoscaling", results, md)
    print(md)


if __name__ == "__main__":
    main()
