"""The joint policy's selection from a replay of a workload's own recent history.

``select`` is the entry point the refit step calls (once per workload per refit): it replays the last ``days`` days
of minute demand with the forecasts that were issued over them (the ``issued_at`` frame
``forecaster.simulate.forecasting.rolling_forecasts`` returns, or the stored forecasts) under every setting of the
bank (``forecaster.scaling.joint.default_bank``) and under the reactive HPA alone at the budget's reference target,
then lets ``forecaster.scaling.joint.choose`` pick the cheapest setting within the risk budget and explain it.

It is split in two so that a benchmark can replay each setting once over a long span and choose day after day from
the same replays: ``bank_outcomes`` (one replay per setting, outcomes per UTC day) and ``choose_on`` (the choice at
one moment from the days before it). Replaying a longer span than ``days`` only warms the replay's state (pods, HPA
window, floor) up before the days that count.

Speed: a bank replays the same forecasts dozens of times, so ``bank_outcomes`` drives the cycle's floor
(``forecaster.cycle.decide.decide_floor``, as ``PredictivePolicy`` does) through ``SharedBandPolicy``: every issue is
converted to a band once for all replays, and the error log is skipped when no issue carries a backtest MAE (the
breaker cannot open without one, so the decisions are the same; ``tests/simulate/test_sim_tune.py`` checks that they
are). With backtest MAEs the bank replays through ``PredictivePolicy``.

Input checks (``choose_on``): at least ``min_days`` (1) of the window replayed, and a fresh forecast (issued at most
``stale_after_s`` before, 30 min) for at least ``min_coverage`` (90 %) of its minutes; otherwise the setting in
force is kept ("no change on stale input").

Pure: numpy/pandas, replays through ``forecaster.simulate.replay``. Called by ``benchmarks/autoscaling.py`` and the
decision cycle's refit step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.cycle.accuracy import ErrorSummary
from forecaster.cycle.decide import decide_floor
from forecaster.cycle.forecast import IssuedForecast
from forecaster.scaling.decision import ScalingDecision
from forecaster.scaling.joint import (
    DEFAULT_BUDGET,
    JointChoice,
    JointSetting,
    RiskBudget,
    TargetBounds,
    Trial,
    choose,
    default_bank,
    keep,
)
from forecaster.scaling.policy import ScalingPolicy
from forecaster.scaling.settings import PolicySettings
from forecaster.simulate.policies import FINGERPRINT, FloorPolicy, PredictivePolicy
from forecaster.simulate.providers import ISSUED_AT, FrameProvider
from forecaster.simulate.replay import replay
from forecaster.simulate.trace import MINUTE_NS, MinuteTrace, minute_trace

REFERENCE = "reactive"
DAY = pd.Timedelta("1D")
OUTCOME_COLUMNS = ("label", "kind", "target_utilisation", "day", "minutes", "replica_minutes", "under_minutes")
"""``bank_outcomes`` rows: the setting's label (``reactive at 70%`` for a reference), ``kind`` (``joint`` or
``reactive``), its HPA target, the UTC day, minutes replayed that day, replica-minutes and under-provisioned minutes."""


class SharedBands:
    """Each issue of a ``FrameProvider`` as the cycle's ``IssuedForecast``, its band converted once and shared by
    every policy that reads it (the frame itself is not kept: the floor reads only the band)."""

    def __init__(self, provider: FrameProvider) -> None:
        self.provider = provider
        self._issues: dict[int, IssuedForecast] = {}
        self.has_backtest_mae = any(provider.backtest_mae_of(t) is not None for t in provider.issued_ns)

    def at(self, now_ns: int) -> IssuedForecast | None:
        """The issue in force at ``now_ns`` (``None`` before the first)."""
        i = self.provider.issue_at(now_ns)
        if i is None:
            return None
        found = self._issues.get(i)
        if found is None:
            issued_ns = int(self.provider.issued_ns[i])
            got = self.provider.band_at(issued_ns)
            assert got is not None
            found = IssuedForecast(pd.DataFrame(), pd.Timestamp(issued_ns, tz="UTC"), FINGERPRINT,
                                   self.provider.backtest_mae_of(issued_ns), self.provider.low_confidence_of(i))
            found.__dict__["band"] = got[1]  # the cached property, already converted
            self._issues[i] = found
        return found


class SharedBandPolicy:
    """``PredictivePolicy``'s decisions (``decide_floor`` on the issue in force) for forecasts without a backtest MAE,
    reading bands from a ``SharedBands`` (module docstring, "Speed")."""

    name = "predictive"

    def __init__(self, bands: SharedBands, *, keep_decisions: bool = False) -> None:
        if bands.has_backtest_mae:
            raise InputError("forecasts carry backtest MAEs: replay them through PredictivePolicy (the breaker)")
        self.bands = bands
        self.keep_decisions = keep_decisions
        self.decisions: list[ScalingDecision] = []

    def bind(self, trace: MinuteTrace, settings: PolicySettings | None) -> None:
        """Fresh policy state for a replay."""
        assert settings is not None
        self.settings = settings
        self.policy = ScalingPolicy(settings)
        self.decisions = []

    def floor(self, minute: int, now_ns: int, reactive_floor: int) -> int | None:
        """One decision of the cycle's predictive floor."""
        forecast = self.bands.at(now_ns)
        errors = ErrorSummary(None, 0, None)
        out = decide_floor(self.policy, pd.Timestamp(now_ns, tz="UTC"), reactive_floor, forecast, errors,
                           own_floor=self.settings.min_replicas, auto=True)
        if self.keep_decisions:
            self.decisions.append(out.final)
        return out.value


def floor_policy(forecasts: pd.DataFrame | FrameProvider | SharedBands) -> FloorPolicy:
    """The fastest policy that decides exactly as ``PredictivePolicy`` on these forecasts."""
    bands = forecasts if isinstance(forecasts, SharedBands) else SharedBands(
        forecasts if isinstance(forecasts, FrameProvider) else FrameProvider(forecasts))
    return PredictivePolicy(bands.provider, keep_decisions=False) if bands.has_backtest_mae else SharedBandPolicy(bands)


def reference_label(target: float) -> str:
    """Label of the reactive reference at ``target``: ``reactive at 70%``."""
    return f"reactive at {target:.0%}"


def _per_day(frame: pd.DataFrame) -> pd.DataFrame:
    day = pd.DatetimeIndex(frame["ds"]).floor("1D")
    short = (frame["demand"].to_numpy(float) - frame["capacity"].to_numpy(float)) > 1e-9
    g = pd.DataFrame({"day": day, "billed": frame["billed"].to_numpy(float), "short": short}).groupby("day")
    return pd.DataFrame({"minutes": g.size(), "replica_minutes": g["billed"].sum(),
                         "under_minutes": g["short"].sum().astype(float)}).reset_index()


def bank_outcomes(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    forecasts: pd.DataFrame | FrameProvider | SharedBands,
    *,
    capacity_per_pod: float,
    bank: Sequence[JointSetting] | None = None,
    reference_targets: Sequence[float] = (DEFAULT_BUDGET.reference_target,),
    policy_settings: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **replay_kw: Any,
) -> pd.DataFrame:
    """Replay ``demand`` under every setting of ``bank`` (default ``default_bank()``) with ``forecasts``, and under the
    reactive HPA alone at each of ``reference_targets``; outcomes per UTC day (``OUTCOME_COLUMNS``).

    ``policy_settings``: other ``PolicySettings`` fields for every setting (e.g. ``stale_after_s``); ``replay_kw``: the
    cluster (``startup_s``, ``metric``, ``metric_delay_s``, ``min_replicas``, ``max_replicas``, ...), as ``replay``.
    """
    trace = minute_trace(demand, bad_values=replay_kw.pop("bad_values", "fill"))
    bands = forecasts if isinstance(forecasts, SharedBands) else SharedBands(
        forecasts if isinstance(forecasts, FrameProvider) else FrameProvider(forecasts))
    settings = list(default_bank() if bank is None else bank)
    runs: list[tuple[str, str, float, dict[str, Any]]] = [
        (reference_label(t), REFERENCE, t, {"policy": "reactive", "target_utilisation": t}) for t in reference_targets]
    for s in settings:
        fields = {**(policy_settings or {}), **s.overrides()}
        runs.append((s.label, "joint", s.target_utilisation, {
            "policy": floor_policy(bands), "target_utilisation": s.target_utilisation,
            "quantile": s.quantile, "margin": s.margin, "policy_settings": fields}))
    parts = []
    for k, (label, kind, target, kw) in enumerate(runs):
        res = replay(trace, capacity_per_pod=capacity_per_pod, keep_decisions=False, **replay_kw, **kw)
        rows = _per_day(res.frame)
        rows.insert(0, "target_utilisation", target)
        rows.insert(0, "kind", kind)
        rows.insert(0, "label", label)
        parts.append(rows)
        if progress is not None:
            progress(k + 1, len(runs))
    return pd.concat(parts, ignore_index=True)[list(OUTCOME_COLUMNS)]


def forecast_coverage(forecasts: pd.DataFrame | FrameProvider, start: pd.Timestamp, end: pd.Timestamp, *,
                      stale_after_s: float = 1800.0) -> pd.Series:
    """Per UTC day of ``[start, end)``: the fraction of minutes with a fresh forecast (the latest issue at most
    ``stale_after_s`` old). Worked example: forecasts issued every 5 min until noon, stale after 30 min -> the day's
    minutes up to 12:30 are covered: 750 / 1440 = 0.52."""
    if isinstance(forecasts, FrameProvider):
        issued = np.asarray(forecasts.issued_ns, dtype=np.int64)
    else:
        issued = np.unique(pd.DatetimeIndex(forecasts[ISSUED_AT]).tz_convert("UTC").as_unit("ns").asi8)
    minutes = pd.date_range(pd.Timestamp(start).tz_convert("UTC").floor("1min"), pd.Timestamp(end).tz_convert("UTC"),
                            freq="1min", inclusive="left")
    t = minutes.as_unit("ns").asi8
    i = np.searchsorted(issued, t, side="right") - 1
    fresh = (i >= 0) & (t - issued[np.maximum(i, 0)] <= stale_after_s * 1e9) if len(issued) else np.zeros(len(t), bool)
    return pd.Series(fresh, index=minutes).groupby(minutes.floor("1D")).mean()


def choose_on(
    outcomes: pd.DataFrame,
    until: pd.Timestamp,
    *,
    days: int = 3,
    risk_days: int | None = None,
    coverage: pd.Series | None = None,
    budget: RiskBudget = DEFAULT_BUDGET,
    bounds: TargetBounds | None = None,
    current: JointSetting | None = None,
    bank: Sequence[JointSetting] | None = None,
    min_days: float = 1.0,
    min_coverage: float = 0.9,
) -> JointChoice:
    """The choice at ``until`` from the ``days`` UTC days before it in ``outcomes`` (``bank_outcomes``); ``coverage``
    (``forecast_coverage``) per day, checked as the module docstring says; ``bank``: the settings the outcomes came
    from (default: every joint label in ``outcomes`` that ``default_bank`` knows).

    ``risk_days`` (at least ``days``; default ``days``): the under-provisioned minutes of every setting and of the
    reactive reference, hence the budget, are summed over the ``risk_days`` before ``until`` (as many of them as
    ``outcomes`` holds), the replica-minutes over the ``days`` only. A shortfall is a rare event: a setting with none
    in 3 days may have had one the day before (bike-sharing-dc, 26 December 2012: ``0.95/ensemble`` clean on 23-25
    December, short 1 minute on the 22nd and again on the 26th), while the cost follows the recent level. Worked
    example (``test_risk_days_judge_the_risk_on_a_longer_history``): a setting cheapest over the last day but short
    on the day before is chosen with ``risk_days=1`` and passed over with ``risk_days=2``."""
    b = bounds or TargetBounds()
    stop = pd.Timestamp(until).tz_convert("UTC").floor("1D")
    window = outcomes[(outcomes["day"] >= stop - days * DAY) & (outcomes["day"] < stop)]
    if window.empty:
        return keep(current, b, f"no replayed day in the {days} days before {stop:%Y-%m-%d}")
    columns = ["minutes", "replica_minutes", "under_minutes"]
    sums = window.groupby(["label", "kind"], as_index=False)[columns].sum()
    replayed_days = float(sums["minutes"].max()) / 1440.0
    rd = max(days, risk_days or days)
    risky = outcomes[(outcomes["day"] >= stop - rd * DAY) & (outcomes["day"] < stop)]
    risk = risky.groupby(["label", "kind"])[columns].sum()
    sums["under_minutes"] = [float(risk.loc[(lab, kind), "under_minutes"])
                             for lab, kind in zip(sums["label"], sums["kind"], strict=True)]
    risk_days_replayed = float(risk["minutes"].max()) / 1440.0
    if replayed_days < min_days:
        return keep(current, b, f"{replayed_days:.2f} days replayed (need {min_days:g})")
    if coverage is not None:
        cov = coverage[(coverage.index >= stop - days * DAY) & (coverage.index < stop)]
        share = float(cov.mean()) if len(cov) else 0.0
        if share < min_coverage:
            return keep(current, b, f"forecasts were fresh for {share:.0%} of the last {days} days "
                                    f"(need {min_coverage:.0%})")
    by_label = {s.label: s for s in (default_bank(b) if bank is None else bank)}
    joint = sums[(sums["kind"] == "joint") & sums["label"].isin(list(by_label))]
    trials = [Trial(str(label), float(cost), float(under), by_label[str(label)])
              for label, cost, under in zip(joint["label"], joint["replica_minutes"], joint["under_minutes"],
                                            strict=True)]
    ref_label = reference_label(budget.reference_target)
    ref_rows = sums[(sums["kind"] == REFERENCE) & (sums["label"] == ref_label)]
    reference = (Trial(ref_label, float(ref_rows["replica_minutes"].iloc[0]), float(ref_rows["under_minutes"].iloc[0]))
                 if len(ref_rows) else None)
    if reference is None and budget.relative:
        raise InputError(f"outcomes: no {ref_label!r} rows for the relative risk budget")
    return choose(trials, reference, budget, b, current, days=round(risk_days_replayed, 2),
                  cost_days=round(replayed_days, 2))


def select(
    demand: pd.Series | pd.DataFrame | MinuteTrace,
    forecasts: pd.DataFrame,
    *,
    capacity_per_pod: float,
    now: pd.Timestamp | None = None,
    days: int = 3,
    risk_days: int | None = None,
    budget: RiskBudget = DEFAULT_BUDGET,
    bounds: TargetBounds | None = None,
    current: JointSetting | None = None,
    bank: Sequence[JointSetting] | None = None,
    stale_after_s: float = 1800.0,
    **replay_kw: Any,
) -> JointChoice:
    """The joint setting for one workload at ``now`` (default: the end of ``demand``), from a replay of the ``days``
    (``risk_days`` for the risk, ``choose_on``) whole UTC days before it (module docstring). ``replay_kw``: the
    cluster, as ``replay`` takes it."""
    b = bounds or TargetBounds()
    trace = minute_trace(demand, bad_values="fill")
    end = pd.Timestamp(trace.start) + len(trace.demand) * pd.Timedelta("1min")
    stop = (pd.Timestamp(now).tz_convert("UTC") if now is not None else end).floor("1D")
    first = max(stop - max(days, risk_days or days) * DAY, pd.Timestamp(trace.start))
    if stop <= first:
        return keep(current, b, f"no whole day of history before {stop:%Y-%m-%d}")
    lo = int((first.value - trace.start_ns) // MINUTE_NS)
    hi = int((stop.value - trace.start_ns) // MINUTE_NS)
    part = MinuteTrace(start=pd.Timestamp(first), demand=trace.demand[lo:hi])
    settings = list(default_bank(b) if bank is None else bank)
    outcomes = bank_outcomes(part, forecasts, capacity_per_pod=capacity_per_pod, bank=settings,
                             reference_targets=(budget.reference_target,),
                             policy_settings={"stale_after_s": stale_after_s}, **replay_kw)
    coverage = forecast_coverage(forecasts, first, stop, stale_after_s=stale_after_s)
    return choose_on(outcomes, stop, days=days, risk_days=risk_days, coverage=coverage, budget=budget, bounds=b,
                     current=current, bank=settings)
