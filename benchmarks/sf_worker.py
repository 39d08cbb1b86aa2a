"""statsforecast side of the throughput benchmark; runs ONLY inside ``benchmarks/.venv-statsforecast``.

``throughput.py`` creates that virtual environment (``statsforecast==2.*``, ``pandas<3``) and runs this file
as a subprocess with the series file it built; statsforecast is never a dependency of the project, and this
file imports nothing from it. Model: ``MSTL(season_length=288, trend_forecaster=AutoETS(model="ZZN"))``.

Measured: ``StatsForecast.fit`` on the 14-day histories; a refresh = each fitted model's ``forward`` on its
history extended by the new observations, for 288 steps (statsforecast 2.x's "apply a fitted model to new
data without re-estimating it"; a plain loop, as ``StatsForecast`` itself has no ``forward`` in 2.1); with
``--refresh-series N`` only the first N series are refreshed (``refresh_series`` in the output says how many).
Numba compiles on a 2-series warm-up first (not timed). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB. Unlike ``ru_maxrss`` it is reset by ``exec``,
    so a child does not inherit its parent's peak; falls back to ``ru_maxrss`` off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frame(values: np.ndarray, ids: np.ndarray, start_ns: int, freq: str) -> pd.DataFrame:
    n, t = values.shape
    ds = pd.date_range(pd.Timestamp(start_ns), periods=t, freq=freq)
    return pd.DataFrame({"unique_id": np.repeat(ids, t), "ds": np.tile(ds, n), "y": values.ravel()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--refresh-series", type=int, default=None, help="forward only the first N series (timed)")
    args = parser.parse_args()
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS

    data = np.load(args.data, allow_pickle=False)
    values, ids = data["values"], data["ids"].astype(str)
    fit_steps, h = int(data["fit_steps"]), int(data["h"])
    freq, start = str(data["freq"]), int(data["start_ns"])

    def model() -> StatsForecast:
        mstl = MSTL(season_length=288, trend_forecaster=AutoETS(model="ZZN"))
        return StatsForecast(models=[mstl], freq=freq, n_jobs=args.n_jobs)

    warm = frame(values[:2, :fit_steps], ids[:2], start, freq)
    model().fit(warm).predict(h=h)

    history = frame(values[:, :fit_steps], ids, start, freq)
    row_of = {uid: i for i, uid in enumerate(ids)}
    sf = model()
    t0 = time.perf_counter()
    sf.fit(history)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_fwd = len(sf.uids) if args.refresh_series is None else min(args.refresh_series, len(sf.uids))
    means = [
        sf.fitted_[k, 0].forward(y=values[row_of[str(uid)]], h=h)["mean"]
        for k, uid in enumerate(sf.uids[:n_fwd])
    ]
    refresh_s = time.perf_counter() - t0
    assert len(means) == n_fwd and all(np.isfinite(m).all() and len(m) == h for m in means)
    rss_self = peak_rss_mb()
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"fit_s": fit_s, "refresh_s": refresh_s, "refresh_series": n_fwd, "maxrss_mb": rss_self,
                      "maxrss_children_mb": rss_children, "n_series": len(ids)}))


if __name__ == "__main__":
    main()
