"""Per-container, per-resource history: the one input every estimator reads.

``histories(usage, ooms, now)`` cuts a validated usage frame into ``ContainerHistory`` values - one per
container and resource - holding only what was known before ``now`` (samples and OOM kills with
``ds < now``). This is VPA's ``AggregateContainerState`` (``vertical-pod-autoscaler/pkg/recommender/model/
aggregate_container_state.go``) in batch form: the raw samples rather than pre-aggregated histograms, so each
estimator aggregates them its own way.

Pure: numpy and pandas. Called by ``recommend`` and by tests that build histories by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.frames import DS, ID
from forecaster.rightsizing.frames import MEMORY, REQUEST_OF, RESOURCES

MINUTE_NS = 60 * 10**9


@dataclass(frozen=True, eq=False)
class ContainerHistory:
    """What one container used of one resource before ``now``.

    ``ds`` (datetime64[ns], UTC, ascending), ``usage`` and ``request`` (cores or bytes, one per sample) have
    the same length. ``oom_ds``/``oom_usage`` are the OOM kills before ``now`` and the memory in use at each
    (empty for CPU). ``namespace``/``team`` are the latest labels when the usage frame had them.
    """

    unique_id: str
    resource: str
    ds: np.ndarray
    usage: np.ndarray
    request: np.ndarray
    oom_ds: np.ndarray
    oom_usage: np.ndarray
    now: pd.Timestamp
    labels: dict[str, str] = field(default_factory=dict)
    cache: dict[tuple[object, ...], object] = field(default_factory=dict, repr=False)
    """Scratch space for estimators sharing work on this history (e.g. one histogram for p50/p90/p95)."""

    def __post_init__(self) -> None:
        if not (len(self.ds) == len(self.usage) == len(self.request)):
            raise ValueError(f"{self.unique_id}/{self.resource}: ds, usage and request differ in length")
        if len(self.oom_ds) != len(self.oom_usage):
            raise ValueError(f"{self.unique_id}/{self.resource}: oom_ds and oom_usage differ in length")

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.ds)

    @property
    def now64(self) -> np.datetime64:
        """``now`` as ``datetime64[ns]`` (naive UTC), comparable with ``ds``."""
        return np.datetime64(self.now.tz_convert("UTC").tz_localize(None).as_unit("ns"))

    @property
    def current_request(self) -> float:
        """The latest request (0 when there are no samples)."""
        return float(self.request[-1]) if self.n else 0.0

    @property
    def lifespan_days(self) -> float:
        """Days between the first and the last sample (VPA ``LastSampleStart - FirstSampleStart``)."""
        if self.n < 2:
            return 0.0
        return float((self.ds[-1] - self.ds[0]).astype("timedelta64[ns]").astype(np.int64)) / (1440 * MINUTE_NS)

    @property
    def step_minutes(self) -> float:
        """Median spacing of the samples in minutes; 1 minute (VPA's own rate) with fewer than 2 samples."""
        if self.n < 2:
            return 1.0
        gaps = np.diff(self.ds).astype("timedelta64[ns]").astype(np.int64)
        return float(np.median(gaps)) / MINUTE_NS

    @property
    def span(self) -> pd.Timedelta:
        """How much history the samples cover: ``min(now - first sample, n x median spacing)``.

        From the first sample to ``now``, but no more than the samples account for at their own spacing, so gaps
        shorten it (as missing samples lower VPA's confidence). Worked example: 10 fifteen-minute samples from
        00:00 to 02:15 with ``now`` 02:30 -> min(2.5 h, 10 x 15 min) = 2.5 h; the same 10 samples in two bursts
        two days apart -> still 2.5 h. No samples -> 0.
        """
        if self.n == 0:
            return pd.Timedelta(0)
        since = pd.Timedelta(int((self.now64 - self.ds[0]).astype("timedelta64[ns]").astype(np.int64)), unit="ns")
        covered = pd.Timedelta(minutes=self.n * self.step_minutes)
        return max(min(since, covered), pd.Timedelta(0))

    def window(self, start: np.datetime64) -> ContainerHistory:
        """The same history restricted to samples and kills at or after ``start``."""
        keep = self.ds >= start
        kills = self.oom_ds >= start
        return ContainerHistory(
            self.unique_id, self.resource, self.ds[keep], self.usage[keep], self.request[keep],
            self.oom_ds[kills], self.oom_usage[kills], self.now, dict(self.labels),
        )


def _naive_ns(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def histories(usage: pd.DataFrame, ooms: pd.DataFrame | None, now: pd.Timestamp) -> list[ContainerHistory]:
    """One ``ContainerHistory`` per container and resource (``RESOURCES`` order), from samples before ``now``.

    ``usage`` and ``ooms`` must already be validated (``validate_usage`` / ``validate_ooms``). Containers
    without a sample before ``now`` are left out (they did not exist yet). OOM kills go to the memory history.
    """
    now = pd.Timestamp(now).tz_convert("UTC")
    cut = usage.loc[usage[DS] < now]
    kills = ooms.loc[ooms[DS] < now] if ooms is not None and len(ooms) else None
    kill_groups = {str(k): g for k, g in kills.groupby(ID, sort=False)} if kills is not None else {}
    label_cols = [c for c in ("namespace", "team") if c in usage.columns]
    out: list[ContainerHistory] = []
    empty_ds = np.array([], dtype="datetime64[ns]")
    empty_f = np.array([], dtype=float)
    for uid, rows in cut.groupby(ID, sort=True):
        ds = _naive_ns(rows[DS])
        labels = {c: str(rows[c].iloc[-1]) for c in label_cols if rows[c].iloc[-1] is not None}
        for resource in RESOURCES:
            oom_ds, oom_use = empty_ds, empty_f
            if resource == MEMORY and str(uid) in kill_groups:
                g = kill_groups[str(uid)]
                oom_ds, oom_use = _naive_ns(g[DS]), g[MEMORY].to_numpy(dtype=float)
            out.append(
                ContainerHistory(
                    unique_id=str(uid),
                    resource=resource,
                    ds=ds,
                    usage=rows[resource].to_numpy(dtype=float),
                    request=rows[REQUEST_OF[resource]].to_numpy(dtype=float),
                    oom_ds=oom_ds,
                    oom_usage=oom_use,
                    now=now,
                    labels=labels,
                )
            )
    return out
