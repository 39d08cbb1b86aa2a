"""A forecast whose ensemble band is not finite is that workload's refresh failure and is never stored (issue 22's
chaos benchmark: a model whose seasonal member forecast NaN for one workload had every refresh store a NaN run and
then fail its replica decision, 27 runs with no decision in 56 kills; the API served the NaN run meanwhile). The
workload keeps its last good run; the others are published with their decisions as usual."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from svc_support import SLOT, MakeDemo, sample

from forecaster.contracts.frames import ENSEMBLE, ID, bands_in
from forecaster.runtime.service.errors import WorkloadError
from forecaster.testing.store import InMemoryStore

BROKEN = "nasa/www"


def test_svc_refresh_never_stores_a_forecast_with_a_nan_band(make_demo: MakeDemo,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryStore()
    service = make_demo(copies=2, store=store)
    service.refresh(SLOT - pd.Timedelta(minutes=5))  # a good run first: the one to keep serving
    good = store.latest_forecast(BROKEN)
    assert good is not None
    real = type(service.provider).forecast

    def nan_for_one(self: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = real(self, *args, **kwargs).copy()
        bands = [ENSEMBLE, *bands_in(frame.columns)]
        frame.loc[frame[ID] == BROKEN, bands] = np.nan
        return frame

    monkeypatch.setattr(type(service.provider), "forecast", nan_for_one)
    with pytest.raises(WorkloadError) as caught:
        service.refresh(SLOT)
    assert list(caught.value.errors) == [BROKEN] and "nan" in caught.value.errors[BROKEN]
    newest = store.latest_forecast(BROKEN)
    assert newest is not None and newest.id == good.id  # the last good run, not a NaN one
    other = store.latest_forecast("nasa/www-2")
    assert other is not None and other.issued_at == SLOT
    decided = {d.workload_id for d in store.list_decisions(limit=1000).items if d.kind == "replicas" and d.time == SLOT}
    assert decided == {"nasa/www-2"}  # no run without its decision
    assert sample(service, "forecaster_fallbacks_total", workload=BROKEN, reason="error") == 1.0
