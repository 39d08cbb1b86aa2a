"""The service on a real PostgreSQL server: refresh, accuracy and refit write through ``SqlStore``, a restarted
service reuses what the first stored, and the scheduler keeps its jobs in the same database."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text
from support.postgres import PostgresServer
from svc_support import DEMO_NOW, MakeDemo

from forecaster.adapters.store import SqlStore
from forecaster.runtime import jobs
from forecaster.runtime.scheduler import JOBS_TABLE, build_scheduler


@pytest.mark.integration
def test_svc_jobs_on_postgres(make_demo: MakeDemo, pg_server: PostgresServer) -> None:
    url = pg_server.create_database()
    store = SqlStore(url)
    try:
        service = make_demo(copies=2, store=store, store_url=url)
        for k in range(3):
            service.run_demo_cycle(DEMO_NOW + pd.Timedelta(minutes=5 * k))
        assert service.accuracy(DEMO_NOW + pd.Timedelta("15min")) == {"nasa/www": False, "nasa/www-2": False}
        runs = store.forecasts_issued_between("nasa/www", DEMO_NOW - pd.Timedelta("1h"), DEMO_NOW + pd.Timedelta("1h"))
        assert [r.issued_at.minute for r in runs] == [0, 5, 10] and all(len(r.frame) == 288 for r in runs)
        assert store.list_decisions().total == 3 * 3 and store.list_accuracy("nasa/www").total == 2
        restarted = make_demo(copies=2, store=store, store_url=url, now=DEMO_NOW + pd.Timedelta("15min"))
        restarted.refresh()
        assert restarted.provider.model("freq/5min").version == service.provider.model("freq/5min").version  # type: ignore[union-attr]
        assert store.list_decisions().total == 4 * 3

        scheduler = build_scheduler(restarted)
        scheduler.start(paused=True)
        scheduler.shutdown(wait=False)
        with store.engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {JOBS_TABLE}")).scalar_one() == 3
    finally:
        jobs.unbind()
        store.close()
