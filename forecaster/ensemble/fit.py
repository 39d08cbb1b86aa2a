"""The combination learned from a member backtest, and applied to member forecasts.

``Combination.learn`` turns the members' backtest (``unique_id, ds, cutoff, refit_at, y`` and each member's point
and band columns) into

1. per-series weights per lead-time bucket (``forecaster.ensemble.weights``), learned on the ordinary rows
   (``forecaster.ensemble.calendar.calendar_rows``) when there are enough of them;
2. with the event factor applied to the members that do not model events (``forecaster.ensemble.adjust``), kept
   per series unless the calibration windows' event rows say it harms: the weights are learned both ways and
   column ``event_adjust`` records the choice;
3. the conformal calibration of the combined bands (``forecaster.ensemble.intervals``).

``Combination.combine`` applies weights (and the event factor where ``event_adjust`` says so) to any frame of
member forecasts: a backtest window or a forecast. The member columns of its result stay the members' own.

Pure: numpy/pandas. Called by ``forecaster.forecasting.forecaster``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.contracts.frames import ENSEMBLE, ID, band_columns
from forecaster.ensemble.adjust import ADJUST, adjusted, keeps_adjustment, rows_of
from forecaster.ensemble.calendar import calendar_rows, unlearned_rows
from forecaster.ensemble.combine import combine
from forecaster.ensemble.intervals import ROWS_PER_BLOCK, Calibration, fit_calibration
from forecaster.ensemble.leads import horizon_steps, lead_buckets
from forecaster.ensemble.weights import MapFn, default_weights, learn_weights


@dataclass(frozen=True)
class EventContext:
    """The events calendar as the combination sees it.

    events          validated events (``signals.events.validate_events``), or None.
    kinds           the learning kind of each event (``forecaster.models.events.learning_kind``), same order.
    trained_until   when the members forecasting the rows were trained (a forecast: the fit's last timestamp);
                    None: each row's ``refit_at`` (a backtest).
    """

    events: pd.DataFrame | None = None
    kinds: tuple[str, ...] = ()
    trained_until: pd.Timestamp | None = None

    def unlearned(self, frame: pd.DataFrame) -> np.ndarray:
        """``forecaster.ensemble.calendar.unlearned_rows`` of ``frame``."""
        return unlearned_rows(frame, self.events, self.kinds, self.trained_until)


NO_EVENTS = EventContext()


@dataclass(frozen=True)
class Combination:
    """How members are combined: which members, band levels, grid frequency, the windows needed to learn weights
    (fewer: the default weights) and the calibration's recency half-life in windows (None: equal weights)."""

    members: tuple[str, ...]
    levels: tuple[int, ...]
    freq: str
    min_windows: int = 3
    half_life: float | None = None

    def leads(self, h: int) -> tuple[int, ...]:
        """Lead-time buckets (last step of each) for a horizon of ``h`` steps."""
        return lead_buckets(h, self.freq)

    def learn(
        self,
        cv: pd.DataFrame,
        h: int,
        ids: Sequence[str],
        calendar: EventContext = NO_EVENTS,
        map_fn: MapFn | None = None,
    ) -> tuple[pd.DataFrame, Calibration, pd.DataFrame]:
        """Weights for every id in ``ids`` (defaults for series absent from ``cv``), the calibration, and
        ``calibration_frame(cv, ...)``, ``cv`` combined with the weights and without the members' bands (the frame
        the calibration was fitted on: a fit need not combine a fleet's backtest twice); ``map_fn`` runs the
        per-series weight choices (``forecaster.ensemble.weights``, "Fleet scale")."""
        leads = self.leads(h)
        steps = horizon_steps(cv, self.freq)
        ordinary = ~calendar_rows(cv, calendar.events)

        def learn(frame: pd.DataFrame) -> pd.DataFrame:
            weights = learn_weights(
                frame,
                self.members,
                self.min_windows,
                freq=self.freq,
                lead_ends=leads,
                ordinary=ordinary,
                map_fn=map_fn,
            )
            learned = set(weights[ID])  # once: per id it was 21 ms a set, 3.5 min at 10,000 series
            missing = [u for u in ids if u not in learned]
            if missing:
                weights = pd.concat([weights, default_weights(missing, self.members, leads)], ignore_index=True)
            return weights

        plain = learn(cv)
        unlearned = calendar.unlearned(cv)
        adj_cv = adjusted(cv, self.members, self.levels, np.ones(len(cv), dtype=bool), unlearned)
        if adj_cv is cv:  # no event in any calibration window: nothing says no to the events factor
            weights = plain.assign(**{ADJUST: True})
        else:  # per series, keep the events factor only if it did no harm on the event rows (ensemble.adjust)
            adj = learn(adj_cv)
            keep = keeps_adjustment(
                combine(cv, plain, self.members, self.levels, steps),
                combine(adj_cv, adj, self.members, self.levels, steps),
            )
            use = plain[ID].astype(str).map(keep).fillna(True).astype(bool)
            weights = pd.concat(
                [
                    adj[adj[ID].astype(str).map(keep).fillna(True).astype(bool)].assign(**{ADJUST: True}),
                    plain[~use].assign(**{ADJUST: False}),
                ],
                ignore_index=True,
            )
        ens = self.calibration_frame(cv, weights, steps, calendar)
        calibration = fit_calibration(ens, self.freq, self.levels, h, lead_ends=leads, half_life=self.half_life)
        return weights, calibration, ens

    def calibration_frame(
        self, cv: pd.DataFrame, weights: pd.DataFrame, steps: np.ndarray, calendar: EventContext = NO_EVENTS
    ) -> pd.DataFrame:
        """``cv`` combined (``combine``) without the members' bands, which served the weights and are not needed
        after them: the frame the calibration is fitted on and ``Forecaster.calibration_cv_``. Combined
        ``ROWS_PER_BLOCK`` rows at a time, so only the kept columns are ever copied whole (combining the fleet's
        backtest at once copied all of it: 4.2 GB at 10,000 series, BENCHMARKS.md "Throughput")."""
        bands = {c for m in self.members for c in band_columns(m, self.levels) if c != m}
        if len(cv) == 0:
            out = self.combine(cv, weights, steps, calendar)
            return out.drop(columns=[c for c in out.columns if c in bands])
        made: dict[str, list[np.ndarray]] = {}
        for a in range(0, len(cv), ROWS_PER_BLOCK):
            part = self.combine(cv.iloc[a : a + ROWS_PER_BLOCK], weights, steps[a : a + ROWS_PER_BLOCK], calendar)
            for c in band_columns(ENSEMBLE, self.levels):
                made.setdefault(c, []).append(part[c].to_numpy(dtype=float))
        keep = [c for c in cv.columns if c not in bands and c not in made]
        return cv[keep].copy().assign(**{c: np.concatenate(v) for c, v in made.items()})

    def combine(
        self, frame: pd.DataFrame, weights: pd.DataFrame, steps: np.ndarray, calendar: EventContext = NO_EVENTS
    ) -> pd.DataFrame:
        """``forecaster.ensemble.combine.combine`` with the events factor applied to the members of the series
        whose weights say so; the member columns of the result stay the members' own forecasts."""
        if ADJUST not in weights.columns or not weights[ADJUST].any():
            return combine(frame, weights, self.members, self.levels, steps)
        ids = set(weights.loc[weights[ADJUST].astype(bool), ID].astype(str))
        src = adjusted(frame, self.members, self.levels, rows_of(frame, ids), calendar.unlearned(frame))
        out = combine(src, weights, self.members, self.levels, steps)
        if src is not frame:
            cols = [c for m in self.members for c in band_columns(m, self.levels) if c in frame.columns]
            out[cols] = frame[cols].to_numpy()
        return out
