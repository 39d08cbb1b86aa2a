"""A cache of the members' backtest forecasts, one file per window, for developing the ensemble.

``Forecaster.backtest`` spends nearly all its time fitting the members at every cutoff; the ensemble's
weights, event factor and bands are computed from those forecasts in seconds. ``install(directory)``
replaces the ``member_cv`` the Forecaster calls by one that reads each window's member forecasts from
``directory`` when it holds them and otherwise fits them (``forecaster.forecasting.members.member_cv``) and
stores them. A window is keyed by everything its forecasts depend on: the engine configuration (frequency,
levels, members, their parameters, seed), ``h``, the minimum training length, the refresh plan, the cutoff,
a fingerprint of the history up to ``cutoff + h`` steps (ids, row count, first and last time, sum of ``y``,
outage count) and digests of the events and signals. It does *not* know the members' code: a change of a
member's code needs a fresh directory.

So ``python benchmarks/accuracy.py --member-cache DIR`` re-scores the whole protocol with a changed ensemble
in minutes once DIR holds the windows. Figures reported in BENCHMARKS.md come from runs without the cache.
Called by ``accuracy.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import forecaster.forecasting.forecaster as engine
from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError
from forecaster.contracts.frames import CUTOFF, DS, ID, OUTAGE, REFIT, Y
from forecaster.forecasting.members import EngineConfig, member_cv

STATS = {"hits": 0, "misses": 0}
"""Windows read from the cache and windows fitted, since ``install``."""


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


def _key(
    cfg: EngineConfig, history: pd.DataFrame, cutoff: pd.Timestamp, h: int, common: str, refresh: dict[str, Any]
) -> str:
    end = cutoff + h * freq_to_timedelta(cfg.freq)
    mine = {**refresh, "refresh_for": cutoff in set(refresh.get("refresh_for") or [])}
    text = "|".join(
        [
            cfg.freq,
            repr(cfg.levels),
            repr(cfg.members),
            repr(sorted((k, sorted(v.items())) for k, v in cfg.member_params.items())),
            str(cfg.seed),
            str(h),
            str(cutoff),
            repr(sorted((k, str(v)) for k, v in mine.items())),
            common,
            _history_print(history, end),
        ]
    )
    return hashlib.sha1(text.encode()).hexdigest()


def cached_member_cv(directory: Path) -> Callable[..., pd.DataFrame]:
    """A drop-in ``member_cv`` reading and writing the windows under ``directory`` (module docstring)."""
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
        cuts = sorted(set(cutoffs))
        common = f"{_digest(events)}|{_digest(signals)}|{min_train_steps}"
        paths = {c: directory / f"{_key(cfg, history, c, h, common, refresh)}.pkl" for c in cuts}
        missing = [c for c in cuts if not paths[c].exists()]
        STATS["hits"] += len(cuts) - len(missing)
        STATS["misses"] += len(missing)
        if missing:
            try:
                fresh = member_cv(cfg, history, missing, h, events, signals, min_train_steps, progress, **refresh)
            except InputError as exc:
                if "no cutoff leaves any training data" not in str(exc):
                    raise
                fresh = pd.DataFrame(columns=[ID, DS, CUTOFF, REFIT])
            for c in missing:
                part = fresh[fresh[REFIT] == c].reset_index(drop=True)
                tmp = paths[c].with_suffix(".tmp")
                part.to_pickle(tmp)
                tmp.replace(paths[c])
        parts = [pd.read_pickle(paths[c]) for c in cuts]
        parts = [p for p in parts if len(p)]
        if not parts:
            raise InputError("backtest: no cutoff leaves any training data; use fewer windows or more history")
        return pd.concat(parts, ignore_index=True)

    return run


def install(directory: Path) -> None:
    """Make every ``Forecaster`` of this process use the cached ``member_cv`` (module docstring)."""
    engine.member_cv = cached_member_cv(directory)  # type: ignore[attr-defined]
