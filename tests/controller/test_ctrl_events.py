"""Business events from the store reach the forecast of the policies whose scope they match (``stored.in_scope``),
on a recording ForecastProvider and on the real engine, whose ``events`` member applies them; without a store the
forecast is made without events, and a store outage forecasts without them and says so."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from ctrl_builders import NOW, QUERY, Clock, Rig, condition, daily_series, make_rig, policy_object

from forecaster.contracts.errors import TemporaryError
from forecaster.contracts.frames import DS, ENSEMBLE
from forecaster.contracts.ports import EventRecord, Page
from forecaster.runtime.controller import EngineForecastProvider, PolicySpec
from forecaster.runtime.controller import stored as stored_
from forecaster.testing.store import InMemoryStore

SOON = NOW + pd.Timedelta("20min")


def event(id_: str, *scope: str, start: pd.Timestamp = SOON, minutes: float = 30,
          uplift: float | None = 1.0) -> EventRecord:
    return EventRecord(id=id_, name=f"event {id_}", kind="sale", start=start,
                       end=start + pd.Timedelta(minutes=minutes), scope=tuple(scope), expected_uplift=uplift)


def spec_of(**changes: Any) -> PolicySpec:
    """Policy ``shop/pol`` over Deployment ``web``, events scope ``[web, checkout-*]`` (as the example policy)."""
    obj = policy_object("pol", events={"scope": ["web", "checkout-*"]})
    obj["spec"]["targetRef"]["name"] = "web"
    obj["spec"].update(changes)
    return PolicySpec.from_object(obj)


SCOPES = [
    ("empty-applies-to-all", (), True),
    ("policy-key", ("shop/pol",), True),
    ("namespace-and-target", ("shop/web",), True),
    ("target-name", ("web",), True),
    ("glob-over-target", ("we*",), True),
    ("glob-over-key", ("shop/*",), True),
    ("glob-over-namespace", ("*/web",), True),
    ("policy-glob-over-entry", ("checkout-eu",), True),
    ("any-entry", ("api", "web"), True),
    ("comma-separated-entry", ("api, web",), True),
    ("other-workload", ("api",), False),
    ("other-namespace", ("other/web",), False),
    ("case-sensitive", ("Web",), False),
    ("bare-policy-name-is-no-workload", ("pol",), False),
    ("policy-glob-needs-a-match", ("checkout",), False),
]


@pytest.mark.parametrize("scope,expected", [(s, e) for _, s, e in SCOPES], ids=[i for i, _, _ in SCOPES])
def test_scope_rule(scope: tuple[str, ...], expected: bool) -> None:
    assert stored_.in_scope(scope, spec_of()) is expected


def test_the_default_policy_scope_is_its_target() -> None:
    spec = spec_of(events=None)
    assert spec.event_scope == ("web",)
    assert stored_.in_scope(("web",), spec) and not stored_.in_scope(("checkout-eu",), spec)


def test_events_frame_keeps_the_events_in_scope_and_time_and_clears_their_scope() -> None:
    spec = spec_of()  # history 2 days, horizon 1 hour
    events = [event("in", "web"), event("all"), event("out", "api"),
              event("old", "web", start=NOW - pd.Timedelta("4D")),
              event("far", "web", start=NOW + pd.Timedelta("3D")),
              event("recent", "web", start=NOW - pd.Timedelta("2D") - pd.Timedelta("12h"), uplift=None)]
    frame = stored_.events_frame(events, spec, NOW)
    assert frame is not None
    assert frame["id"].tolist() == ["recent", "all", "in"]  # by start, then id
    assert frame["scope"].isna().all() and frame["expected_uplift"].isna().tolist() == [True, False, False]
    assert stored_.events_frame([event("out", "api")], spec, NOW) is None


def test_load_events_pages_through_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryStore()
    for i in range(5):
        store.upsert_event(event(f"e{i}", start=NOW + pd.Timedelta(hours=i)))
    monkeypatch.setattr(stored_, "PAGE", 2)
    assert [e.id for e in stored_.load_events(store)] == ["e0", "e1", "e2", "e3", "e4"]


# -- in the controller -------------------------------------------------------------------------------------------
def test_an_event_in_scope_reaches_the_forecast_and_one_out_of_scope_does_not(rig: Rig) -> None:
    rig.store.upsert_event(event("launch", "web"))
    rig.store.upsert_event(event("api-sale", "api"))
    rig.store.upsert_event(event("holiday"))
    rig.controller().run_once()
    got = rig.forecasts.events[-1]
    assert got is not None and sorted(got["id"]) == ["holiday", "launch"]
    assert got["scope"].isna().all()  # applied by the controller: the engine gets only this policy's events
    rig.store.upsert_event(event("launch", "api"))  # re-scoped away from web
    rig.controller().run_once(rig.clock.advance(minutes=1))
    assert rig.forecasts.events[-1] is not None and rig.forecasts.events[-1]["id"].tolist() == ["holiday"]


def test_without_a_store_nothing_changes(rig: Rig) -> None:
    rig.store.upsert_event(event("launch", "web"))
    rig.controller(store=None).run_once()
    assert rig.forecasts.events == [None]
    assert rig.hpa()["spec"]["minReplicas"] == 5


class EventsDown(InMemoryStore):
    def list_events(self, *, limit: int = 100, offset: int = 0) -> Page[EventRecord]:
        raise TemporaryError("database is locked")


def test_a_store_outage_forecasts_without_events_and_says_so(rig: Rig) -> None:
    rig.store = EventsDown()
    report = rig.controller().run_once()
    assert rig.forecasts.events == [None] and rig.hpa()["spec"]["minReplicas"] == 5
    assert report.policy("shop/web").errors == ["fetch_history: business events not read: database is locked"]
    assert condition(rig.status(), "Ready")["reason"] == "StoreUnavailable"


def test_the_events_member_of_the_real_engine_applies_an_event_in_scope() -> None:
    """A sale of a kind history has never seen, expected to double demand from +20 min to +50 min: the ``events``
    member doubles the seasonal forecast over it; an event for another workload (+0 .. +15 min) changes nothing. An
    event added after the fit moves the next (refreshed, not refitted) forecast at once."""
    start = pd.Timestamp("2024-03-06T00:00Z")
    now = start + pd.Timedelta("4D") + pd.Timedelta("1min")
    rig = make_rig()
    rig.clock = Clock(now)
    rig.metrics.add(QUERY, daily_series(5, start))  # the source answers only up to each cycle's "now"
    rig.cluster.add_policy(policy_object(forecast={"frequency": "5m", "history": "4d", "horizon": "1h",
                                                   "levels": [80, 95]}))
    rig.store.upsert_event(event("sale", "web", start=now.floor("5min") + pd.Timedelta("20min")))
    rig.store.upsert_event(event("api", "api", start=now.floor("5min"), minutes=15))
    provider = EngineForecastProvider(options={"members": ("seasonal", "events"), "n_windows": 2})
    ctl = rig.controller(forecasts=provider)
    report = ctl.run_once(now)
    assert not report.policy("shop/web").errors, report.render()
    frame = ctl.last_good.forecasts["shop/web"].frame.set_index(DS)
    ratio = frame["events"] / frame["seasonal"]
    during = (frame.index >= now.floor("5min") + pd.Timedelta("20min")) & \
        (frame.index < now.floor("5min") + pd.Timedelta("50min"))
    assert during.sum() == 6
    assert ratio[during].to_numpy() == pytest.approx(2.0)
    assert ratio[~during].to_numpy() == pytest.approx(1.0)
    assert (frame[ENSEMBLE][during] > frame["seasonal"][during]).all()  # and the ensemble follows it
    mae = provider.backtest_mae("shop/web")
    assert mae is not None and mae > 0

    model = provider._models["shop/web"]
    later = now + pd.Timedelta("5min")
    rig.store.upsert_event(event("flash", "checkout-*", "web", start=later.floor("5min") + pd.Timedelta("55min"),
                                 minutes=10, uplift=0.5))
    assert not ctl.run_once(later).policy("shop/web").errors
    assert provider._models["shop/web"] is model  # refreshed, not refitted
    frame = ctl.last_good.forecasts["shop/web"].frame.set_index(DS)
    ratio = frame["events"] / frame["seasonal"]
    assert ratio.iloc[-1] == pytest.approx(1.5)  # the flash sale, in the last step of the horizon
    assert ratio[now.floor("5min") + pd.Timedelta("20min")] == pytest.approx(2.0)  # the sale is still applied
