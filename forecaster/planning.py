"""What-if capacity planning: a demand forecast and scenarios -> replicas, cores, memory, nodes and cost.

Called by ``notebooks/capacity_planning.ipynb`` (and by anyone planning capacity from a ``Forecaster``)::

    profile = seasonal_profile(forecast)                      # the forecast's weekly shape, with its bands
    demand = scenario_demand(profile, scenario, start, end)    # growth, planned events, new regions applied
    plan = plan_capacity(demand, capacity_per_pod=..., pod_cpu_cores=..., ..., period="week")
    totals = plan_totals(plan)                                 # all regions of a scenario together

**Method for long horizons (weeks to months).** The engine forecasts one week ahead at most with calibrated
bands. ``seasonal_profile`` folds such a forecast (point and every band) onto the weekly cycle: one value per
weekly slot (UTC day of week x time of day; the mean when a slot occurs more than once). ``scenario_demand``
tiles that profile over the planning span and multiplies it by the scenario's factors, per region::

    demand_r(t) = profile(t + shift_r) * growth(t) * events_r(t) * share_r(t)
    growth(t)   = (1 + growth_per_month) ** months(t),  months = max(0, t - start) / 30.436875 days
    events_r(t) = product over planned events active at t in region r of (1 + uplift)
    share_r(t)  = 1 for the home region; for a new region share * ramp(t), the ramp rising linearly from 0
                  at go-live to 1 after ramp_days

Worked example: 5 % growth per month, 3 months on, a campaign with uplift 0.5 -> 1.05^3 * 1.5 = 1.736 times
the profile. A region 6 h ahead of the home region (``shift_hours=6``) at 12:00 UTC sees the home profile's
18:00 UTC value: its local afternoon peak arrives 6 h earlier in UTC.

**Limits (say them when presenting a plan).** (1) The profile repeats the forecast week: an event inside
that week would repeat every week, so fold a week without events and add events as planned events.
(2) Bands are the one-week-ahead uncertainty, scaled with growth; they do not widen with the horizon, and
the growth rate's own uncertainty is not in them: compare low / base / high growth scenarios instead.
(3) Cycles longer than a week (month ends, seasons, holidays) are absent unless added as events. (4) A new
region repeats the home region's shape, shifted in time. (5) Capacity is linear: every pod serves
``capacity_per_pod`` at any scale. (6) Nodes hold only these pods (see ``plan_capacity``).

Pure: numpy and pandas (replica rounding shared with ``forecaster.scaling.capacity``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.contracts.clock import as_utc
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, band_level, bands_in
from forecaster.scaling.capacity import EPS_PODS, pods_for_demand

EPOCH = pd.Timestamp("1970-01-05T00:00Z")
"""A Monday, 00:00 UTC: weekly slots count from it, so slot 0 is Monday 00:00 UTC."""
MONTH = pd.Timedelta(days=365.2425 / 12)
"""Mean Gregorian month (30.436875 days): the unit of ``growth_per_month``."""
HOME = "home"
"""Region name of the forecast workload's own demand."""
PERIODS: tuple[str, ...] = ("day", "week", "month")
"""Aggregation periods of ``plan_capacity`` (UTC calendar days, weeks starting Monday, months)."""
PLAN_COLUMNS: tuple[str, ...] = (
    "scenario", "region", "period_start", "hours", "peak_demand", "replicas", "cpu_cores", "memory_gib",
    "nodes", "nodes_bound", "node_hours", "cost_static", "cost_autoscaled",
)  # fmt: skip


def _utc(value: object, what: str) -> pd.Timestamp:
    """A tz-aware UTC timestamp; naive values are refused (we never guess a timezone)."""
    return as_utc(value, what)


# -- the weekly profile --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Values per slot of a repeating period (``seasonal_profile``); ``at(ds)`` reads them at any time.

    values   array (slots x columns); slot ``k`` covers ``[EPOCH + k * step, EPOCH + (k + 1) * step)``
             modulo ``period``
    columns  names of the value columns (e.g. ``ensemble, ensemble-lo-80, ...``)
    period   length of the cycle (default one week)
    step     grid step of the source frame
    source   first and last ``ds`` of the frame the profile was folded from
    """

    values: np.ndarray
    columns: tuple[str, ...]
    period: pd.Timedelta
    step: pd.Timedelta
    source: tuple[pd.Timestamp, pd.Timestamp]

    def slots(self, ds: pd.DatetimeIndex) -> np.ndarray:
        """Slot index of each timestamp: ``((ds - EPOCH) mod period) // step``."""
        ns = pd.DatetimeIndex(ds).tz_convert("UTC").as_unit("ns").asi8 - EPOCH.value
        return np.asarray((ns % self.period.value) // self.step.value, dtype=np.int64)

    def at(self, ds: pd.DatetimeIndex, shift: pd.Timedelta | None = None) -> pd.DataFrame:
        """Profile values at ``ds + shift`` (one row per timestamp, columns ``self.columns``)."""
        when = pd.DatetimeIndex(ds) + (shift if shift is not None else pd.Timedelta(0))
        return pd.DataFrame(self.values[self.slots(when)], columns=list(self.columns))


def _value_columns(frame: pd.DataFrame, columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"columns {missing} are not in the frame (have {list(frame.columns)})")
        return list(columns)
    bands = bands_in(frame.columns)
    if ENSEMBLE in frame.columns:
        return [ENSEMBLE, *bands]
    if Y in frame.columns:
        return [Y]
    raise InputError(f"frame has neither {ENSEMBLE!r} nor {Y!r}; pass columns=")


def _step(ds: pd.DatetimeIndex, what: str) -> pd.Timedelta:
    diffs = np.diff(np.unique(ds.as_unit("ns").asi8))
    if len(diffs) == 0:
        raise InputError(f"{what}: need at least two timestamps to know the grid step")
    return pd.Timedelta(int(diffs.min()), unit="ns")


def seasonal_profile(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    period: str | pd.Timedelta = "7D",
    unique_id: str | None = None,
) -> Profile:
    """Fold ``frame`` (``ds`` plus value columns: a forecast or a history) onto a repeating ``period``.

    ``columns`` default to the ensemble and its band columns (else ``y``). Each weekly slot (day of week x
    time of day, UTC) gets the mean of the frame's values in that slot. The frame must cover every slot
    (at least one whole period), else ``InputError`` says how many are missing. A frame with several
    ``unique_id`` needs ``unique_id=``.
    """
    if DS not in frame.columns:
        raise InputError(f"frame: column {DS!r} is missing")
    if ID in frame.columns:
        ids = pd.unique(frame[ID].astype(str))
        if unique_id is None and len(ids) > 1:
            raise InputError(f"frame holds {len(ids)} series ({', '.join(map(str, ids[:3]))}, ...): pass unique_id=")
        if unique_id is not None:
            frame = frame[frame[ID].astype(str) == unique_id]
            if frame.empty:
                raise InputError(f"frame: no rows for unique_id {unique_id!r}")
    cols = _value_columns(frame, columns)
    ds = pd.DatetimeIndex(frame[DS])
    if ds.tz is None:
        raise InputError("frame: ds must be tz-aware (UTC)")
    ds = ds.tz_convert("UTC")
    step, span = _step(ds, "frame"), pd.Timedelta(period)
    if span <= pd.Timedelta(0) or span % step != pd.Timedelta(0):
        raise InputError(f"period {period!r} must be a positive multiple of the frame's step ({step})")
    n_slots = int(span / step)
    ns = ds.as_unit("ns").asi8 - EPOCH.value
    slot = (ns % span.value) // step.value
    means = pd.DataFrame(frame[cols].to_numpy(float), columns=cols).groupby(slot).mean()
    if len(means) < n_slots:
        raise InputError(
            f"frame covers {len(means)} of the {n_slots} slots of a {span} period "
            f"({ds.min()} .. {ds.max()}); give at least one whole period"
        )
    values = means.reindex(range(n_slots)).to_numpy(float)
    return Profile(values, tuple(cols), span, step, (ds.min(), ds.max()))


# -- scenarios ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedEvent:
    """A future event that multiplies demand by ``1 + uplift`` over ``[start, end)`` (UTC).

    ``uplift``: relative extra demand (0.5 = +50 %, -0.2 = 20 % less), above -1. ``regions``: the regions it
    applies to (empty = all). ``learned_uplift`` turns the engine's learned profile of a past event kind
    into such a number.
    """

    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    uplift: float
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        start, end = _utc(self.start, f"event {self.name!r} start"), _utc(self.end, f"event {self.name!r} end")
        if end <= start:
            raise InputError(f"event {self.name!r}: end {end} must be after start {start}")
        if not math.isfinite(self.uplift) or self.uplift <= -1.0:
            raise InputError(f"event {self.name!r}: uplift {self.uplift!r} must be a finite number above -1")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "regions", tuple(self.regions))


@dataclass(frozen=True)
class Region:
    """A new region served by its own cluster, whose demand mirrors the home region's shape.

    ``share``: its demand relative to the home region's once ramped up (0.3 = 30 % of home's). ``go_live``:
    when it starts taking traffic (None = from the start of the plan). ``ramp_days``: days of a linear
    ramp from 0 to ``share`` after go-live (0 = at once). ``shift_hours``: how far its local clock runs ahead
    of the home region's (+6 for Central Europe when home is US Eastern): region(t) = home(t + shift).
    """

    name: str
    share: float
    go_live: pd.Timestamp | None = None
    ramp_days: float = 0.0
    shift_hours: float = 0.0

    def __post_init__(self) -> None:
        if self.name == HOME:
            raise InputError(f"region name {HOME!r} is reserved for the forecast workload's own region")
        if not math.isfinite(self.share) or self.share < 0:
            raise InputError(f"region {self.name!r}: share {self.share!r} must be a finite number >= 0")
        if not math.isfinite(self.ramp_days) or self.ramp_days < 0:
            raise InputError(f"region {self.name!r}: ramp_days {self.ramp_days!r} must be >= 0")
        if self.go_live is not None:
            object.__setattr__(self, "go_live", _utc(self.go_live, f"region {self.name!r} go_live"))

    def share_at(self, ds: pd.DatetimeIndex) -> np.ndarray:
        """``share * ramp(t)``: 0 before go-live, linear over ``ramp_days``, then ``share``."""
        if self.go_live is None:
            return np.full(len(ds), float(self.share))
        days = np.asarray((ds - self.go_live) / pd.Timedelta("1D"), dtype=float)
        ramp = np.where(days >= 0, 1.0, 0.0) if self.ramp_days == 0 else np.clip(days / self.ramp_days, 0.0, 1.0)
        return float(self.share) * ramp


@dataclass(frozen=True)
class Scenario:
    """A what-if: compound monthly growth, planned events and new regions on top of the forecast profile.

    ``growth_per_month``: relative growth per mean month (0.05 = +5 %/month, compounded; negative shrinks),
    anchored at ``anchor`` (default: the start of the planned span). ``events``: ``PlannedEvent`` list.
    ``regions``: new ``Region`` list (the home region is always planned).
    """

    name: str
    growth_per_month: float = 0.0
    events: tuple[PlannedEvent, ...] = ()
    regions: tuple[Region, ...] = ()
    anchor: pd.Timestamp | None = None
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.growth_per_month) or self.growth_per_month <= -1.0:
            raise InputError(f"scenario {self.name!r}: growth_per_month {self.growth_per_month!r} must be above -1")
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "regions", tuple(self.regions))
        names = [r.name for r in self.regions]
        if len(set(names)) < len(names):
            raise InputError(f"scenario {self.name!r}: region names repeat: {names}")
        unknown = sorted({r for e in self.events for r in e.regions} - {HOME, *names})
        if unknown:
            raise InputError(f"scenario {self.name!r}: events name unknown region(s) {unknown}")
        if self.anchor is not None:
            object.__setattr__(self, "anchor", _utc(self.anchor, f"scenario {self.name!r} anchor"))

    def growth_at(self, ds: pd.DatetimeIndex, start: pd.Timestamp) -> np.ndarray:
        """``(1 + growth_per_month) ** months`` with ``months = max(0, t - anchor) / MONTH``."""
        anchor = self.anchor if self.anchor is not None else start
        months = np.clip(np.asarray((ds - anchor) / MONTH, dtype=float), 0.0, None)
        return np.power(1.0 + float(self.growth_per_month), months)

    def events_at(self, ds: pd.DatetimeIndex, region: str) -> np.ndarray:
        """Product of ``1 + uplift`` over the events active at each timestamp in ``region``."""
        factor = np.ones(len(ds))
        for event in self.events:
            if event.regions and region not in event.regions:
                continue
            active = np.asarray((ds >= event.start) & (ds < event.end))
            factor[active] *= 1.0 + float(event.uplift)
        return factor


def scenario_demand(profile: Profile, scenario: Scenario, start: object, end: object) -> pd.DataFrame:
    """Demand per region on ``[start, end)`` at the profile's step, with the scenario applied (module docstring).

    Returns ``scenario, region, ds, growth, event_factor, share`` and the profile's value columns (already
    multiplied by ``growth * event_factor * share``). The home region comes first.
    """
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    if t1 <= t0:
        raise InputError(f"end {t1} must be after start {t0}")
    ds = pd.date_range(t0, t1, freq=profile.step, inclusive="left")
    growth = scenario.growth_at(ds, t0)
    parts = []
    plans: list[tuple[str, np.ndarray, pd.Timedelta]] = [(HOME, np.ones(len(ds)), pd.Timedelta(0))]
    plans += [(r.name, r.share_at(ds), pd.Timedelta(hours=r.shift_hours)) for r in scenario.regions]
    for region, share, shift in plans:
        events = scenario.events_at(ds, region)
        values = profile.at(ds, shift).mul(growth * events * share, axis=0)
        head = pd.DataFrame({"scenario": scenario.name, "region": region, DS: ds, "growth": growth,
                             "event_factor": events, "share": share})  # fmt: skip
        parts.append(pd.concat([head, values], axis=1))
    return pd.concat(parts, ignore_index=True)


def learned_uplift(event_uplifts: pd.DataFrame, kind: str, statistic: str = "mean") -> float:
    """Relative uplift of an event ``kind`` from the events member's learned bins (``Explanation.event_uplifts``).

    Uses the ``event`` phase bins (during the event; lead-in and decay are ignored): ``mean`` gives the mean of
    their factors minus 1 (average extra demand over the event), ``max`` the largest factor minus 1 (the
    worst bin). Worked example: factors 1.2, 1.6, 1.4 -> mean 0.4, max 0.6. ``InputError`` when the kind has
    no learned ``event`` bins.
    """
    if statistic not in ("mean", "max"):
        raise InputError(f"statistic {statistic!r} must be 'mean' or 'max'")
    for col in ("kind", "phase", "factor"):
        if col not in event_uplifts.columns:
            raise InputError(f"event_uplifts: column {col!r} is missing (pass Explanation.event_uplifts)")
    rows = event_uplifts[(event_uplifts["kind"] == kind) & (event_uplifts["phase"] == "event")]
    if rows.empty:
        kinds = sorted(set(event_uplifts["kind"].astype(str)))
        raise InputError(f"no learned 'event' bins for kind {kind!r} (learned kinds: {kinds})")
    factors = rows["factor"].to_numpy(float)
    return float((factors.mean() if statistic == "mean" else factors.max()) - 1.0)


def peak_margin(
    scored: pd.DataFrame, column: str = ENSEMBLE, *, actual: str = Y, period: str = "day", quantile: float = 1.0
) -> float:
    """Margin that would have covered the observed peaks: per ``period``, ``actual peak / forecast peak``.

    ``scored``: ``ds``, the forecast ``column`` and the observed ``actual`` over the same steps (a forecast
    joined with what happened, or a backtest frame). Returns ``quantile`` (default 1.0: the worst period) of
    the per-period ratios, minus 1, never below 0. Worked example: daily forecast peaks 100, 200, 400 against
    actual peaks 110, 180, 460 -> ratios 1.1, 0.9, 1.15 -> margin 0.15 (quantile 0.5 -> 0.1). One week of
    scored data gives 7 ratios: a rough figure, re-measure as history grows.
    """
    for col in (DS, column, actual):
        if col not in scored.columns:
            raise InputError(f"scored: column {col!r} is missing")
    if not 0.0 <= quantile <= 1.0:
        raise InputError(f"quantile: {quantile!r} must be in [0, 1]")
    frame = scored[[DS, column, actual]].dropna()
    if frame.empty:
        raise InputError("scored: no row with both a forecast and an actual value")
    peaks = frame.groupby(period_start(frame[DS], period)).agg(forecast=(column, "max"), actual=(actual, "max"))
    peaks = peaks[peaks["forecast"] > 0]
    if peaks.empty:
        raise InputError(f"scored: every {period}'s forecast peak is 0; a ratio is undefined")
    ratio = float((peaks["actual"] / peaks["forecast"]).quantile(quantile))
    return max(0.0, ratio - 1.0)


# -- sizing: demand -> replicas -> cores, memory, nodes, cost --------------------------------------------------
@dataclass(frozen=True)
class NodeFit:
    """How the pods of one workload fit a node type (``node_fit``).

    usable_cpu_cores, usable_memory_gib  the node's allocatable amounts times ``1 - headroom``
    pods_per_node                        identical pods one node holds: the smallest of the CPU fit, the
                                         memory fit and ``max_pods_per_node``
    """

    usable_cpu_cores: float
    usable_memory_gib: float
    pods_per_node: int


def node_fit(
    pod_cpu_cores: float,
    pod_memory_gib: float,
    node_cpu_cores: float,
    node_memory_gib: float,
    headroom: float = 0.1,
    max_pods_per_node: int = 110,
) -> NodeFit:
    """Usable node capacity and pods per node::

        usable = allocatable * (1 - headroom)
        pods_per_node = min(floor(usable_cpu / pod_cpu), floor(usable_memory / pod_memory), max_pods_per_node)

    ``headroom`` is the share of each node's allocatable CPU and memory kept free for DaemonSets, the
    rolling-update surge and scheduling slack (default 10 %); ``max_pods_per_node`` is the kubelet's pod
    limit (default 110). Worked example: 8 cores / 32 GiB, headroom 0.1 -> 7.2 cores / 28.8 GiB usable; pods of
    2 cores / 4 GiB -> min(3, 7, 110) = 3 pods per node. ``InputError`` when one pod does not fit.
    """
    for name, value in (("pod_cpu_cores", pod_cpu_cores), ("pod_memory_gib", pod_memory_gib),
                        ("node_cpu_cores", node_cpu_cores), ("node_memory_gib", node_memory_gib)):  # fmt: skip
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"{name}: {value!r} must be a positive number")
    if not 0.0 <= headroom < 1.0:
        raise InputError(f"headroom: {headroom!r} must be in [0, 1)")
    if int(max_pods_per_node) != max_pods_per_node or max_pods_per_node < 1:
        raise InputError(f"max_pods_per_node: {max_pods_per_node!r} must be a positive integer")
    cpu, mem = node_cpu_cores * (1.0 - headroom), node_memory_gib * (1.0 - headroom)
    fits = min(math.floor(cpu / pod_cpu_cores + 1e-9), math.floor(mem / pod_memory_gib + 1e-9), int(max_pods_per_node))
    if fits < 1:
        raise InputError(
            f"a pod of {pod_cpu_cores:g} cores / {pod_memory_gib:g} GiB does not fit a node's usable "
            f"{cpu:g} cores / {mem:g} GiB (headroom {headroom:.0%}); choose a bigger node type"
        )
    return NodeFit(cpu, mem, fits)


def _ceil(x: np.ndarray) -> np.ndarray:
    """``ceil`` tolerating float noise (``EPS_PODS``), never below 0 and never ``-0.0``."""
    return np.asarray(np.maximum(np.ceil(x - EPS_PODS), 0.0) + 0.0, dtype=float)


def _planned_column(demand: pd.DataFrame, column: str | None) -> str:
    if column is not None:
        if column not in demand.columns:
            raise InputError(f"column {column!r} is not in the demand frame (have {list(demand.columns)})")
        return column
    highs = bands_in(demand.columns, side="hi")
    if highs:
        return max(highs, key=lambda c: (band_level(c) or ("hi", 0))[1])
    for name in (ENSEMBLE, Y):
        if name in demand.columns:
            return name
    raise InputError(f"demand frame has no {ENSEMBLE}-hi-L, {ENSEMBLE} or {Y} column; pass column=")


def period_start(ds: pd.Series, period: str) -> pd.Series:
    """Start of the UTC calendar ``period`` (``day``, ``week`` from Monday, ``month``) holding each timestamp."""
    if period not in PERIODS:
        raise InputError(f"period {period!r} must be one of {list(PERIODS)}")
    day = pd.DatetimeIndex(ds).tz_convert("UTC").floor("D")
    if period == "day":
        out = day
    elif period == "week":
        out = day - pd.to_timedelta(day.day_of_week, unit="D")
    else:
        out = day - pd.to_timedelta(day.day - 1, unit="D")
    return pd.Series(out, index=ds.index)


def plan_capacity(
    demand: pd.DataFrame,
    *,
    capacity_per_pod: float,
    pod_cpu_cores: float,
    pod_memory_gib: float,
    node_cpu_cores: float,
    node_memory_gib: float,
    node_cost_per_hour: float,
    target_utilisation: float = 0.7,
    headroom: float = 0.1,
    column: str | None = None,
    period: str = "day",
    min_replicas: int = 1,
    max_pods_per_node: int = 110,
    margin: float = 0.0,
) -> pd.DataFrame:
    """Replicas, cores, memory, nodes and cost per ``period`` (and per ``scenario`` and ``region`` if present).

    ``demand``: ``ds`` and the planned ``column`` (default: the widest ``ensemble-hi-L`` band present, else
    ``ensemble``, else ``y``), e.g. from ``scenario_demand``; ``margin`` plans for that much more (0.2 = +20 %,
    e.g. from ``peak_margin`` when planning on the point forecast). Per time step ``t`` (step = the grid's)::

        replicas_t = max(min_replicas, ceil(d_t * (1 + margin) / (capacity_per_pod * target_utilisation)))
        nodes_t    = ceil(replicas_t / pods_per_node)                      (``node_fit``: packing identical pods)
        bound_t    = max(ceil(replicas_t * pod_cpu / usable_cpu), ceil(replicas_t * pod_mem / usable_mem))

    ``replicas_t`` is the HPA's fixed point (``forecaster.scaling.capacity``); ``bound_t`` is the classic
    bin-packing lower bound (fractional pods), ``nodes_t`` the count identical pods really need (never below
    the bound). Per period: ``peak_demand`` = max d_t * (1 + margin); ``replicas``, ``nodes``, ``nodes_bound``
    = their maxima; ``cpu_cores``/``memory_gib`` = peak replicas x the pod's requests; ``hours`` = steps x
    step; ``node_hours`` = sum of nodes_t x step; ``cost_static`` = nodes x hours x ``node_cost_per_hour`` (a
    cluster sized for the period's peak); ``cost_autoscaled`` = node_hours x ``node_cost_per_hour`` (a
    cluster autoscaler following demand at the step with no delay: a lower bound on cost).

    Steps whose ``share`` (a ``scenario_demand`` column) is 0 belong to a region not yet live: 0 replicas.

    Worked example: peak 1,000 req/s, 20 req/s per pod at 0.7, no margin -> ceil(71.43) = 72 pods; pods of
    0.5 cores / 1 GiB on 8-core / 32 GiB nodes with 10 % headroom -> 14 pods per node -> 6 nodes (bound 5:
    36 cores over 7.2 usable); over a 24 h day at 0.40 per node-hour, cost_static = 6 x 24 x 0.40 = 57.60.
    """
    if not math.isfinite(capacity_per_pod) or capacity_per_pod <= 0:
        raise InputError(f"capacity_per_pod: {capacity_per_pod!r} must be a positive number")
    if not 0.0 < target_utilisation <= 1.0:
        raise InputError(f"target_utilisation: {target_utilisation!r} must be in (0, 1]")
    if not math.isfinite(node_cost_per_hour) or node_cost_per_hour < 0:
        raise InputError(f"node_cost_per_hour: {node_cost_per_hour!r} must be a number >= 0")
    if int(min_replicas) != min_replicas or min_replicas < 0:
        raise InputError(f"min_replicas: {min_replicas!r} must be an integer >= 0")
    if not math.isfinite(margin) or margin <= -1.0:
        raise InputError(f"margin: {margin!r} must be a finite number above -1")
    fit = node_fit(pod_cpu_cores, pod_memory_gib, node_cpu_cores, node_memory_gib, headroom, max_pods_per_node)
    col = _planned_column(demand, column)
    if DS not in demand.columns:
        raise InputError(f"demand: column {DS!r} is missing")
    frame = demand.copy()
    if "scenario" not in frame.columns:
        frame["scenario"] = ""
    if "region" not in frame.columns:
        frame["region"] = HOME
    d = frame[col].to_numpy(float)
    if not np.isfinite(d).all() or (d < 0).any():
        i = int(np.flatnonzero(~np.isfinite(d) | (d < 0))[0])
        raise InputError(f"demand: {col} is {float(d[i])!r} at {frame[DS].iloc[i]}; demand must be finite and >= 0")
    ds = pd.DatetimeIndex(frame[DS])
    if ds.tz is None:
        raise InputError("demand: ds must be tz-aware (UTC)")
    step_h = _step(ds, "demand") / pd.Timedelta("1h")
    replicas = np.maximum(float(min_replicas), pods_for_demand(d, capacity_per_pod, target_utilisation, margin))
    if "share" in frame.columns:  # a region before its go-live runs nothing, not min_replicas
        replicas = np.where(frame["share"].to_numpy(float) > 0, replicas, 0.0)
    cores, mem = replicas * pod_cpu_cores, replicas * pod_memory_gib
    frame = frame.assign(
        period_start=period_start(frame[DS], period),
        _d=d,
        _replicas=replicas,
        _nodes=_ceil(replicas / fit.pods_per_node),
        _bound=np.maximum(_ceil(cores / fit.usable_cpu_cores), _ceil(mem / fit.usable_memory_gib)),
    )
    out = frame.groupby(["scenario", "region", "period_start"], sort=False).agg(
        steps=("_d", "size"), peak_demand=("_d", "max"), replicas=("_replicas", "max"), nodes=("_nodes", "max"),
        nodes_bound=("_bound", "max"), node_steps=("_nodes", "sum"),
    ).reset_index()  # fmt: skip
    out["peak_demand"] *= 1.0 + margin
    out["hours"] = out.pop("steps") * step_h
    out["cpu_cores"] = out["replicas"] * pod_cpu_cores
    out["memory_gib"] = out["replicas"] * pod_memory_gib
    out["node_hours"] = out.pop("node_steps") * step_h
    out["cost_static"] = out["nodes"] * out["hours"] * node_cost_per_hour
    out["cost_autoscaled"] = out["node_hours"] * node_cost_per_hour
    for name in ("replicas", "nodes", "nodes_bound"):
        out[name] = out[name].astype(np.int64)
    return out[list(PLAN_COLUMNS)]


def plan_totals(plan: pd.DataFrame) -> pd.DataFrame:
    """All regions of each scenario together, per period (regions run separate clusters, so nodes add up).

    Sums ``replicas, cpu_cores, memory_gib, nodes, node_hours, cost_static, cost_autoscaled`` and the regions'
    peaks (``peak_demand_sum``: an upper bound on the combined peak, as regional peaks need not coincide).
    """
    missing = [c for c in PLAN_COLUMNS if c not in plan.columns]
    if missing:
        raise InputError(f"plan: missing column(s) {missing} (pass the frame plan_capacity returned)")
    sums = ["replicas", "cpu_cores", "memory_gib", "nodes", "node_hours", "cost_static", "cost_autoscaled"]
    out = plan.groupby(["scenario", "period_start"], sort=False).agg(
        regions=("region", "nunique"), hours=("hours", "max"), peak_demand_sum=("peak_demand", "sum"),
        **{c: (c, "sum") for c in sums},
    ).reset_index()  # fmt: skip
    return out
