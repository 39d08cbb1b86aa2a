"""Acceptance: the controller against a REAL Prometheus and the Kubernetes API test server (official client over HTTP
through ``KubeCluster``), with the real forecasting engine and real traces.

Data (backfilled with promtool): the bundled NASA-HTTP requests (1995-07-01 .. 07-12, 5-minute buckets) as the
request counter of ``shop/web``, and Bitbrains VMs 1 and 4 of ``tests/fixtures/usage_small.csv`` (10 days,
15-minute buckets, shifted to end at the first cycle) as two pods of Deployment ``web`` (container ``app``); VM 7 is a
pod of another workload that must not enter the recommendation. Cycles run from 1995-07-11 10:00 UTC, a weekday's
morning ramp (about 0.3 requests/s rising to 1 request/s by 12:00).

Auto writes the HPA floor ScalingPolicy computes from each forecast, raised ahead of the load, one Event per change,
the VPA recommendation and the policy status; Recommend writes only the policy status (the server's request log
says so). Faults: Prometheus stopped, slow, answering garbage; API server 409, 500, timeouts; the Lease lost in the
middle of a cycle. Each ends without a crash, without a half-written change and with the documented fallback.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from support.kube_apiserver import KubeApiServer
from support.promserver import PromServer, container_families, demand_family, start_prometheus, to_openmetrics

from forecaster.adapters.kube import KubeCluster
from forecaster.adapters.prometheus import PrometheusSource
from forecaster.contracts.frames import DS, ID
from forecaster.contracts.quantity import parse_quantity
from forecaster.cycle.hpa import ORIGINAL_ANNOTATION, POLICY_ANNOTATION
from forecaster.cycle.schedule import grid_end
from forecaster.cycle.spec import ForecastSpec
from forecaster.datasets import load_nasa_5min
from forecaster.runtime.controller import Controller, ControllerConfig, EngineForecastProvider, PolicySpec
from forecaster.runtime.controller.vpa import pool_by_container, prometheus_usage_source, recommend
from forecaster.scaling import ScalingPolicy, replicas_for_demand

pytestmark = pytest.mark.integration

NOW0 = pd.Timestamp("1995-07-11T10:00Z")
QUERY = 'sum(rate(http_requests_total{namespace="shop",service="web"}[10m]))'
USAGE_STEP = pd.Timedelta("15min")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PODS = {"vm001": ("web-7d4b9c8f6d-abcde", "app"), "vm004": ("web-7d4b9c8f6d-fghij", "app"),
        "vm007": ("db-0", "postgres")}
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/forecaster/leases"


# -- data -------------------------------------------------------------------------------------------------------
def nasa_demand() -> pd.DataFrame:
    nasa = load_nasa_5min()
    return nasa.loc[nasa[DS] < pd.Timestamp("1995-07-12T04:00Z"), [ID, DS, "y"]].reset_index(drop=True)


def shifted_usage() -> pd.DataFrame:
    usage = pd.read_csv(FIXTURES / "usage_small.csv")
    usage[DS] = pd.to_datetime(usage[DS], utc=True).dt.as_unit("ns") + (NOW0 - pd.Timestamp("2013-08-11T00:00Z"))
    usage["namespace"] = "shop"
    usage["pod"] = usage[ID].map(lambda v: PODS[v][0])
    usage["container"] = usage[ID].map(lambda v: PODS[v][1])
    usage[ID] = usage["namespace"] + "/" + usage["pod"] + "/" + usage["container"]
    return usage


def demand_text() -> str:
    return to_openmetrics(demand_family(nasa_demand(), "http_requests_total", {"namespace": "shop", "service": "web"},
                                        pd.Timedelta("5min"), initial=1e6))


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    families = [demand_family(nasa_demand(), "http_requests_total", {"namespace": "shop", "service": "web"},
                              pd.Timedelta("5min"), initial=1e6),
                *container_families(shifted_usage(), USAGE_STEP, None, initial_cpu_s=5e4)]
    with start_prometheus(tmp_path_factory.mktemp("prom"), to_openmetrics(*families)) as server:
        yield server


@dataclass
class Capturing:
    """The real engine, remembering every forecast it issued (to recompute the floor independently)."""

    inner: EngineForecastProvider
    frames: dict[tuple[str, pd.Timestamp], pd.DataFrame] = field(default_factory=dict)

    def history_window(self, key: str, spec: ForecastSpec, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.inner.history_window(key, spec, now)

    def forecast(self, key: str, spec: ForecastSpec, history: pd.DataFrame, now: pd.Timestamp,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
        frame = self.inner.forecast(key, spec, history, now, events)
        self.frames[(key, now)] = frame
        return frame

    def backtest_mae(self, key: str) -> float | None:
        return self.inner.backtest_mae(key)


@pytest.fixture(scope="module")
def engine(fast_lgbm: dict[str, Any]) -> EngineForecastProvider:
    """One engine for the module: fitted once per policy, refreshed by later cycles (as in production)."""
    return EngineForecastProvider(options={"members": ("seasonal", "lgbm"), "member_params": {"lgbm": fast_lgbm},
                                           "n_windows": 2})


# -- cluster objects --------------------------------------------------------------------------------------------
def policy(name: str = "web", mode: str = "Auto", *, with_vpa: bool = True, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "mode": mode,
        "demand": {"query": QUERY, "capacityPerPod": 0.1, "targetUtilization": 0.7},
        "hpa": {"name": name},
        "leadTime": "15m",
        "floor": {"quantile": "hi-80", "margin": 0.1},
        "staleAfter": "30m",
        "forecast": {"frequency": "5m", "history": "7d", "horizon": "1h", "levels": [80, 95]},
    }
    if name == "web" and with_vpa:
        body["vpa"] = {"name": "web", "containers": ["app"], "policy": "forecaster"}
    body.update(spec)
    return {"apiVersion": "forecaster.io/v1alpha1", "kind": "PredictiveScalingPolicy",
            "metadata": {"name": name, "namespace": "shop"}, "spec": body}


def hpa(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 2, "maxReplicas": 60,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}}


VPA = {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
       "metadata": {"name": "web", "namespace": "shop"},
       "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "recommenders": [{"name": "forecaster"}], "updatePolicy": {"updateMode": "Off"}}}


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        for obj in (policy(), hpa(), VPA):
            server.put_object(copy.deepcopy(obj))
        yield server


@pytest.fixture(scope="module")
def slots() -> Iterator[int]:
    return itertools.count()


@pytest.fixture
def start(slots: Iterator[int]) -> pd.Timestamp:
    """When a fault test starts: from 12:00 on, 45 minutes apart in the order the tests run, so the module's engine
    only ever moves forward in time (a model that saw the future is refitted: correct, but slower)."""
    return NOW0 + pd.Timedelta("2h") + next(slots) * pd.Timedelta("45min")


class Clock:
    def __init__(self, now: pd.Timestamp = NOW0) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now


def controller(kube: KubeApiServer, prom_url: str, engine: EngineForecastProvider, clock: Clock, *,
               identity: str = "replica-a", leases: Any = None, read_timeout_s: float = 5.0,
               prom_timeout_s: float = 5.0) -> tuple[Controller, Capturing, PrometheusSource]:
    cluster = KubeCluster(kube.api_client(), connect_timeout_s=2.0, read_timeout_s=read_timeout_s,
                          reporting_instance=identity)
    source = PrometheusSource(prom_url, timeout_s=prom_timeout_s, retries=0, sleep=lambda _s: None)
    capturing = Capturing(engine)
    ctl = Controller(cluster, source, config=ControllerConfig(identity=identity, lease_namespace="forecaster"),
                     leases=leases, forecasts=capturing, usage=prometheus_usage_source(source, USAGE_STEP),
                     clock=clock)
    return ctl, capturing, source


def run(ctl: Controller, clock: Clock, now: pd.Timestamp) -> Any:
    clock.now = now
    return ctl.run_once(now)


def hpa_of(kube: KubeApiServer, name: str = "web") -> dict[str, Any]:
    found = kube.get_object("horizontalpodautoscalers", "shop", name)
    assert found is not None
    return found


def status_of(kube: KubeApiServer, name: str = "web") -> dict[str, Any]:
    found = kube.get_object("predictivescalingpolicies", "shop", name)
    assert found is not None
    return dict(found.get("status") or {})


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def events(kube: KubeApiServer, reason: str) -> list[dict[str, Any]]:
    return [e for e in kube.objects("events") if e.get("reason") == reason]


def writes(kube: KubeApiServer, since: int = 0) -> list[tuple[str, str, int | None]]:
    """Non-Lease writes as ``(method, path, status)``."""
    return [(r.method, r.path, r.status) for r in kube.writes()[since:] if not r.path.startswith(LEASE_PATH)]


def whole(hpa_obj: dict[str, Any]) -> bool:
    """Our floor is either fully in place (minReplicas and both annotations) or not at all."""
    annotations = (hpa_obj["metadata"].get("annotations") or {})
    ours = {ORIGINAL_ANNOTATION, POLICY_ANNOTATION} & set(annotations)
    if not ours:
        return True
    return ours == {ORIGINAL_ANNOTATION, POLICY_ANNOTATION} and annotations[ORIGINAL_ANNOTATION] == "2"


# -- Auto and Recommend -----------------------------------------------------------------------------------------
def test_auto_raises_the_floor_ahead_of_the_forecast_and_writes_vpa_status_and_events(
    kube: KubeApiServer, prom: PromServer, engine: EngineForecastProvider
) -> None:
    clock = Clock()
    ctl, capturing, source = controller(kube, prom.url, engine, clock)
    spec = PolicySpec.from_object(policy())
    reference = ScalingPolicy(spec.to_settings(2, 60), initial=2)
    floors: list[int] = []
    times = [NOW0 + pd.Timedelta(minutes=15 * k) for k in range(7)]
    need_now, need_next = [], []
    for now in times:
        report = run(ctl, clock, now)
        assert not report.policy("shop/web").errors, report.render()
        floor = hpa_of(kube)["spec"]["minReplicas"]
        frame = capturing.frames[("shop/web", now)]
        # the value ScalingPolicy computes from this forecast (reactive floor: the HPA's desired 2)
        assert floor == reference.decide(now, 2, frame, now).value, f"at {now}"
        floors.append(floor)
        # the load now and over the next lead time (15 min), in pods at the HPA's target
        actual = source.query_range(QUERY, now, now + pd.Timedelta("15min"), pd.Timedelta("5min"))["y"]
        need_now.append(replicas_for_demand(actual.iloc[0], 0.1, 0.7))
        need_next.append(replicas_for_demand(actual.max(), 0.1, 0.7))
    # the floor rises with the morning ramp ...
    assert floors[-1] >= floors[0] + 4 and max(floors[4:]) > max(floors[:4])
    # ... ahead of the load: never below what the load needs when it is written, mostly already what the next
    # 15 minutes need, and at least once raised for a load that had not arrived yet
    assert all(f >= n for f, n in zip(floors, need_now, strict=True))
    assert sum(f >= n for f, n in zip(floors, need_next, strict=True)) >= 2 * len(floors) / 3
    assert any(f >= nxt > now_ for f, now_, nxt in zip(floors, need_now, need_next, strict=True))
    changes = sum(1 for a, b in zip([2, *floors], floors, strict=False) if a != b)
    assert len(events(kube, "FloorChanged")) == changes  # one Event per change

    final = hpa_of(kube)
    assert final["metadata"]["annotations"][ORIGINAL_ANNOTATION] == "2"
    assert final["metadata"]["annotations"][POLICY_ANNOTATION] == "shop/web"
    for request in kube.writes():  # each floor change is one server-side apply with its annotations and version
        if request.method == "PATCH" and request.path.endswith("/horizontalpodautoscalers/web"):
            assert request.content_type == "application/apply-patch+yaml"
            assert request.query["fieldManager"] == "forecaster"
            assert set(request.body["metadata"]["annotations"]) == {ORIGINAL_ANNOTATION, POLICY_ANNOTATION}
            assert request.body["metadata"]["resourceVersion"] and "minReplicas" in request.body["spec"]

    status = status_of(kube)
    assert status["floorInForce"] == floors[-1] == status["recommendedFloor"]
    assert status["hpaOriginalMinReplicas"] == 2 and status["reactiveFloor"] == 2
    assert status["lastForecastIssuedAt"] == "1995-07-11T11:30:00Z"
    assert cond(status, "Ready")["status"] == "True" and cond(status, "ForecastFresh")["status"] == "True"
    # the circuit breaker read both errors (the engine's backtest MAE, the issued forecasts' recent MAE) and the
    # forecasts of a normal morning stayed within them: closed, as the reference policy above assumes
    assert status["breakerOpen"] is False and cond(status, "ForecastAccurate")["reason"] == "BreakerClosed"
    assert status["backtestError"] > 0 and status["recentError"] >= 0, status

    vpa = kube.get_object("verticalpodautoscalers", "shop", "web")
    assert vpa is not None
    items = vpa["status"]["recommendation"]["containerRecommendations"]
    assert [i["containerName"] for i in items] == ["app"]
    for resource in ("cpu", "memory"):
        low, target, high = (parse_quantity(items[0][f][resource]) for f in ("lowerBound", "target", "upperBound"))
        assert 0 < low <= target <= high
    usage = shifted_usage()
    app = usage[(usage["container"] == "app") & (usage[DS] < NOW0)]
    assert parse_quantity(items[0]["target"]["memory"]) >= 0.5 * app["memory"].max()
    assert vpa["status"]["conditions"][0]["type"] == "RecommendationProvided"
    assert len(events(kube, "RecommendationChanged")) >= 1
    assert status["vpaRecommendationTime"] >= "1995-07-11T10:00:00Z"
    # the recommendation is the right-sizing policy's on what Prometheus holds for the Deployment's pods
    fetch = prometheus_usage_source(source, USAGE_STEP)
    last = grid_end(times[-1], spec.forecast.frequency_s)
    got, ooms = fetch("shop", "web-[a-z0-9]{5,10}-[a-z0-9]{5}", ("app",), last - pd.Timedelta("7D"), last)
    assert set(got["pod"]) == {"web-7d4b9c8f6d-abcde", "web-7d4b9c8f6d-fghij"}
    expected = recommend(pool_by_container(got, "shop", "web", ["app"]), ooms, "forecaster", times[-1])
    assert expected[0].as_vpa() == items[0]


def test_recommend_mode_writes_nothing_but_the_policy_status(
    kube: KubeApiServer, prom: PromServer, engine: EngineForecastProvider, start: pd.Timestamp
) -> None:
    kube.put_object(policy(mode="Recommend"))
    clock = Clock(start)
    ctl, _, _ = controller(kube, prom.url, engine, clock)
    kube.clear_log()
    for minutes in (0, 15):
        report = run(ctl, clock, start + pd.Timedelta(minutes=minutes))
        assert not report.policy("shop/web").errors, report.render()
    assert {(m, p) for m, p, _ in writes(kube)} == {
        ("PATCH", "/apis/forecaster.io/v1alpha1/namespaces/shop/predictivescalingpolicies/web/status")}
    assert hpa_of(kube)["spec"]["minReplicas"] == 2 and not hpa_of(kube)["metadata"].get("annotations")
    assert kube.objects("events") == []
    status = status_of(kube)
    assert status["recommendedFloor"] > 2 and status["lastDecision"].startswith("recommend: ")
    assert "floorInForce" not in status
    vpa = kube.get_object("verticalpodautoscalers", "shop", "web")
    assert vpa is not None and "status" not in vpa


# -- Prometheus faults ------------------------------------------------------------------------------------------
def test_prometheus_stopped_keeps_the_last_forecast_then_restores_the_hpa_own_floor(
    kube: KubeApiServer, tmp_path: Path, engine: EngineForecastProvider, start: pd.Timestamp
) -> None:
    kube.put_object(policy(with_vpa=False))
    own = start_prometheus(tmp_path / "prom", demand_text())
    clock = Clock(start)
    ctl, _, _ = controller(kube, own.url, engine, clock)
    try:
        first = run(ctl, clock, start)
        raised = hpa_of(kube)["spec"]["minReplicas"]
        assert raised > 2, first.render()
    finally:
        own.stop()
    report = run(ctl, clock, start + pd.Timedelta("1min"))  # unreachable: decide from the last good forecast
    assert hpa_of(kube)["spec"]["minReplicas"] == raised
    status = status_of(kube)
    assert cond(status, "Ready")["reason"] == "MetricsUnavailable"
    assert (cond(status, "ForecastFresh")["status"], cond(status, "ForecastFresh")["reason"]) == (
        "False", "LastGoodForecast")
    assert report.policy("shop/web").errors[0].startswith("fetch_history:")
    run(ctl, clock, start + pd.Timedelta("31min"))  # older than staleAfter: the documented fallback
    restored = hpa_of(kube)
    assert restored["spec"]["minReplicas"] == 2 and whole(restored)
    status = status_of(kube)
    assert cond(status, "ForecastFresh")["reason"] == "ForecastStale" and status["reason"] == "ForecastStale"
    assert status["fallbackSince"] == (start + pd.Timedelta("31min")).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(events(kube, "FloorRestored")) == 1


class PromProxy:
    """An HTTP front of Prometheus that passes requests through, or delays them (``slow``), or answers an HTML page
    with status 200 (``garbage``, as a misconfigured auth proxy would)."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.mode, self.delay_s = upstream, "pass", 0.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == "garbage":
                    self._answer(200, "text/html", b"<html><body>Please log in</body></html>")
                    return
                if proxy.mode == "slow":
                    time.sleep(proxy.delay_s)
                try:
                    answer = httpx.post(proxy.upstream + self.path, content=body, timeout=10,
                                        headers={"Content-Type": self.headers.get("Content-Type", "")})
                except httpx.HTTPError:
                    return  # the client gave up; nothing to answer
                self._answer(answer.status_code, answer.headers.get("Content-Type", ""), answer.content)

            def _answer(self, code: int, content_type: str, body: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("mode", "reason"), [("slow", "MetricsUnavailable"), ("garbage", "MetricsInvalid")])
def test_a_slow_or_garbage_prometheus_keeps_the_last_good_forecast(
    kube: KubeApiServer, prom: PromServer, engine: EngineForecastProvider, start: pd.Timestamp, mode: str,
    reason: str
) -> None:
    kube.put_object(policy(with_vpa=False))
    proxy = PromProxy(prom.url)
    try:
        clock = Clock(start)
        ctl, _, _ = controller(kube, proxy.url, engine, clock, prom_timeout_s=0.5)
        run(ctl, clock, start)
        raised = hpa_of(kube)["spec"]["minReplicas"]
        proxy.mode, proxy.delay_s = mode, 1.0
        since = len(kube.writes())
        report = run(ctl, clock, start + pd.Timedelta("1min"))
    finally:
        proxy.close()
    assert hpa_of(kube)["spec"]["minReplicas"] == raised
    assert not [w for w in writes(kube, since) if "horizontalpodautoscalers" in w[1]]
    status = status_of(kube)
    assert cond(status, "Ready")["reason"] == reason
    assert cond(status, "ForecastFresh")["reason"] == "LastGoodForecast"
    assert report.policy("shop/web").errors


# -- API server faults ------------------------------------------------------------------------------------------
HPA_PATCH = r"/namespaces/shop/horizontalpodautoscalers/web$"


@pytest.mark.parametrize(
    ("method", "status", "times", "delay_s", "written", "reason"),
    [
        ("PATCH", 409, 1, 0.0, True, "Reconciled"),         # re-read, recomputed, retried
        ("PATCH", 409, 3, 0.0, False, "WriteConflict"),     # skipped after 3 attempts, reason recorded
        ("PATCH", 500, 1, 0.0, False, "WriteUnavailable"),  # temporary: the next cycle tries again
        ("GET", None, 10, 3.0, False, "HPAUnavailable"),    # read timeouts (the client retries a GET 3 times)
    ],
    ids=["409-once", "409-thrice", "500", "timeout"],
)
def test_api_server_faults(kube: KubeApiServer, prom: PromServer, engine: EngineForecastProvider,
                           start: pd.Timestamp, method: str, status: int | None, times: int, delay_s: float,
                           written: bool, reason: str) -> None:
    kube.put_object(policy(with_vpa=False))
    clock = Clock(start)
    # a 1.5 s read timeout only where the test is about timeouts (answers delayed 3 s): on a loaded CI machine a
    # healthy answer once took longer than 0.5 s, in a 409 case and in the healthy cycle after the timeouts
    ctl, _, _ = controller(kube, prom.url, engine, clock, read_timeout_s=1.5 if delay_s else 5.0)
    fault = kube.inject(method, HPA_PATCH, status=status, times=times, delay_s=delay_s)
    report = run(ctl, clock, start)
    fault.used = fault.times  # healthy again
    hpa_now = hpa_of(kube)
    assert whole(hpa_now)
    assert (hpa_now["spec"]["minReplicas"] > 2) is written
    assert cond(status_of(kube), "Ready")["reason"] == reason
    assert bool(report.policy("shop/web").errors) is not written
    assert len(events(kube, "FloorChanged")) == int(written)
    # the next cycle, with the API healthy again, puts the floor in place
    run(ctl, clock, start + pd.Timedelta("1min"))
    assert hpa_of(kube)["spec"]["minReplicas"] > 2 and whole(hpa_of(kube))
    assert cond(status_of(kube), "Ready")["status"] == "True"


class StealingLeases:
    """The LeaseApi of a replica whose Lease another replica takes over (a real write on the server) right before
    the ``steal_on``-th read, i.e. in the middle of a cycle."""

    def __init__(self, cluster: KubeCluster, steal_on: int) -> None:
        self.cluster, self.steal_on, self.reads = cluster, steal_on, 0

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        if self.reads == self.steal_on:
            lease = self.cluster.get_lease(namespace, name)
            assert lease is not None
            spec = {**lease["spec"], "holderIdentity": "replica-b", "leaseTransitions": 1}
            self.cluster.replace_lease(namespace, name, spec, lease["metadata"]["resourceVersion"])
        return self.cluster.get_lease(namespace, name)

    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.cluster.create_lease(namespace, name, spec)

    def replace_lease(self, namespace: str, name: str, spec: dict[str, Any],
                      resource_version: str) -> dict[str, Any]:
        return self.cluster.replace_lease(namespace, name, spec, resource_version)


def test_losing_the_lease_mid_cycle_stops_further_writes(
    kube: KubeApiServer, prom: PromServer, engine: EngineForecastProvider, start: pd.Timestamp
) -> None:
    kube.put_object(policy(with_vpa=False))
    kube.put_object(policy("api"))
    kube.put_object(hpa("api"))
    leases = StealingLeases(KubeCluster(kube.api_client(), reporting_instance="replica-b"), steal_on=3)
    clock = Clock(start)
    ctl, _, _ = controller(kube, prom.url, engine, clock, leases=leases)
    kube.clear_log()
    report = run(ctl, clock, start)  # reads: 1 elect, 2 before shop/api's patch, 3 before shop/web's: stolen
    assert report.leader
    patches = [w for w in writes(kube) if w[0] == "PATCH"]
    assert patches == [("PATCH", "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/api", 200)]
    assert hpa_of(kube, "api")["spec"]["minReplicas"] > 2 and whole(hpa_of(kube, "api"))
    assert hpa_of(kube, "web")["spec"]["minReplicas"] == 2 and whole(hpa_of(kube, "web"))
    assert any("no longer holds the lease" in s for s in report.policy("shop/web").skipped)
    assert ctl.telemetry.registry.get_sample_value("forecaster_controller_leader", {"identity": "replica-a"}) == 0.0
    lease = kube.get_object("leases", "forecaster", "forecaster-controller")
    assert lease is not None and lease["spec"]["holderIdentity"] == "replica-b"
