"""Model rollout benchmark (issue 24): a refit on a bad day, served at once (today) or kept in shadow (rollout).

Protocol:

- Trace: the bundled NASA requests per 5 minutes (``forecaster.datasets.load_nasa_5min``; three weeks of July 1995),
  each bucket's count spread evenly over its minutes as the minute demand the simulated cluster serves.
- Fault (``--fault``): the exporter the forecaster reads reports **zeros** (default) or ten times the requests
  (``x10``) for the six hours before the refit at ``R`` (a UTC midnight, ``--refit``); the cluster and the HPA see the
  true demand throughout. ``none`` replays without a fault (rollout must then cost nothing).
- Forecasts: the decision cycle's own providers asked exactly as ``forecaster.simulate.forecasting.rolling_forecasts``
  asks its provider (refit daily at midnight on the last ``--history`` days, refresh every 5 minutes, 6 steps of
  5 minutes ahead, the busiest minute per bucket, bands 80/95), from ``R - 1 day`` (so every run's first model, fitted
  then, serves at once and the runs are identical up to ``R``): ``clean`` (today's ``EngineForecastProvider`` on the
  true demand), ``today`` (the same provider on the faulty feed: the refit at ``R`` serves at once), ``kept out``
  (the counterfactual: today's provider on the faulty feed that does not refit during the day from ``R``, as if the
  refit had been kept out by hand) and ``rollout`` (``RolloutProvider`` with the default ``RolloutPolicy``: margin
  2 %, 48 to 288 points, z 1.645, stale after 3 days, on the faulty feed).
- Replay: ``forecaster.simulate.replay`` of the true minute demand over ``[R, R + --days)``, predictive floor from
  ``hi-80`` (lead 180 s) over the faithful reactive HPA (CPU metric one minute late, target 0.7), pods ready 120 s
  after they are asked for, capacity per pod sized so the replayed peak needs 40 pods.
- Reported per run: under-provisioned minutes, replica-minutes, unserved demand, scaling actions; the MAE of the first
  step of each issued forecast against the true demand; the minutes whose floor differs from ``kept out`` (0 for
  ``rollout`` means its decisions are exactly those the bad refit would have left unchanged); and the rollout's model
  history (what was promoted or kept out, when, why, the scores).

Run: ``nice -n 10 python benchmarks/rollout.py`` (a few minutes per run on 2 cores); ``--fault x10``; ``--members``.
Writes ``results/rollout[_<fault>].json`` and ``.md`` (the issued forecasts: ``.cache/rollout_<fault>_<run>.parquet``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import fmt, md_table, progress, run_meta, write_results  # noqa: E402
from traces import CACHE  # noqa: E402

from forecaster.contracts.clock import freq_to_timedelta  # noqa: E402
from forecaster.contracts.frames import DS, ENSEMBLE, Y, band_columns  # noqa: E402
from forecaster.cycle.forecast import EngineForecastProvider, Model, RolloutProvider  # noqa: E402
from forecaster.cycle.rollout import RolloutEvent  # noqa: E402
from forecaster.cycle.schedule import refit_times  # noqa: E402
from forecaster.cycle.spec import ForecastSpec  # noqa: E402
from forecaster.datasets import load_nasa_5min  # noqa: E402
from forecaster.simulate import capacity_for_peak, replay  # noqa: E402
from forecaster.simulate.forecasting import KEY, ForecastSchedule, aggregate_demand, spec_of  # noqa: E402
from forecaster.simulate.providers import BACKTEST_MAE, ISSUED_AT  # noqa: E402

FAULT_HOURS = 6
STARTUP_S = 120.0
TARGET = 0.7
RUNS = ("clean", "today", "kept out", "rollout")


@dataclass
class KeptOut(EngineForecastProvider):
    """Today's provider that does not refit a key it has a model for in ``[skip_from, skip_to)``: the counterfactual
    of a bad refit kept out by hand (its schedule's refit decision, ``_needs_refit``, is the one thing changed)."""

    skip_from: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.max.tz_localize("UTC"))
    skip_to: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.max.tz_localize("UTC"))

    def _needs_refit(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> bool:
        model = self.model(key)
        if self.skip_from <= now < self.skip_to and model is not None and model.spec == spec:
            return False
        return super()._needs_refit(key, spec, now)


def minute_demand() -> pd.Series:
    """The bundled NASA 5-minute counts as demand per minute (each count spread evenly over its five minutes)."""
    five = load_nasa_5min()
    per = pd.Series(five[Y].to_numpy(float) / 5.0, index=pd.DatetimeIndex(five[DS]))
    minutes = pd.date_range(per.index[0], per.index[-1] + pd.Timedelta("4min"), freq="1min")
    return per.reindex(minutes.floor("5min")).set_axis(minutes)


def faulty(demand: pd.Series, refit: pd.Timestamp, fault: str) -> pd.Series:
    """What the broken exporter reports: ``fault`` over the ``FAULT_HOURS`` before ``refit``."""
    out = demand.copy()
    bad = (out.index >= refit - pd.Timedelta(hours=FAULT_HOURS)) & (out.index < refit)
    if fault == "zeros":
        out[bad] = 0.0
    elif fault == "x10":
        out[bad] = 10.0 * out[bad]
    return out


def issue(provider: EngineForecastProvider, feed: pd.Series, start: pd.Timestamp, end: pd.Timestamp,
          schedule: ForecastSchedule, label: str) -> pd.DataFrame:
    """Forecasts issued every refresh in ``[start, end)`` from ``feed`` (rolling_forecasts' loop, any provider)."""
    spec, step = spec_of(schedule), freq_to_timedelta(schedule.freq)
    buckets = aggregate_demand(feed, schedule.freq, schedule.agg)
    ds_end = buckets[DS] + step
    cols = band_columns(ENSEMBLE, schedule.levels)
    times = refit_times(start, end, freq_to_timedelta(schedule.refresh_every))
    parts = []
    with progress() as bar:
        task = bar.add_task(f"{label}: rolling forecasts", total=len(times))
        for t in times:
            begin, _ = provider.history_window(KEY, spec, t)
            history = buckets[(buckets[DS] >= begin) & (ds_end <= t)]
            pred = provider.forecast(KEY, spec, history, t)
            pred = pred[pred[DS] >= t]
            mae = provider.backtest_mae(KEY)
            parts.append(pd.DataFrame({ISSUED_AT: t, DS: pred[DS].to_numpy(), **{c: pred[c].clip(lower=0.0)
                                                                                  for c in cols},
                                       BACKTEST_MAE: np.nan if mae is None else mae}))
            bar.update(task, advance=1)
    return pd.concat(parts, ignore_index=True)


def outcomes(demand: pd.Series, forecasts: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
             cap: float) -> tuple[dict[str, Any], pd.Series]:
    """The replay of ``[start, end)`` under the predictive floor: its outcomes and the floor per minute."""
    window = demand.loc[start: end - pd.Timedelta("1min")]
    res = replay(window, "predictive", capacity_per_pod=cap, startup_s=STARTUP_S, target_utilisation=TARGET,
                 forecasts=forecasts, quantile="hi-80", bad_values="fill", metric="cpu", metric_delay_s=60)
    o = res.outcomes
    return ({"under_provisioned_minutes": o.under_provisioned_minutes, "replica_minutes": o.replica_minutes,
             "unserved_demand": o.unserved, "scaling_actions": o.scaling_actions},
            res.frame["floor"])


def point_mae(forecasts: pd.DataFrame, demand: pd.Series, start: pd.Timestamp, end: pd.Timestamp,
              schedule: ForecastSchedule) -> float:
    """MAE of the first step of each issued forecast in the window against the true busiest minute of its bucket."""
    truth = aggregate_demand(demand, schedule.freq, schedule.agg)[[DS, Y]]
    first = forecasts[(forecasts[ISSUED_AT] >= start) & (forecasts[ISSUED_AT] < end)]
    first = first.sort_values([ISSUED_AT, DS]).groupby(ISSUED_AT, as_index=False).head(1)
    joined = first.merge(truth, on=DS, how="inner")
    return float(np.abs(joined[ENSEMBLE] - joined[Y]).mean())


def history_rows(events: list[tuple[RolloutEvent, str]]) -> list[dict[str, Any]]:
    rows = []
    for e, span in events:
        ev = e.evidence
        rows.append({"at": e.at.isoformat(), "event": e.kind, "version": e.version, "trained_up_to": span,
                     "reason": e.reason,
                     "n_points": None if ev is None else ev.n_points,
                     "pinball_champion": None if ev is None else ev.champion.pinball,
                     "pinball_challenger": None if ev is None else ev.challenger.pinball,
                     "mae_champion": None if ev is None else ev.champion.mae,
                     "mae_challenger": None if ev is None else ev.challenger.mae})
    return rows


def render(payload: dict[str, Any]) -> str:
    a = payload["args"]
    lines = [f"# Model rollout: a refit on a bad day ({a['fault']} for {FAULT_HOURS} h before the refit at "
             f"{a['refit']})\n",
             f"NASA (bundled, 5-minute counts spread over their minutes), replay {a['days']} day(s) from the refit; "
             f"capacity per pod {payload['capacity_per_pod']:.3g} (peak = 40 pods); hi-80 floor, lead 180 s; CPU "
             "HPA at 0.7, metrics 1 min late. Command: `" + payload["meta"]["command"] + "`\n"]
    for window, rows in payload["windows"].items():
        lines.append(f"\n## {window}\n")
        lines.append(md_table(rows, ["run", "under_provisioned_minutes", "replica_minutes", "unserved_demand",
                                     "scaling_actions", "point_mae", "floor_minutes_differing_from_kept_out"],
                              ["run", "under-prov. min", "replica-min", "unserved", "actions", "point MAE",
                               "floor min != kept out"]))
    lines.append("\n## Rollout's model history\n")
    lines.append(md_table(payload["rollout_history"], ["at", "event", "version", "trained_up_to", "n_points",
                                                       "pinball_champion", "pinball_challenger", "mae_champion",
                                                       "mae_challenger", "reason"],
                          ["at", "event", "version", "trained up to", "points", "pinball champion",
                           "pinball challenger", "MAE champion", "MAE challenger", "why"]))
    lines.append(f"\nForecasting took {fmt(payload['seconds'])} s.\n")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fault", choices=("zeros", "x10", "none"), default="zeros")
    ap.add_argument("--refit", default="1995-07-18T00:00Z", help="The refit after the fault (a UTC midnight).")
    ap.add_argument("--days", type=float, default=1.0, help="Days replayed from the refit.")
    ap.add_argument("--history", default="7D", help="Training window of each refit.")
    ap.add_argument("--members", default="seasonal,lgbm", help="Engine members (comma-separated).")
    args = ap.parse_args()
    refit = pd.Timestamp(args.refit)
    end = refit + pd.Timedelta(days=args.days)
    schedule = ForecastSchedule(history=args.history, horizon=6,
                                forecaster={"members": tuple(args.members.split(","))})
    demand = minute_demand()
    feed = faulty(demand, refit, args.fault)
    start = refit - pd.Timedelta("1D")
    cap = capacity_for_peak(demand.loc[refit: end - pd.Timedelta("1min")], pods=40)
    seen: list[tuple[RolloutEvent, str]] = []
    trained: dict[str, str] = {}
    """Version -> the end of its training data (its last bucket when first seen: refreshes move ``last_ds`` on)."""

    def version(key: str, model: Model) -> str:
        return f"fit-{model.last_ds:%m%dT%H%M}"

    def record(event: RolloutEvent, model: Model) -> None:
        seen.append((event, trained.setdefault(event.version, str(model.last_ds))))

    providers: dict[str, tuple[EngineForecastProvider, pd.Series]] = {
        "clean": (EngineForecastProvider(options=dict(schedule.forecaster)), demand),
        "today": (EngineForecastProvider(options=dict(schedule.forecaster)), feed),
        "kept out": (KeptOut(options=dict(schedule.forecaster), skip_from=refit,
                             skip_to=refit + pd.Timedelta("1D")), feed),
        "rollout": (RolloutProvider(options=dict(schedule.forecaster), on_fit=version, on_event=record), feed),
    }
    t0 = time.perf_counter()
    frames = {name: issue(p, f, start, end, schedule, name) for name, (p, f) in providers.items()}
    seconds = time.perf_counter() - t0
    CACHE.mkdir(exist_ok=True)
    for name, frame in frames.items():  # for a look at the issued forecasts themselves
        frame.to_parquet(CACHE / f"rollout_{args.fault}_{name.replace(' ', '_')}.parquet")
    windows: dict[str, list[dict[str, Any]]] = {}
    spans = {f"the day after the refit ({refit:%Y-%m-%d %H:%M} + 1 day)": (refit, refit + pd.Timedelta("1D"))}
    if args.days > 1:
        spans[f"{args.days:g} days from the refit"] = (refit, end)
    for label, (a, b) in spans.items():
        floors: dict[str, pd.Series] = {}
        rows = []
        for name in RUNS:
            out, floors[name] = outcomes(demand, frames[name], a, b, cap)
            rows.append({"run": name, **out, "point_mae": point_mae(frames[name], demand, a, b, schedule)})
        for row in rows:
            row["floor_minutes_differing_from_kept_out"] = int((floors[row["run"]] != floors["kept out"]).sum())
        windows[label] = rows
    payload = {"meta": run_meta(), "args": vars(args), "capacity_per_pod": cap, "seconds": seconds,
               "windows": windows, "rollout_history": history_rows(seen)}
    name = "rollout" if args.fault == "zeros" else f"rollout_{args.fault}"
    json_path, md_path = write_results(name, payload, render(payload))
    print(render(payload))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
