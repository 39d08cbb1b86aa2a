"""``RightSizer``: incremental right-sizing of a fleet - fit once, update with each day's new use, decide for all.

A daily right-sizing job sees the same history again every day plus one new day. ``RightSizer`` keeps each
container's samples (numpy arrays, the last ``retention`` of them) and what the policies learned from windows that
are over (``ContainerHistory.kept``: a per-window cost replay of ``selector.CostSelected`` is computed once, not
every day), so a daily decision costs one new window per container::

    sizer = RightSizer("calibrated").fit(usage_until_monday, now=monday)   # replays the past windows once
    result = sizer.decide()                                              # RightsizingResult for every container
    sizer.update(tuesdays_usage, now=tuesday)                            # appends, trims, scores one window
    result = sizer.decide()

``update`` appends the samples after a container's last stored one and OOM kills not seen before; a new container
simply appears. Re-sending an overlapping window is fine: a re-sent sample replaces the stored one (the newest point
of a Prometheus range may change once all its scrapes are in), and a changed value drops the container's kept
window scores, so the state is always the one a fresh ``fit`` on the stored samples would build (tested decision for
decision in ``tests/rightsizing/test_rs_sizer.py``). With ``retention`` equal to the window a caller fetches, an
updated sizer decides exactly as a fresh fit on that window (the controller's and the service's use).

``decide`` uses only what was known before ``now`` and returns the recommendations with the reports
(``reports=False``: recommendations only, for a caller that scores them itself). Predictive policies
(``forecaster``, ``forecast-scaled-vpa``) fit the engine (``predict.UsagePredictor``) in ``fit`` and update it in
``update`` (refit when ``now`` is not a whole number of windows after the fit). ``rightsize()`` is
``RightSizer(...).fit(...).decide()``.

Pure: numpy and pandas (and the engine for predictive policies). Called by ``api.rightsize``, the CLI, the
service, the controller and ``benchmarks/rightsizing.py``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing.frames import (
    CPU,
    GROUP_COLUMNS,
    MEMORY,
    NAMESPACE,
    REQUEST_OF,
    RESOURCES,
    SIBLING_COLUMNS,
    TEAM,
    LowConfidenceWarning,
    UsageError,
    validate_ooms,
    validate_usage,
)
from forecaster.rightsizing.history import ContainerHistory, attach_fleet
from forecaster.rightsizing.policies import DEFAULT_POLICY, Policy, get_policy
from forecaster.rightsizing.predict import PREDICTED, UsagePredictor, request_statistics
from forecaster.rightsizing.recommend import as_utc, default_now, low_confidence_message, recommend_histories
from forecaster.rightsizing.report import container_report, group_report
from forecaster.rightsizing.risk import quantile_table

PREDICTIVE_POLICIES = frozenset({"forecaster", "forecast-scaled-vpa"})
"""Registered policies that need the engine's prediction table (``RightSizer`` computes it for them)."""
RETENTION = pd.Timedelta("63D")
"""Samples kept per container: the ``calibrated`` policy scores 28 daily windows of memory peaks up to 28 days long
(56 days), plus a week of slack."""
COLUMNS: tuple[str, ...] = (CPU, MEMORY, *REQUEST_OF.values())


def window_alias(window: str | pd.Timedelta) -> str:
    """A pandas frequency string for ``window`` (``"24h"`` -> ``"1D"``), as the engine's grid wants it."""
    td = pd.Timedelta(window)
    if td % pd.Timedelta("1D") == pd.Timedelta(0):
        return f"{td // pd.Timedelta('1D')}D"
    return f"{int(td.total_seconds() // 60)}min"


@dataclass(frozen=True)
class RightsizingResult:
    """What ``RightSizer.decide`` and ``rightsize`` return.

    ``recommendations``: the recommendation frame (cores, bytes). ``containers``: per container and resource,
    request vs use, slack, savings, risk (cores, GiB). ``namespaces``/``teams``: the same summed per group
    (``teams`` is empty when the usage has no ``team`` column; all three are empty with ``reports=False``).
    ``now`` and ``window``: the decision time and the window the use figures cover. ``warnings``: what the user
    must know before acting (containers with less history than the policy needs, whose recommendations are
    ``low_confidence``); each was also issued as a ``LowConfidenceWarning``.
    """

    recommendations: pd.DataFrame
    containers: pd.DataFrame
    namespaces: pd.DataFrame
    teams: pd.DataFrame
    now: pd.Timestamp
    window: pd.Timedelta
    policy: str
    warnings: tuple[str, ...] = ()


@dataclass
class _Container:
    """One container's stored samples (``ds`` naive UTC ns, ascending), labels and OOM kills."""

    ds: np.ndarray
    values: dict[str, np.ndarray]
    labels: dict[str, str]
    oom_ds: np.ndarray = field(default_factory=lambda: np.array([], dtype="datetime64[ns]"))
    oom_memory: np.ndarray = field(default_factory=lambda: np.array([], dtype=float))


def _naive(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _ns(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(ts.tz_convert("UTC").tz_localize(None).as_unit("ns"))


class RightSizer:
    """Incremental right-sizing for a fleet (module docstring).

    ``policy``: a ``Policy`` or a registered name (default ``calibrated``), built with ``policy_options``.
    ``window``: the decision window (the reports' use window, and the engine's prediction window).
    ``retention``: how much history is kept per container (None: all). ``planned_memory_overruns``: as in
    ``rightsize``. ``predictor``: keyword arguments of ``predict.UsagePredictor`` for predictive policies.
    """

    def __init__(
        self,
        policy: Policy | str = DEFAULT_POLICY,
        *,
        window: str | pd.Timedelta = "24h",
        retention: str | pd.Timedelta | None = RETENTION,
        planned_memory_overruns: float | None = None,
        policy_options: Mapping[str, Any] | None = None,
        predictor: Mapping[str, Any] | None = None,
    ) -> None:
        self.window = pd.Timedelta(window)
        if self.window <= pd.Timedelta(0):
            raise UsageError(f"window={window!r} must be positive")
        self.retention = None if retention is None else pd.Timedelta(retention)
        self.policy_name = policy if isinstance(policy, str) else policy.name
        self.predictive = isinstance(policy, str) and policy in PREDICTIVE_POLICIES
        self._options = dict(policy_options or {})
        self._planned = planned_memory_overruns
        self._policy: Policy | None = None if self.predictive else get_policy(
            policy, planned_memory_overruns=planned_memory_overruns, **self._options)
        self._predictor_options = dict(predictor or {})
        self._predictor: UsagePredictor | None = None
        self._containers: dict[str, _Container] = {}
        self._kept: dict[tuple[str, str], dict[tuple[object, ...], object]] = {}
        self._labels: tuple[str, ...] = ()
        self.now: pd.Timestamp | None = None

    # -- state --------------------------------------------------------------------------------------------------
    @property
    def containers(self) -> list[str]:
        """The ids of the containers held."""
        return sorted(self._containers)

    def _add(self, frame: pd.DataFrame) -> None:
        """Merge ``frame`` (validated, sorted by id, ds) into each container's stored samples (``_merge``)."""
        self._labels = tuple(dict.fromkeys([*self._labels, *(c for c in SIBLING_COLUMNS if c in frame.columns)]))
        ids = frame[ID].astype(str).to_numpy()
        ds = _naive(frame[DS])
        cols = {c: frame[c].to_numpy(dtype=float) for c in COLUMNS}
        labels = {c: frame[c].to_numpy(dtype=object) for c in SIBLING_COLUMNS if c in frame.columns}
        bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
        for lo, hi in itertools.pairwise(bounds):
            uid = str(ids[lo])
            latest = {c: str(v[hi - 1]) for c, v in labels.items() if v[hi - 1] is not None}
            known = self._containers.get(uid)
            if known is None:
                values = {c: v[lo:hi].copy() for c, v in cols.items()}
                self._containers[uid] = _Container(ds[lo:hi].copy(), values, latest)
                continue
            if self._merge(uid, known, ds[lo:hi], {c: v[lo:hi] for c, v in cols.items()}):
                known.labels = {**known.labels, **latest}

    def _merge(self, uid: str, known: _Container, ds: np.ndarray, values: dict[str, np.ndarray]) -> bool:
        """Merge one container's new samples; True when anything was added or changed.

        Samples after the last stored one are appended. A re-sent sample (same time) replaces the stored one: a
        source such as Prometheus may answer the newest point of a range before all its scrapes are in, and a
        fresh fit on the re-fetched range would see the new value. When a re-sent value differs, the container's
        kept window scores are dropped (they may have read the old one); an unchanged overlap keeps them. A sample
        at a time the store does not hold inside the stored span (a gap filled late) is merged in the same way.
        """
        first = int(np.searchsorted(known.ds, ds[0], side="left"))
        tail = known.ds[first:]
        if tail.size == 0:  # the usual daily update: only new samples
            known.ds = np.concatenate([known.ds, ds])
            known.values = {c: np.concatenate([known.values[c], values[c]]) for c in COLUMNS}
            return True
        at = np.searchsorted(ds, tail)
        shared = (at < ds.size) & (ds[np.minimum(at, ds.size - 1)] == tail)
        changed = any(not np.array_equal(known.values[c][first:][shared], values[c][at[shared]], equal_nan=True)
                      for c in COLUMNS)
        fresh = ~np.isin(ds, tail)
        if not changed and not fresh.any():
            return False
        if changed or (fresh & (ds < tail[-1])).any():
            for res in RESOURCES:
                self._kept.pop((uid, res), None)
        keep = np.flatnonzero(~shared)  # stored samples the new frame does not re-send
        merged_ds = np.concatenate([tail[keep], ds])
        order = np.argsort(merged_ds, kind="stable")
        known.ds = np.concatenate([known.ds[:first], merged_ds[order]])
        known.values = {c: np.concatenate([known.values[c][:first],
                                           np.concatenate([known.values[c][first:][keep], values[c]])[order]])
                        for c in COLUMNS}
        return True

    def _add_kills(self, kills: pd.DataFrame) -> None:
        for uid, g in kills.groupby(ID, sort=False):
            known = self._containers.get(str(uid))
            if known is None:
                continue
            when, used = _naive(g[DS]), g[MEMORY].to_numpy(dtype=float)
            new = ~np.isin(when, known.oom_ds)
            if self.now is not None and (when[new] < _ns(self.now)).any():
                self._kept.pop((str(uid), MEMORY), None)  # a late kill inside scored windows: score them again
            known.oom_ds = np.concatenate([known.oom_ds, when[new]])
            known.oom_memory = np.concatenate([known.oom_memory, used[new]])
            order = np.argsort(known.oom_ds, kind="stable")
            known.oom_ds, known.oom_memory = known.oom_ds[order], known.oom_memory[order]

    def _trim(self, now: pd.Timestamp) -> None:
        """Drop samples older than ``retention`` before ``now``, and kept window scores as old."""
        if self.retention is None:
            return
        start = _ns(now - self.retention)
        for c in self._containers.values():
            k = int(np.searchsorted(c.ds, start, side="left"))
            if k:
                c.ds = c.ds[k:]
                c.values = {col: v[k:] for col, v in c.values.items()}
            keep = c.oom_ds >= start
            c.oom_ds, c.oom_memory = c.oom_ds[keep], c.oom_memory[keep]
        for kept in self._kept.values():
            for key in [k for k in kept if isinstance(k[-1], np.datetime64) and k[-1] < start]:
                del kept[key]

    def frame(self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        """The stored samples in ``[start, end)`` as a usage frame (all of them by default)."""
        parts = []
        lo = None if start is None else _ns(start)
        hi = None if end is None else _ns(end)
        for uid in self.containers:
            c = self._containers[uid]
            a = 0 if lo is None else int(np.searchsorted(c.ds, lo, side="left"))
            b = c.ds.size if hi is None else int(np.searchsorted(c.ds, hi, side="left"))
            if b <= a:
                continue
            part = pd.DataFrame({ID: uid, DS: pd.to_datetime(c.ds[a:b]).tz_localize("UTC"),
                                 **{col: c.values[col][a:b] for col in COLUMNS}})
            for label in self._labels:
                part[label] = c.labels.get(label)
            parts.append(part)
        if not parts:
            return pd.DataFrame(columns=[ID, DS, *COLUMNS, *self._labels])
        return pd.concat(parts, ignore_index=True)

    # -- the three calls -----------------------------------------------------------------------------------------
    def fit(self, usage: pd.DataFrame, ooms: pd.DataFrame | None = None, now: object = None) -> Self:
        """Start from ``usage`` (and ``ooms``): validate once, keep the samples, fit the engine when the policy
        needs it. ``now`` (default: one sampling step after the last sample) is the next decision time."""
        frame = validate_usage(usage)
        kills = validate_ooms(ooms, frame)
        self._containers, self._kept, self._labels = {}, {}, ()
        self._add(frame)
        if len(kills):
            self._add_kills(kills)
        self.now = default_now(frame) if now is None else as_utc(now)
        self._trim(self.now)
        if self.predictive:
            self._predictor = UsagePredictor(window=window_alias(self.window), **self._predictor_options)
            self._predictor.fit(self.frame(end=self.now), self.now)
        return self

    def update(self, usage: pd.DataFrame, ooms: pd.DataFrame | None = None, now: object = None) -> Self:
        """Add the new samples (and kills) and move to ``now`` (default: one step after the last sample)."""
        if self.now is None:
            return self.fit(usage, ooms, now)
        frame = validate_usage(usage)
        kills = validate_ooms(ooms, frame)
        self._add(frame)
        if len(kills):
            self._add_kills(kills)
        return self.advance(default_now(frame) if now is None else as_utc(now))

    def advance(self, now: object) -> Self:
        """Move to ``now`` without new samples (a cycle that fetched nothing new): trim, update the engine."""
        if self.now is None:
            raise UsageError("RightSizer.advance before fit: call fit(usage) first")
        self.now = max(self.now, as_utc(now))
        self._trim(self.now)
        if self._predictor is not None:
            anchor = self._predictor.anchor
            aligned = anchor is not None and not (self.now - anchor) % pd.Timedelta(window_alias(self.window))
            history = self.frame(end=self.now)
            if aligned:
                self._predictor.update(history, self.now)
            else:
                self._predictor.fit(history, self.now)
        return self

    def histories(self, now: pd.Timestamp) -> list[ContainerHistory]:
        """Every container's history before ``now`` (both resources), sharing one ``Fleet``."""
        at = _ns(now)
        out: list[ContainerHistory] = []
        empty_f = np.array([], dtype=float)
        for uid in self.containers:
            c = self._containers[uid]
            cut = int(np.searchsorted(c.ds, at, side="left"))
            if cut == 0:
                continue
            kills = c.oom_ds < at
            for res in RESOURCES:
                oom_ds = c.oom_ds[kills] if res == MEMORY else c.oom_ds[:0]
                oom_use = c.oom_memory[kills] if res == MEMORY else empty_f
                out.append(ContainerHistory(
                    uid, res, c.ds[:cut], c.values[res][:cut], c.values[REQUEST_OF[res]][:cut], oom_ds, oom_use,
                    now, dict(c.labels), kept=self._kept.setdefault((uid, res), {})))
        return attach_fleet(out)

    def _resolve(self, policy: Policy | str | None, now: pd.Timestamp) -> tuple[Policy, pd.DataFrame | None]:
        """The policy of this decision and, for a predictive one, the engine's prediction table."""
        if policy is None and self._policy is not None:
            return self._policy, None
        name = self.policy_name if policy is None else policy
        if isinstance(name, str) and name in PREDICTIVE_POLICIES:
            if self._predictor is None:
                raise UsageError(f"policy {name!r} needs the engine: create RightSizer({name!r}) to fit it")
            predicted = self._predictor.predict(self.frame(end=now), now)
            chosen = get_policy(name, prediction=predicted, planned_memory_overruns=self._planned,
                                **(self._options if policy is None else {}))
            return chosen, predicted
        return get_policy(name, planned_memory_overruns=self._planned), None

    def decide(self, now: object = None, *, policy: Policy | str | None = None, reports: bool = True,
               prediction: pd.DataFrame | None = None, stacklevel: int = 2) -> RightsizingResult:
        """Recommendations for every container with samples before ``now`` (default: the time of the last
        ``fit``/``update``), with the reports unless ``reports=False``. ``policy`` overrides the sizer's own for
        this call (same state; e.g. to compare policies). ``prediction``: a quantile table for the reports.
        ``stacklevel``: of the ``LowConfidenceWarning`` (2: the caller of ``decide``)."""
        if self.now is None:
            raise UsageError("RightSizer.decide before fit: call fit(usage) first")
        when = self.now if now is None else as_utc(now)
        chosen, predicted = self._resolve(policy, when)
        hs = self.histories(when)
        if not hs:
            raise UsageError(f"usage: no sample before now={when.isoformat()}")
        extra = tuple(c for c in GROUP_COLUMNS if c in self._labels)
        recs = recommend_histories(hs, chosen, extra=extra)
        message = low_confidence_message(hs, chosen)
        if message:
            warnings.warn(message, LowConfidenceWarning, stacklevel=stacklevel)
        notes = (message,) if message else ()
        if not reports:
            empty = pd.DataFrame()
            return RightsizingResult(recs, empty, empty, empty, when, self.window, chosen.name, notes)
        if prediction is None and predicted is not None:
            prediction = quantile_table(request_statistics(predicted), PREDICTED, (80, 95))
        recent = self.frame(when - self.window, when)
        containers = container_report(recent, recs, now=when, window=self.window, prediction=prediction)
        namespaces = group_report(containers, NAMESPACE)
        teams = group_report(containers, TEAM) if TEAM in self._labels else group_report(containers.iloc[:0], TEAM)
        return RightsizingResult(recs, containers, namespaces, teams, when, self.window, chosen.name, notes)
