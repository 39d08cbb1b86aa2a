"""``forecaster controller``: ``--once`` prints the cycle and exits by outcome; the long-running form's scheduler wiring
(max_instances=1, coalesce, lease renewal); the health port's /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pandas as pd
import pytest
from ctrl_builders import QUERY, Rig, constant, demand_history, policy_object
from typer.testing import CliRunner

from forecaster.cli import app
from forecaster.cli import controller as cli_controller
from forecaster.contracts.errors import PermanentError
from forecaster.contracts.ports import ForecastRun
from forecaster.runtime.health import HealthServer
from forecaster.runtime.loop import CYCLE_JOB, LEASE_JOB, build_scheduler
from forecaster.runtime.telemetry import Telemetry


@pytest.fixture
def wired(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """The command's factories return the rig's fakes."""
    seen: dict[str, Any] = {}

    def make_cluster(kubeconfig: Any, context: Any) -> Any:
        seen["cluster"] = (kubeconfig, context)
        return rig.cluster

    monkeypatch.setattr(cli_controller, "_make_cluster", make_cluster)
    monkeypatch.setattr(cli_controller, "_make_metrics", lambda url: seen.setdefault("url", url) and rig.metrics)
    monkeypatch.setattr(cli_controller, "_make_forecasts", lambda refit: rig.forecasts)
    monkeypatch.setattr(cli_controller, "_make_store", lambda url: rig.store)
    rig.seen = seen  # type: ignore[attr-defined]
    rig.forecasts.demand = constant(50.0)
    rig.metrics.add(QUERY, demand_history(pd.Timestamp.now(tz="UTC")))  # the CLI runs on the wall clock
    return rig


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["controller", *args])


def test_once_runs_one_cycle_and_prints_it(wired: Rig) -> None:
    result = invoke("--once", "--identity", "cli-1", "--prometheus-url", "http://prom:9090",
                    "--kubeconfig", "/tmp/kc", "--context", "kind", "--store-url", "sqlite://")
    assert result.exit_code == 0, result.output
    assert "shop/web [Auto]" in result.output and "wrote hpa shop/web minReplicas 2 -> 12" in result.output
    assert wired.hpa()["spec"]["minReplicas"] == 12
    assert wired.seen["url"] == "http://prom:9090"  # type: ignore[attr-defined]
    assert str(wired.seen["cluster"][0]) == "/tmp/kc" and wired.seen["cluster"][1] == "kind"  # type: ignore
    assert len(wired.store.list_decisions().items) == 1
    lease = wired.cluster.get_lease("forecaster", "forecaster-controller")
    assert lease is not None and lease["spec"]["holderIdentity"] == "cli-1"


def test_once_json(wired: Rig) -> None:
    result = invoke("--once", "--json", "--no-leader-elect")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["leader"] is True and data["policies"][0]["floor"] == 12
    assert wired.cluster.get_lease("forecaster", "forecaster-controller") is None


def test_dry_run_writes_only_status(wired: Rig) -> None:
    result = invoke("--once", "--dry-run")
    assert result.exit_code == 0, result.output
    assert wired.hpa()["spec"]["minReplicas"] == 2
    assert "skipped hpa floor: --dry-run" in result.output


def test_a_failing_policy_exits_1(wired: Rig) -> None:
    wired.cluster.add_policy(policy_object("broken", capacity=-1))
    result = invoke("--once")
    assert result.exit_code == 1
    assert "spec.demand.capacityPerPod" in result.output
    assert wired.hpa()["spec"]["minReplicas"] == 12  # the others were reconciled


def test_not_leader_exits_3(wired: Rig) -> None:
    wired.cluster.steal_lease("forecaster", "forecaster-controller", "someone-else", "2999-01-01T00:00:00.000000Z")
    result = invoke("--once")
    assert result.exit_code == 3
    assert "not leader" in result.output


def test_bad_configuration_exits_2(wired: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("--once", "--refit-every", "sometimes")
    assert result.exit_code == 2 and "--refit-every" in result.output

    def no_cluster(kubeconfig: Any, context: Any) -> Any:
        raise PermanentError("no Kubernetes configuration")

    monkeypatch.setattr(cli_controller, "_make_cluster", no_cluster)
    result = invoke("--once")
    assert result.exit_code == 2 and "no Kubernetes configuration" in result.output


def test_the_scheduler_runs_one_cycle_at_a_time_and_renews_the_lease(rig: Rig) -> None:
    ctl = rig.controller()
    scheduler = build_scheduler(ctl, interval_s=60)
    cycle, lease = scheduler.get_job(CYCLE_JOB), scheduler.get_job(LEASE_JOB)
    assert (cycle.max_instances, cycle.coalesce) == (1, True)
    assert cycle.trigger.interval.total_seconds() == 60
    assert (lease.max_instances, lease.coalesce) == (1, True)
    assert lease.trigger.interval.total_seconds() == 5  # a third of the 15 s lease
    alone = build_scheduler(rig.controller(elect=False), interval_s=30)
    assert alone.get_job(LEASE_JOB) is None


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_health_endpoints(rig: Rig) -> None:
    telemetry = Telemetry()
    telemetry.gauge("forecaster_controller_leader").labels(identity="a").set(1)
    ready = {"ok": False}
    server = HealthServer(0, lambda: ready["ok"], telemetry, host="127.0.0.1").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/healthz")[0] == 200
        assert _get(base + "/readyz")[0] == 503
        ready["ok"] = True
        assert _get(base + "/readyz")[0] == 200
        code, content_type, body = _get(base + "/metrics")
        assert code == 200 and content_type.startswith("text/plain")
        assert 'forecaster_controller_leader{identity="a"} 1.0' in body
        assert _get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_ready_means_a_recent_cycle(rig: Rig) -> None:
    ctl = rig.controller()
    assert not ctl.ready(180)
    ctl.run_once()
    assert ctl.ready(180)
    rig.clock.advance(seconds=181)
    assert not ctl.ready(180)


@pytest.mark.parametrize(("retention", "old_kept"), [("1h", False), ("none", True), ("30D", True)])
def test_retention_option(wired: Rig, retention: str, old_kept: bool) -> None:
    """A run issued a day before the cycle is pruned with --retention 1h and kept with none or the 30 D default."""
    wall = pd.Timestamp.now(tz="UTC")  # the CLI runs on the wall clock
    frame = pd.DataFrame({"ds": [wall], "ensemble": [1.0]})
    wired.store.save_forecast(ForecastRun("old", "shop/web", wall - pd.Timedelta("1D"), "v", (80,), frame))
    result = invoke("--once", "--store-url", "sqlite:///unused.db", "--retention", retention)
    assert result.exit_code == 0, result.output
    runs = wired.store.forecasts_issued_between("shop/web", wall - pd.Timedelta("2D"), wall + pd.Timedelta("1h"))
    ids = [r.id for r in runs]
    assert ("old" in ids) is old_kept and len(ids) == 1 + old_kept, ids


def test_bad_retention_exits_2(wired: Rig) -> None:
    result = invoke("--once", "--retention", "soon")
    assert result.exit_code == 2 and "--retention" in result.output
