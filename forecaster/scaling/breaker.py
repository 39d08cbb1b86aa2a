"""Circuit breaker on forecast error, and the tracker of recent error it reads.

``ErrorTracker`` keeps the absolute error of the last ``window`` forecast buckets: minute observations
``(time, actual, predicted)`` are grouped by the forecast bucket they fall in (the caller passes its key, the
bucket start); when a new bucket starts, the finished one scores ``|mean(actual) - mean(predicted)|``. Scoring
at the forecast's own frequency keeps the recent error comparable with the backtest MAE, which is computed at
that frequency (scoring single minutes would add minute noise the forecast never promised to predict).

``CircuitBreaker`` compares recent MAE with the forecast's backtest MAE:

    open   when recent_mae / backtest_mae >  open_ratio   (default 3)
    close  when recent_mae / backtest_mae <= close_ratio  (default 1.5)

with hysteresis (between the two ratios the state does not change), and no change before ``min_points``
recent errors exist or when no backtest MAE is known. Closing is automatic: the recent window slides, so once
the forecast is accurate again for long enough its recent MAE falls back and the breaker closes ("recovery").
Worked example: backtest MAE 10, recent MAE 35 -> ratio 3.5 > 3 -> open; later 20 -> 2.0, still open; 14 ->
1.4 <= 1.5 -> closed.

Pure: stdlib only. Called by ``ScalingPolicy`` and the simulator's predictive policy.
"""

from __future__ import annotations

from collections import deque


class ErrorTracker:
    """Mean absolute error of the last ``window`` finished forecast buckets."""

    def __init__(self, window: int = 12) -> None:
        self.errors: deque[float] = deque(maxlen=window)
        self._key: int | None = None
        self._actual = 0.0
        self._predicted = 0.0
        self._n = 0

    def observe(self, bucket: int, actual: float, predicted: float) -> None:
        """One observation of ``actual`` demand where the forecast in force said ``predicted``; ``bucket`` is the
        start of the forecast bucket it belongs to (any int key, e.g. ns since the epoch)."""
        if bucket != self._key:
            self._close()
            self._key = bucket
        self._actual += actual
        self._predicted += predicted
        self._n += 1

    def _close(self) -> None:
        if self._n:
            self.errors.append(abs(self._actual - self._predicted) / self._n)
        self._actual = self._predicted = 0.0
        self._n = 0

    @property
    def n_points(self) -> int:
        """Finished buckets in the window."""
        return len(self.errors)

    @property
    def mae(self) -> float | None:
        """Recent MAE, ``None`` before the first bucket finished."""
        return sum(self.errors) / len(self.errors) if self.errors else None


class CircuitBreaker:
    """Open/closed state from recent vs backtest MAE (module docstring)."""

    def __init__(self, open_ratio: float = 3.0, close_ratio: float = 1.5, min_points: int = 6) -> None:
        self.open_ratio = open_ratio
        self.close_ratio = close_ratio
        self.min_points = min_points
        self.is_open = False
        self.ratio: float | None = None

    def update(self, recent_mae: float | None, backtest_mae: float | None, n_points: int) -> bool:
        """Feed the latest errors; return whether the breaker is open."""
        if recent_mae is None or backtest_mae is None or backtest_mae <= 0 or n_points < self.min_points:
            self.ratio = None
            return self.is_open
        self.ratio = recent_mae / backtest_mae
        if not self.is_open and self.ratio > self.open_ratio:
            self.is_open = True
        elif self.is_open and self.ratio <= self.close_ratio:
            self.is_open = False
        return self.is_open
