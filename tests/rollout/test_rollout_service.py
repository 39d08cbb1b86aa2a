"""Model rollout in the service on SQLite and a real PostgreSQL server: the first model serves; a refit that has
seen more of a new demand level is promoted on the paired test, with its evidence in the model history and the
metrics; then rollbacks through the Python API, ``forecaster model rollback`` and ``POST /v1/models/rollback`` are
each served from the next refresh, and a restarted service still serves the rolled-back model (it lives in the store).
A refit on a bad day kept out: ``test_rollout_provider.py`` and ``test_rollout_controller.py``.

The demo source serves a synthetic trace here (a daily pattern with 5 % noise), so what the paired test decides does
not hang on one noisy week of the NASA trace; ``benchmarks/rollout.py`` replays the NASA trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from forecaster.adapters.store import SqlStore
from forecaster.api import ApiSettings, create_app
from forecaster.cli import app
from forecaster.contracts.frames import DS, Y
from forecaster.runtime.rollout import request_rollback
from forecaster.runtime.service.demo import DemoSource, demo_registry
from forecaster.runtime.service.models import demand_warnings
from forecaster.runtime.service.registry import Registry, WorkloadSpec
from forecaster.runtime.service.service import Service, build_service
from forecaster.runtime.settings import ServiceSettings

START = pd.Timestamp("2024-03-04T00:00Z")
T1 = START + pd.Timedelta("4D") + pd.Timedelta("2min")
"""The first fit."""
T2 = T1 + pd.Timedelta("1D")
"""A refit that has seen a day and a half of the doubled demand (the first model: half a day)."""
SHIFT = START + pd.Timedelta("3D") + pd.Timedelta("12h")
KEY = "freq/5min"
TOKENS = {"r": frozenset({"read"}), "w": frozenset({"read", "write"})}
POINTS = 12


def trace() -> pd.DataFrame:
    """Eight days of demand: a daily pattern with 5 % noise, doubled from ``SHIFT`` (a new customer)."""
    ds = pd.date_range(START, periods=288 * 8, freq="5min")
    tod = np.asarray((ds.hour * 60 + ds.minute) / 1440.0)
    y = 100 * (1 + 0.5 * np.sin(2 * np.pi * tod)) + np.random.default_rng(0).normal(0, 5, len(ds))
    frame = pd.DataFrame({DS: ds, Y: np.clip(y, 0, None)})
    frame.loc[frame[DS] >= SHIFT, Y] *= 2.0
    return frame


def make_service(url: str, tmp_path: Path, fast_lgbm: dict[str, Any], now: pd.Timestamp) -> Service:
    settings = ServiceSettings(store_url=url, artefact_dir=tmp_path / "artefacts", history_days=4, horizon_s=3600.0,
                               model_options={"n_windows": 2, "members": ["seasonal", "lgbm"],
                                              "member_params": {"lgbm": fast_lgbm}},
                               rollout_min_points=POINTS, rollout_max_points=48)
    source = DemoSource(now, demand=trace())
    return build_service(settings, store=SqlStore(url), source=source, registry=demo_registry(1, containers=False),
                         clock=source.clock)


def refresh(service: Service, at: pd.Timestamp, n: int = 1) -> list[str]:
    """``n`` refreshes 5 minutes apart from ``at``; the model version of each run of nasa/www."""
    versions = []
    for i in range(n):
        now = at + pd.Timedelta(minutes=5 * i)
        service.source.now = now  # type: ignore[attr-defined]
        service.refresh(now)
        run = service.store.latest_forecast("nasa/www")
        assert run is not None
        versions.append(run.model_version)
    return versions


def refit(service: Service, at: pd.Timestamp) -> str:
    service.source.now = at  # type: ignore[attr-defined]
    (version,) = service.refit(at)
    return version


@pytest.mark.integration
def test_promotion_rejection_and_rollback_through_python_cli_and_http(sql_url: str, tmp_path: Path,
                                                                      fast_lgbm: dict[str, Any]) -> None:
    service = make_service(sql_url, tmp_path, fast_lgbm, T1)
    store = service.store
    try:
        (a,) = set(refresh(service, T1))
        b = refit(service, T2)
        served = refresh(service, T2, POINTS)
        while served[-1] != b and len(served) < 48:  # the paired test decides after POINTS..48 scored points
            served += refresh(service, T2 + pd.Timedelta(minutes=5 * len(served)))
        n = len(served) - 1
        assert served[:n] == [a] * n and served[-1] == b and n >= POINTS, "B shadows until the paired test promotes it"
        history = store.list_model_events(workload_id="nasa/www").items
        assert [(e.kind, e.version) for e in reversed(history)] == [("promoted", a), ("challenger", b),
                                                                    ("promoted", b)]
        promoted = history[0]
        assert "better by more than 2 %" in promoted.reason and promoted.previous == a and promoted.actor == "service"
        assert promoted.scores["n_points"] == n and promoted.scores["better_statistic"] > 1.645
        assert promoted.scores["challenger"]["pinball"] < promoted.scores["champion"]["pinball"]
        assert promoted.train_end == T2.floor("5min") and promoted.workload_ids == ("nasa/www",)
        assert all(store.get_artefact(v) is not None for v in (a, b))
        champion = store.champion(KEY)
        assert champion is not None and champion.version == b
        assert service.telemetry.registry.get_sample_value(
            "forecaster_model_rollouts_total", {"model_key": KEY, "outcome": "promoted"}) == 2.0
        errors = {role: service.telemetry.registry.get_sample_value(
            "forecaster_model_error_ratio", {"model_key": KEY, "role": role, "score": "pinball"})
            for role in ("champion", "challenger")}
        assert errors["champion"] > errors["challenger"] > 0  # type: ignore[operator]

        # 1. the Python API: back to the previous champion (A), served from the next refresh
        now = T2 + pd.Timedelta(minutes=5 * len(served) + 10)
        event = request_rollback(store, KEY, None, now, actor="test", reason="drill")
        assert (event.version, event.previous, event.kind) == (a, b, "rolled_back")
        assert refresh(service, now) == [a]
        model = service.provider.model(KEY)
        assert model is not None and model.pinned_at == now

        # 2. the CLI: forward again to B, by version
        runner = CliRunner()
        out = runner.invoke(app, ["model", "rollback", "--workload", "nasa/www", "--to", b, "--store-url", sql_url])
        assert out.exit_code == 0, out.output
        assert f"{KEY}: rolled back to {b} (was {a})" in " ".join(out.output.split())
        assert refresh(service, now + pd.Timedelta("5min")) == [b]
        shown = runner.invoke(app, ["model", "history", "-w", "nasa/www", "--json", "--store-url", sql_url])
        doc = json.loads(shown.output)
        assert doc["key"] == KEY and doc["champion"] == b and doc["events"][0]["actor"] == "cli"
        again = runner.invoke(app, ["model", "rollback", "--to", b, "--store-url", sql_url])
        assert again.exit_code == 2 and "already the champion" in again.output
        unknown = runner.invoke(app, ["model", "rollback", "--to", "nope", "--store-url", sql_url])
        assert unknown.exit_code == 1 and "no model 'nope'" in unknown.output

        # 3. the HTTP API (write token): the default target is the champion before the current one (A)
        api = create_app(store, settings=ApiSettings(tokens=TOKENS), clock=lambda: now + pd.Timedelta("9min"))
        with TestClient(api) as client:
            body = {"workload": "nasa/www", "reason": "bad exporter data"}
            assert client.post("/v1/models/rollback", json=body).status_code == 401
            denied = client.post("/v1/models/rollback", json=body, headers={"Authorization": "Bearer r"})
            assert denied.status_code == 403
            made = client.post("/v1/models/rollback", json=body, headers={"Authorization": "Bearer w"})
            assert made.status_code == 201, made.text
            assert made.json()["version"] == a and made.json()["actor"] == "api"
            page = client.get("/v1/models", params={"workload": "nasa/www", "limit": 3},
                              headers={"Authorization": "Bearer r"}).json()
            assert page["champions"] == {KEY: a} and page["total"] == 6 and len(page["items"]) == 3
            assert [i["kind"] for i in page["items"]] == ["rolled_back"] * 3
        assert refresh(service, now + pd.Timedelta("10min")) == [a]
    finally:
        store.close()  # type: ignore[attr-defined]

    # 4. a restart: the rollback lives in the store
    later = now + pd.Timedelta("1h")
    restarted = make_service(sql_url, tmp_path, fast_lgbm, later)
    try:
        assert refresh(restarted, later) == [a]
        model = restarted.provider.model(KEY)
        assert model is not None and model.version == a and model.pinned_at == now + pd.Timedelta("9min")
    finally:
        restarted.store.close()  # type: ignore[attr-defined]


def test_per_pod_demand_queries_are_warned_about() -> None:
    registry = Registry([WorkloadSpec(id="shop/web", query="sum(rate(http_requests_total[5m]))"),
                         WorkloadSpec(id="shop/cpu", query="avg(rate(container_cpu_usage_seconds_total[5m]))")])
    found = demand_warnings(registry)
    assert list(found) == ["shop/cpu"] and "averages over pods" in found["shop/cpu"]
