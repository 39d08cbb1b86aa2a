"""The controller's joint-policy choice for one policy: when to choose again, and the choice from its own history.

A policy with ``spec.scaling.policy: Joint`` (``forecaster.cycle.spec.JointSpec``) runs with a ``JointSetting``
(floor band, margin, HPA target utilisation, scale-down pace) chosen by ``forecaster.simulate.tune.select`` from a
replay of its own recent history: the demand the controller fetched (held over each bucket's minutes) and the
forecasts it issued over the same days (stored, ``Store.forecasts_issued_between``), under every setting of the bank
and under the reactive HPA alone at the budget's reference target. The replay's cluster is the policy's own:
capacity per pod, lead time, staleness, the floor bounds of the HPA; pods ready after ``DEFAULT_STARTUP_S``; the HPA
reading a CPU utilisation capped at 100 % one minute late (``replay``'s documented defaults).

When (``due``): on each refit, i.e. when the last choice (``status.jointChosenAt``) is at least the forecast
provider's refit interval old (a day by default), or none was made, or it was made under another budget/bounds
(``status.jointBudget``). Otherwise the setting in force (``status.jointSetting``) is used as it is.

No change on stale input (``rechoose``): the forecast in force is stale (older than ``staleAfter``, or none), or no
forecasts were issued over the replayed days, or they were fresh for less than 90 % of them -> the setting in force
is kept (its target brought within the bounds), and the reason says so.

Worked example of ``due``: chosen at 2024-03-04T00:10Z, refit every 1 day, now 2024-03-04T12:00Z -> not due;
now 2024-03-05T00:10Z -> due ("refit: last choice 1 day old").

Pure: pandas; replays through ``forecaster.simulate.tune``. Called by the controller's decide step
(``forecaster.runtime.controller.joint``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from forecaster.contracts.errors import InputError
from forecaster.cycle.forecast import IssuedForecast
from forecaster.cycle.spec import PolicySpec
from forecaster.cycle.state import parse_time
from forecaster.scaling.joint import JointChoice, JointSetting, TargetBounds, default_bank, keep
from forecaster.scaling.settings import DEFAULT_STARTUP_S, PolicySettings, band_column
from forecaster.simulate.providers import ISSUED_AT
from forecaster.simulate.tune import select

METRIC = "cpu"
METRIC_DELAY_S = 60


def setting_from_label(label: object) -> JointSetting | None:
    """A ``JointSetting`` back from its label (``0.90/hi-80/+10%/steady``); ``None`` for anything unreadable."""
    if not isinstance(label, str):
        return None
    try:
        target, quantile, margin, pace = label.split("/")
        return JointSetting(quantile=quantile, margin=float(margin.strip("+%")) / 100,
                            target_utilisation=float(target), scale_down=pace)  # type: ignore[arg-type]
    except (ValueError, InputError):
        return None


def current_setting(status: Mapping[str, Any]) -> JointSetting | None:
    """The setting in force, from ``status.jointSetting``."""
    return setting_from_label(status.get("jointSetting"))


def due(spec: PolicySpec, status: Mapping[str, Any], now: pd.Timestamp, every: pd.Timedelta) -> str | None:
    """Why the joint setting is to be chosen again now, ``None`` when it is not (module docstring)."""
    chosen = parse_time(status.get("jointChosenAt"))
    if chosen is None or current_setting(status) is None:
        return "first choice"
    if status.get("jointBudget") != spec.scaling.describe():
        return "budget or target bounds changed"
    age = pd.Timestamp(now) - chosen
    if age >= every:
        return f"refit: last choice {age.total_seconds() / 86400:.3g} days old"
    return None


def in_bounds(setting: JointSetting, bounds: TargetBounds) -> JointSetting:
    """``setting`` with its HPA target a whole percent within ``bounds`` (the HPA takes whole percents). Worked
    example: 0.93 with bounds [0.5, 0.855] -> 0.85; 0.3 -> 0.5."""
    low, high = math.ceil(bounds.min_target * 100 - 1e-9), math.floor(bounds.max_target * 100 + 1e-9)
    pct = min(max(round(setting.target_utilisation * 100), low), high) if low <= high else low
    return replace(setting, target_utilisation=pct / 100)


def bank_for(spec: PolicySpec) -> tuple[JointSetting, ...]:
    """The default bank within the spec's target bounds, keeping the bands the spec's forecast levels provide; the
    replay's metric is capped CPU utilisation, so targets stop at ``reactive_ceiling("cpu")`` (0.90) even when the
    spec's ``maxTargetUtilization`` is higher: above it the HPA could not scale up from saturated pods."""
    levels = set(spec.forecast.levels)

    def usable(quantile: str) -> bool:
        level = band_column(quantile).rsplit("-", 1)[-1]
        return not level.isdigit() or int(level) in levels

    return tuple(s for s in default_bank(spec.scaling.bounds, metric=METRIC) if usable(s.quantile))


def issued_frame(issued: Sequence[IssuedForecast]) -> pd.DataFrame:
    """Issued forecasts as one long frame with an ``issued_at`` column (``FrameProvider``'s input)."""
    parts = []
    for f in issued:
        frame = f.frame.drop(columns=[c for c in ("unique_id",) if c in f.frame.columns]).copy()
        frame.insert(0, ISSUED_AT, pd.Timestamp(f.issued_at).tz_convert("UTC"))
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    out["ds"] = pd.DatetimeIndex(out["ds"]).tz_convert("UTC") if pd.DatetimeIndex(out["ds"]).tz is not None \
        else pd.DatetimeIndex(out["ds"]).tz_localize("UTC")
    return out.drop_duplicates([ISSUED_AT, "ds"], keep="last")


def rechoose(
    spec: PolicySpec,
    settings: PolicySettings,
    history: pd.DataFrame | None,
    issued: Sequence[IssuedForecast],
    forecast: IssuedForecast | None,
    current: JointSetting | None,
    now: pd.Timestamp,
    *,
    bank: Sequence[JointSetting] | None = None,
) -> JointChoice:
    """The joint setting for ``spec`` at ``now`` (module docstring). ``history``: the fetched demand (``ds``, ``y``);
    ``issued``: the forecasts issued over the replayed days; ``forecast``: the one in force now; ``settings``: the
    policy's floor settings within its HPA's bounds (``PolicySpec.to_settings``)."""
    joint = spec.scaling
    now = pd.Timestamp(now).tz_convert("UTC")
    if forecast is None or (now - forecast.issued_at).total_seconds() > spec.stale_after_s:
        return keep(current, joint.bounds, "the forecast in force is stale")
    if not issued:
        return keep(current, joint.bounds, f"no forecasts issued over the last {joint.replay_days} days")
    if history is None or history.empty:
        return keep(current, joint.bounds, "no demand history")
    ds = pd.DatetimeIndex(history["ds"])
    ds = ds.tz_convert("UTC") if ds.tz is not None else ds.tz_localize("UTC")
    demand = pd.Series(history["y"].to_numpy(float), index=ds).sort_index()
    demand = demand[~demand.index.duplicated(keep="last")].loc[:now]
    if len(demand) < 2:
        return keep(current, joint.bounds, "no demand history")
    return select(demand, issued_frame(issued), capacity_per_pod=spec.capacity_per_pod, now=now,
                  days=joint.history_days, risk_days=joint.replay_days, budget=joint.budget, bounds=joint.bounds,
                  current=current, bank=list(bank_for(spec) if bank is None else bank),
                  stale_after_s=spec.stale_after_s, startup_s=DEFAULT_STARTUP_S, metric=METRIC,
                  metric_delay_s=METRIC_DELAY_S, min_replicas=settings.min_replicas, max_replicas=settings.max_replicas,
                  lead_time_s=spec.lead_time_s)
