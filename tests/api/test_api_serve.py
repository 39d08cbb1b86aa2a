"""``forecaster serve``: help text, the anonymous-read rules, and the real command in a subprocess - an API replica
over a SQLite store (``--no-scheduler``) and the demo with its scheduler running the refresh job until ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_support import SHOP_ISSUED, shop_forecast
from typer.testing import CliRunner

from forecaster.adapters.store import SqlStore
from forecaster.cli import app
from forecaster.cli.serve import anonymous_reads, is_loopback
from forecaster.contracts.ports import ForecastRun, Workload
from forecaster.runtime.settings import ServiceSettings

ENTRY = "from forecaster.cli import main; main()"
FAST_DEMO = {"FORECASTER_HISTORY_DAYS": "6", "FORECASTER_MODEL_OPTIONS": json.dumps(
    {"n_windows": 1, "members": ["seasonal", "lgbm"], "member_params": {"lgbm": {"num_rounds": 10, "num_threads": 1}}})}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """``forecaster serve ARGS`` in a subprocess on a free port; ``url``; stopped with SIGTERM."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
        self.log = (tmp / "serve.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-c", ENTRY, "serve", "--port", str(self.port), *args],
                                     cwd=tmp, env={**clean, **(env or {})}, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait(self, path: str, status: int = 200, timeout_s: float = 120.0) -> httpx.Response:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.output()}")
            try:
                response = httpx.get(self.url + path, timeout=5)
                if response.status_code == status:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{path} never answered {status}: {self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = SqlStore(url)
    store.upsert_workload(Workload("shop/web", namespace="shop"))
    store.save_forecast(ForecastRun("run-shop-1", "shop/web", SHOP_ISSUED, "fixture-1", (80, 95), shop_forecast()))
    store.close()
    yield url


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--store-url", "--host", "--port", "--no-scheduler", "--demo", "--anonymous-reads"):
        assert option in result.output


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("0.0.0.0", False), ("10.1.2.3", False), ("api.local", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("flag", "env", "host", "demo", "expected"), [
    (None, {}, "127.0.0.1", False, True),
    (None, {}, "0.0.0.0", False, False),
    (None, {}, "0.0.0.0", True, True),
    (False, {}, "127.0.0.1", True, False),
    (True, {}, "0.0.0.0", False, True),
    (None, {"FORECASTER_ANONYMOUS_READS": "false"}, "127.0.0.1", True, False),
    (None, {"FORECASTER_ANONYMOUS_READS": "true"}, "0.0.0.0", False, True),
], ids=["loopback", "public", "demo", "flag-off", "flag-on", "env-off", "env-on"])
def test_anonymous_read_rules(flag: bool | None, env: dict[str, str], host: str, demo: bool,
                              expected: bool) -> None:
    settings = ServiceSettings.from_env(env)
    assert anonymous_reads(flag, settings, host, demo, environ=env) is expected


def test_without_prometheus_or_demo_it_exits_2(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
    result = subprocess.run([sys.executable, "-c", ENTRY, "serve", "--store-url", f"sqlite:///{tmp_path}/x.db"],
                            cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "prometheus_url" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.integration
def test_api_replica_over_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    serve = Serve(tmp_path, "--no-scheduler", "--store-url", sqlite_url,
                  env={"FORECASTER_WRITE_TOKENS": "w-token", "FORECASTER_READ_TOKENS": "r-token"})
    try:
        serve.wait("/healthz")
        body = httpx.get(f"{serve.url}/v1/forecasts/shop/web?horizon=2").json()  # anonymous: loopback host
        assert body["ensemble"] == [100.0, 101.0] and body["model_version"] == "fixture-1"
        event = {"name": "launch", "kind": "launch", "start": "2024-03-05T00:00:00Z", "end": "2024-03-06T00:00:00Z"}
        assert httpx.post(f"{serve.url}/v1/events", json=event).status_code == 401
        assert httpx.post(f"{serve.url}/v1/events", json=event,
                          headers={"Authorization": "Bearer r-token"}).status_code == 403
        assert httpx.post(f"{serve.url}/v1/events", json=event,
                          headers={"Authorization": "Bearer w-token"}).status_code == 201
        ready = httpx.get(f"{serve.url}/readyz")
        assert ready.status_code == 503 and ready.json()["source"] == "store", "a 2024 forecast is not recent"
        assert "text/html" in httpx.get(serve.url + "/").headers["content-type"]
    finally:
        code = serve.stop()
    assert code == 0, f"exit {code}: {serve.output()}"
    stored = SqlStore(sqlite_url)
    try:
        assert [e.name for e in stored.list_events().items] == ["launch"]
    finally:
        stored.close()


@pytest.mark.integration
@pytest.mark.slow
def test_demo_runs_the_refresh_job_until_ready(tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--demo", "--demo-now", "1995-07-09T04:00Z", "--store-url",
                  f"sqlite:///{tmp_path / 'demo.db'}", env=FAST_DEMO)
    try:
        ready = serve.wait("/readyz", 200, timeout_s=150).json()
        deadline = time.monotonic() + 60  # the stored forecast may make it ready a moment before the job finishes
        while ready["source"] != "job" and time.monotonic() < deadline:
            time.sleep(0.2)
            ready = httpx.get(f"{serve.url}/readyz").json()
        assert ready["source"] == "job" and ready["status"] == "ready"
        workloads = httpx.get(f"{serve.url}/v1/workloads").json()
        assert [w["id"] for w in workloads["items"]] == ["nasa/www"]
        forecast = httpx.get(f"{serve.url}/v1/forecasts/nasa/www").json()
        assert forecast["issued_at"] == "1995-07-09T04:00:00Z" and forecast["horizon"] == 288
        assert pd.Timestamp(forecast["ds"][0]) > pd.Timestamp("1995-07-09T04:00Z")
        metrics = httpx.get(f"{serve.url}/metrics").text
        assert 'forecaster_job_runs_total{job_name="refresh",outcome="success"}' in metrics
        assert 'forecaster_forecast_issued_timestamp_seconds{workload="nasa/www"}' in metrics
    finally:
        code = serve.stop()
    assert code == 0, f"exit {code}: {serve.output()}"
