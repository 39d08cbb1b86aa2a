"""The right-sizing frames (DESIGN.md "Contracts") and their validation at the edge.

Three long frames cross the boundary of ``forecaster.rightsizing``:

* **Usage** - one row per container per sample: ``unique_id`` (container id, e.g. ``"shop/cart/app"``),
  ``ds`` (tz-aware, converted to UTC), ``cpu`` (cores in use), ``memory`` (working-set bytes),
  ``cpu_request`` (cores), ``memory_request`` (bytes); optional ``cpu_limit``, ``memory_limit`` (NaN = no
  limit), ``namespace``, ``team``, ``workload``, ``image`` (labels: a new container borrows from the containers
  that share one, ``SIBLING_COLUMNS``). Extra columns are kept untouched.
* **OOM** - one row per OOM kill: ``unique_id``, ``ds``, optional ``memory`` (bytes in use at the kill;
  filled from the usage samples when absent).
* **Recommendation** - one row per ``(unique_id, resource)`` (see ``RECOMMENDATION_COLUMNS``); CPU in cores,
  memory in bytes; ``low_confidence`` marks a container with less history than the policy needs.
* **Quantile table** - predicted use per ``(unique_id, resource)``: ``quantile`` (level in (0, 1]) and
  ``value`` (cores/bytes); read by the reports to state predicted use and risk.

``validate_usage`` / ``validate_ooms`` raise ``UsageError`` naming the container, the field and the first
offending timestamp; nothing is computed from a frame that fails. The unit heuristics (millicores given as
cores, memory given in KiB/MiB/GiB) and their thresholds are documented on ``check_units``.

Pure: numpy and pandas only. Called by ``recommend``, ``rightsize``, the reports and (through them) the CLI
and the right-sizing benchmark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.contracts.errors import ForecasterWarning, InputError
from forecaster.contracts.frames import DS, ID

CPU = "cpu"
MEMORY = "memory"
RESOURCES: tuple[str, ...] = (CPU, MEMORY)
CPU_REQUEST = "cpu_request"
MEMORY_REQUEST = "memory_request"
CPU_LIMIT = "cpu_limit"
MEMORY_LIMIT = "memory_limit"
NAMESPACE = "namespace"
TEAM = "team"
REQUIRED_USAGE_COLUMNS: tuple[str, ...] = (ID, DS, CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST)
WORKLOAD = "workload"
IMAGE = "image"
OPTIONAL_USAGE_COLUMNS: tuple[str, ...] = (CPU_LIMIT, MEMORY_LIMIT, NAMESPACE, TEAM, WORKLOAD, IMAGE)
GROUP_COLUMNS: tuple[str, ...] = (NAMESPACE, TEAM)
SIBLING_COLUMNS: tuple[str, ...] = (WORKLOAD, IMAGE, TEAM, NAMESPACE)
"""Labels that make containers siblings, most specific first: a container with too little history of its own
borrows from the containers sharing the first of these labels that has any (``selector.CostSelected``)."""

REQUEST_OF: dict[str, str] = {CPU: CPU_REQUEST, MEMORY: MEMORY_REQUEST}
"""Usage column -> its request column."""
LIMIT_OF: dict[str, str] = {CPU: CPU_LIMIT, MEMORY: MEMORY_LIMIT}
"""Usage column -> its (optional) limit column."""

# Recommendation frame
RESOURCE = "resource"
REQUEST = "request"
TARGET = "target"
LOWER_BOUND = "lower_bound"
UPPER_BOUND = "upper_bound"
UNCAPPED_TARGET = "uncapped_target"
SOURCE = "source"
REASON = "reason"
POLICY = "policy"
LOW_CONFIDENCE = "low_confidence"
"""True when the container has less history than the policy needs (``Policy.min_history``): the reason says how
much, the reports give no risk figure, and the controller never actuates it in Auto."""
RECOMMENDATION_COLUMNS: tuple[str, ...] = (
    ID, RESOURCE, REQUEST, TARGET, LOWER_BOUND, UPPER_BOUND, UNCAPPED_TARGET, SOURCE, REASON, POLICY, LOW_CONFIDENCE,
)
"""Columns of the recommendation frame, followed by ``namespace`` and ``team`` when the usage had them."""

MIB = float(2**20)
GIB = float(2**30)

# Unit heuristics (see ``check_units``)
MAX_PLAUSIBLE_CPU_CORES = 512.0
"""No container uses or requests more than 512 cores; larger CPU figures are millicores (or MHz)."""
MIN_PLAUSIBLE_MEMORY_REQUEST = 4 * MIB
"""A positive memory request below 4 MiB is not bytes: it is KiB, MiB or GiB."""
MIN_PLAUSIBLE_MEMORY_USAGE = MIB
"""A running container's median working set below 1 MiB (with a request of at least 16 MiB) is not bytes."""
MAX_USAGE_TO_REQUEST = 100.0
"""Median usage more than 100x the (positive) request means usage and request are in different units."""


class UsageError(InputError):
    """A usage or OOM frame breaks the right-sizing contract. The message names container, field and time."""


class LowConfidenceWarning(ForecasterWarning):
    """Some containers have less history than the policy needs: their recommendations are ``low_confidence``."""


def _when(ts: object) -> str:
    return pd.Timestamp(ts).isoformat()  # type: ignore[arg-type]


def _first(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> tuple[str, str, int]:
    """``(container, first timestamp, count)`` of the rows flagged by ``mask`` (frame sorted by id, ds)."""
    hit = frame.loc[np.asarray(mask, dtype=bool)]
    row = hit.iloc[0]
    return str(row[ID]), _when(row[DS]), len(hit)


def _to_utc(values: pd.Series, what: str) -> pd.Series:
    """Tz-aware timestamps in UTC (nanoseconds); tz-naive or unparseable values are a ``UsageError``."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(values.dtype):
            raise UsageError(f"{what}: column 'ds' is tz-naive; localize it, e.g. ds.dt.tz_localize('UTC')")
        try:
            parsed = pd.to_datetime(values, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{what}: column 'ds' cannot be read as timestamps ({exc})") from exc
        if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
            raise UsageError(
                f"{what}: column 'ds' is tz-naive; give an offset (e.g. '2024-01-01T00:00Z') or localize to UTC"
            )
        values = parsed
    return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    ID: ("container", "container_id", "container_name", "id", "pod", "name", "workload", "vm", "series"),
    DS: ("timestamp", "time", "date", "datetime", "ts"),
    CPU: ("cpu_usage", "cpu_cores", "cpu_used"),
    MEMORY: ("memory_usage", "memory_bytes", "mem", "working_set", "memory_working_set_bytes"),
    CPU_REQUEST: ("cpu_requests", "request_cpu", "requests_cpu"),
    MEMORY_REQUEST: ("memory_requests", "request_memory", "requests_memory", "mem_request"),
}
"""Names a column is often given elsewhere; a missing column's error names the one found (case-insensitive)."""


def check_columns(frame: pd.DataFrame, what: str, required: tuple[str, ...] = REQUIRED_USAGE_COLUMNS) -> None:
    """``UsageError`` naming every missing ``required`` column, the columns expected and, for each missing one,
    a present column that looks like it under another name (``COLUMN_ALIASES``): e.g. ``missing required
    column(s) ['unique_id'] ...; found 'container': rename it to 'unique_id'``."""
    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    present = {str(c).strip().lower(): str(c) for c in frame.columns}
    hints = [f"found '{present[a]}': rename it to '{c}'"
             for c in missing for a in COLUMN_ALIASES.get(c, ()) if a in present][:3]
    hint = f"; {'; '.join(hints)}" if hints else f" (columns: {[str(c) for c in frame.columns][:12]})"
    raise UsageError(f"{what}: missing required column(s) {missing}; expected at least {list(required)}{hint}")


def _prepare_keys(frame: pd.DataFrame, what: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Check columns, ids and timestamps; return a sorted copy with UTC ``ds`` and str ``unique_id``."""
    check_columns(frame, what, required)
    out = frame.copy()
    if len(out) and out[ID].isna().any():
        row = int(np.flatnonzero(out[ID].isna().to_numpy())[0])
        raise UsageError(f"{what}: column 'unique_id' is empty in row {row}")
    out[ID] = out[ID].astype(str)
    out[DS] = _to_utc(out[DS], what)
    if out[DS].isna().any():
        bad = out.loc[out[DS].isna(), ID].iloc[0]
        raise UsageError(f"{what}: container {bad}: column 'ds' has a missing timestamp")
    return out.sort_values([ID, DS], kind="stable").reset_index(drop=True)


def _check_numeric(frame: pd.DataFrame, column: str, what: str, *, allow_nan: bool) -> None:
    """Numeric column; NaN (unless allowed), +/-inf and negative values are errors naming the container."""
    try:
        values = pd.to_numeric(frame[column], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{what}: column '{column}' is not numeric ({exc})") from exc
    frame[column] = values
    arr = values.to_numpy()
    if not allow_nan and np.isnan(arr).any():
        uid, when, n = _first(frame, np.isnan(arr))
        raise UsageError(f"{what}: {column} of {uid} is missing (NaN) at {when} ({n} samples)")
    bad_inf = np.isinf(arr)
    if bad_inf.any():
        uid, when, n = _first(frame, bad_inf)
        raise UsageError(f"{what}: {column} of {uid} is infinite at {when} ({n} samples)")
    negative = arr < 0
    if negative.any():
        uid, when, n = _first(frame, negative)
        value = float(arr[np.flatnonzero(negative)[0]])
        raise UsageError(f"{what}: {column} of {uid} is negative ({value:g}) at {when} ({n} samples)")


def check_units(frame: pd.DataFrame) -> None:
    """Raise ``UsageError`` when CPU or memory figures look like the wrong unit. Rules, in order:

    1. Any ``cpu``, ``cpu_request`` or ``cpu_limit`` above ``MAX_PLAUSIBLE_CPU_CORES`` (512 cores): the
       column is in millicores (a 2-core request written ``2000``) or MHz; divide by 1000.
    2. A positive ``memory_request`` (or ``memory_limit``) below ``MIN_PLAUSIBLE_MEMORY_REQUEST`` (4 MiB):
       not bytes. Below 64 it reads as GiB (``0.5`` = 512 MiB), below 65,536 as MiB (``512``), else as KiB
       (``524288``); the message says which factor to multiply by.
    3. Per container, a median ``memory`` (working set) that is positive but below 1 MiB while its
       ``memory_request`` is at least 16 MiB: usage is in KiB (median >= 1024) or MiB (median < 1024).
    4. Per container and resource, a median usage above ``MAX_USAGE_TO_REQUEST`` (100) times a positive
       request: usage and request are in different units (e.g. CPU usage in millicores, request in cores).

    The thresholds sit far from real workloads: the largest cloud machines have under 512 cores, the
    smallest useful memory request is tens of MiB, and CPU can burst above its request but not 100-fold
    in the median.
    """
    for column in (CPU, CPU_REQUEST, CPU_LIMIT):
        if column not in frame.columns:
            continue
        big = frame[column].to_numpy(dtype=float) > MAX_PLAUSIBLE_CPU_CORES
        if big.any():
            uid, when, n = _first(frame, big)
            value = float(frame[column].to_numpy(dtype=float)[np.flatnonzero(big)[0]])
            raise UsageError(
                f"{column} of {uid} looks like millicores ({value:g} at {when}, {n} samples above "
                f"{MAX_PLAUSIBLE_CPU_CORES:g} cores); divide by 1000 (if the source is MHz, divide by the "
                "core clock in MHz)"
            )
    for column in (MEMORY_REQUEST, MEMORY_LIMIT):
        if column not in frame.columns:
            continue
        arr = frame[column].to_numpy(dtype=float)
        small = (arr > 0) & (arr < MIN_PLAUSIBLE_MEMORY_REQUEST)
        if small.any():
            uid, when, n = _first(frame, small)
            value = float(arr[np.flatnonzero(small)[0]])
            unit, factor = _memory_unit_guess(value)
            raise UsageError(
                f"{column} of {uid} looks like {unit} ({value:g} at {when}, {n} samples below 4 MiB); "
                f"memory is in bytes: multiply by {factor}"
            )
    grouped = frame.groupby(ID, sort=False)
    columns = [CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST]
    medians = grouped[columns].median()
    for uid, values in zip(medians.index, medians.to_numpy(dtype=float), strict=True):
        row = dict(zip(columns, values.tolist(), strict=True))
        mem, mem_req = row[MEMORY], row[MEMORY_REQUEST]
        if 0 < mem < MIN_PLAUSIBLE_MEMORY_USAGE and mem_req >= 16 * MIB:
            unit, factor = ("MiB", "2**20") if mem < 1024 else ("KiB", "1024")
            raise UsageError(
                f"memory of {uid} looks like {unit} (median {mem:g} against a memory_request of "
                f"{mem_req / MIB:g} MiB); memory is in bytes: multiply by {factor}"
            )
        for usage, request in ((CPU, CPU_REQUEST), (MEMORY, MEMORY_REQUEST)):
            use, req = row[usage], row[request]
            if req > 0 and use > MAX_USAGE_TO_REQUEST * req:
                hint = "divide cpu by 1000 if it is millicores" if usage == CPU else "check both are bytes"
                raise UsageError(
                    f"{usage} of {uid} is {use / req:.0f} times its {request} (median {use:g} vs {req:g}); "
                    f"usage and request look like different units: {hint}"
                )


def _memory_unit_guess(value: float) -> tuple[str, str]:
    if value < 64:
        return "GiB", "2**30"
    if value < 65536:
        return "MiB", "2**20"
    return "KiB", "1024"


def validate_usage(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a usage frame and return a sorted copy (``ds`` in UTC, numeric columns as float).

    Raises ``UsageError`` naming the container, the field and the first offending timestamp for: a missing
    required column; tz-naive or missing ``ds``; duplicate ``(unique_id, ds)``; missing (NaN) requests;
    NaN, infinite or negative usage; infinite or negative requests and limits; a limit below its request;
    and the unit mix-ups of ``check_units``. Zero requests are allowed (BestEffort containers). NaN limits
    mean "no limit".
    """
    what = "usage frame"
    out = _prepare_keys(frame, what, REQUIRED_USAGE_COLUMNS)
    if out.empty:
        raise UsageError(f"{what}: no rows")
    dup = out.duplicated([ID, DS]).to_numpy()
    if dup.any():
        uid, when, n = _first(out, dup)
        raise UsageError(
            f"{what}: duplicate sample for {uid} at {when} ({n} duplicate rows); one row per (unique_id, ds)"
        )
    for column in (CPU_REQUEST, MEMORY_REQUEST):
        if out[column].isna().any():
            uid, when, n = _first(out, out[column].isna())
            raise UsageError(
                f"{column} of {uid} is missing from {when} ({n} samples); requests are required "
                "(e.g. from kube_pod_container_resource_requests); use 0 for a container without a request"
            )
    for column in (CPU, MEMORY, CPU_REQUEST, MEMORY_REQUEST):
        _check_numeric(out, column, what, allow_nan=False)
    limits = {usage: limit for usage, limit in LIMIT_OF.items() if limit in out.columns}
    for limit in limits.values():
        _check_numeric(out, limit, what, allow_nan=True)
    check_units(out)
    for usage, limit in limits.items():
        below = (out[limit] < out[REQUEST_OF[usage]]).to_numpy()
        if below.any():
            uid, when, n = _first(out, below)
            raise UsageError(f"{limit} of {uid} is below its {REQUEST_OF[usage]} at {when} ({n} samples)")
    for column in SIBLING_COLUMNS:
        if column in out.columns:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


OOM_COLUMNS: tuple[str, ...] = (ID, DS, MEMORY)


def validate_ooms(frame: pd.DataFrame | None, usage: pd.DataFrame) -> pd.DataFrame:
    """Check an OOM frame against a *validated* usage frame; return ``unique_id, ds, memory`` sorted.

    Every kill must name a container of ``usage``. ``memory`` (bytes in use at the kill) may be absent or
    NaN: it is filled with the container's last usage sample at or before the kill, else its first sample
    after the kill. ``None`` or an empty frame gives an empty OOM frame.
    """
    what = "OOM frame"
    if frame is None or (isinstance(frame, pd.DataFrame) and frame.empty):
        return pd.DataFrame(
            {ID: pd.Series([], dtype=object), DS: pd.Series([], dtype="datetime64[ns, UTC]"),
             MEMORY: pd.Series([], dtype=float)}
        )
    out = _prepare_keys(frame, what, (ID, DS))
    known = set(usage[ID].unique())
    unknown = sorted(set(out[ID]) - known)
    if unknown:
        raise UsageError(f"{what}: OOM kill for {unknown[0]}, which has no usage samples ({len(unknown)} unknown)")
    if MEMORY not in out.columns:
        out[MEMORY] = np.nan
    _check_numeric(out, MEMORY, what, allow_nan=True)
    if out[MEMORY].isna().any():
        out[MEMORY] = _fill_kill_memory(out, usage)
    if (out[MEMORY].to_numpy() > 0).any():
        arr = out[MEMORY].to_numpy()
        small = (arr > 0) & (arr < MIN_PLAUSIBLE_MEMORY_USAGE)
        if small.any():
            uid, when, _ = _first(out, small)
            unit, factor = _memory_unit_guess(float(arr[np.flatnonzero(small)[0]]))
            raise UsageError(f"{what}: memory of {uid} at {when} looks like {unit}; multiply by {factor}")
    return out[[ID, DS, MEMORY]].reset_index(drop=True)


def _fill_kill_memory(ooms: pd.DataFrame, usage: pd.DataFrame) -> pd.Series:
    """Memory in use at each kill: the last sample at or before it, else the first one after it."""
    filled = ooms[MEMORY].to_numpy(dtype=float).copy()
    for uid, idx in ooms.groupby(ID, sort=False).groups.items():
        rows = usage.loc[usage[ID] == uid]
        ds = rows[DS].to_numpy(dtype="datetime64[ns]")
        mem = rows[MEMORY].to_numpy(dtype=float)
        for i in np.asarray(idx):
            if not np.isnan(filled[i]):
                continue
            t = ooms[DS].to_numpy(dtype="datetime64[ns]")[i]
            pos = int(np.searchsorted(ds, t, side="right")) - 1
            filled[i] = mem[max(pos, 0)]
    return pd.Series(filled, index=ooms.index)


def empty_recommendations(extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A recommendation frame with no rows and the right dtypes."""
    cols: dict[str, pd.Series] = {c: pd.Series([], dtype=object) for c in (ID, RESOURCE, SOURCE, REASON, POLICY)}
    for c in (REQUEST, TARGET, LOWER_BOUND, UPPER_BOUND, UNCAPPED_TARGET):
        cols[c] = pd.Series([], dtype=float)
    cols[LOW_CONFIDENCE] = pd.Series([], dtype=bool)
    for c in extra:
        cols[c] = pd.Series([], dtype=object)
    return pd.DataFrame(cols)[[*RECOMMENDATION_COLUMNS, *extra]]


# Quantile table (predicted use over the next window; input of the reports)
QUANTILE = "quantile"
VALUE = "value"
QUANTILE_COLUMNS: tuple[str, ...] = (ID, RESOURCE, QUANTILE, VALUE)
"""A predicted-use table: per container and resource, ``value`` (cores/bytes) at each ``quantile`` in (0, 1]."""
