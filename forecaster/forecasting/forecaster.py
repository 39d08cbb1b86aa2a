"""``Forecaster``: the Python API capacity planners and the rest of the product use.

    fc = Forecaster(freq="5min", levels=(80, 95))
    fc.fit(history, events=calendar, signals=signal_frame)
    pred = fc.predict(h=288, future_signals=future_frame)
    cv = fc.backtest(history, h=12, n_windows=14, step="1D")
    fc.weights_, fc.explain("api"), fc.save("fc.zip"), Forecaster.load("fc.zip")

Fit = (1) validate the history (``forecaster.forecasting.history``), (2) a rolling-origin backtest of the members over
the last ``n_windows`` windows of ``horizon`` steps, ``calibration_step`` apart, (3) per-series weights per lead-time
bucket from it (``ensemble.weights``; buckets of ``ensemble.leads``: up to 1 hour, up to 6 hours, the rest, so one fit
serves the scaling lead time and the planning horizon) and per-step conformal factors with per-series, per-bucket
adjustments (``ensemble.intervals``), (4) the members refitted on the whole history (the lgbm model among the
backtest's tasks, with the round count and bands of the backtest's latest anchor: ``members.backtest_members``).
Forecasts and bands of a series that never went negative are never negative (members included). ``backtest`` runs
the members once over the union of its own cutoffs and the calibration cutoffs each needs, then learns weights and
calibration for each cutoff only from windows that ended by that cutoff: exactly what ``fit`` would have done at that
time.

Pure (no outside clients). Called by the CLI, the notebooks, the service and the controller.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta, steps_per
from forecaster.contracts.errors import ArtefactError, DefaultWeightsWarning, InputError, NotFittedError
from forecaster.contracts.frames import (
    CUTOFF,
    DS,
    ENSEMBLE,
    ID,
    LGBM,
    MEMBERS,
    OUTAGE,
    REFIT,
    Y,
    band_columns,
    validate_levels,
)
from forecaster.ensemble.combine import row_weights
from forecaster.ensemble.fit import Combination, EventContext
from forecaster.ensemble.intervals import Calibration
from forecaster.ensemble.leads import LEAD, horizon_steps, lead_buckets
from forecaster.ensemble.weights import DROPPED, SOURCE, default_weights
from forecaster.evaluation.cutoffs import rolling_cutoffs
from forecaster.forecasting import artefact
from forecaster.forecasting.appending import append_rows, spans_of
from forecaster.forecasting.history import Need, SeriesReport, prepare_history, require_history
from forecaster.forecasting.members import (
    Executor,
    backtest_members,
    cv_executor,
    engine_config,
    fit_members,
    member_cv,
    predict_members,
    update_members,
)
from forecaster.forecasting.state import FittedState
from forecaster.models.base import Member, order_bands
from forecaster.models.events import learning_kind
from signals.calendar import holiday_events
from signals.errors import SignalsError
from signals.events import validate_events
from signals.frames import EVENT_ID, validate_signals

Progress = Callable[[int, int], None]


@dataclass
class Explanation:
    """Why a series' forecast is what it is (``Forecaster.explain``)."""

    unique_id: str
    weights: dict[str, float]
    weight_source: str
    contributions: pd.DataFrame  # ds, ensemble, and w_m * member_m per member
    event_uplifts: pd.DataFrame
    signal_coefficients: pd.DataFrame
    fallbacks: dict[str, str]
    member_errors: dict[str, str]
    seasonal_periods: tuple[int, ...]
    calibration: pd.DataFrame  # step, level, factor
    training_span: tuple[pd.Timestamp, pd.Timestamp]
    weights_by_lead: pd.DataFrame = field(default_factory=pd.DataFrame)  # lead_to, one column per member, source
    dropped_members: dict[str, str] = field(default_factory=dict)  # member -> the member it duplicates

    def summary(self) -> str:
        w = ", ".join(f"{m} {v:.2f}" for m, v in self.weights.items())
        parts = [f"{self.unique_id}: weights ({self.weight_source}) {w}"]
        if len(self.weights_by_lead) > 1:
            members = list(self.weights)
            per = [
                f"<= {int(r[LEAD])} steps: " + ", ".join(f"{m} {float(r[m]):.2f}" for m in members if float(r[m]) > 0)
                for _, r in self.weights_by_lead.iterrows()
            ]
            parts.append("by lead time " + " | ".join(per))
        if self.dropped_members:
            dropped = ", ".join(f"{d} (same forecasts as {k})" for d, k in self.dropped_members.items())
            parts.append(f"dropped as duplicates: {dropped}")
        if self.fallbacks:
            parts.append(f"fallbacks: {self.fallbacks}")
        if self.member_errors:
            parts.append(f"member errors: {self.member_errors}")
        if len(self.event_uplifts):
            parts.append(f"{len(self.event_uplifts)} learned event-uplift bins")
        return "; ".join(parts)


_State = FittedState
"""The name artefacts saved before issue 21 pickled the state under."""


class Forecaster:
    """Weighted, calibrated ensemble of the seasonal, events, signals and lgbm members.

    freq              grid frequency of the history (default ``"5min"``).
    levels            band levels in percent (default ``(80, 95)``).
    horizon           largest ``h`` ``predict`` will be asked for, in steps (default: one day).
    members           which members run (default all four; ``seasonal`` is required).
    country, subdiv   add that country's public holidays (``holidays`` package) as events.
    holiday_tz        timezone of the holiday calendar days (default UTC).
    n_windows         calibration windows used by ``fit`` to learn weights and bands (default 7).
    calibration_step  spacing of those windows (default one day).
    min_windows       fewer usable windows than this -> default weights 0.4/0.3/0.2/0.1 (default 3).
    refresh_every     in each calibration window, also replay refreshes (new data, no refit) this often and learn
                      the first lead bucket's weights and bands from them too (e.g. ``"3h"``; default None: off,
                      see BENCHMARKS.md for why; ``forecaster.forecasting.members``, "Refresh origins").
    calibration_half_life  weight calibration windows by recency with this half-life in windows (default None:
                      equal weights; ``forecaster.ensemble.intervals``, "Recency").
    seed              random seed; equal seeds give equal forecasts.
    n_jobs, executor  workers for per-series fits (1 = this process, -1 = all cores), or an ``Executor`` running
                      them and the backtest windows instead (e.g. ``forecaster.adapters.dask.DaskExecutor``).
    member_params     keyword arguments per member, e.g. ``{"lgbm": {"num_threads": 2}}``.
    bad_values        ``"error"`` (default) or ``"outage"``: what NaN/inf/negative ``y`` do.
    predict_threads   LightGBM threads for the lgbm member's forecasts in ``predict`` (default 1; -1: one per core).
                      At fleet scale its trees are most of a refresh (BENCHMARKS.md "Throughput"); the same forecasts
                      whatever the count.

    After ``fit``, ``calibration_cv_`` holds the calibration backtest (``unique_id, ds, cutoff, y``, the
    members' points and the weighted ``ensemble`` with its bands before calibration; not the members' bands: None
    without windows): per-series residuals for callers that calibrate per series (``forecaster.rightsizing.predict``).
    """

    def __init__(
        self,
        freq: str = "5min",
        levels: Sequence[int] = (80, 95),
        horizon: int | None = None,
        *,
        members: Sequence[str] = MEMBERS,
        country: str | None = None,
        subdiv: str | None = None,
        holiday_tz: str = "UTC",
        n_windows: int = 7,
        calibration_step: str = "1D",
        min_windows: int = 3,
        seed: int = 0,
        n_jobs: int | None = 1,
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        bad_values: Literal["error", "outage"] = "error",
        refresh_every: str | None = None,
        calibration_half_life: float | None = None,
        executor: Executor | None = None,
        predict_threads: int = 1,
    ) -> None:
        freq_to_timedelta(freq)
        self.freq = freq
        self.levels = validate_levels(levels)
        self.horizon = int(horizon) if horizon is not None else max(1, steps_per("1D", freq))
        if self.horizon < 1:
            raise InputError(f"horizon must be >= 1 step, got {horizon}")
        self.members = tuple(members)
        self.country, self.subdiv, self.holiday_tz = country, subdiv, holiday_tz
        self.n_windows, self.calibration_step, self.min_windows = n_windows, calibration_step, min_windows
        self.seed, self.n_jobs, self.executor = seed, n_jobs, executor
        self.member_params = {k: dict(v) for k, v in (member_params or {}).items()}
        self.bad_values = bad_values
        self.refresh_every = refresh_every
        self.calibration_half_life = calibration_half_life
        self.predict_threads = predict_threads
        self._state: FittedState | None = None
        self.backtest_weights_: pd.DataFrame | None = None
        self.backtest_member_cv_: pd.DataFrame | None = None
        self.calibration_cv_: pd.DataFrame | None = None

    # -- configuration -----------------------------------------------------------------------------------
    def _prepare(
        self,
        history: pd.DataFrame,
        events: pd.DataFrame | None,
        signals: pd.DataFrame | None,
        outages: pd.DataFrame | None,
        extra_steps: int,
        need: Need = "fit",
    ) -> tuple[pd.DataFrame, SeriesReport, pd.DataFrame | None, pd.DataFrame | None]:
        hist, report = prepare_history(history, self.freq, outages=outages, bad_values=self.bad_values)
        require_history(hist, self.freq, extra_steps, report, need=need)  # how much history: see series.py
        end = hist[DS].max() + extra_steps * freq_to_timedelta(self.freq)
        return hist, report, self._events(events, hist[DS].min(), end), self._signals(signals)

    def _events(self, events: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
        """The caller's events plus the configured country's public holidays. A holiday the caller also listed
        (same event id: same name, kind and window) is kept once, as the caller's."""
        parts = []
        try:
            if events is not None and len(events):
                parts.append(validate_events(events, source="events"))
            if self.country:
                hol = holiday_events(self.country, start, end + pd.Timedelta("1D"), self.subdiv, self.holiday_tz)
                if parts and "id" in hol.columns and "id" in parts[0].columns:
                    hol = hol[~hol["id"].isin(set(parts[0]["id"]))]
                if len(hol):
                    parts.append(hol)
        except SignalsError as exc:
            raise InputError(str(exc)) from exc
        return pd.concat(parts, ignore_index=True) if parts else None

    @staticmethod
    def _signals(signals: pd.DataFrame | None) -> pd.DataFrame | None:
        if signals is None or len(signals) == 0:
            return None
        try:
            return validate_signals(signals, source="signals")
        except SignalsError as exc:
            raise InputError(str(exc)) from exc

    def _calibration_cutoffs(self, end: pd.Timestamp, start: pd.Timestamp, h: int) -> list[pd.Timestamp]:
        """Windows of ``h`` steps ending by ``end``; each must leave two days of training data."""
        if self.n_windows < 1:
            return []
        cuts = rolling_cutoffs(end, h, self.n_windows, self.calibration_step, self.freq)
        return [c for c in cuts if c - start >= pd.Timedelta("2D")]

    # -- fit / predict -----------------------------------------------------------------------------------
    def fit(
        self,
        history: pd.DataFrame,
        events: pd.DataFrame | None = None,
        signals: pd.DataFrame | None = None,
        outages: pd.DataFrame | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """Learn weights and calibration from a backtest, then fit every member on all of ``history``.

        Runs on any length of history, but a series with under 2 days + horizon of observed steps gets the
        members' naive fallbacks: it is marked in ``report_.low_confidence`` and a ``ShortHistoryWarning`` is
        issued (``forecaster.forecasting.history.require_history``).
        """
        hist, report, ev, sig = self._prepare(history, events, signals, outages, self.horizon)
        cfg = engine_config(self, self.horizon)
        cuts = self._calibration_cutoffs(hist[DS].max(), hist[DS].min(), self.horizon)
        total = len(cuts) + 1
        prefit: dict[str, Member | str] = {}
        if cuts:
            run = backtest_members(
                cfg,
                hist,
                cuts,
                self.horizon,
                ev,
                sig,
                2 * steps_per("1D", self.freq),
                progress=(lambda i, n: progress(i, total)) if progress else None,
                final_at=hist[DS].max(),  # the final lgbm model trains beside the windows' ones
                **self._refresh(self.horizon, cuts),
            )
            cv = run.cv
            if run.final_global is not None:
                prefit[LGBM] = run.final_global
            weights, calibration, combined = self._learn(cv, self.horizon, hist[ID].unique().tolist(), ev, cfg)
            # ``combined`` is without the members' bands (16 of 31 columns, 2.6 GB at 10,000 series), and the backtest
            # is dropped before the final fit: a 10,000-series fit ran out of 24 GiB with both held (BENCHMARKS.md)
            self.calibration_cv_ = combined
            del run, cv, combined
        else:
            self.calibration_cv_ = None
            weights = default_weights(hist[ID].unique().tolist(), self.members, self._leads(self.horizon))
            calibration = Calibration.identity(self.levels, self.horizon)
        defaulted = sorted(set(weights.loc[weights[SOURCE] == "default", ID].astype(str)))
        if defaulted:
            warnings.warn(
                f"{len(defaulted)} series ({', '.join(defaulted[:5])}{', ...' if len(defaulted) > 5 else ''}) use "
                f"the default weights ({self.min_windows} calibration windows of {self.horizon} steps are needed to "
                f"learn them, each with 2 days of training before it; this history has {len(cuts)}): give more "
                f"history or lower n_windows/min_windows",
                DefaultWeightsWarning,
                stacklevel=2,
            )
        members = fit_members(cfg, hist, ev, sig, prefit=prefit)
        if progress:
            progress(total, total)
        span = {str(u): (g.min(), g.max()) for u, g in hist.groupby(ID, sort=False)[DS]}
        tail = hist.groupby(ID, sort=False).tail(8 * steps_per("7D", self.freq)).reset_index(drop=True)
        self._state = FittedState(
            members,
            weights,
            calibration,
            tail,
            ev,
            sig,
            span,
            bool((hist.loc[~hist[OUTAGE], Y] >= 0).all()),
            report,
            len(cuts),
            {"trained_until": hist[DS].max()},
        )
        return self

    def _refresh(self, h: int, cuts: Sequence[pd.Timestamp]) -> dict[str, Any]:
        """``member_cv``'s refresh arguments: refreshes every ``refresh_every`` within each calibration window,
        forecasting the first lead bucket."""
        every = getattr(self, "refresh_every", None)  # artefacts saved before refresh origins lack it
        return {
            "refresh_every": every,
            "refresh_span": self.calibration_step,
            "refresh_h": self._leads(h)[0],
            "refresh_for": list(cuts),
        }

    def _leads(self, h: int) -> tuple[int, ...]:
        """Lead-time buckets (last step of each) for a horizon of ``h`` steps."""
        return lead_buckets(h, self.freq)

    def _combination(self) -> Combination:
        half_life = getattr(self, "calibration_half_life", None)  # artefacts saved before it lack it
        return Combination(self.members, self.levels, self.freq, self.min_windows, half_life)

    @staticmethod
    def _calendar(events: pd.DataFrame | None, trained_until: pd.Timestamp | None = None) -> EventContext:
        """The events as the combination sees them (``forecaster.ensemble.fit.EventContext``)."""
        if events is None or len(events) == 0:
            return EventContext()
        kinds = tuple(learning_kind(e) for e in events.itertuples(index=False))
        return EventContext(events, kinds, trained_until)

    def _learn(
        self, cv: pd.DataFrame, h: int, ids: Sequence[str], events: pd.DataFrame | None = None, cfg: Any = None
    ) -> tuple[pd.DataFrame, Calibration, pd.DataFrame]:
        """Weights for every id in ``ids`` (defaults for series absent from ``cv``), the calibration and ``cv``
        combined with the weights, without the members' bands (``Combination.calibration_frame``); the per-series
        weights on ``cfg``'s executor (``ensemble.weights``, "Fleet scale")."""
        run = cv_executor(cfg).map if cfg is not None else None
        return self._combination().learn(cv, h, ids, self._calendar(events), run)

    def _combine(
        self,
        frame: pd.DataFrame,
        weights: pd.DataFrame,
        steps: np.ndarray,
        events: pd.DataFrame | None = None,
        trained_until: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Weights and the events factor applied (``forecaster.ensemble.fit.Combination.combine``)."""
        return self._combination().combine(frame, weights, steps, self._calendar(events, trained_until))

    def _finish(self, frame: pd.DataFrame, calibration: Calibration, steps: np.ndarray, nonneg: bool) -> pd.DataFrame:
        """Calibrate the ensemble's bands; never negative for a non-negative series (members too); ordered."""
        frame = calibration.apply(frame, steps)
        if nonneg:
            for model in (ENSEMBLE, *self.members):
                cols = [c for c in band_columns(model, self.levels) if c in frame.columns]
                frame[cols] = frame[cols].clip(lower=0.0)
        return order_bands(frame, ENSEMBLE, self.levels)

    @property
    def state(self) -> FittedState:
        if self._state is None:
            raise NotFittedError("this Forecaster is not fitted yet: call fit(history) first")
        return self._state

    def predict(
        self,
        h: int | None = None,
        future_signals: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        member_bands: bool = False,
    ) -> pd.DataFrame:
        """Forecast ``h`` steps (default: the horizon) after each series' last observation.

        Columns: ``unique_id, ds, ensemble, ensemble-lo-L, ensemble-hi-L, ...`` then one point column per
        member (and the members' own bands with ``member_bands=True``).
        """
        st = self.state
        h = self.horizon if h is None else int(h)
        if not 1 <= h <= self.horizon:
            raise InputError(f"h={h} must be between 1 and the fitted horizon ({self.horizon} steps)")
        ev = st.events
        if events is not None and len(events):
            try:
                extra = validate_events(events, source="events")
            except SignalsError as exc:
                raise InputError(str(exc)) from exc
            both = pd.concat([x for x in (st.events, extra) if x is not None], ignore_index=True)
            ev = both.drop_duplicates(EVENT_ID, keep="last").reset_index(drop=True)
        fut = self._signals(future_signals)
        threads = int(getattr(self, "predict_threads", 1))  # artefacts saved before it lack it
        if LGBM in st.members.fitted:
            st.members.fitted[LGBM].predict_threads = (  # type: ignore[attr-defined]
                threads if threads > 0 else (os.cpu_count() or 1)
            )
        raw = predict_members(st.members, h, ev, fut)
        steps = np.tile(np.arange(1, h + 1), len(raw) // h) if len(raw) % h == 0 else self._steps(raw)
        trained = st.extra.get("trained_until") or max(end for _, end in st.span.values())  # older artefacts lack it
        frame = self._combine(raw, st.weights, steps, ev, trained)
        frame = self._finish(frame, st.calibration, steps, st.nonneg)
        cols = [ID, DS, *band_columns(ENSEMBLE, self.levels)]
        cols += [c for m in self.members for c in (band_columns(m, self.levels) if member_bands else [m])]
        return frame[cols].reset_index(drop=True)

    def _steps(self, frame: pd.DataFrame) -> np.ndarray:
        last = pd.Series({u: e for u, (_, e) in self.state.span.items()})
        cut = frame[ID].map(last)
        return horizon_steps(frame.assign(**{CUTOFF: cut}), self.freq)

    def update(self, new_history: pd.DataFrame, signals: pd.DataFrame | None = None) -> Self:
        """Append newer observations (no refit): the next ``predict`` starts after them."""
        st = self.state
        new, _ = prepare_history(new_history, self.freq, bad_values=self.bad_values)
        unknown = sorted(set(new[ID].unique()) - set(st.span))
        if unknown:
            raise InputError(f"update: unique_id {unknown[:5]} were not fitted; fit them first (nothing changed)")
        # = prepare_history(concat(tail, new)), re-validating only the series that need it (``appending``); the members
        # get each series' previous last row and new rows (all rows of a re-validated one): ``append_rows``
        done = append_rows(st.tail_chunk(), new, self.freq, 8 * steps_per("7D", self.freq))
        sig = self._signals(signals)
        if sig is not None:
            st.signals = pd.concat([x for x in (st.signals, sig) if x is not None], ignore_index=True)
        update_members(st.members, done.recent, st.signals)
        st.tail = done.tail
        st.span = spans_of(done.tail.ids, done.last_ns, st.span)
        return self

    # -- backtest ----------------------------------------------------------------------------------------
    def backtest(
        self,
        history: pd.DataFrame,
        h: int,
        n_windows: int = 14,
        step: str = "1D",
        events: pd.DataFrame | None = None,
        signals: pd.DataFrame | None = None,
        outages: pd.DataFrame | None = None,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """Rolling-origin evaluation: ``n_windows`` cutoffs ``step`` apart, the last window ending at the
        end of ``history``. Returns the forecast columns (members with their bands) plus ``cutoff``, ``y``
        and ``is_outage``. Each cutoff's weights and calibration come only from windows that ended by it.
        Every series needs 2 days + ``h`` steps of observed history (one window), else ``SeriesError``.

        Afterwards ``backtest_weights_`` holds each cutoff's weights and ``backtest_member_cv_`` the members'
        forecasts at every cutoff fitted (scored and calibration windows: ``unique_id, ds, cutoff, y,
        is_outage`` + member columns), so other weighting rules can be replayed without refitting.
        """
        hist, _, ev, sig = self._prepare(history, events, signals, outages, h, need="backtest")
        start, end = hist[DS].min(), hist[DS].max()
        outer = rolling_cutoffs(end, h, n_windows, step, self.freq)
        # fit at cutoff c calibrates on windows of h steps whose targets end at c
        inner = {c: self._calibration_cutoffs(c, start, h) for c in outer}
        every = sorted(set(outer) | {c for cs in inner.values() for c in cs})
        calib_cuts = sorted({c for cs in inner.values() for c in cs})
        cv = member_cv(
            engine_config(self, h),
            hist,
            every,
            h,
            ev,
            sig,
            2 * steps_per("1D", self.freq),
            progress,
            **self._refresh(h, calib_cuts),
        )
        nonneg = bool((hist.loc[~hist[OUTAGE], Y] >= 0).all())
        parts, wparts = [], []
        for c in outer:
            cal = cv[cv[REFIT].isin(inner[c]) & (cv[DS] <= c)]
            if cal[CUTOFF].nunique() > 0:
                weights, calibration, _ = self._learn(cal, h, cv[ID].unique().tolist(), ev, engine_config(self, h))
            else:
                weights = default_weights(cv[ID].unique().tolist(), self.members, self._leads(h))
                calibration = Calibration.identity(self.levels, h)
            window = cv[(cv[CUTOFF] == c) & (cv[REFIT] == c)]
            if len(window) == 0:
                continue
            steps = horizon_steps(window, self.freq)
            frame = self._combine(window, weights, steps, ev)
            frame = self._finish(frame, calibration, steps, nonneg)
            parts.append(frame)
            wparts.append(weights.assign(**{CUTOFF: c}))
        if not parts:
            raise InputError("backtest: no window has enough history; use fewer windows or more history")
        self.backtest_weights_ = pd.concat(wparts, ignore_index=True)
        self.backtest_member_cv_ = cv
        out = pd.concat(parts, ignore_index=True)
        lead = [ID, DS, CUTOFF, Y, OUTAGE, *band_columns(ENSEMBLE, self.levels)]
        rest = [c for m in self.members for c in band_columns(m, self.levels)]
        return out[lead + rest]

    # -- introspection -----------------------------------------------------------------------------------
    @property
    def weights_(self) -> pd.DataFrame:
        """Learned weights: ``unique_id``, one column per member, ``source`` ('learned' | 'default')."""
        return self.state.weights.copy()

    @property
    def calibration_(self) -> Calibration:
        return self.state.calibration

    @property
    def report_(self) -> SeriesReport:
        """What validating the training history found (gaps, outages, bad values, constant series)."""
        return self.state.report

    @property
    def member_errors_(self) -> dict[str, str]:
        return dict(self.state.members.errors)

    def explain(self, unique_id: str, h: int | None = None) -> Explanation:
        """Member contributions, event uplifts, signal coefficients, weights and fallbacks for one series."""
        st = self.state
        if unique_id not in st.span:
            raise InputError(f"explain: unknown unique_id {unique_id!r}; known: {sorted(st.span)[:10]}")
        rows = st.weights[st.weights[ID] == unique_id]
        row = rows.iloc[0]  # the first lead bucket: the scaling lead time
        weights = {m: float(row[m]) for m in self.members}
        pred = self.predict(h)
        pred = pred[pred[ID] == unique_id]
        contrib = pd.DataFrame({DS: pred[DS].to_numpy(), ENSEMBLE: pred[ENSEMBLE].to_numpy()})
        per_row = row_weights(pred, rows, np.arange(1, len(pred) + 1))
        for m in self.members:
            contrib[m] = per_row[m] * pred[m].to_numpy()
        by_lead_cols = [c for c in (LEAD, *self.members, SOURCE) if c in rows.columns]
        dropped_text = str(row.get(DROPPED, "") or "")
        dropped = dict(part.split("=", 1) for part in dropped_text.split("; ") if "=" in part)
        fitted = st.members.fitted
        fallbacks = {
            m: reason for m, member in fitted.items() if (reason := getattr(member, "fallbacks_", {}).get(unique_id))
        }
        uplifts = getattr(fitted.get("events"), "uplifts_", pd.DataFrame())
        coefs = getattr(fitted.get("signals"), "coef_", pd.DataFrame())
        periods = getattr(fitted.get("seasonal"), "periods_", {}).get(unique_id, ())
        factors = st.calibration.factors
        calib = pd.DataFrame(
            [(k + 1, lvl, float(factors[k, j])) for k in range(factors.shape[0]) for j, lvl in enumerate(self.levels)],
            columns=["step", "level", "factor"],
        )
        return Explanation(
            unique_id,
            weights,
            str(row[SOURCE]),
            contrib,
            uplifts.copy(),
            coefs.copy(),
            fallbacks,
            dict(st.members.errors),
            tuple(periods),
            calib,
            st.span[unique_id],
            rows[by_lead_cols].reset_index(drop=True),
            dropped,
        )

    # -- persistence -------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a versioned artefact (see ``forecaster.forecasting.artefact``)."""
        st = self.state
        meta = {
            "freq": self.freq,
            "levels": list(self.levels),
            "horizon": self.horizon,
            "members": list(self.members),
            "n_series": len(st.span),
            "calibration_windows": st.cv_windows,
            "training_span": {u: [str(a), str(b)] for u, (a, b) in st.span.items()},
        }
        return artefact.save(self, path, meta)

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        obj, _ = artefact.load(path)
        if not isinstance(obj, cls):
            raise ArtefactError(f"{path}: holds a {type(obj).__name__}, not a Forecaster")
        return obj
