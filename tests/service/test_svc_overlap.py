"""Refit and refresh never block each other (issue 22, item 1): the refit fits with no lock held and hands its model
over afterwards; a refit that missed a workload leaves it on its previous model instead of sending the next refresh
into a fit of the whole group; scheduled refreshes keep running, and ``/readyz`` stays 200, while a refit fits;
readiness follows fresh forecasts, not the refresh job's last clean run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from svc_support import DEMO_NOW, MakeDemo, sample

from forecaster.api import ApiSettings, create_app
from forecaster.contracts.errors import TemporaryError
from forecaster.cycle.forecast import EngineForecastProvider, Model
from forecaster.runtime import jobs
from forecaster.runtime.scheduler import build_scheduler
from forecaster.runtime.service.errors import WorkloadError
from forecaster.runtime.service.service import Service

WAIT_S = 120.0
"""How long a step that should take seconds may take on a loaded machine before the test calls it blocked."""


class GatedSource:
    """The demo's ``MetricsSource`` with two faults: queries in ``failing`` raise ``TemporaryError``; a query in
    ``gated`` over more than a day (a refit's training window) waits until ``gate`` is set (``entered`` says so)."""

    def __init__(self, inner: Any) -> None:
        self.__dict__["inner"] = inner
        self.__dict__.update(failing=set(), gated=set(), gate=threading.Event(), entered=threading.Event())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)  # e.g. ``now``, the demo clock

    def query_range(self, query: str, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
                    **kwargs: Any) -> pd.DataFrame:
        if query in self.failing:
            raise TemporaryError(f"metrics source: {query} unavailable")
        if query in self.gated and end - start > pd.Timedelta("1D"):
            self.entered.set()
            assert self.gate.wait(WAIT_S * 2), "the gate was never opened"
        return self.inner.query_range(query, start, end, step, **kwargs)


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The workload ids of every model fitted (refresh or refit)."""
    seen: list[tuple[str, ...]] = []
    real = EngineForecastProvider.refit

    def counting(self: EngineForecastProvider, key: str, spec: Any, history: pd.DataFrame, *args: Any,
                 **kwargs: Any) -> Model:
        seen.append(tuple(sorted(history["unique_id"].astype(str).unique())))
        return real(self, key, spec, history, *args, **kwargs)

    monkeypatch.setattr(EngineForecastProvider, "refit", counting)
    if hasattr(EngineForecastProvider, "fit_model"):
        real_fit = EngineForecastProvider.fit_model

        def counting_fit(self: EngineForecastProvider, key: str, spec: Any, history: pd.DataFrame, *args: Any,
                         **kwargs: Any) -> Model:
            seen.append(tuple(sorted(history["unique_id"].astype(str).unique())))
            return real_fit(self, key, spec, history, *args, **kwargs)

        monkeypatch.setattr(EngineForecastProvider, "fit_model", counting_fit)
        monkeypatch.setattr(EngineForecastProvider, "refit", real)  # refit calls fit_model: count once
    return seen


def gated(service: Service) -> GatedSource:
    source = GatedSource(service.source)
    source.gate.set()
    service.source = source
    return source


def query_of(service: Service, workload: str) -> str:
    return next(s.query for s in service.registry if s.id == workload)


def in_thread(target: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = target(*args)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("rollout", [False, True], ids=["served-at-once", "promoted-over-a-stale-champion"])
def test_svc_a_partial_refit_keeps_the_previous_model_for_the_workload_it_missed(
        make_demo: MakeDemo, fits: list[tuple[str, ...]], rollout: bool) -> None:
    # with rollout, a champion older than a minute is replaced by the next refit at once (the stale rule)
    service = make_demo(copies=2, rollout=rollout, rollout_stale_after_s=60.0)
    first = service.refresh()
    before = service.provider.model("freq/5min")
    assert before is not None and fits == [("nasa/www", "nasa/www-2")]
    source = gated(service)
    source.failing.add(query_of(service, "nasa/www-2"))
    with pytest.raises(WorkloadError) as caught:
        service.refit(DEMO_NOW + pd.Timedelta("2min"))
    assert list(caught.value.errors) == ["nasa/www-2"]
    source.failing.clear()  # Prometheus is back

    later = DEMO_NOW + pd.Timedelta("5min")
    service.source.now = later  # type: ignore[attr-defined]
    second = service.refresh(later)
    assert sorted(second) == sorted(first)
    assert fits == [("nasa/www", "nasa/www-2"), ("nasa/www",)], "the refresh must not fit the group again"
    after = service.provider.model("freq/5min")
    assert after is not None and after is not before and after.version != before.version
    runs = {w: service.store.latest_forecast(w) for w in ("nasa/www", "nasa/www-2")}
    assert runs["nasa/www"].model_version == after.version  # type: ignore[union-attr]
    assert runs["nasa/www-2"].model_version == before.version  # type: ignore[union-attr]
    assert service.serving["nasa/www"] == "freq/5min" and service.serving["nasa/www-2"].startswith("freq/5min~")
    assert sample(service, "forecaster_model_age_seconds", workload="nasa/www") == 180.0  # fitted at 12:04
    assert sample(service, "forecaster_model_age_seconds", workload="nasa/www-2") == 300.0  # at 12:02
    assert not service.refit_due(), "a refit failed a moment ago: the back-off holds the next one"
    assert service.refit_ended is not None
    service.refit_ended -= service.settings.refresh_interval_s  # one refresh interval later
    assert service.refit_due(), "the newest fit missed a workload: the refit is due again"

    service.refit(later)  # Prometheus answers for both: one model again, the kept one is dropped
    service.refresh(later + pd.Timedelta("5min"))
    assert set(service.serving.values()) == {"freq/5min"} and service.provider.keys() == ["freq/5min"]
    assert not service.refit_due()


def test_svc_with_rollout_a_partial_refit_shadows_while_the_champion_serves_everyone(
        make_demo: MakeDemo, fits: list[tuple[str, ...]]) -> None:
    service = make_demo(copies=2)
    service.refresh()
    champion = service.provider.model("freq/5min")
    source = gated(service)
    source.failing.add(query_of(service, "nasa/www-2"))
    with pytest.raises(WorkloadError):
        service.refit()
    source.failing.clear()
    later = DEMO_NOW + pd.Timedelta("5min")
    service.source.now = later  # type: ignore[attr-defined]
    assert sorted(service.refresh(later)) == ["nasa/www", "nasa/www-2"]
    assert len(fits) == 2 and service.provider.model("freq/5min") is champion
    assert service.provider.challenger("freq/5min") is not None  # type: ignore[attr-defined]


def test_svc_a_refresh_runs_while_a_refit_fits(make_demo: MakeDemo) -> None:
    service = make_demo(copies=2, rollout=False)
    service.refresh()
    before = service.provider.model("freq/5min")
    source = gated(service)
    source.gated.add(query_of(service, "nasa/www-2"))
    source.gate.clear()
    refit, refit_out = in_thread(service.refit)
    try:
        assert source.entered.wait(WAIT_S), "the refit never fetched its training window"
        later = DEMO_NOW + pd.Timedelta("5min")
        service.source.now = later  # type: ignore[attr-defined]
        refresh, refresh_out = in_thread(service.refresh, later)
        refresh.join(WAIT_S)
        assert not refresh.is_alive(), "the refresh waited for the refit"
        assert sorted(refresh_out["result"]) == ["nasa/www", "nasa/www-2"]
        assert service.provider.model("freq/5min") is before
    finally:
        source.gate.set()
        refit.join(WAIT_S * 2)
    assert "error" not in refit_out and len(refit_out["result"]) == 1
    swapped = service.provider.model("freq/5min")
    assert swapped is not None and swapped is not before and swapped.version == refit_out["result"][0]
    assert service.serving == {"nasa/www": "freq/5min", "nasa/www-2": "freq/5min"}


def test_svc_a_refit_finishing_during_a_refresh_waits_for_it(make_demo: MakeDemo) -> None:
    service = make_demo(copies=2, rollout=False)
    service.refresh()
    before = service.provider.model("freq/5min")
    with service.lock:
        service.refreshing = True  # as if a refresh were between its history window and its forecast
    service.refit()
    assert service.provider.model("freq/5min") is before and "freq/5min" in service.pending
    with service.lock:
        service.refreshing = False
    service.refresh(DEMO_NOW + pd.Timedelta("2min"))  # installs the pending model when it ends
    assert service.provider.model("freq/5min") is not before and not service.pending


@pytest.fixture
def unbound() -> Iterator[None]:
    yield
    jobs.unbind()


def test_svc_scheduled_refreshes_keep_running_and_ready_while_a_refit_fits(
        make_demo: MakeDemo, unbound: None) -> None:
    service = make_demo(copies=2, refresh_interval_s=2.0, misfire_grace_s=30, rollout=False)
    source = gated(service)
    app = TestClient(create_app(service.store, service.telemetry, ApiSettings(ready_max_age_s=60),
                                clock=service.clock))
    scheduler = build_scheduler(service, persistent=False)
    scheduler.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not sample(service, "forecaster_job_runs_total", job_name="refresh", outcome="success"):
            assert time.monotonic() < deadline, "no refresh ran"
            time.sleep(0.1)
        source.gated.add(query_of(service, "nasa/www-2"))
        source.gate.clear()
        scheduler.modify_job("refit", next_run_time=pd.Timestamp.now(tz="UTC").to_pydatetime())
        assert source.entered.wait(WAIT_S), "the refit never started"
        during = sample(service, "forecaster_job_runs_total", job_name="refresh", outcome="success") or 0.0
        deadline = time.monotonic() + WAIT_S
        while (sample(service, "forecaster_job_runs_total", job_name="refresh", outcome="success") or 0) < during + 3:
            assert time.monotonic() < deadline, "scheduled refreshes stopped while the refit fitted"
            time.sleep(0.1)
        assert service.refit_lock.locked(), "the refit is still fitting"
        ready = app.get("/readyz")
        assert ready.status_code == 200 and ready.json()["source"] == "job"
    finally:
        source.gate.set()
        scheduler.shutdown(wait=True)


def test_svc_readyz_follows_fresh_forecasts_not_the_last_clean_refresh(make_demo: MakeDemo) -> None:
    service = make_demo(copies=2)
    service.refresh()
    service.telemetry.gauge("forecaster_job_last_success_timestamp_seconds").labels(job_name="refresh").set(
        time.time() - 3600)  # the refresh job last succeeded for every workload an hour ago (one keeps failing)
    app = TestClient(create_app(service.store, service.telemetry, ApiSettings(ready_max_age_s=900),
                                clock=lambda: DEMO_NOW + pd.Timedelta("3min")))
    ready = app.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["source"] == "store" and ready.json()["age_s"] == 300.0

    stale = TestClient(create_app(service.store, service.telemetry, ApiSettings(ready_max_age_s=900),
                                  clock=lambda: DEMO_NOW + pd.Timedelta("1h")))
    assert stale.get("/readyz").status_code == 503  # no forecast within 15 minutes: not ready
