"""A cache of the members' backtest forecasts, for developing the ensemble.

``Forecaster.backtest`` spends nearly all its time fitting the members at every cutoff; the ensemble's
weights, event factor and bands are computed from those forecasts in seconds. ``install(directory)``
replaces the ``member_cv`` the Forecaster calls by one that reads the result of an identical earlier call from
``directory`` and otherwise runs ``forecaster.forecasting.members.member_cv`` and stores its result. A call is
keyed by everything its forecasts depend on: the engine configuration (frequency, levels, members, their
parameters, seed), ``h``, the minimum training length, the refresh plan, the whole set of cutoffs (the windows
are not independent: ``member_cv`` carries ARIMA parameters and LightGBM round counts from anchor cutoffs to the
windows after them), a fingerprint of the history up to the last cutoff + ``h`` steps (ids, row count, first and
last time, sum of ``y``, outage count) and digests of the events and signals. It does *not* know the members'
code: a change of a member's code needs a fresh directory.

So ``python benchmarks/accuracy.py --member-cache DIR`` re-scores the whole protocol with a changed ensemble
in minutes once DIR holds its calls. Figures reported in BENCHMARKS.md come from runs without the cache.
Called by ``accuracy.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import forecaster.forecasting.forecaster as engine
from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.frames import CUTOFF, DS, ID, LAST, OUTAGE, REFIT, Y, band_columns
from forecaster.forecasting.members import EngineConfig, member_cv


class NotCachedError(LookupError):
    """A ``member_cv`` call absent from a read-only cache (``install(directory, read_only=True)``)."""


STATS = {"hits": 0, "misses": 0}
"""Calls read from the cache and calls run, since ``install``."""


def _digest(frame: pd.DataFrame | None) -> str:
    if frame is None or len(frame) == 0:
        return "none"
    try:
        values = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy()
        return hashlib.sha1(values.tobytes() + repr(list(frame.columns)).encode()).hexdigest()
    except TypeError:  # unhashable cells (e.g. lists in ``scope``)
        return hashlib.sha1(repr(frame.to_dict("list")).encode()).hexdigest()


def _history_print(history: pd.DataFrame, end: pd.Timestamp) -> str:
    part = history[history[DS] <= end]
    ids = ",".join(sorted(map(str, part[ID].unique())))
    outages = int(part[OUTAGE].sum()) if OUTAGE in part.columns else 0
    y_sum = float(part[Y].fillna(0.0).sum()) if len(part) else 0.0
    first = str(part[DS].min()) if len(part) else "-"
    return f"{hashlib.sha1(ids.encode()).hexdigest()}|{len(part)}|{first}|{end}|{y_sum:.6g}|{outages}"


def call_key(
    cfg: EngineConfig,
    history: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    h: int,
    events: pd.DataFrame | None,
    signals: pd.DataFrame | None,
    min_train_steps: int,
    refresh: dict[str, Any],
) -> str:
    """The key of one ``member_cv`` call (module docstring)."""
    cuts = sorted(set(cutoffs))
    end = cuts[-1] + h * freq_to_timedelta(cfg.freq)
    text = "|".join(
        [
            cfg.freq,
            repr(cfg.levels),
            repr(cfg.members),
            repr(sorted((k, sorted(v.items())) for k, v in cfg.member_params.items())),
            str(cfg.seed),
            str(h),
            str(min_train_steps),
            ",".join(str(c) for c in cuts),
            repr(sorted((k, str(sorted(v) if isinstance(v, list | set) else v)) for k, v in refresh.items())),
            _digest(events),
            _digest(signals),
            _history_print(history, end),
        ]
    )
    return hashlib.sha1(text.encode()).hexdigest()


def with_last(base: pd.DataFrame, cfg: EngineConfig, history: pd.DataFrame, h: int) -> pd.DataFrame:
    """``base`` (a ``member_cv`` result without ``last``) plus the ``last`` member's columns, fitted as
    ``member_cv`` fits every member: on the history up to each window's ``refit_at``, refreshed with the history up
    to its ``cutoff`` (the same row when the window is not a refresh), ``h`` steps from there."""
    from forecaster.models.base import FitData
    from forecaster.models.last import LastMember

    parts = []
    for (refit, cut), _ in base.groupby([REFIT, CUTOFF], sort=False):
        member = LastMember().fit(FitData(history[history[DS] <= refit], cfg.freq, cfg.levels, cfg.horizon))
        if cut != refit:
            member.update(FitData(history[history[DS] <= cut], cfg.freq, cfg.levels, cfg.horizon))
        parts.append(member.predict(h).assign(**{REFIT: refit, CUTOFF: cut}))
    last = pd.concat(parts, ignore_index=True)
    cols = [ID, DS, CUTOFF, REFIT, *band_columns(LAST, cfg.levels)]
    return base.merge(last[cols], on=[ID, DS, CUTOFF, REFIT], how="left", validate="one_to_one")


def cached_member_cv(directory: Path, read_only: bool = False) -> Callable[..., pd.DataFrame]:
    """A drop-in ``member_cv`` reading and writing whole calls under ``directory`` (module docstring);
    ``read_only``: a call not in the cache raises ``NotCachedError`` instead of fitting the members."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(
        cfg: EngineConfig,
        history: pd.DataFrame,
        cutoffs: Sequence[pd.Timestamp],
        h: int,
        events: pd.DataFrame | None = None,
        signals: pd.DataFrame | None = None,
        min_train_steps: int = 0,
        progress: Callable[[int, int], None] | None = None,
        **refresh: Any,
    ) -> pd.DataFrame:
        if LAST in cfg.members:  # the last value depends on nothing else: cache the others, compute it here
            others = dataclasses.replace(cfg, members=tuple(m for m in cfg.members if m != LAST))
            base = run(others, history, cutoffs, h, events, signals, min_train_steps, progress, **refresh)
            return with_last(base, cfg, history, h)
        path = directory / f"{call_key(cfg, history, cutoffs, h, events, signals, min_train_steps, refresh)}.pkl"
        if path.exists():
            STATS["hits"] += 1
            return pd.read_pickle(path)
        STATS["misses"] += 1
        if read_only:
            raise NotCachedError(f"member forecasts not in the cache {directory} ({path.name})")
        out = member_cv(cfg, history, cutoffs, h, events, signals, min_train_steps, progress, **refresh)
        tmp = path.with_suffix(".tmp")
        out.to_pickle(tmp)
        tmp.replace(path)
        return out

    return run


def install(directory: Path, read_only: bool = False) -> None:
    """Make every ``Forecaster`` of this process use the cached ``member_cv`` (module docstring)."""
    engine.member_cv = cached_member_cv(directory, read_only)  # type: ignore[attr-defined]
