"""``forecaster demo`` hands its store to ``forecaster serve --demo``: the command it prints puts the demo clock where
the replay stopped, and a clock behind the stored model (the trace's day 8, ``serve --demo``'s default) gets a
refused refresh naming both times, never a forecast issued a week before its own points."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from svc_support import DEMO_NOW, MakeDemo

from forecaster.cli.demo import explore_command
from forecaster.service.service import WorkloadError
from forecaster.testing.store import InMemoryStore


def test_svc_demo_explore_command_continues_where_the_demo_stopped(make_demo: MakeDemo, tmp_path: Path) -> None:
    store = InMemoryStore()
    make_demo(store=store).run_demo_cycle(DEMO_NOW)
    meta, stored = store.latest_artefact(), store.latest_forecast("nasa/www")
    assert meta is not None and stored is not None

    db = tmp_path / "forecaster-demo" / "forecaster.db"
    command = explore_command(db, DEMO_NOW)
    assert command.startswith("forecaster serve --demo ") and command.endswith(f"--store-url sqlite:///{db}")
    demo_now = pd.Timestamp(command.split("--demo-now ")[1].split()[0])
    assert demo_now >= meta.train_end
    served = make_demo(store=store, now=demo_now).refresh()
    assert served == {"nasa/www": stored.id}

    with pytest.raises(WorkloadError) as refused:  # serve --demo without --demo-now: the trace's day 8, 00:00
        make_demo(store=store, now=pd.Timestamp("1995-07-09T00:00Z")).refresh()
    message = refused.value.errors["nasa/www"]
    assert "1995-07-09T00:00:00Z" in message and f"{meta.train_end:%Y-%m-%dT%H:%M:%SZ}" in message
    assert "earlier than the training end" in message
    latest = store.latest_forecast("nasa/www")
    assert latest is not None and latest.issued_at == stored.issued_at
    assert store.forecasts_issued_between("nasa/www", pd.Timestamp("1995-07-01T00:00Z"),
                                          pd.Timestamp("1995-07-09T06:00Z")) == []
