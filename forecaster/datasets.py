"""Bundled real data: the NASA-HTTP extract for demos and notebooks, and the long-CSV reader behind it.

``load_nasa_5min`` returns three weeks of real web requests (1995-07-01 .. 07-21 EDT, 5-minute sums, UTC);
``nasa_events`` the business events inside that span (Independence Day, STS-70 launch day).
``read_long_csv`` reads any extract in the same format (also the test fixtures in ``tests/fixtures``).
Provenance, licence and transformation: ``forecaster/data/ATTRIBUTION.md``; the files are cut from
``../shared/traces`` by ``benchmarks/extracts.py``.

Called by ``forecaster demo``, the notebooks and tests. Pure: pandas only, reads package data files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.contracts.frames import DS, ID, OUTAGE, Y

NASA_FILE = "nasa_5min.csv"
NASA_ID = "nasa-http"
EVENT_COLUMNS = ["name", "kind", "start", "end", "scope"]


def read_long_csv(path: str | Path, unique_id: str | None = None) -> pd.DataFrame:
    """Read an extract into the long frame ``unique_id, ds (UTC), y (float), is_outage (bool)``.

    The file has ``ds`` (ISO 8601 with an offset, e.g. ``1995-07-01T04:00Z``), ``y`` and optionally
    ``unique_id`` (else ``unique_id`` must be given) and ``is_outage`` (0/1; absent = all False).
    """
    raw = pd.read_csv(path, dtype={ID: str})
    if ID not in raw.columns:
        if unique_id is None:
            raise ValueError(f"{path}: no unique_id column; pass unique_id=")
        raw[ID] = unique_id
    out = pd.DataFrame(
        {
            ID: raw[ID].astype(str),
            DS: pd.to_datetime(raw[DS], utc=True).dt.as_unit("ns"),
            Y: raw[Y].astype(float),
        }
    )
    out[OUTAGE] = raw[OUTAGE].astype(bool) if OUTAGE in raw.columns else False
    return out


def data_file(name: str) -> Path:
    """Path of a bundled file in ``forecaster/data``."""
    return Path(__file__).resolve().parent / "data" / name


def load_nasa_5min() -> pd.DataFrame:
    """NASA KSC web server requests per 5 minutes, 1995-07-01 04:00 .. 07-22 03:55 UTC (21 days, 6,048 rows).

    Every minute of the span was observed; no zero run of 30 minutes or more, so ``is_outage`` is all
    False (a 22-minute zero run on 13 Jul 19:49-20:10 EDT is left as data, see ATTRIBUTION.md).
    """
    return read_long_csv(data_file(NASA_FILE), unique_id=NASA_ID)


def nasa_events() -> pd.DataFrame:
    """Events inside the ``load_nasa_5min`` span: ``name, kind, start, end (UTC), scope (None)``.

    - Independence Day, Tue 1995-07-04 (US federal holiday, fixed date), kind ``holiday``.
    - STS-70 launch, Thu 1995-07-13 (the trace's SOURCE.md: "STS-70 launched 13 Jul 1995"), kind
      ``launch``. The whole local day is the event (the time of lift-off is not in our sources); the
      trace itself shows the effect: 134,203 requests that day against 80,000-100,000 on other weekdays.

    Both span the whole server-local day (EDT, UTC-4), i.e. 04:00 UTC to 04:00 UTC the next day.
    """
    rows = []
    for name, kind, day in (
        ("Independence Day", "holiday", "1995-07-04"),
        ("STS-70 launch", "launch", "1995-07-13"),
    ):
        start = pd.Timestamp(day).tz_localize("Etc/GMT+4").tz_convert("UTC").as_unit("ns")
        rows.append((name, kind, start, start + pd.Timedelta("1D"), None))
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)
