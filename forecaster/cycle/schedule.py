"""When the cycle refits and refreshes, which history it fetches, and the issue time of what it publishes.

One schedule for the controller, the service and the simulator (DESIGN.md "Layout": ``cycle/schedule``):

- **refit** (backtest, weights, conformal bands, members) on the whole training window when a policy has no model,
  its forecast settings changed, the model is ``refit_every`` old or more (default one day), or the model has seen
  data newer than now (a clock set back): ``needs_refit``;
- otherwise **refresh**: fetch only the buckets since the model's last observation, ``Forecaster.update`` with them
  and predict the horizon again: ``history_window`` says which range to fetch either way.

Times are on the forecast grid: ``grid_end(now)`` is the newest bucket start at or before ``now``. A cycle's output
(forecast run, decision records) is stamped with its **issue slot**, ``now`` floored to the refresh interval since the
Unix epoch, so a cycle re-run in the same slot (a retry, a restarted process) replaces the same records instead of
adding new ones (``issue_slot``, ``slot_id``).

Worked example (5-minute grid, 14-day window, refit daily): a model fitted at 00:00 with data up to 23:55 the day
before; at 10:02 ``needs_refit`` is false and ``history_window`` is (last seen 09:55, grid end 10:00]; at 00:01 the
next day the model is 24 h old: refit on [00:00 14 days ago, 00:00]. The issue slot of 10:02 with a 300 s refresh is
10:00, its id suffix ``2026-12-07T10:00:00Z``.

Pure: pandas only. Called by ``cycle.forecast`` (the engine provider), the runtime and ``forecaster.simulate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ModelAge:
    """What the schedule needs to know about a policy's current model."""

    fitted_at: pd.Timestamp
    """When it was fitted (the cycle's ``now``)."""
    last_ds: pd.Timestamp
    """Start of the newest bucket it has seen."""


def grid_end(now: pd.Timestamp, frequency_s: float) -> pd.Timestamp:
    """The last grid time at or before ``now`` (the newest bucket Prometheus can evaluate).
    12:07:30 on a 5-minute grid -> 12:05."""
    return pd.Timestamp(now).floor(pd.Timedelta(seconds=frequency_s))


def needs_refit(model: ModelAge | None, same_settings: bool, now: pd.Timestamp, frequency_s: float,
                refit_every: pd.Timedelta) -> bool:
    """Refit or refresh (module docstring): no model, changed settings, ``refit_every`` old, or a model that saw the
    future (``grid_end(now) < last_ds``, a clock set back)."""
    if model is None or not same_settings:
        return True
    return now - model.fitted_at >= refit_every or grid_end(now, frequency_s) < model.last_ds


def history_window(model: ModelAge | None, refit: bool, now: pd.Timestamp, frequency_s: float,
                   history_s: float) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(start, end)`` of the history to fetch: the whole training window on a refit, else from the model's last
    observation (re-fetched: it may have been incomplete) to the grid end."""
    end = grid_end(now, frequency_s)
    if refit or model is None:
        step = pd.Timedelta(seconds=frequency_s)
        return (end - pd.Timedelta(seconds=history_s)).floor(step), end
    return min(model.last_ds, end), end


def issue_slot(now: pd.Timestamp, interval_s: float) -> pd.Timestamp:
    """``now`` floored to a multiple of ``interval_s`` since the Unix epoch (UTC): 10:02 with 300 s -> 10:00."""
    step = round(interval_s * 1e9)
    return pd.Timestamp((int(pd.Timestamp(now).as_unit("ns").value) // step) * step, tz="UTC")


def slot_id(key: str, slot: pd.Timestamp, kind: str | None = None) -> str:
    """Deterministic id of what a cycle publishes in a slot: ``<key>@<slot>`` for a forecast run,
    ``<key>/<kind>/<slot>`` for a decision (``kind``: ``replicas`` or ``resources``)."""
    stamp = pd.Timestamp(slot).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{key}@{stamp}" if kind is None else f"{key}/{kind}/{stamp}"


def refit_times(start: pd.Timestamp, end: pd.Timestamp, every: pd.Timedelta) -> list[pd.Timestamp]:
    """Refit times ``start, start + every, ...`` before ``end`` (a replay's schedule)."""
    out, t = [], pd.Timestamp(start)
    while t < end:
        out.append(t)
        t = t + every
    return out
