"""Per-container, per-resource history: the one input every estimator reads.

``histories(usage, ooms, now)`` cuts a validated usage frame into ``ContainerHistory`` values - one per
container and resource - holding only what was known before ``now`` (samples and OOM kills with
``ds < now``). This is VPA's ``AggregateContainerState`` (``vertical-pod-autoscaler/pkg/recommender/model/
aggregate_container_state.go``) in batch form: the raw samples rather than pre-aggregated histograms, so each
estimator aggregates them its own way.

Every history of one decision points to the same ``Fleet``: the decision's other containers, so an estimator can
borrow from a container's siblings (``Fleet.sibling_groups``: containers sharing a ``workload``, ``image``,
``team`` or ``namespace`` label, most specific first, else the whole fleet) when its own history is too short.

Pure: numpy and pandas. Called by ``recommend`` and by tests that build histories by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from forecaster.contracts.frames import DS, ID
from forecaster.rightsizing.frames import MEMORY, REQUEST_OF, RESOURCES, SIBLING_COLUMNS

MINUTE_NS = 60 * 10**9


@dataclass(frozen=True, eq=False)
class ContainerHistory:
    """What one container used of one resource before ``now``.

    ``ds`` (datetime64[ns], UTC, ascending), ``usage`` and ``request`` (cores or bytes, one per sample) have
    the same length. ``oom_ds``/``oom_usage`` are the OOM kills before ``now`` and the memory in use at each
    (empty for CPU). ``labels``: the latest ``workload``/``image``/``team``/``namespace`` when the usage frame had
    them. ``fleet``: the decision's containers (``Fleet``), None for a history built alone. ``cache``: scratch space
    of this decision; ``kept``: results that never go stale (scores of past windows), which a long-lived caller
    (``sizer.RightSizer``) keeps from one decision to the next.
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
    fleet: Fleet | None = field(default=None, repr=False)
    kept: dict[tuple[object, ...], object] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not (len(self.ds) == len(self.usage) == len(self.request)):
            raise ValueError(f"{self.unique_id}/{self.resource}: ds, usage and request differ in length")
        if len(self.oom_ds) != len(self.oom_usage):
            raise ValueError(f"{self.unique_id}/{self.resource}: oom_ds and oom_usage differ in length")

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.ds)

    @cached_property
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

    @cached_property
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


@dataclass(eq=False)
class Fleet:
    """The containers of one decision (all resources), shared by their histories; ``cache`` is shared work."""

    histories: list[ContainerHistory] = field(default_factory=list)
    cache: dict[tuple[object, ...], object] = field(default_factory=dict, repr=False)

    def sibling_groups(self, h: ContainerHistory) -> list[tuple[str, list[ContainerHistory]]]:
        """``h``'s siblings, most specific group first: ``(description, other histories of h's resource)``.

        One group per label of ``SIBLING_COLUMNS`` that ``h`` carries (``workload=shop/cart``, then ``image=...``,
        ``team=...``, ``namespace=...``) with at least one other member, then ``the fleet`` (every other container
        of the decision). Worked example: a new ``cart`` pod labelled ``workload=cart, namespace=shop`` in a fleet
        with two other ``cart`` pods and five other ``shop`` containers -> ``[("workload=cart", 2 histories),
        ("namespace=shop", 7), ("the fleet", all others)]`` (the namespace group includes the ``cart`` pods).
        """
        same = [o for o in self.histories if o.resource == h.resource and o.unique_id != h.unique_id]
        out: list[tuple[str, list[ContainerHistory]]] = []
        for label in SIBLING_COLUMNS:
            value = h.labels.get(label)
            if value is None:
                continue
            members = [o for o in same if o.labels.get(label) == value]
            if members:
                out.append((f"{label}={value}", members))
        if same and (not out or len(out[-1][1]) < len(same)):
            out.append(("the fleet", same))
        return out


def attach_fleet(hs: Sequence[ContainerHistory]) -> list[ContainerHistory]:
    """The same histories, each pointing to one shared ``Fleet`` of all of them."""
    fleet = Fleet()
    out = [ContainerHistory(h.unique_id, h.resource, h.ds, h.usage, h.request, h.oom_ds, h.oom_usage, h.now,
                            h.labels, h.cache, fleet, h.kept) for h in hs]
    fleet.histories = out
    return out


def _naive_ns(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def histories(usage: pd.DataFrame, ooms: pd.DataFrame | None, now: pd.Timestamp) -> list[ContainerHistory]:
    """One ``ContainerHistory`` per container and resource (``RESOURCES`` order), from samples before ``now``.

    ``usage`` and ``ooms`` must already be validated (``validate_usage`` / ``validate_ooms``). Containers
    without a sample before ``now`` are left out (they did not exist yet). OOM kills go to the memory history.
    All of them share one ``Fleet`` (``attach_fleet``).
    """
    now = pd.Timestamp(now).tz_convert("UTC")
    cut = usage.loc[usage[DS] < now]
    kills = ooms.loc[ooms[DS] < now] if ooms is not None and len(ooms) else None
    kill_groups = {str(k): g for k, g in kills.groupby(ID, sort=False)} if kills is not None else {}
    label_cols = [c for c in SIBLING_COLUMNS if c in usage.columns]
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
    return attach_fleet(out)
