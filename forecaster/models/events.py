"""The ``events`` member: the seasonal baseline forecast times a learned business-event uplift profile.

Fit (per event kind, pooled over the kind's past events and the series they apply to; ``custom`` events are a
kind per name, ``learning_kind``):

1. No-event reference ``b_t`` for each history point: the median of ``y`` at the same time of day on the
   nearest days on either side (``t +/- k days``, ``k = 1..donor_days``) that are touched by no event window
   (lead-in, event, decay) and are not outages; at least ``min_donors`` donors, else ``FitData.baseline``
   (``seasonal``) when given. Days from both sides cancel a linear trend, and an event never leaks into its
   own reference (a seasonal fit over the whole history partly absorbs events, so it is only the fallback).
2. Uplift per point ``u_t = log((y_t + eps) / (b_t + eps))``, ``eps`` = 1 % of the series' mean so zero
   demand stays finite. Outage rows are never used.
3. Relative-time bins of width ``bin_width`` around each event: ``lead`` bin i covers
   ``[start - (i+1)w, start - iw)`` within ``lead_in``; ``event`` bin i ``[start + iw, start + (i+1)w)``;
   ``decay`` bin i ``[end + iw, end + (i+1)w)`` within ``decay``.
   Only occurrences that ended within the history count: a launch under way at the end of the history would
   otherwise extend its own morning's uplift to its evening (NASA, STS-70: x1.96 forecast for the launch day's
   last hour against x1.0 observed).
4. Per bin: median of ``u`` per event instance (event x series), then the median over instances ``m``;
   shrunk toward 0 by its signal-to-noise: ``uplift = m * m^2 / (m^2 + s^2 / n)``, where ``n`` is the number
   of observations in the bin and ``s^2`` the variance of ``u`` on non-event points of the series involved
   (1.4826 * MAD, squared). Worked example: m = log 1.5 = 0.405, s = 0.05, n = 24 -> 0.4047 (factor
   0.9994); the same m from n = 1 point with s = 0.4 -> 0.205 (factor 0.51).

Predict: ``point = seasonal * exp(L)``, each band ``seasonal-lo/hi * exp(L)``, where ``L`` sums, over the
events in scope at that time, the learned bin value of the event's kind (``event`` bins past the longest
seen use the mean of the ``event`` bins; lead/decay bins not learned are 0). A kind never seen in history
uses ``log(1 + expected_uplift)`` over ``[start, end)`` when given, else 0. No events -> the baseline.

Pure: pandas/numpy and ``signals``. Called by ``forecaster.forecasting.members`` after the seasonal member.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError, NotFittedError
from forecaster.contracts.frames import DS, EVENTS, ID, OUTAGE, SEASONAL, Y, future_index, hi, lo
from forecaster.models.base import FitData, PredictData, order_bands
from signals.events import events_for, validate_events
from signals.frames import END, EVENT_ID, KIND, NAME, START, UPLIFT

PHASES: tuple[str, ...] = ("lead", "event", "decay")
UPLIFT_COLUMNS: tuple[str, ...] = ("kind", "phase", "bin", "hour", "uplift", "factor", "n_obs", "n_events")


def baseline_rows(
    last: pd.DataFrame, h: int, freq: str, baseline: pd.DataFrame | None, levels: tuple[int, ...], *, who: str
) -> pd.DataFrame:
    """The ``h`` future rows per series joined with the seasonal forecast; ``InputError`` if any is missing.

    Shared by the members that adjust the seasonal baseline (events, signals).
    """
    if baseline is None:
        raise InputError(f"{who}: PredictData.baseline (the seasonal forecast) is required")
    cols = [SEASONAL] + [c for level in levels for c in (lo(SEASONAL, level), hi(SEASONAL, level))]
    missing = [c for c in [ID, DS, *cols] if c not in baseline.columns]
    if missing:
        raise InputError(f"{who}: PredictData.baseline lacks column(s) {missing}")
    rows = future_index(last, h, freq).merge(baseline[[ID, DS, *cols]], on=[ID, DS], how="left")
    bad = rows[cols].isna().any(axis=1).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{who}: the seasonal forecast has no value for unique_id={rows[ID].iloc[i]!r}, "
            f"ds={rows[DS].iloc[i]} ({int(bad.sum())} rows missing or NaN)"
        )
    return rows


def learning_kind(event: object) -> str:
    """What an event learns from and lends to: its ``kind``, except ``custom`` events, which are one kind per
    ``name`` (a marathon and a blizzard travel ban are both "custom" and move demand in opposite directions)."""
    kind = str(getattr(event, KIND))
    return f"custom:{getattr(event, NAME)}" if kind == "custom" else kind


def shrunk_uplift(m: np.ndarray, var: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``m * m^2 / (m^2 + var / n)``: a bin's median log uplift shrunk toward 0 by its signal-to-noise
    (0 where ``m`` is 0). E.g. m = 0.405, var = 0.05^2, n = 24 -> 0.4047;
    m = 0.405, var = 0.4^2, n = 1 -> 0.205.
    """
    m, var, n = (np.asarray(a, dtype=float) for a in (m, var, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = m**2 / (m**2 + var / n)
    return np.where(np.isfinite(w), w * m, 0.0)


def _robust_var(u: np.ndarray) -> float:
    """``(1.4826 * MAD)^2`` of the finite values; a small floor keeps noise-free series from dividing by 0."""
    u = u[np.isfinite(u)]
    if len(u) < 2:
        return 1.0
    mad = float(np.median(np.abs(u - np.median(u))))
    return max((1.4826 * mad) ** 2, 1e-8)


class EventsMember:
    """Seasonal forecast x learned per-kind event uplift (see the module docstring for the formulas).

    lead_in     how long before an event its build-up is learned (default 1 day)
    decay       how long after an event its after-effect is learned (default 2 days)
    bin_width   width of the relative-time bins (default 1 hour)
    donor_days  days on each side searched for no-event reference values (default 7)
    min_donors  donors needed for a reference value (default 2)
    """

    name = EVENTS

    def __init__(
        self,
        lead_in: str | pd.Timedelta = "1D",
        decay: str | pd.Timedelta = "2D",
        bin_width: str | pd.Timedelta = "1h",
        donor_days: int = 7,
        min_donors: int = 2,
    ) -> None:
        self.lead_in = pd.Timedelta(lead_in)
        self.decay = pd.Timedelta(decay)
        self.bin_width = pd.Timedelta(bin_width)
        self.donor_days = donor_days
        self.min_donors = min_donors
        self.fallbacks_: dict[str, str] = {}
        self.uplifts_ = pd.DataFrame(columns=list(UPLIFT_COLUMNS))
        self._profile: dict[str, dict[str, np.ndarray]] = {}
        self._event_mean: dict[str, float] = {}
        self._last: pd.DataFrame | None = None
        self._events: pd.DataFrame | None = None
        self._freq = ""
        self._levels: tuple[int, ...] = ()

    # --- fit -------------------------------------------------------------------------------------------
    def _reference(self, y: np.ndarray, usable: np.ndarray, day_steps: int) -> np.ndarray:
        """Median of usable same-time-of-day donors ``t +/- k days``; NaN with fewer than ``min_donors``."""
        n = len(y)
        donors = np.full((2 * self.donor_days, n), np.nan)
        row = 0
        for k in range(1, self.donor_days + 1):
            for sign in (-1, 1):
                off = sign * k * day_steps
                src = np.arange(n) + off
                ok = (src >= 0) & (src < n)
                vals = np.full(n, np.nan)
                vals[ok] = np.where(usable[src[ok]], y[src[ok]], np.nan)
                donors[row] = vals
                row += 1
        count = np.isfinite(donors).sum(axis=0)
        ref = np.full(n, np.nan)
        enough = count >= self.min_donors
        if enough.any():
            ref[enough] = np.nanmedian(donors[:, enough], axis=0)
        return ref

    def _bins(self, t: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Phase code (0 lead, 1 event, 2 decay, -1 outside) and bin index of each ns timestamp."""
        w = self.bin_width.value
        phase = np.full(len(t), -1)
        b = np.zeros(len(t), dtype=np.int64)
        lead = (t >= start - self.lead_in.value) & (t < start)
        inside = (t >= start) & (t < end)
        after = (t >= end) & (t < end + self.decay.value)
        phase[lead], b[lead] = 0, (start - t[lead] - 1) // w
        phase[inside], b[inside] = 1, (t[inside] - start) // w
        phase[after], b[after] = 2, (t[after] - end) // w
        return phase, b

    def fit(self, data: FitData) -> Self:
        """Learn the per-kind uplift profiles from the events in ``data.history`` (see module docstring)."""
        hist = data.history
        self._freq, self._levels = data.freq, tuple(data.levels)
        self._last = hist.groupby(ID, sort=False).tail(1)[[ID, DS]].reset_index(drop=True)
        self._events = None if data.events is None else validate_events(data.events, source="FitData.events")
        self.fallbacks_ = {}
        self._profile, self._event_mean = {}, {}
        self.uplifts_ = pd.DataFrame(columns=list(UPLIFT_COLUMNS))
        if self._events is None or len(self._events) == 0:
            return self
        step = freq_to_timedelta(data.freq)
        day_steps = int(pd.Timedelta("1D") // step) if pd.Timedelta("1D") % step == pd.Timedelta(0) else 0
        base = None
        if data.baseline is not None and SEASONAL in data.baseline.columns:
            base = hist[[ID, DS]].merge(data.baseline[[ID, DS, SEASONAL]], on=[ID, DS], how="left")[SEASONAL]
        parts: list[pd.DataFrame] = []
        for uid, g in hist.groupby(ID, sort=False):
            ev = events_for(self._events, str(uid))
            t = pd.DatetimeIndex(g[DS]).as_unit("ns").asi8
            ev = ev.loc[
                ((ev[END] + self.decay) > g[DS].iloc[0]) & ((ev[START] - self.lead_in) <= g[DS].iloc[-1])
            ]
            if len(ev) == 0:
                continue
            y = g[Y].to_numpy(dtype=float)
            outage = g[OUTAGE].to_numpy(dtype=bool) if OUTAGE in g.columns else np.zeros(len(g), dtype=bool)
            touched = np.zeros(len(g), dtype=bool)
            windows = []
            for e in ev.itertuples(index=False):
                s, en = pd.Timestamp(getattr(e, START)).value, pd.Timestamp(getattr(e, END)).value
                windows.append((str(getattr(e, EVENT_ID)), learning_kind(e), s, en))
                touched |= (t >= s - self.lead_in.value) & (t < en + self.decay.value)
            ref = self._reference(y, ~touched & ~outage, day_steps) if day_steps else np.full(len(g), np.nan)
            if base is not None:
                seasonal = base.loc[g.index].to_numpy(dtype=float)
                ref = np.where(np.isfinite(ref), ref, seasonal)
            eps = 0.01 * float(np.mean(np.abs(y[~outage]))) + 1e-9 if (~outage).any() else 1.0
            with np.errstate(invalid="ignore", divide="ignore"):
                u = np.log((np.maximum(y, 0) + eps) / (np.maximum(ref, 0) + eps))
            good = np.isfinite(u) & ~outage
            var = _robust_var(u[good & ~touched])
            n_before = len(parts)
            for eid, kind, s, en in windows:
                if en > t[-1]:  # still under way (or to come): no evidence yet of its own uplift (module docstring)
                    continue
                phase, b = self._bins(t, s, en)
                keep = good & (phase >= 0)
                if keep.any():
                    parts.append(
                        pd.DataFrame(
                            {
                                "kind": kind,
                                "phase": phase[keep],
                                "bin": b[keep],
                                "inst": f"{uid}|{eid}",
                                "u": u[keep],
                                "var": var,
                            }
                        )
                    )
            if len(parts) == n_before:
                self.fallbacks_[str(uid)] = (
                    "events in scope but no usable no-event reference (history too short or all outage); "
                    "the series contributes no uplift observations"
                )
        if parts:
            self._learn(pd.concat(parts, ignore_index=True))
        return self

    def _learn(self, obs: pd.DataFrame) -> None:
        """Aggregate point uplifts into shrunk per-bin profiles (step 4 of the module docstring)."""
        per_inst = obs.groupby(["kind", "phase", "bin", "inst"]).agg(
            u=("u", "median"), n=("u", "size"), var=("var", "mean")
        )
        agg = per_inst.groupby(["kind", "phase", "bin"]).agg(
            m=("u", "median"), n_obs=("n", "sum"), n_events=("u", "size"), var=("var", "mean")
        )
        agg["uplift"] = shrunk_uplift(agg["m"].to_numpy(), agg["var"].to_numpy(), agg["n_obs"].to_numpy())
        agg = agg.reset_index()
        w_hours = self.bin_width / pd.Timedelta("1h")
        agg["hour"] = np.where(agg["phase"] == 0, -(agg["bin"] + 1) * w_hours, agg["bin"] * w_hours)
        agg["factor"] = np.exp(agg["uplift"])
        agg["phase"] = [PHASES[p] for p in agg["phase"]]
        self.uplifts_ = (
            agg[list(UPLIFT_COLUMNS)]
            .sort_values(["kind", "phase", "hour"], kind="stable")
            .reset_index(drop=True)
        )
        for kind, g in self.uplifts_.groupby("kind"):
            prof: dict[str, np.ndarray] = {}
            for phase in PHASES:
                sub = g[g["phase"] == phase]
                arr = np.zeros(int(sub["bin"].max()) + 1 if len(sub) else 0)
                arr[sub["bin"].to_numpy(dtype=int)] = sub["uplift"].to_numpy(dtype=float)
                prof[phase] = arr
            self._profile[str(kind)] = prof
            ev = prof["event"]
            self._event_mean[str(kind)] = float(ev.mean()) if len(ev) else 0.0

    # --- predict ---------------------------------------------------------------------------------------
    def log_uplift(self, events: pd.DataFrame | None, unique_id: str, ds: pd.DatetimeIndex) -> np.ndarray:
        """``L`` at each ``ds`` for one series: the sum over its in-scope events of the learned bin values."""
        total = np.zeros(len(ds))
        if events is None or len(events) == 0:
            return total
        t = ds.as_unit("ns").asi8
        for e in events_for(events, unique_id).itertuples(index=False):
            kind = learning_kind(e)
            s, en = pd.Timestamp(getattr(e, START)).value, pd.Timestamp(getattr(e, END)).value
            phase, b = self._bins(t, s, en)
            if kind in self._profile:
                prof = self._profile[kind]
                for code, name in enumerate(PHASES):
                    sel = phase == code
                    arr = prof[name]
                    past_end = self._event_mean[kind] if name == "event" else 0.0
                    vals = np.full(int(sel.sum()), past_end)
                    known = b[sel] < len(arr)
                    vals[known] = arr[b[sel][known]]
                    total[sel] += vals
            else:
                uplift = float(getattr(e, UPLIFT))
                if np.isfinite(uplift):
                    total[phase == 1] += np.log1p(uplift)
        return total

    def predict(self, h: int, data: PredictData) -> pd.DataFrame:
        """Baseline forecast scaled by ``exp(L)``; events from ``data.events``, else those given to fit."""
        if self._last is None:
            raise NotFittedError("events member: call fit() before predict()")
        rows = baseline_rows(self._last, h, self._freq, data.baseline, self._levels, who="events member")
        events = (
            validate_events(data.events, source="PredictData.events")
            if data.events is not None
            else self._events
        )
        factor = np.ones(len(rows))
        if events is not None and len(events):
            for uid, idx in rows.groupby(ID, sort=False).indices.items():
                factor[idx] = np.exp(self.log_uplift(events, str(uid), pd.DatetimeIndex(rows[DS].iloc[idx])))
        out = rows[[ID, DS]].copy()
        out[EVENTS] = rows[SEASONAL].to_numpy(dtype=float) * factor
        for level in self._levels:
            out[lo(EVENTS, level)] = rows[lo(SEASONAL, level)].to_numpy(dtype=float) * factor
            out[hi(EVENTS, level)] = rows[hi(SEASONAL, level)].to_numpy(dtype=float) * factor
        return order_bands(out, EVENTS, self._levels)

    def update(self, data: FitData) -> Self:
        """Move the forecast origin to the end of ``data.history`` (and take its events); no refit."""
        if self._last is None:
            raise NotFittedError("events member: call fit() before update()")
        self._last = data.history.groupby(ID, sort=False).tail(1)[[ID, DS]].reset_index(drop=True)
        if data.events is not None:
            self._events = validate_events(data.events, source="FitData.events")
        return self
