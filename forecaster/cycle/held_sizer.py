"""One ``forecaster.RightSizer`` per workload kept across cycles: which usage to fetch, fit or update, decide.

The controller (per VPA policy) and the service (per workload) decide container requests every cycle from the usage
of the last ``window`` (the controller's 8 days, the service's ``history_days``). Fitting a new ``RightSizer`` each
cycle validates and replays the whole window again; ``HeldSizers`` keeps one per key and, between refits, fetches
only the samples since the newest one it holds and ``update``s it. Its ``retention`` is the window, so what it holds
is exactly what a fresh fetch of the window would return, and every decision equals the one a fresh fit on that
window makes (``tests/cycle/test_held_sizer.py`` compares them cycle by cycle).

Refit (a fresh fit on the whole window, as ``cycle.schedule.needs_refit`` decides for the forecasting model): no
sizer yet (first cycle, or a restarted process: nothing is persisted, the restart simply refits), another policy or
window, the sizer ``refit_every`` old (default one day), or a clock set back (``now`` before the newest time the
sizer has seen). Worked example (8-day window, 5-minute samples, cycles every 15 minutes): at 10:00 fetch
[10:00 - 8 days, 10:00] and fit; at 10:15 fetch [10:00, 10:15] (the newest held sample is fetched again: it may have
been incomplete), update, trim to [10:15 - 8 days, 10:15]; at 10:00 the next day, 24 hours after the fit, refit.

Memory safety is the policies' own (``PeakFloor``: never a memory request below the peak of the policy's window
unless planned overruns were chosen); the VPA's ``resourcePolicy`` caps are applied by the caller
(``cycle.resource_policy``).

The controller (``Controller.rightsizers``) and the service (``Service.rightsizers``) each own one ``HeldSizers``:
a new process starts with none and refits.

Pure: pandas and ``forecaster.rightsizing``. Called by ``runtime.controller.vpa`` and ``runtime.service.decide``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from forecaster.contracts.frames import DS
from forecaster.cycle.schedule import ModelAge, needs_refit
from forecaster.rightsizing import RightSizer, RightsizingResult
from forecaster.rightsizing.frames import LowConfidenceWarning

REFIT_EVERY = pd.Timedelta("1D")
"""A held sizer is refitted on the whole window this often (the forecasting model's daily refit)."""


@dataclass
class Held:
    """One key's sizer and what its refit depends on."""

    sizer: RightSizer
    policy: str
    window: pd.Timedelta
    fitted_at: pd.Timestamp
    newest: pd.Timestamp | None
    """The newest sample held (None: none yet)."""


class HeldSizers:
    """``RightSizer`` per key across cycles (module docstring). ``refit_every``: how often a held sizer is refitted
    on the whole window. ``fits`` and ``updates`` count what was done (for tests and reports)."""

    def __init__(self, refit_every: pd.Timedelta = REFIT_EVERY) -> None:
        self.refit_every = pd.Timedelta(refit_every)
        self._held: dict[str, Held] = {}
        self.fits = 0
        self.updates = 0

    def get(self, key: str) -> Held | None:
        """The held sizer of ``key`` (None when there is none)."""
        return self._held.get(key)

    def refit_due(self, key: str, policy: str, window: pd.Timedelta, now: pd.Timestamp) -> bool:
        """Whether the next decision for ``key`` fits a new sizer on the whole window (module docstring)."""
        held = self._held.get(key)
        if held is None:
            return True
        same = held.policy == policy and held.window == pd.Timedelta(window)
        seen = held.sizer.now if held.sizer.now is not None else held.fitted_at
        return needs_refit(ModelAge(held.fitted_at, seen), same, now, 1.0, self.refit_every)

    def fetch_start(self, key: str, policy: str, window: pd.Timedelta, now: pd.Timestamp) -> pd.Timestamp:
        """Start of the usage to fetch for the decision at ``now``: ``now - window`` on a refit, else the newest
        held sample (fetched again)."""
        held = self._held.get(key)
        if self.refit_due(key, policy, window, now) or held is None or held.newest is None:
            return now - pd.Timedelta(window)
        return held.newest

    def decide(self, key: str, usage: pd.DataFrame, ooms: pd.DataFrame | None, policy: str,
               window: pd.Timedelta, now: pd.Timestamp, *, reports: bool = False) -> RightsizingResult:
        """Fit or update ``key``'s sizer with ``usage`` fetched from ``fetch_start`` to ``now`` and decide at
        ``now``. ``LowConfidenceWarning`` is not issued (the result's ``warnings`` and rows carry it)."""
        window = pd.Timedelta(window)
        held = self._held.get(key)
        newest = None if len(usage) == 0 else pd.Timestamp(usage[DS].max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowConfidenceWarning)
            if held is None or self.refit_due(key, policy, window, now):
                sizer = RightSizer(policy, retention=window).fit(usage, ooms, now)
                held = self._held[key] = Held(sizer, policy, window, now, newest)
                self.fits += 1
            else:
                if newest is not None:
                    held.sizer.update(usage, ooms, now)
                    held.newest = newest if held.newest is None else max(held.newest, newest)
                else:  # nothing new: only time moves
                    held.sizer.advance(now)
                self.updates += 1
            return held.sizer.decide(now, reports=reports)

    def drop_except(self, keys: Iterable[str]) -> None:
        """Forget the sizers of keys not in ``keys`` (deleted or switched-off policies, removed workloads)."""
        keep = set(keys)
        for key in [k for k in self._held if k not in keep]:
            del self._held[key]

    def __len__(self) -> int:
        return len(self._held)

