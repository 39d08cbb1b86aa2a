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

Fleet scale. ``member_cv`` splits the fleet into chunks of ``EngineConfig.chunk_series`` series (``Chunk``: numpy
arrays, cheap to ship) and runs its work units through the executor (``forecaster.forecasting.executor``: serial,
local processes, or Dask), each task getting only its own chunk's history (nothing forked):

1. side by side, at each *anchor* cutoff (``level_anchors``: the first cutoff, then one per 7 days): the global
   lgbm member's hold-out training only (``_probe_task``: its round count and bands, no refit), on the sampled
   series (``models.lgbm.sample_series``: every series up to 2,000 by default, so its memory is bounded too), and
   per chunk the seasonal member's ARIMA parameters;
2. (1b) the lgbm member at every cutoff, anchors included, trained on the data up to it with its anchor's round
   count and bands (``LGBMMember.rounds_in``: one training, no hold-out; at an anchor exactly the refit the probe
   skipped), side by side; with ``backtest_members(final_at=...)`` also the final fit's model on the whole
   history (``Forecaster.fit``), with a hold-out of its own (it is the model that serves:
   ``chunks._phase1b``), so no training is left to run alone after the backtest;
3. chunks x cutoffs: fit the members on the chunk up to the cutoff, the lgbm model of that cutoff given the
   chunk (``update``), the seasonal member applying the anchor's ARIMA parameters to the window's own
   decomposition (one Kalman filter pass instead of an optimisation), and forecast.

Every window's models are still fitted on the data up to its cutoff only; what the anchors carry over is two
settings per model (the ARIMA parameters, the boosting round count), estimated on data before the cutoff.

Chunking and sampling depend on the data and the seed only, never on the executor, so serial, process-pool and
Dask runs give the same forecasts. One chunk (up to 500 series by default) gives the rows of an unchunked run.

Pure. Called by ``forecaster.forecasting.forecaster``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster.contracts.clock import freq_to_timedelta
from forecaster.contracts.errors import InputError, LeakageError
from forecaster.contracts.frames import (
    CUTOFF,
    DS,
    EVENTS,
    ID,
    KNOWN_MEMBERS,
    LAST,
    LGBM,
    MEMBERS,
    OUTAGE,
    REFIT,
    SEASONAL,
    SIGNALS,
    Y,
    band_columns,
)
from forecaster.forecasting.chunks import Chunk, _phase1b, chunks_of, level_anchors
from forecaster.forecasting.executor import Executor as Executor  # noqa: PLC0414  (re-exported to forecaster.py)
from forecaster.forecasting.executor import SerialExecutor, make_executor
from forecaster.models.base import FitData, Member, PredictData
from signals.errors import LeakageError as SignalsLeakageError
from signals.errors import SignalsError


def _as_input_error(exc: SignalsError) -> InputError:
    """Map a ``signals`` error onto this package's tree (a leak stays a ``LeakageError``)."""
    return LeakageError(str(exc)) if isinstance(exc, SignalsLeakageError) else InputError(str(exc))


KNOWN = "known_in_advance"
CHUNK_SERIES = 500
"""Default series per backtest work unit (``EngineConfig.chunk_series``)."""



@dataclass(frozen=True)
class EngineConfig:
    """Settings shared by all members.

    freq            grid frequency (e.g. ``"5min"``).
    levels          band levels in percent.
    horizon         largest forecast horizon in steps.
    members         which members run (``seasonal`` is required: it is the others' baseline).
    member_params   keyword arguments per member class, e.g. ``{"lgbm": {"num_threads": 2}}``.
    seed            random seed.
    n_jobs          workers for per-series fits (1 = this process, -1 = all cores) when ``executor`` is None.
    executor        where per-series work and backtest windows run (``forecaster.forecasting.executor``; e.g.
                    ``forecaster.adapters.dask.DaskExecutor``); None: a local one for ``n_jobs``. Never stored
                    with the fitted members.
    chunk_series    series per backtest work unit (default 500; see "Fleet scale"). Results do not depend on
                    the executor, but the events member pools event kinds within a chunk.
    """

    freq: str
    levels: tuple[int, ...]
    horizon: int
    members: tuple[str, ...] = MEMBERS
    member_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    n_jobs: int | None = 1
    executor: Executor | None = None
    chunk_series: int = CHUNK_SERIES


def engine_config(fc: Any, horizon: int) -> EngineConfig:
    """A ``Forecaster``'s settings for a run of ``horizon`` steps (artefacts saved before the executor option
    lack ``executor``: None)."""
    params = (fc.freq, fc.levels, horizon, fc.members, fc.member_params, fc.seed, fc.n_jobs)
    return EngineConfig(*params, executor=getattr(fc, "executor", None))


def build_members(cfg: EngineConfig) -> dict[str, Member]:
    """Fresh, unfitted members in dependency order."""
    if SEASONAL not in cfg.members:
        raise InputError(f"members: {SEASONAL!r} is required (it is the baseline of the others)")
    unknown = set(cfg.members) - set(KNOWN_MEMBERS)
    if unknown:
        raise InputError(f"members: unknown member(s) {sorted(unknown)}; choose from {list(KNOWN_MEMBERS)}")
    from forecaster.models.seasonal import SeasonalMember

    out: dict[str, Member] = {}
    params = {k: dict(v) for k, v in cfg.member_params.items()}
    for name in KNOWN_MEMBERS:
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
        elif name == LAST:
            from forecaster.models.last import LastMember

            out[name] = LastMember(**kw)
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
    cfg: EngineConfig,
    history: pd.DataFrame,
    events: pd.DataFrame | None,
    signals: pd.DataFrame | None,
    *,
    prefit: Mapping[str, Member | str] | None = None,
    level_params: Mapping[str, np.ndarray] | None = None,
) -> Members:
    """Fit every member on ``history`` (seasonal first, then the rest on its baseline).

    ``prefit``: members already fitted elsewhere on this history or a superset of its series (the backtest's
    global lgbm model; or the reason its fit failed): they only take ``history`` (``update``). ``level_params``:
    the seasonal member's ARIMA parameters per series, applied instead of estimated (``SeasonalMember``).
    """
    members = build_members(cfg)
    prefit = dict(prefit or {})
    seasonal_member = members[SEASONAL]
    if level_params is not None:
        seasonal_member.level_params_in = dict(level_params)  # type: ignore[attr-defined]
    executor = cfg.executor or make_executor(getattr(seasonal_member, "n_jobs", cfg.n_jobs))
    seasonal = seasonal_member.fit(
        FitData(history, cfg.freq, cfg.levels, cfg.horizon, events, signals, None, cfg.seed, executor=executor)
    )
    baseline = getattr(seasonal, "fitted_", None)
    fitted: dict[str, Member] = {SEASONAL: seasonal}
    errors: dict[str, str] = {}
    data = FitData(history, cfg.freq, cfg.levels, cfg.horizon, events, signals, baseline, cfg.seed)
    for name, member in members.items():
        if name == SEASONAL:
            continue
        try:
            given = prefit.get(name)
            if isinstance(given, str):
                errors[name], fitted[name] = given, member
                continue
            fitted[name] = copy.copy(given).update(data) if given is not None else member.fit(data)
        except InputError:
            raise
        except SignalsError as exc:
            raise _as_input_error(exc) from exc
        except Exception as exc:
            errors[name] = f"fit failed, replaced by the seasonal baseline: {type(exc).__name__}: {exc}"
            fitted[name] = member
    return Members(dataclasses.replace(cfg, executor=None), fitted, errors)


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
        out = _join(out, part[cols])
        if out[name].isna().any():
            # a member that skipped some series: fill those rows from the baseline, keep the reason
            miss = out[name].isna().to_numpy()
            for src, dst in zip(band_columns(SEASONAL, cfg.levels), band_columns(name, cfg.levels), strict=True):
                out.loc[miss, dst] = out.loc[miss, src]
            members.errors.setdefault(name, "no forecast for some series; filled from the seasonal baseline")
    return out


def _join(out: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    """``out.merge(part, on=[unique_id, ds], how="left", validate="one_to_one")``; when ``part`` has exactly ``out``'s
    keys in ``out``'s order (every member forecasts the same rows in the same order: ``future_index``), its columns
    are assigned as they are, without the merge's key matching (per row, the largest cost of a refresh's predict
    after LightGBM's trees at 10,000 series)."""
    if len(part) == len(out) and part[DS].equals(out[DS]) and part[ID].equals(out[ID]):
        joined = out.copy()
        for col in part.columns.drop([ID, DS]):
            joined[col] = part[col].to_numpy()
        return joined
    return out.merge(part, on=[ID, DS], how="left", validate="one_to_one")


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


@dataclass(frozen=True)
class _Window:
    """What one backtest task needs besides its chunk (see ``member_cv``)."""

    cfg: EngineConfig
    cutoff: pd.Timestamp
    h: int
    events: pd.DataFrame | None
    signals: pd.DataFrame | None
    min_train: int
    refresh: dict[str, Any] | None = None
    global_fit: Member | str | None = None  # the lgbm member fitted at this cutoff, or why it failed
    level_params: Mapping[str, np.ndarray] | None = None
    rounds: tuple[int, np.ndarray] | None = None  # the lgbm anchor's round count and bands (LGBMMember.anchor)


def _train(chunk: Chunk, cutoff: pd.Timestamp, min_train: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the chunk's history, its rows up to ``cutoff`` of the series with ``min_train`` of them)."""
    history = chunk.frame()
    train = history[history[DS] <= cutoff]
    counts = train.groupby(ID, sort=False).size()
    keep = counts[counts >= max(min_train, 1)].index
    return history[history[ID].isin(keep)], train[train[ID].isin(keep)]


def _global_task(chunk: Chunk, w: _Window) -> Member | str | None:
    """Phase 1b: the global (lgbm) member fitted at ``w.cutoff`` on the sampled series, with the anchor's round
    count and bands when ``w.rounds`` gives them; the error text if it fails."""
    _, train = _train(chunk, w.cutoff, w.min_train)
    if len(train) == 0:
        return None
    member = build_members(dataclasses.replace(w.cfg, members=(SEASONAL, LGBM)))[LGBM]
    member.rounds_in = w.rounds  # type: ignore[attr-defined]
    sig_train, _ = split_signals(w.signals, w.cutoff)
    try:
        member.fit(FitData(train, w.cfg.freq, w.cfg.levels, w.h, w.events, sig_train, None, w.cfg.seed))
    except (InputError, SignalsError):
        raise
    except Exception as exc:
        return f"fit failed, replaced by the seasonal baseline: {type(exc).__name__}: {exc}"
    member.panel_ = None  # type: ignore[attr-defined]  # each window task gives it its own chunk (update)
    return member


def _probe_task(chunk: Chunk, w: _Window) -> tuple[int, np.ndarray] | str | None:
    """Phase 1: the hold-out training of the global (lgbm) member at an anchor cutoff, without its refit: the round
    count and bands (``LGBMMember.anchor``) that phase 1b trains every cutoff's model with (the anchor's own model
    included: the same training as the refit it skips). None: no model there (no rows, or too few); the error
    text if it fails."""
    _, train = _train(chunk, w.cutoff, w.min_train)
    if len(train) == 0:
        return None
    cfg = dataclasses.replace(w.cfg, members=(SEASONAL, LGBM))
    params = {k: dict(v) for k, v in cfg.member_params.items()}
    params[LGBM] = {**params.get(LGBM, {}), "refit": False}
    member = build_members(dataclasses.replace(cfg, member_params=params))[LGBM]
    sig_train, _ = split_signals(w.signals, w.cutoff)
    try:
        member.fit(FitData(train, w.cfg.freq, w.cfg.levels, w.h, w.events, sig_train, None, w.cfg.seed))
    except (InputError, SignalsError):
        raise
    except Exception as exc:
        return f"fit failed, replaced by the seasonal baseline: {type(exc).__name__}: {exc}"
    anchor: tuple[int, np.ndarray] | None = member.anchor()  # type: ignore[attr-defined]
    return anchor


def _level_task(chunk: Chunk, w: tuple[EngineConfig, list[pd.Timestamp], int]) -> dict[pd.Timestamp, dict]:
    """Phase 1: the seasonal member's ARIMA parameters per series at each anchor cutoff."""
    cfg, anchors, min_train = w
    out: dict[pd.Timestamp, dict] = {}
    for anchor in anchors:
        _, train = _train(chunk, anchor, min_train)
        if len(train):
            member = build_members(dataclasses.replace(cfg, members=(SEASONAL,)))[SEASONAL]
            member.fit(FitData(train, cfg.freq, cfg.levels, cfg.horizon, None, None, None, cfg.seed))
            out[anchor] = member.level_params()  # type: ignore[attr-defined]
    return out


def _window_task(chunk: Chunk, w: _Window) -> pd.DataFrame | None:
    """Phase 2: fit the members on the chunk up to ``w.cutoff`` and forecast ``h`` steps (one backtest window)."""
    history, train = _train(chunk, w.cutoff, w.min_train)
    if len(train) == 0:
        return None
    sig_train, sig_future = split_signals(w.signals, w.cutoff)
    prefit = {} if w.global_fit is None else {LGBM: w.global_fit}
    fitted = fit_members(w.cfg, train, w.events, sig_train, prefit=prefit, level_params=w.level_params)
    pred = predict_members(fitted, w.h, w.events, sig_future)
    step = freq_to_timedelta(w.cfg.freq)
    window = history[(history[DS] > w.cutoff) & (history[DS] <= w.cutoff + w.h * step)][[ID, DS, Y, OUTAGE]]
    pred = pred.merge(window, on=[ID, DS], how="left")
    pred.insert(2, CUTOFF, w.cutoff)
    parts = [pred]
    if w.refresh is not None and w.cutoff in w.refresh["for"]:
        parts += _refreshed(fitted, history, w.cutoff, w.refresh, w.events, w.signals, step)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else pred
    out.insert(3, REFIT, w.cutoff)
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


def cv_executor(cfg: EngineConfig) -> Executor:
    """The configured executor, else a local one for ``n_jobs``; serial when lgbm runs multi-threaded (a
    forked pool must not inherit an OpenMP thread pool, and the threads would fight the processes)."""
    if cfg.executor is not None:
        return cfg.executor
    if int(cfg.member_params.get(LGBM, {}).get("num_threads", 1)) != 1:
        return SerialExecutor()
    return make_executor(cfg.n_jobs)


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

    Work units: the phases of the module docstring ("Fleet scale"), each task run by the executor
    (``cv_executor``).
    """
    run = backtest_members(
        cfg,
        history,
        cutoffs,
        h,
        events,
        signals,
        min_train_steps,
        progress,
        refresh_every=refresh_every,
        refresh_span=refresh_span,
        refresh_h=refresh_h,
        refresh_for=refresh_for,
    )
    return run.cv


@dataclass(frozen=True)
class MemberBacktest:
    """``backtest_members``' result: the members' backtest (``member_cv``'s frame) and, when asked for, the global
    member trained on the whole history with a hold-out of its own (``final_global``: a fitted
    member without a panel, to be given the history by ``fit_members(prefit=...)``; the error text if its fit
    failed; None when not asked for, or without lgbm)."""

    cv: pd.DataFrame
    final_global: Member | str | None = None


def backtest_members(
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
    final_at: pd.Timestamp | None = None,
) -> MemberBacktest:
    """``member_cv`` and, with ``final_at`` (the history's last time), the global member for the final fit trained in
    phase 1b beside the windows' ones (``MemberBacktest.final_global``; ``Forecaster.fit``)."""
    # statsmodels (and scipy.signal's extension modules under it) loaded here, before a local pool forks its workers:
    # in this venv a forked worker importing scipy.signal itself failed in 3 of 10 one-series fits with n_jobs=2
    # ("undefined symbol: __muldc3"); a worker that inherits the loaded modules imports nothing
    import statsmodels.tsa.seasonal  # noqa: F401

    cuts = sorted(set(cutoffs))
    executor = cv_executor(cfg)
    task_cfg = dataclasses.replace(cfg, horizon=h, n_jobs=1, executor=None)
    chunks = chunks_of(history, cfg.chunk_series)
    anchors = level_anchors(cuts)
    phase1: list[tuple[Chunk, Any]] = [(c, (task_cfg, anchors, min_train_steps)) for c in chunks]
    has_global = LGBM in cfg.members
    if has_global:
        sample = chunks[0] if len(chunks) == 1 else Chunk.of(_lgbm_sample(history, cfg))
        phase1 += [(sample, _Window(task_cfg, c, h, events, signals, min_train_steps)) for c in anchors]
    first = executor.map_tasks(_phase1, phase1)
    levels: list[dict[pd.Timestamp, dict]] = first[: len(chunks)]
    global_fits: dict[pd.Timestamp, Any] = {}
    final_global: Member | str | None = None
    if has_global:  # phase 1b: every cutoff's lgbm (and the final one) with its anchor's rounds and bands
        probes = dict(zip(anchors, first[len(chunks) :], strict=True))
        global_fits = {a: p for a, p in probes.items() if isinstance(p, str)}
        at, given = _phase1b(cuts, anchors, probes, final_at)
        tasks1 = [
            (sample, _Window(task_cfg, c, h, events, signals, min_train_steps, rounds=r))
            for c, r in zip(at, given, strict=True)
        ]
        fits = executor.map_tasks(_global_task, tasks1)
        if final_at is not None and at and at[-1] == final_at:
            final_global = fits.pop()
            at.pop()
        global_fits.update(zip(at, fits, strict=True))
    plan = _refresh_plan(cfg.freq, cuts, h, refresh_every, refresh_span, refresh_h, refresh_for)
    tasks = []
    for k, chunk in enumerate(chunks):
        for c in cuts:
            anchor = max(a for a in anchors if a <= c)
            w = _Window(task_cfg, c, h, events, signals, min_train_steps, plan, global_fits.get(c))
            tasks.append((chunk, dataclasses.replace(w, level_params=levels[k].get(anchor))))

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(done * len(cuts) // total, len(cuts))

    results = executor.map_tasks(_window_task, tasks, report)
    # cutoff-major, chunks in order within a cutoff: one chunk gives exactly the rows of one unchunked run
    ordered = (results[k * len(cuts) + j] for j in range(len(cuts)) for k in range(len(chunks)))
    parts = [r for r in ordered if r is not None]
    if not parts:
        raise InputError("backtest: no cutoff leaves any training data; use fewer windows or more history")
    return MemberBacktest(pd.concat(parts, ignore_index=True), final_global)


def _phase1(chunk: Chunk, w: Any) -> Any:
    return _probe_task(chunk, w) if isinstance(w, _Window) else _level_task(chunk, w)


def _lgbm_sample(history: pd.DataFrame, cfg: EngineConfig) -> pd.DataFrame:
    """The series the lgbm member trains on (``models.lgbm.sample_series``: all up to its cap)."""
    from forecaster.models.lgbm import DEFAULT_SAMPLE_SERIES, sample_series

    cap = int(cfg.member_params.get(LGBM, {}).get("sample_series", DEFAULT_SAMPLE_SERIES))
    keep = sample_series([str(u) for u in history[ID].unique()], cap, cfg.seed)
    return history[history[ID].astype(str).isin(set(keep))]
