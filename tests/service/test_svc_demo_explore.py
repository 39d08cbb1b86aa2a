"""``forecaster demo`` hands its store to ``forecaster serve --demo``: the command it prints puts the demo clock where
the replay stopped, and a clock behind the stored model (the trace's day 8, ``serve --demo``'s default) gets a
refused refresh naming both times, never a forecast issued a week before its own points."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from svc_support import DEMO_NOW, MakeDemo

from forecaster.cli.demo import explore_command
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

    # serve --demo without --demo-now (the trace's day 8, 00:00) is earlier than the stored model's training end:
    # that model saw the future, so the cycle's schedule refits on what was known then (never a forecast from it)
    early = make_demo(store=store, now=pd.Timestamp("1995-07-09T00:00Z"))
    assert early.refresh() == {"nasa/www": "nasa/www@1995-07-09T00:00:00Z"}
    refit = early.provider.model("freq/5min")
    assert refit is not None and refit.last_ds <= pd.Timestamp("1995-07-09T00:00Z") < meta.train_end
    early_run = store.latest_forecast("nasa/www")
    assert early_run is not None and early_run.issued_at == stored.issued_at  # the newest run is still the demo's
    early_runs = store.forecasts_issued_between("nasa/www", pd.Timestamp("1995-07-01T00:00Z"),
                                                pd.Timestamp("1995-07-09T06:00Z"))
    assert [r.model_version for r in early_runs] == [refit.version]
