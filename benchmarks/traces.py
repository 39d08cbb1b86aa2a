"""Load the real traces in ``../shared/traces`` as long frames (``unique_id, ds, y, is_outage``).

One loader per trace, each returning a ``Trace`` (frame, frequency, events, provenance note). Called by
``accuracy.py``, ``throughput.py`` and ``extracts.py`` (which cuts the bundled/test extracts). Every
choice that is not in the trace's own SOURCE.md is stated in the loader's docstring:

- NASA-HTTP 1995: 1-minute counts -> 5-minute sums in UTC (server clock EDT = UTC-4). A 5-minute bucket
  containing an unobserved minute is dropped (a gap; validation fills it as an outage). Outages marked
  ``is_outage``: the Hurricane Erin outage 1995-08-01 14:52 -> 08-03 04:36 EDT (SOURCE.md) and every other
  run of zero-request observed minutes lasting >= 30 minutes.
- Azure V2 2019: relative seconds anchored at an arbitrary Monday, 2019-07-01 00:00 UTC (Azure publishes
  no calendar date). ``y = cpu_usage`` (total cores in use, 5-minute).
- Alibaba 2018: 300-s file, row i = i * 300 s from an arbitrary anchor 2018-01-01 00:00 Asia/Shanghai
  (SOURCE.md: t = 0 is local midnight of day 1). ``y = cpu_util_percent``.
- Taylor 2000: kept at its own 30-minute frequency; UK clock (BST) converted to UTC.
- Bitbrains Rnd: ``cpu_usage_mhz`` of the first 50 VMs (by ``vm_id``) whose samples span > 27 days in
  each of the three monthly files; timestamps rounded to the nearest 5 minutes, duplicates averaged.
- NYC taxi 2014 (NAB ``nyc_taxi``): kept at its own 30 minutes, ``ds`` already UTC in the file; no gaps. Events:
  ``events.csv`` as published (10 holidays, the NYC Marathon and the blizzard travel ban, UTC, end exclusive),
  checked against the engine's events contract (``signals.events.validate_events``), ``scope`` empty (all).
- Bike sharing DC 2011-2012 (UCI): hourly ``cnt``; the 163 hours absent from the source (``observed = 0``,
  ``y`` empty) are marked ``is_outage`` -- SOURCE.md: the long runs are service suspensions, the isolated
  night hours probably zero rentals; both are left out of training and scoring rather than guessed. Signals:
  ``signals.csv.gz`` as published (5 weather signals, ``known_in_advance = True``, observed hours only).
  Events: ``events.csv`` (21 DC holidays + 3 custom storms) checked like NYC's.

``Trace.tz`` is the local clock of the trace (where people live by it): the benchmark places "one local day"
windows on it (event windows of ``accuracy.py``). It never changes the data, which stays in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = REPO.parent / "shared" / "traces"
CACHE = Path(__file__).resolve().parent / ".cache"

NASA_TZ = "Etc/GMT+4"  # EDT, fixed UTC-4 (no DST change inside Jul-Aug 1995)
HURRICANE_EDT = ("1995-08-01 14:52", "1995-08-03 04:36")
EVENT_COLUMNS = ["name", "kind", "start", "end", "scope"]


@dataclass
class Trace:
    """A loaded trace: ``frame`` is ``unique_id, ds (UTC), y, is_outage`` on the ``freq`` grid (with gaps)."""

    name: str
    freq: str
    frame: pd.DataFrame
    events: pd.DataFrame | None = None
    note: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    signals: pd.DataFrame | None = None  # long frame ``ds, signal, value, known_in_advance`` (signals contract)
    tz: str = "UTC"  # local clock of the trace, for "local day" windows (the data stay in UTC)


def _long(
    uid: str, ds: pd.Series | pd.DatetimeIndex, y: np.ndarray, outage: np.ndarray | None = None
) -> pd.DataFrame:
    stamps = pd.DatetimeIndex(ds).as_unit("ns")
    out = pd.DataFrame({"unique_id": uid, "ds": stamps, "y": np.asarray(y, float)})
    out["is_outage"] = np.zeros(len(out), bool) if outage is None else np.asarray(outage, bool)
    return out


# ---------------------------------------------------------------- NASA


def nasa_minutes(root: Path = DEFAULT_TRACES) -> pd.DataFrame:
    """The 1-minute NASA file with ``ds`` in UTC: ``ds, requests, observed``."""
    raw = pd.read_csv(root / "nasa-http-1995" / "nasa_requests_per_minute.csv")
    ds = pd.to_datetime(raw["timestamp_local"]).dt.tz_localize(NASA_TZ).dt.tz_convert("UTC")
    return pd.DataFrame({"ds": ds, "requests": raw["requests"], "observed": raw["observed"].astype(bool)})


def nasa_outage_windows(minutes: pd.DataFrame, min_run_minutes: int = 30) -> pd.DataFrame:
    """Outage windows ``start, end`` (UTC, end exclusive): the hurricane outage plus zero runs lasting
    ``min_run_minutes`` or more."""
    zero = (minutes["requests"].fillna(-1) == 0) & minutes["observed"]
    run_id = (zero != zero.shift()).cumsum()
    runs = minutes.loc[zero].groupby(run_id[zero])["ds"].agg(["min", "max", "count"])
    runs = runs[runs["count"] >= min_run_minutes]
    windows = [(r["min"], r["max"] + pd.Timedelta(minutes=1)) for _, r in runs.iterrows()]
    h0, h1 = (pd.Timestamp(t).tz_localize(NASA_TZ).tz_convert("UTC") for t in HURRICANE_EDT)
    windows.append((h0, h1))
    return pd.DataFrame(windows, columns=["start", "end"]).sort_values("start", ignore_index=True)


def nasa_5min(minutes: pd.DataFrame, windows: pd.DataFrame, uid: str = "nasa-http") -> pd.DataFrame:
    """5-minute sums; buckets with a missing or unobserved minute are dropped (gaps), buckets touching an
    outage window are marked ``is_outage``."""
    m = minutes.copy()
    m["bucket"] = m["ds"].dt.floor("5min")
    in_out = np.zeros(len(m), bool)
    for w in windows.itertuples(index=False):
        in_out |= ((m["ds"] >= w.start) & (m["ds"] < w.end)).to_numpy()
    m["outage"] = in_out
    agg = m.groupby("bucket").agg(
        y=("requests", "sum"), obs=("observed", "all"), n=("observed", "size"), out=("outage", "any")
    )
    agg = agg[agg["obs"] & (agg["n"] == 5)]
    return _long(uid, agg.index, agg["y"].to_numpy(), agg["out"].to_numpy())


def nasa_events(start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """US federal holidays of 1995 (``holidays`` package) as whole EDT days, plus the STS-70 launch day
    (13 Jul 1995, from SOURCE.md), clipped to ``[start, end)`` when given."""
    import holidays

    rows = []
    for day, name in sorted(holidays.country_holidays("US", years=1995).items()):
        s = pd.Timestamp(day).tz_localize(NASA_TZ).tz_convert("UTC")
        rows.append((name, "holiday", s, s + pd.Timedelta("1D"), None))
    launch = pd.Timestamp("1995-07-13").tz_localize(NASA_TZ).tz_convert("UTC")
    rows.append(("STS-70 launch", "launch", launch, launch + pd.Timedelta("1D"), None))
    ev = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    if start is not None:
        ev = ev[ev["end"] > start]
    if end is not None:
        ev = ev[ev["start"] < end]
    return ev.sort_values("start", ignore_index=True)


def load_nasa(root: Path = DEFAULT_TRACES) -> Trace:
    """NASA KSC HTTP requests, 1995-07-01 .. 08-31 EDT, 5-minute sums (see the module docstring)."""
    minutes = nasa_minutes(root)
    windows = nasa_outage_windows(minutes)
    frame = nasa_5min(minutes, windows)
    events = nasa_events(frame["ds"].min(), frame["ds"].max())
    note = "requests per 5 min; outages marked"
    return Trace("nasa", "5min", frame, events, note, {"outages": len(windows)}, tz=NASA_TZ)


# ---------------------------------------------------------------- Azure, Alibaba, Taylor

AZURE_ANCHOR = pd.Timestamp("2019-07-01 00:00", tz="UTC")
ALIBABA_ANCHOR = pd.Timestamp("2018-01-01 00:00", tz="Asia/Shanghai").tz_convert("UTC")


def load_azure(root: Path = DEFAULT_TRACES) -> Trace:
    """Azure V2 total CPU cores in use, 30 days at 5 minutes, anchored at 2019-07-01 00:00 UTC (arbitrary)."""
    raw = pd.read_csv(root / "azure-v2-vm-agg" / "vm_cpu_readings_month_aggregated_cpu_mem.csv")
    ds = AZURE_ANCHOR + pd.to_timedelta(raw["timestamp"], unit="s")
    return Trace("azure", "5min", _long("azure-cpu", ds, raw["cpu_usage"].to_numpy()), None,
                 "sum of VM cores in use; anchor date arbitrary")


def load_alibaba(root: Path = DEFAULT_TRACES) -> Trace:
    """Alibaba 2018 mean machine CPU %, 7.8 days at 5 minutes; row i at anchor + i*300 s."""
    raw = pd.read_csv(root / "alibaba2018-machine-agg" / "machine_usage_days_1_to_8_grouped_300_seconds.csv")
    ds = ALIBABA_ANCHOR + pd.to_timedelta(np.arange(len(raw)) * 300, unit="s")
    return Trace("alibaba", "5min", _long("alibaba-cpu", ds, raw["cpu_util_percent"].to_numpy()), None,
                 "cluster-mean CPU %; anchor date arbitrary; < 8 days")


def load_taylor(root: Path = DEFAULT_TRACES) -> Trace:
    """Taylor England & Wales demand (MW), 12 weeks at its own 30-minute frequency, BST -> UTC."""
    raw = pd.read_csv(root / "taylor-electricity-2000" / "taylor_halfhourly_demand_mw.csv")
    ds = pd.to_datetime(raw["timestamp_local"]).dt.tz_localize("Europe/London").dt.tz_convert("UTC")
    return Trace("taylor", "30min", _long("taylor-mw", ds, raw["demand_mw"].to_numpy()), None,
                 "electricity demand; 30-minute steps", tz="Europe/London")


# ---------------------------------------------------------------- Bitbrains

BITBRAINS_MONTHS = ("2013-7", "2013-8", "2013-9")


def bitbrains_raw(root: Path = DEFAULT_TRACES, columns: tuple[str, ...] = ("cpu_usage_mhz",)) -> pd.DataFrame:
    """All three monthly files, ``vm_id, timestamp_s, <columns>, month`` (cached as parquet in ``.cache``)."""
    cols = ["vm_id", "timestamp_s", *columns]
    cache = CACHE / f"bitbrains_{'_'.join(columns)}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    parts = []
    for month in BITBRAINS_MONTHS:
        part = pd.read_csv(root / "bitbrains-rnd-vm001-250" / f"rnd_{month}_vm001-250.csv.gz", usecols=cols)
        part["month"] = month
        parts.append(part)
    raw = pd.concat(parts, ignore_index=True)
    CACHE.mkdir(exist_ok=True)
    raw.to_parquet(cache)
    return raw


def bitbrains_complete_vms(raw: pd.DataFrame, min_span_days: float = 27.0) -> list[int]:
    """VM ids (ascending) whose samples span more than ``min_span_days`` in every monthly file."""
    span = raw.groupby(["vm_id", "month"])["timestamp_s"].agg(lambda s: (s.max() - s.min()) / 86400)
    ok = span.unstack("month").reindex(columns=list(BITBRAINS_MONTHS))
    ok = ok[(ok > min_span_days).all(axis=1)]
    return sorted(int(v) for v in ok.index)


def bitbrains_frame(raw: pd.DataFrame, vm_ids: list[int], column: str = "cpu_usage_mhz") -> pd.DataFrame:
    """Long frame of ``column`` for ``vm_ids`` on the 5-minute grid (rounded stamps, duplicates averaged)."""
    sub = raw[raw["vm_id"].isin(vm_ids)]
    ds = pd.to_datetime(sub["timestamp_s"], unit="s", utc=True).dt.round("5min")
    sub = pd.DataFrame({"unique_id": sub["vm_id"].map(lambda v: f"bitbrains-vm{int(v):03d}"),
                        "ds": ds.dt.as_unit("ns"), "y": sub[column].astype(float)})
    out = sub.groupby(["unique_id", "ds"], as_index=False)["y"].mean()
    out["is_outage"] = False
    return out


def load_bitbrains(root: Path = DEFAULT_TRACES, n_vms: int = 50) -> Trace:
    """CPU usage (MHz) of ``n_vms`` Bitbrains VMs, Jul-Sep 2013, 5-minute grid (gaps stay gaps)."""
    raw = bitbrains_raw(root)
    vms = bitbrains_complete_vms(raw)[:n_vms]
    return Trace("bitbrains", "5min", bitbrains_frame(raw, vms), None,
                 f"cpu_usage_mhz of the first {len(vms)} VMs with > 27 days in each month",
                 {"vm_ids": vms})


# ---------------------------------------------------------------- traces with real events and signals

NEW_YORK = "America/New_York"


def read_events(path: Path) -> pd.DataFrame:
    """A published ``events.csv`` (``name, kind, start, end``; UTC ISO stamps, end exclusive) in the engine's
    events contract: ``name, kind, start, end, scope`` (scope empty = every series), validated by
    ``signals.events.validate_events`` so a bad row fails here, not inside a backtest."""
    from signals.events import validate_events

    raw = pd.read_csv(path)
    ev = pd.DataFrame(
        {
            "name": raw["name"].astype(str).str.strip(),
            "kind": raw["kind"].astype(str).str.strip().str.lower(),
            "start": pd.to_datetime(raw["start"], utc=True).dt.as_unit("ns"),
            "end": pd.to_datetime(raw["end"], utc=True).dt.as_unit("ns"),
            "scope": None,
        }
    )[EVENT_COLUMNS]
    validate_events(ev, source=str(path))
    return ev.sort_values("start", ignore_index=True)


def load_nyc_taxi(root: Path = DEFAULT_TRACES) -> Trace:
    """NYC yellow-cab passengers per 30 minutes, 2014-07-01 .. 2015-01-31 local (NAB ``nyc_taxi``), with its
    event calendar (holidays, the NYC Marathon, the blizzard travel ban). No gaps, no outages."""
    d = root / "nyc-taxi-2014"
    raw = pd.read_csv(d / "nyc_taxi_passengers_30min.csv")
    ds = pd.to_datetime(raw["ds"], utc=True)
    frame = _long("nyc-taxi", ds, raw["y"].to_numpy(dtype=float))
    events = read_events(d / "events.csv")
    return Trace("nyc-taxi", "30min", frame, events, "taxi passengers per 30 min; real event calendar",
                 {"dst_split_rows": int(raw["dst_split"].sum())}, tz=NEW_YORK)


def read_signals(path: Path) -> pd.DataFrame:
    """A published long signals frame (``ds, signal, value, known_in_advance``) with ``ds`` in UTC."""
    raw = pd.read_csv(path)
    known = raw["known_in_advance"]
    if known.dtype != bool:
        known = known.astype(str).str.strip().str.lower().isin({"true", "1", "yes"})
    return pd.DataFrame(
        {
            "ds": pd.to_datetime(raw["ds"], utc=True).dt.as_unit("ns"),
            "signal": raw["signal"].astype(str),
            "value": raw["value"].astype(float),
            "known_in_advance": known.astype(bool),
        }
    )


def load_bike_dc(root: Path = DEFAULT_TRACES) -> Trace:
    """Capital Bikeshare hourly rentals 2011-2012 (UCI), weather signals known in advance, DC holidays and
    three storms as events. Hours absent from the source (``observed = 0``, empty ``y``) are outages."""
    d = root / "bike-sharing-dc"
    raw = pd.read_csv(d / "bike_dc_hourly.csv")
    ds = pd.to_datetime(raw["ds"], utc=True)
    observed = raw["observed"].astype(bool).to_numpy() & raw["y"].notna().to_numpy()
    frame = _long("bike-dc", ds, raw["y"].to_numpy(dtype=float), ~observed)
    events = read_events(d / "events.csv")
    signals = read_signals(d / "signals.csv.gz")
    return Trace("bike", "1h", frame, events, "bike rentals per hour; weather signals; holidays + storms",
                 {"outage_hours": int((~observed).sum()), "signals": sorted(signals["signal"].unique())},
                 signals=signals, tz=NEW_YORK)


LOADERS = {
    "nasa": load_nasa,
    "azure": load_azure,
    "alibaba": load_alibaba,
    "taylor": load_taylor,
    "bitbrains": load_bitbrains,
    "nyc-taxi": load_nyc_taxi,
    "bike": load_bike_dc,
}
ALIASES = {"nyc-taxi-2014": "nyc-taxi", "nyc": "nyc-taxi", "bike-sharing-dc": "bike", "bike-dc": "bike"}
"""Other names ``--only`` accepts: the trace directories' own names."""
