"""Running the members: build, fit in dependency order, predict, refresh, and cross-validate.

The seasonal member goes first; its in-sample fit and its forecast are the baseline the ``events`` and
``signals`` members adjust; ``lgbm`` stands alone. A member other than the seasonal one that fails with an
unexpected error is replaced by the seasonal forecast and the reason is kept in ``Members.errors`` (one bad
member must not take the ensemble down); bad input (``InputError``, e.g. a leaking signal) still raises.

``member_cv`` is the rolling-origin backtest of the members: for every cutoff it fits on data up to the
cutoff only (events are planned, so known; signals after the cutoff only when known in advance) and
forecasts ``h`` steps. Every ensemble weight and conformal band is computed from its output.

Refresh origins. In production a model is refitted daily and *refreshed* every few minutes (new observations,
no refit: ``update_members``), so most forecasts at the scaling lead time come from a model some hours old,
issued at every time of day. With ``refresh_every`` (e.g. ``"3h"``) each window listed in ``refresh_for``
also replays that: after the fit at cutoff ``c`` the members are refreshed at ``c + k * refresh_every`` (while
before ``c + refresh_span``) and forecast ``refresh_h`` steps from there. Those rows carry ``cutoff`` = their
issue time and ``refit_at`` = ``c`` (fresh rows: ``refit_at`` = ``cutoff``). E.g. 5-minute data, daily refits,
``refresh_every="3h"``, ``refresh_h=12``: 7 refreshed one-hour forecasts per window besides the fresh one, so
the scaling lead time is learned from 8 times of day instead of 1, for about a fifth of a window's fit time.

Pure. Called by ``forecaster.forecasting.forecaster``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.errors import InputError, LeakageError
from forecaster.contracts.frames import (
    CUTOFF,
    DS,
    EVENTS,
    ID,
    LGBM,
    MEMBERS,
    OUTAGE,
    REFIT,
    SEASONAL,
    SIGNALS,
    Y,
    band_columns,
)
from forecaster.forecasting.executor import single_threaded_blas
from forecaster.forecasting.history import freq_to_timedelta
from forecaster.models.base import FitData, Member, PredictData
from signals.errors import LeakageError as SignalsLeakageError
from signals.errors import SignalsError


def _as_input_error(exc: SignalsError) -> InputError:
    """Map a ``signals`` error onto this package's tree (a leak stays a ``LeakageError``)."""
    return LeakageError(str(exc)) if isinstance(exc, SignalsLeakageError) else InputError(str(exc))


KNOWN = "known_in_advance"


@dataclass(frozen=True)
class EngineConfig:
    """Settings shared by all members.

    freq            grid frequency (e.g. ``"5min"``).
    levels          band levels in percent.
    horizon         largest forecast horizon in steps.
    members         which members run (``seasonal`` is required: it is the others' baseline).
    member_params   keyword arguments per member class, e.g. ``{"lgbm": {"num_threads": 2}}``.
    seed            random seed.
    n_jobs          workers for per-series fits (1 = this process, -1 = all cores).
    """

    freq: str
    levels: tuple[int, ...]
    horizon: int
    members: tuple[str, ...] = MEMBERS
    member_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    n_jobs: int | None = 1


def build_members(cfg: EngineConfig) -> dict[str, Member]:
    """Fresh, unfitted members in dependency order."""
    if SEASONAL not in cfg.members:
        raise InputError(f"members: {SEASONAL!r} is required (it is the baseline of the others)")
    unknown = set(cfg.members) - set(MEMBERS)
    if unknown:
        raise InputError(f"members: unknown member(s) {sorted(unknown)}; choose from {list(MEMBERS)}")
    from forecaster.models.seasonal import SeasonalMember

    out: dict[str, Member] = {}
    params = {k: dict(v) for k, v in cfg.member_params.items()}
    for name in MEMBERS:
        if name not in cfg.members:
            continue
        kw = params.get(name, {})
        if name == SEASONAL:
            kw.setdefault("n_jobs", cfg.n_jobs)
            out[name] = SeasonalMember(**kw)
        elif name == EVENTS:
            from forecaster.models.events import EventsMember

            out[name] = EventsMember(**kw)
        elif name == SIGNALS:
            from forecaster.models.signals import SignalsMember

            out[name] = SignalsMember(**kw)
        elif name == LGBM:
            from forecaster.models.lgbm import LGBMMember

            out[name] = LGBMMember(**kw)
    return out


@dataclass
class Members:
    """Fitted members plus the reasons any of them were replaced by the baseline."""

    cfg: EngineConfig
    fitted: dict[str, Member]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.fitted)


def fit_members(
    cfg: EngineConfig, history: pd.DataFrame, events: pd.DataFrame | None, signals: pd.DataFrame | None
) -> Members:
    """Fit every member on ``history`` (seasonal first, then the rest on its baseline)."""
    members = build_members(cfg)
    seasonal = members[SEASONAL].fit(
        FitData(history, cfg.freq, cfg.levels, cfg.horizon, events, signals, None, cfg.seed)
    )
    baseline = getattr(seasonal, "fitted_", None)
    fitted: dict[str, Member] = {SEASONAL: seasonal}
    errors: dict[str, str] = {}
    data = FitData(history, cfg.freq, cfg.levels, cfg.horizon, events, signals, baseline, cfg.seed)
    for name, member in members.items():
        if name == SEASONAL:
            continue
        try:
            fitted[name] = member.fit(data)
        except InputError:
            raise
        except SignalsError as exc:
            raise _as_input_error(exc) from exc
        except Exception as exc:
            errors[name] = f"fit failed, replaced by the seasonal baseline: {type(exc).__name__}: {exc}"
            fitted[name] = member
    return Members(cfg, fitted, errors)


def _as_member(frame: pd.DataFrame, name: str, levels: Sequence[int]) -> pd.DataFrame:
    """Rename the seasonal forecast's columns to ``name`` (stand-in for a failed member)."""
    src, dst = band_columns(SEASONAL, levels), band_columns(name, levels)
    return frame[[ID, DS, *src]].rename(columns=dict(zip(src, dst, strict=True)))


def predict_members(
    members: Members, h: int, events: pd.DataFrame | None = None, future_signals: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Wide frame ``unique_id, ds`` + every member's point and band columns."""
    cfg = members.cfg
    if h > cfg.horizon:
        raise InputError(f"h={h} exceeds the horizon the forecaster was fitted for ({cfg.horizon} steps)")
    base = members.fitted[SEASONAL].predict(h, PredictData(events, future_signals, None))
    out = base
    pdata = PredictData(events, future_signals, base)
    for name, member in members.fitted.items():
        if name == SEASONAL:
            continue
        if name in members.errors:
            part = _as_member(base, name, cfg.levels)
        else:
            try:
                part = member.predict(h, pdata)
            except InputError:
                raise
            except SignalsError as exc:
                raise _as_input_error(exc) from exc
            except Exception as exc:
                members.errors[name] = f"predict failed, replaced by the seasonal baseline: {type(exc).__name__}: {exc}"
                part = _as_member(base, name, cfg.levels)
        cols = [ID, DS, *band_columns(name, cfg.levels)]
        out = out.merge(part[cols], on=[ID, DS], how="left", validate="one_to_one")
        if out[name].isna().any():
            # a member that skipped some series: fill those rows from the baseline, keep the reason
            miss = out[name].isna().to_numpy()
            for src, dst in zip(band_columns(SEASONAL, cfg.levels), band_columns(name, cfg.levels), strict=True):
                out.loc[miss, dst] = out.loc[miss, src]
            members.errors.setdefault(name, "no forecast for some series; filled from the seasonal baseline")
    return out


def update_members(members: Members, history: pd.DataFrame, signals: pd.DataFrame | None) -> Members:
    """Give every member newer observations without refitting parameters."""
    cfg = members.cfg
    seasonal = members.fitted[SEASONAL].update(FitData(history, cfg.freq, cfg.levels, cfg.horizon, None, signals))
    baseline = getattr(seasonal, "fitted_", None)
    data = FitData(history, cfg.freq, cfg.levels, cfg.horizon, None, signals, baseline, cfg.seed)
    for name, member in members.fitted.items():
        if name != SEASONAL and name not in members.errors:
            member.update(data)
    return members


def split_signals(
    signals: pd.DataFrame | None, cutoff: pd.Timestamp
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(what exists at ``cutoff`` for training, known-in-advance values after it for the forecast)."""
    if signals is None or len(signals) == 0:
        return None, None
    after = signals[DS] > cutoff
    known = signals[KNOWN].to_numpy(dtype=bool) if KNOWN in signals.columns else np.zeros(len(signals), bool)
    return signals[~after.to_numpy()], signals[after.to_numpy() & known]


_CV_CONTEXT: dict[str, Any] = {}
"""Inputs of the running ``member_cv``: set in this process, or once per worker by ``_init_cv_worker``
(so the history is sent to each worker once, not once per window)."""


def _init_cv_worker(context: dict[str, Any]) -> None:
    _CV_CONTEXT.clear()
    _CV_CONTEXT.update(context)


def _cv_window(cutoff: pd.Timestamp) -> pd.DataFrame | None:
    """Fit the members on data up to ``cutoff`` and forecast ``h`` steps (one backtest window)."""
    with single_threaded_blas():
        return _cv_window_inner(cutoff)


def _cv_window_inner(cutoff: pd.Timestamp) -> pd.DataFrame | None:
    ctx = _CV_CONTEXT
    cfg, history, h = ctx["cfg"], ctx["history"], ctx["h"]
    events, signals, min_train = ctx["events"], ctx["signals"], ctx["min_train_steps"]
    train = history[history[DS] <= cutoff]
    counts = train.groupby(ID, sort=False).size()
    keep = counts[counts >= max(min_train, 1)].index
    train = train[train[ID].isin(keep)]
    if len(train) == 0:
        return None
    sig_train, sig_future = split_signals(signals, cutoff)
    fitted = fit_members(cfg, train, events, sig_train)
    pred = predict_members(fitted, h, events, sig_future)
    step = freq_to_timedelta(cfg.freq)
    actual_cols = [ID, DS, Y] + ([OUTAGE] if OUTAGE in history.columns else [])
    window = history[(history[DS] > cutoff) & (history[DS] <= cutoff + h * step)][actual_cols]
    pred = pred.merge(window, on=[ID, DS], how="left")
    pred.insert(2, CUTOFF, cutoff)
    parts = [pred]
    refresh = ctx.get("refresh")
    if refresh is not None and cutoff in refresh["for"]:
        parts += _refreshed(fitted, history[history[ID].isin(keep)], cutoff, refresh, events, signals, step)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else pred
    out.insert(3, REFIT, cutoff)
    return out


def _refreshed(
    fitted: Members,
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    refresh: Mapping[str, Any],
    events: pd.DataFrame | None,
    signals: pd.DataFrame | None,
    step: pd.Timedelta,
) -> list[pd.DataFrame]:
    """Forecasts of the members fitted at ``cutoff`` after refreshes (see module docstring)."""
    every, span, rh = refresh["every"], refresh["span"], int(refresh["h"])
    actual_cols = [ID, DS, Y] + ([OUTAGE] if OUTAGE in history.columns else [])
    base_cols = [ID, DS, Y, OUTAGE] if OUTAGE in history.columns else [ID, DS, Y]
    last = history[DS].max()
    out: list[pd.DataFrame] = []
    k = 1
    while every * k < span and cutoff + every * k + rh * step <= last:
        origin = cutoff + every * k
        sig_train, sig_future = split_signals(signals, origin)
        update_members(fitted, history[history[DS] <= origin][base_cols], sig_train)
        part = predict_members(fitted, rh, events, sig_future)
        window = history[(history[DS] > origin) & (history[DS] <= origin + rh * step)][actual_cols]
        part = part.merge(window, on=[ID, DS], how="left")
        part.insert(2, CUTOFF, origin)
        out.append(part)
        k += 1
    return out


def _refresh_plan(
    freq: str,
    cuts: Sequence[pd.Timestamp],
    h: int,
    every: str | pd.Timedelta | None,
    span: str | pd.Timedelta,
    refresh_h: int | None,
    refresh_for: Sequence[pd.Timestamp] | None,
) -> dict[str, Any] | None:
    """The refresh origins to replay, or None (off, or ``every`` is not a whole number of steps under ``span``)."""
    if every is None:
        return None
    step, gap, width = freq_to_timedelta(freq), pd.Timedelta(every), pd.Timedelta(span)
    if gap < step or gap % step != pd.Timedelta(0) or gap >= width:
        return None
    rh = min(h, refresh_h) if refresh_h else h
    return {"every": gap, "span": width, "h": rh, "for": set(cuts if refresh_for is None else refresh_for)}


def member_cv(
    cfg: EngineConfig,
    history: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    h: int,
    events: pd.DataFrame | None = None,
    signals: pd.DataFrame | None = None,
    min_train_steps: int = 0,
    progress: Callable[[int, int], None] | None = None,
    *,
    refresh_every: str | pd.Timedelta | None = None,
    refresh_span: str | pd.Timedelta = "1D",
    refresh_h: int | None = None,
    refresh_for: Sequence[pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """Members' rolling-origin backtest: ``unique_id, ds, cutoff, refit_at, y, is_outage`` + member columns.

    ``refresh_every`` / ``refresh_span`` / ``refresh_h`` / ``refresh_for``: refresh origins after the fits at
    the cutoffs in ``refresh_for`` (default: all), see the module docstring; off by default.

    Windows are independent; with ``cfg.n_jobs != 1`` they run side by side in worker processes (each
    fitting its members serially, BLAS single-threaded), which is where a backtest's parallelism pays best.
    """
    cuts = sorted(set(cutoffs))
    workers = (os.cpu_count() or 1) if cfg.n_jobs is None or cfg.n_jobs < 0 else cfg.n_jobs
    lgbm_threads = int(cfg.member_params.get(LGBM, {}).get("num_threads", 1))
    parallel = workers > 1 and len(cuts) > 1 and lgbm_threads == 1
    cfg_h = dataclasses.replace(cfg, horizon=h, n_jobs=1 if parallel else cfg.n_jobs)
    context = {
        "cfg": cfg_h,
        "history": history,
        "h": h,
        "events": events,
        "signals": signals,
        "min_train_steps": min_train_steps,
        "refresh": _refresh_plan(cfg.freq, cuts, h, refresh_every, refresh_span, refresh_h, refresh_for),
    }
    _CV_CONTEXT.update(context)
    parts: list[pd.DataFrame] = []
    try:
        if parallel:
            # fork needs no __main__ guard in callers' scripts; it is safe because parallel windows are only
            # used while LightGBM runs single-threaded (no OpenMP thread pool exists to be forked)
            ctx = multiprocessing.get_context("fork")
            n = min(workers, len(cuts))
            with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_cv_worker, initargs=(context,)) as pool:
                futures = [pool.submit(_cv_window, c) for c in cuts]
                for i, _done in enumerate(as_completed(futures)):
                    if progress is not None:
                        progress(i + 1, len(cuts))
                results = [f.result() for f in futures]
        else:
            results = []
            for i, c in enumerate(cuts):
                results.append(_cv_window(c))
                if progress is not None:
                    progress(i + 1, len(cuts))
        parts = [r for r in results if r is not None]
    finally:
        _CV_CONTEXT.clear()
    if not parts:
        raise InputError("backtest: no cutoff leaves any training data; use fewer windows or more history")
    return pd.concat(parts, ignore_index=True)
