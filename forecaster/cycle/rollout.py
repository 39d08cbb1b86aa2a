"""Model rollout, pure: a refit's model (the **challenger**) runs in shadow beside the serving **champion**, both are
scored on the same points, and one rule says when the challenger is promoted, kept out, or still undecided.

Who calls it: ``forecaster.cycle.forecast.RolloutProvider`` (the provider the service and the controller use) keeps a
``ShadowLog`` per provider key (one workload group or shard: the service's ``freq/<f>``, the controller's policy) and
asks ``judge`` each cycle. Nothing here touches a store, a clock or a model: values in, values out.

**Scoring on the same points.** Each cycle both models forecast from the same history at the same issue time ``t``
(``ShadowLog.add``); only the champion's forecast drives decisions. When the actuals of a bucket ``ds`` arrive
(``ShadowLog.score``), every pair issued before it with ``ds <= t + score_lead`` (the lead times a floor uses; 1 h by
default) is scored, and the bucket becomes one **point**: per model, the mean over its rows (series x issue times) of

    pinball(y, q, tau) = max(tau (y - q), (tau - 1)(y - q))
    loss               = mean of pinball over the quantiles the forecast states: ensemble (tau 0.5), and for each
                         level L: lo-L (tau (1 - L/100) / 2) and hi-L (tau 1 - (1 - L/100) / 2)
    abs error          = |y - ensemble|;   inside[L] = lo-L <= y <= hi-L

Worked example (one row, levels 80): y 10, ensemble 8, lo-80 6, hi-80 12 -> pinball 0.5 x 2 = 1 (median),
0.1 x 4 = 0.4 (lo), 0.1 x 2 = 0.2 (hi): loss (1 + 0.4 + 0.2) / 3 = 0.5333; abs error 2; inside.

**The paired test** (Diebold-Mariano, one-sided, with a Newey-West variance: consecutive points are correlated, a plain
t-test would overstate the evidence). Over the n points in time order, with ``L_c`` the champion's and ``L_h`` the
challenger's loss::

    better:  d_t = (1 - margin) L_c,t - L_h,t          (the challenger beats the champion by more than the margin)
    worse:   w_t = L_h,t - L_c,t
    point:   a_t = E_h,t - (1 + margin) E_c,t           (E: absolute error of the point forecast; worse beyond the
                                                         margin)
    DM(x)    = mean(x) / sqrt(lrv(x) / n)
    lrv(x)   = g_0 + 2 sum_{k=1..K} (1 - k / (K + 1)) g_k,   g_k = (1/n) sum_{t>k} (x_t - mean)(x_{t-k} - mean),
               K = floor(n^(1/3)); lrv <= 0 falls back to g_0

**The rule** (``judge``; defaults in ``RolloutPolicy``: margin 2 %, 48 points minimum, 288 maximum, z = 1.645, i.e.
5 % one-sided, champion stale after 3 days):

1. fewer than ``min_points`` points: promote at once when the champion is stale (older than ``stale_after``: a model
   that old is worse than an unproven one), else wait;
2. ``DM(w) > z`` or ``DM(a) > z``: the challenger is worse, in loss or (beyond the margin) in its point forecast:
   kept out, with the scores as the reason (a stale champion does not change this: a refit proven worse never
   serves). The point test guards against a refit whose bands merely widened: a bad day in the training data
   inflates the conformal bands, which the pinball loss rewards while the champion's bands are too narrow, yet its
   point forecast is worse. It is conservative: a refit with much better bands but a worse point forecast waits for
   the champion to turn stale;
3. ``DM(d) > z``: promoted, "better by more than the margin" (and, by 2, not worse in its point forecast);
4. a stale champion: promoted at once;
5. ``max_points`` points and no verdict: kept out, "not better by the margin";
6. otherwise still in shadow.

Worked example (``tests/rollout/test_rollout_rule.py``): six points, champion losses 4, 6, 5, 5, 4, 6, challenger 3,
4, 4, 3, 3, 4, margin 0.02 -> d = 0.92, 1.88, 0.9, 1.9, 0.92, 1.88, mean 1.4; K = 1, g_0 = 0.23693, g_1 = -0.19847,
lrv = 0.23693 - 0.19847 = 0.03847, DM = 1.4 / sqrt(0.03847 / 6) = 17.5 > 1.645: better by the margin (with
``min_points`` 6).

**Feedback-loop guard** (``per_pod_demand``): the demand a model trains on must be one our own actions do not change.
Per-pod load (an ``avg`` over pods, a division by a pod or replica count, utilisation against requests) falls when
we add pods, so a model trained on it learns our scaling, not the demand; such a query gets a warning.

Pure: numpy and pandas only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ENSEMBLE, ID, Y, hi, lo
from forecaster.contracts.ports import MODEL_EVENT_KINDS

CHALLENGER, PROMOTED, REJECTED, SUPERSEDED, ROLLED_BACK = MODEL_EVENT_KINDS
"""What can happen to a model (``contracts.ports.MODEL_EVENT_KINDS``): fitted into shadow, promoted to champion, kept
out, replaced by a newer challenger before a verdict, or made champion again by an operator's rollback."""


@dataclass(frozen=True)
class RolloutPolicy:
    """When a challenger is promoted (module docstring, "The rule")."""

    margin: float = 0.02
    """Relative improvement of the mean loss the challenger must show over the champion (0.02: 2 % lower)."""
    min_points: int = 48
    """Scored points (buckets) before any verdict on the test (48: 4 hours at 5 minutes)."""
    max_points: int = 288
    """Points after which a challenger without a verdict is kept out (288: a day at 5 minutes)."""
    z: float = 1.645
    """One-sided critical value of the paired test (1.645: 5 %)."""
    stale_after: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("3D"))
    """A champion older than this (since its fit, or since the rollback that made it champion) is replaced by the
    next challenger at once."""
    score_lead: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("1h"))
    """Forecast rows scored: those at most this far after their issue time (the leads a floor uses)."""


# -- losses -----------------------------------------------------------------------------------------------------
def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> np.ndarray:
    """``max(tau (y - q), (tau - 1)(y - q))`` elementwise. Worked example: y 10, q 12, tau 0.9 -> 0.2."""
    u = y - q
    return np.maximum(tau * u, (tau - 1.0) * u)


def quantiles(columns: Any, levels: tuple[int, ...]) -> list[tuple[str, float]]:
    """``(column, tau)`` of the quantiles a forecast states (module docstring): the ensemble, then each level's
    band present in ``columns``."""
    out = [(ENSEMBLE, 0.5)]
    for level in sorted(levels):
        low, high = lo(ENSEMBLE, level), hi(ENSEMBLE, level)
        if low in columns and high in columns:
            tail = (1.0 - level / 100.0) / 2.0
            out += [(low, tail), (high, 1.0 - tail)]
    return out


def row_losses(frame: pd.DataFrame, levels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Per row of ``frame`` (a Forecast frame joined with ``y``): the loss, the absolute error and, per level, whether
    ``y`` is inside the band (module docstring)."""
    y = frame[Y].to_numpy(dtype=float)
    pairs = quantiles(frame.columns, levels)
    loss = np.mean([pinball(y, frame[c].to_numpy(dtype=float), tau) for c, tau in pairs], axis=0)
    inside = {level: ((frame[lo(ENSEMBLE, level)].to_numpy(dtype=float) <= y)
                      & (y <= frame[hi(ENSEMBLE, level)].to_numpy(dtype=float))).astype(float)
              for level in levels if lo(ENSEMBLE, level) in frame.columns and hi(ENSEMBLE, level) in frame.columns}
    return loss, np.abs(y - frame[ENSEMBLE].to_numpy(dtype=float)), inside


# -- scores -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    """One model's scores over the paired points (each point weighted equally)."""

    pinball: float
    """Mean loss (the mean pinball of the stated quantiles)."""
    mae: float
    """Mean absolute error of the point forecast."""
    coverage: dict[int, float]
    """Level -> share of scored rows inside the band."""
    wape: float
    """``mae`` over the mean actual (scale-free, a fraction: what the metrics export)."""

    def to_dict(self) -> dict[str, Any]:
        return {"pinball": self.pinball, "mae": self.mae, "wape": self.wape,
                "coverage": {str(k): v for k, v in self.coverage.items()}}


@dataclass(frozen=True)
class Evidence:
    """What a verdict rests on: both models' scores on the same ``n_points`` points and the paired test."""

    n_points: int
    champion: Scores
    challenger: Scores
    better_statistic: float
    """``DM(d)``: the challenger beats the champion by more than the margin when above ``z``."""
    worse_statistic: float
    """``DM(w)``: the challenger is worse when above ``z``."""
    margin: float
    z: float
    mean_actual: float = float("nan")
    """Mean actual over the points (the scale of the errors)."""
    mae_worse_statistic: float = float("nan")
    """``DM(a)`` on the absolute errors: the challenger's point forecast is worse by more than the margin when above
    ``z``."""

    @property
    def improvement(self) -> float:
        """``1 - challenger loss / champion loss`` (0.05: the challenger's loss is 5 % lower)."""
        if self.champion.pinball <= 0:
            return 0.0
        return 1.0 - self.challenger.pinball / self.champion.pinball

    def summary(self) -> str:
        """One line: ``48 points: pinball 3.1 vs 2.9 (champion vs challenger, -6.5 %), DM 2.4 (better) / -2.4``."""
        return (f"{self.n_points} points: pinball {self.champion.pinball:.4g} vs {self.challenger.pinball:.4g} "
                f"(champion vs challenger, {-100 * self.improvement:+.1f} %), MAE {self.champion.mae:.4g} vs "
                f"{self.challenger.mae:.4g}, paired test DM {self.better_statistic:.2f} better by "
                f"{100 * self.margin:g} % / {self.worse_statistic:.2f} worse, MAE {self.mae_worse_statistic:.2f} "
                f"worse (z {self.z:g})")

    def to_dict(self) -> dict[str, Any]:
        return {"n_points": self.n_points, "champion": self.champion.to_dict(),
                "challenger": self.challenger.to_dict(), "better_statistic": _finite(self.better_statistic),
                "worse_statistic": _finite(self.worse_statistic),
                "mae_worse_statistic": _finite(self.mae_worse_statistic), "margin": self.margin, "z": self.z,
                "improvement": _finite(self.improvement), "mean_actual": _finite(self.mean_actual)}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class _Point:
    champion: float
    challenger: float
    champion_abs: float
    challenger_abs: float
    champion_inside: dict[int, float]
    challenger_inside: dict[int, float]
    rows: int
    y_mean: float


@dataclass
class ShadowLog:
    """One challenger's paired forecasts and points (module docstring, "Scoring on the same points")."""

    levels: tuple[int, ...]
    score_lead: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("1h"))
    issued: list[tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]] = field(default_factory=list)
    points: dict[int, _Point] = field(default_factory=dict)
    """Bucket time (ns) -> the paired point; a re-fetched bucket replaces its point."""

    def add(self, issued_at: pd.Timestamp, champion: pd.DataFrame, challenger: pd.DataFrame) -> None:
        """Log both forecasts issued at ``issued_at`` (rows up to ``score_lead`` ahead are kept)."""
        at = pd.Timestamp(issued_at)
        limit = at + self.score_lead

        def keep(frame: pd.DataFrame) -> pd.DataFrame:
            ds = pd.to_datetime(frame[DS], utc=True)
            return frame.loc[ds <= limit].assign(**{DS: ds[ds <= limit]}).reset_index(drop=True)

        self.issued = [item for item in self.issued if item[0] != at]
        self.issued.append((at, keep(champion), keep(challenger)))
        self.issued.sort(key=lambda item: item[0])

    def score(self, history: pd.DataFrame) -> int:
        """Score the buckets of ``history`` (``unique_id``, ``ds``, ``y``) both models forecast; forget forecasts whose
        rows are all in the past. The number of points (re)scored."""
        if history is None or len(history) == 0 or not self.issued:
            return 0
        actual = pd.DataFrame({ID: history[ID].astype(str) if ID in history.columns else "",
                               DS: pd.to_datetime(history[DS], utc=True),
                               Y: pd.to_numeric(history[Y], errors="coerce")})
        actual = actual[np.isfinite(actual[Y].to_numpy(dtype=float))]
        joined_c: list[pd.DataFrame] = []
        joined_h: list[pd.DataFrame] = []
        for at, champ, chal in self.issued:
            for frame, out in ((champ, joined_c), (chal, joined_h)):
                part = frame.assign(**{ID: frame[ID].astype(str) if ID in frame.columns else ""})
                part = part.merge(actual, on=[ID, DS], how="inner")
                out.append(part[part[DS] > at].assign(_issued=at))
        c = pd.concat(joined_c, ignore_index=True)
        h = pd.concat(joined_h, ignore_index=True)
        if len(c) and len(h):  # pair row by row: the same series, bucket and issue time in both
            keys = [ID, DS, "_issued"]
            h = h.merge(c[keys], on=keys, how="inner").sort_values(keys, kind="stable").reset_index(drop=True)
            c = c.merge(h[keys], on=keys, how="inner").sort_values(keys, kind="stable").reset_index(drop=True)
        scored = self._points(c, h) if len(c) and len(h) else 0
        newest = actual[DS].max() if len(actual) else None
        if newest is not None:
            self.issued = [item for item in self.issued if len(item[1]) and item[1][DS].max() >= newest]
        return scored

    def _points(self, c: pd.DataFrame, h: pd.DataFrame) -> int:
        lc, ac, ic = row_losses(c, self.levels)
        lh, ah, ih = row_losses(h, self.levels)
        groups = pd.DatetimeIndex(c[DS]).as_unit("ns").asi8
        y = c[Y].to_numpy(dtype=float)
        for t in np.unique(groups):
            m = groups == t
            self.points[int(t)] = _Point(
                float(lc[m].mean()), float(lh[m].mean()), float(ac[m].mean()), float(ah[m].mean()),
                {k: float(v[m].mean()) for k, v in ic.items()}, {k: float(v[m].mean()) for k, v in ih.items()},
                int(m.sum()), float(y[m].mean()))
        return len(np.unique(groups))

    @property
    def n_points(self) -> int:
        return len(self.points)

    def losses(self) -> tuple[np.ndarray, np.ndarray]:
        """``(champion, challenger)`` losses per point, in time order."""
        order = sorted(self.points)
        return (np.array([self.points[t].champion for t in order], dtype=float),
                np.array([self.points[t].challenger for t in order], dtype=float))

    def evidence(self, policy: RolloutPolicy) -> Evidence:
        """Both models' scores and the paired test over the points so far."""
        lc, lh = self.losses()
        pts = [self.points[t] for t in sorted(self.points)]
        ac = np.array([p.champion_abs for p in pts], dtype=float)
        ah = np.array([p.challenger_abs for p in pts], dtype=float)
        y_mean = float(np.mean([p.y_mean for p in pts])) if pts else float("nan")

        def scores(loss: np.ndarray, absolute: list[float], inside: list[dict[int, float]]) -> Scores:
            if not len(loss):
                return Scores(float("nan"), float("nan"), {}, float("nan"))
            mae = float(np.mean(absolute))
            coverage = {lv: float(np.mean([i[lv] for i in inside if lv in i])) for lv in sorted(inside[0])}
            return Scores(float(loss.mean()), mae, coverage, mae / y_mean if y_mean > 0 else float("nan"))

        return Evidence(len(pts), scores(lc, [p.champion_abs for p in pts], [p.champion_inside for p in pts]),
                        scores(lh, [p.challenger_abs for p in pts], [p.challenger_inside for p in pts]),
                        dm_statistic((1.0 - policy.margin) * lc - lh), dm_statistic(lh - lc), policy.margin, policy.z,
                        y_mean, dm_statistic(ah - (1.0 + policy.margin) * ac))


# -- the paired test and the rule -------------------------------------------------------------------------------
def long_run_variance(x: np.ndarray) -> float:
    """Newey-West long-run variance with Bartlett weights, ``K = floor(n^(1/3))`` (module docstring); ``g_0`` when the
    weighted sum is not positive."""
    n = len(x)
    e = x - x.mean()
    g0 = float(e @ e) / n
    k_max = math.floor(n ** (1.0 / 3.0) + 1e-9)  # 64 ** (1/3) is 3.9999999999999996 in floating point
    total = g0 + sum(2.0 * (1.0 - k / (k_max + 1.0)) * float(e[k:] @ e[:-k]) / n
                     for k in range(1, min(k_max, n - 1) + 1))
    return total if total > 0 else g0


def dm_statistic(x: np.ndarray) -> float:
    """``mean(x) / sqrt(lrv(x) / n)`` (module docstring); ``nan`` without points; ``+-inf`` (or 0) when ``x`` is
    constant."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan")
    mean = float(x.mean())
    lrv = long_run_variance(x) if len(x) > 1 else 0.0
    if lrv <= 1e-300:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / math.sqrt(lrv / len(x))


@dataclass(frozen=True)
class Verdict:
    """What ``judge`` decided: ``promote``, ``reject`` or ``wait``, and why."""

    action: str  # "promote" | "reject" | "wait"
    reason: str
    evidence: Evidence | None = None


def judge(evidence: Evidence | None, policy: RolloutPolicy, champion_age: pd.Timedelta | None) -> Verdict:
    """The rule (module docstring). ``champion_age``: how long since the champion's fit (or rollback); ``None``: no
    champion, the challenger is promoted at once."""
    if champion_age is None:
        return Verdict("promote", "no champion: the first model serves at once", evidence)
    stale = champion_age > policy.stale_after
    stale_why = (f"the champion is stale ({_age(champion_age)} old, limit {_age(policy.stale_after)}): "
                 "promoted at once")
    n = 0 if evidence is None else evidence.n_points
    if evidence is None or n < policy.min_points:
        if stale:
            return Verdict("promote", f"{stale_why} ({n} of {policy.min_points} points scored)", evidence)
        return Verdict("wait", f"in shadow: {n} of {policy.min_points} points scored", evidence)
    if evidence.worse_statistic > policy.z:
        return Verdict("reject", f"worse than the champion: {evidence.summary()}", evidence)
    if evidence.mae_worse_statistic > policy.z:
        return Verdict("reject", f"point forecast worse than the champion's: {evidence.summary()}", evidence)
    if evidence.better_statistic > policy.z:
        return Verdict("promote", f"better by more than {100 * policy.margin:g} %: {evidence.summary()}", evidence)
    if stale:
        return Verdict("promote", f"{stale_why}; {evidence.summary()}", evidence)
    if n >= policy.max_points:
        return Verdict("reject", f"not better by {100 * policy.margin:g} % after {n} points: {evidence.summary()}",
                       evidence)
    return Verdict("wait", f"in shadow, no verdict yet: {evidence.summary()}", evidence)


def _age(delta: pd.Timedelta) -> str:
    hours = delta.total_seconds() / 3600.0
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h"


# -- events -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RolloutEvent:
    """Something that happened to a key's models (``KINDS``), with the evidence when a verdict was reached."""

    kind: str
    key: str
    version: str
    at: pd.Timestamp
    reason: str
    previous: str = ""
    """The champion before (promoted, rolled back) or the champion it was compared with (rejected, superseded)."""
    evidence: Evidence | None = None


# -- feedback-loop guard ----------------------------------------------------------------------------------------
REPLICA_SERIES: tuple[str, ...] = (
    "kube_pod_info", "kube_pod_status_ready", "kube_pod_status_phase", "kube_pod_container_status_running",
    "kube_deployment_status_replicas", "kube_deployment_spec_replicas", "kube_statefulset_status_replicas",
    "kube_replicaset_status_replicas", "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas", "up",
)
"""Series that count pods or replicas: a demand divided by one of them is per-pod."""
_AVG = re.compile(r"\bavg\s*(\(|by\b|without\b)")
_PER_POD = re.compile(r"\bby\s*\(\s*[^)]*\b(pod|pod_name)\b")
_COUNT = re.compile(r"/\s*(\(\s*)*count\b")
_UTILISATION = re.compile(r"utili[sz]ation|kube_pod_container_resource_requests|kube_pod_container_resource_limits")
_CPU_PER_POD = re.compile(r"container_cpu_usage_seconds_total|container_memory_working_set_bytes")


def per_pod_demand(query: str) -> str:
    """Why a demand query measures per-pod load our own scaling changes (module docstring), or ``""``.
    ``avg(rate(http_requests_total[5m]))`` -> "averages over pods ..."; ``sum(rate(http_requests_total[5m]))`` -> ""."""
    text = " ".join(str(query).split())
    found: list[str] = []
    if _AVG.search(text):
        found.append("it averages over pods (avg)")
    if _COUNT.search(text) or ("/" in text and any(re.search(rf"\b{s}\b", text) for s in REPLICA_SERIES)):
        found.append("it divides by a count of pods or replicas")
    if _UTILISATION.search(text):
        found.append("it is a utilisation (use against requests or limits)")
    if _PER_POD.search(text) or (_CPU_PER_POD.search(text) and not re.search(r"\bsum\s*\(", text)):
        found.append("it is per pod (container CPU or memory not summed over the workload)")
    if not found:
        return ""
    return ("demand query is per-pod load: " + "; ".join(found) + ". Adding pods lowers it, so a model trained on it "
            "learns our own scaling rather than the demand (a feedback loop); train on a signal our actions do not "
            "change, e.g. the request rate summed over the workload: sum(rate(http_requests_total[5m]))")
