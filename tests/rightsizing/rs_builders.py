"""Builders shared by the right-sizing tests (imported as ``rs_builders``): usage frames and hand-made histories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.rightsizing.history import ContainerHistory

MIB = 2**20
GIB = 2**30
T0 = pd.Timestamp("2024-03-04T00:00Z")


def usage_frame(
    uid: str = "shop/cart/app",
    *,
    periods: int = 12,
    freq: str = "5min",
    start: pd.Timestamp = T0,
    cpu: float | Sequence[float] = 0.5,
    memory: float | Sequence[float] = 600 * MIB,
    cpu_request: float | Sequence[float] = 1.0,
    memory_request: float | Sequence[float] = 1 * GIB,
    **extra: object,
) -> pd.DataFrame:
    """A valid usage frame for one container (scalars are broadcast over the samples)."""
    ds = pd.date_range(start, periods=periods, freq=freq)
    frame = pd.DataFrame(
        {
            "unique_id": uid,
            "ds": ds,
            "cpu": np.broadcast_to(np.asarray(cpu, dtype=float), periods),
            "memory": np.broadcast_to(np.asarray(memory, dtype=float), periods),
            "cpu_request": np.broadcast_to(np.asarray(cpu_request, dtype=float), periods),
            "memory_request": np.broadcast_to(np.asarray(memory_request, dtype=float), periods),
        }
    )
    for key, value in extra.items():
        frame[key] = value
    return frame


def history(
    usage: Sequence[float],
    *,
    resource: str = "cpu",
    ds: Sequence[pd.Timestamp] | None = None,
    request: float | Sequence[float] = 1.0,
    now: pd.Timestamp | None = None,
    step: str = "1min",
    oom_ds: Sequence[pd.Timestamp] = (),
    oom_usage: Sequence[float] = (),
    uid: str = "c",
) -> ContainerHistory:
    """A ``ContainerHistory`` from plain numbers: samples every ``step`` from ``T0`` unless ``ds`` is given;
    ``now`` defaults to one step after the last sample."""
    n = len(usage)
    stamps = pd.DatetimeIndex(ds) if ds is not None else pd.date_range(T0, periods=n, freq=step)
    when = now if now is not None else (stamps[-1] + pd.Timedelta(step) if n else T0)

    def naive(values: pd.DatetimeIndex) -> np.ndarray:
        return values.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")

    return ContainerHistory(
        unique_id=uid,
        resource=resource,
        ds=naive(stamps),
        usage=np.asarray(usage, dtype=float),
        request=np.broadcast_to(np.asarray(request, dtype=float), n).copy(),
        oom_ds=naive(pd.DatetimeIndex(list(oom_ds), tz="UTC")) if len(oom_ds) else np.array([], "datetime64[ns]"),
        oom_usage=np.asarray(oom_usage, dtype=float),
        now=pd.Timestamp(when),
    )


def two_containers() -> pd.DataFrame:
    """Two valid containers, one hour of 5-minute samples each, with namespace and team labels."""
    return pd.concat(
        [
            usage_frame("shop/cart/app", namespace="shop", team="web"),
            usage_frame("pay/api/app", cpu=0.2, memory=300 * MIB, namespace="pay", team="core"),
        ],
        ignore_index=True,
    )
