"""Cut the bundled extract (``forecaster/data``) and the test fixtures (``tests/fixtures``) from the traces.

Run once by a maintainer (``python benchmarks/extracts.py [--traces DIR]``); the outputs are committed so
that the package and the tests never read ``../shared/traces``. Deterministic: same traces, same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import traces

REPO = traces.REPO
DATA = REPO / "forecaster" / "data"
FIXTURES = REPO / "tests" / "fixtures"


def _write(frame: pd.DataFrame, path: Path, with_id: bool, decimals: int = 3) -> None:
    y = frame["y"].round(decimals)
    stamps = frame["ds"].dt.strftime("%Y-%m-%dT%H:%MZ")
    out = pd.DataFrame({"ds": stamps, "y": y.astype(int) if decimals == 0 else y})
    if with_id:
        out.insert(0, "unique_id", frame["unique_id"].to_numpy())
    if frame["is_outage"].any():
        out["is_outage"] = frame["is_outage"].astype(int).to_numpy()
    out.to_csv(path, index=False)
    print(f"{path.relative_to(REPO)}: {len(out)} rows, {path.stat().st_size / 1024:.1f} KiB")


def _span(frame: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    return frame[(frame["ds"] >= start) & (frame["ds"] < start + pd.Timedelta(days=days))]


def main(root: Path) -> None:
    nasa = traces.load_nasa(root).frame
    edt = traces.NASA_TZ
    july = _span(nasa, pd.Timestamp("1995-07-01", tz=edt).tz_convert("UTC"), 21)
    assert len(july) == 21 * 288 and not july["is_outage"].any(), "NASA July span must be complete"
    DATA.mkdir(exist_ok=True)
    _write(july, DATA / "nasa_5min.csv", with_id=False, decimals=0)

    FIXTURES.mkdir(exist_ok=True)
    aug = _span(nasa, pd.Timestamp("1995-08-01", tz=edt).tz_convert("UTC"), 8)
    _write(aug, FIXTURES / "nasa_hurricane_5min.csv", with_id=False, decimals=0)
    azure = traces.load_azure(root).frame
    _write(azure.iloc[: 8 * 288], FIXTURES / "azure_cpu_5min.csv", with_id=False, decimals=1)
    taylor = traces.load_taylor(root).frame
    _write(taylor.iloc[: 8 * 48], FIXTURES / "taylor_30min.csv", with_id=False, decimals=0)
    raw = traces.bitbrains_raw(root)
    vms = traces.bitbrains_complete_vms(raw)[:3]
    bb = traces.bitbrains_frame(raw, vms)
    _write(_span(bb, pd.Timestamp("2013-08-01", tz="UTC"), 3), FIXTURES / "bitbrains_3vm_5min.csv",
           with_id=True, decimals=1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--traces", type=Path, default=traces.DEFAULT_TRACES)
    main(parser.parse_args().traces)
