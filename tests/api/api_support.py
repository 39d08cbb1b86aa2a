"""Shared values and helpers of the HTTP API tests (the fixtures in ``conftest.py`` use them): tokens, fixed times,
the seeded store's contents, a live uvicorn server. A uniquely named module, so test files import it unambiguously
(``from conftest import`` resolves to whichever ``conftest`` another test folder loaded first)."""


from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI

from forecaster.contracts.frames import DS, ENSEMBLE, Y, hi, lo
from forecaster.contracts.ports import AccuracyRecord, DecisionRecord, ForecastRun, Workload
from forecaster.datasets import NASA_ID, load_nasa_5min, nasa_events
from forecaster.testing.store import InMemoryStore

READ, WRITE = "read-token-0123", "write-token-4567"
TOKENS = {READ: frozenset({"read"}), WRITE: frozenset({"read", "write"})}
ISSUED = pd.Timestamp("1995-07-21T04:00Z")
NOW = ISSUED + pd.Timedelta(minutes=10)
SHOP_ISSUED = pd.Timestamp("2024-03-04T00:00Z")
MODEL_VERSION = "test-nasa-1"


def nasa_forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(forecast frame, actuals): fit on the 7 days before ``ISSUED``, predict 288 steps; actuals = the day before
    and the day after the origin."""
    from forecaster import Forecaster

    history = load_nasa_5min()
    train = history[(history[DS] < ISSUED) & (history[DS] >= ISSUED - pd.Timedelta(days=7))]
    fc = Forecaster("5min", (80, 95), 288, n_windows=2, seed=0,
                    member_params={"lgbm": {"num_rounds": 20, "num_threads": 1, "max_rows": 3000}})
    fc.fit(train, events=nasa_events())
    pred = fc.predict()
    actuals = history[(history[DS] >= ISSUED - pd.Timedelta(days=1)) & (history[DS] < ISSUED + pd.Timedelta(days=1))]
    return pred.drop(columns=["unique_id"]), actuals[[DS, Y]].reset_index(drop=True)


def shop_forecast() -> pd.DataFrame:
    """12 steps with exact, easily checked values: ensemble 100 + i, bands +-10/+-20, members +-1/+-2."""
    ds = pd.date_range(SHOP_ISSUED, periods=12, freq="5min")
    base = 100.0 + np.arange(12)
    frame = pd.DataFrame({DS: ds, ENSEMBLE: base})
    for level, width in ((80, 10.0), (95, 20.0)):
        frame[lo(ENSEMBLE, level)] = base - width
        frame[hi(ENSEMBLE, level)] = base + width
    frame["seasonal"], frame["events"], frame["signals"], frame["lgbm"] = base + 1, base - 1, base + 2, base - 2
    return frame


def decisions() -> list[DecisionRecord]:
    out = []
    for i, floor in enumerate((3, 5, 8, 6)):
        t = ISSUED - pd.Timedelta(hours=3) + pd.Timedelta(hours=i)
        out.append(DecisionRecord(f"{NASA_ID}/replicas/{t.isoformat()}", NASA_ID, t, "replicas",
                                  "Auto" if i % 2 else "Recommend", bool(i % 2), {"min_replicas": floor},
                                  f"hi-80 peak needs {floor} pods", {"reactive_floor": max(1, floor - 2)}))
    t = SHOP_ISSUED - pd.Timedelta(hours=1)
    out.append(DecisionRecord("shop/web/replicas/1", "shop/web", t, "replicas", "Auto", True, {"min_replicas": 4},
                              "forecast peak", {"reactive_floor": 2}))
    out.append(DecisionRecord("shop/web/replicas/0", "shop/web", t - pd.Timedelta(hours=1), "replicas", "Auto", True,
                              {"min_replicas": 2}, "older", {}))
    containers = {
        "app": {"cpu": {"target": 0.5, "lower_bound": 0.4, "upper_bound": 0.8, "uncapped_target": 0.5},
                "memory": {"target": 512 * 2**20, "lower_bound": 400 * 2**20, "upper_bound": 700 * 2**20,
                           "uncapped_target": 512 * 2**20}},
        "sidecar": {"cpu": {"target": 0.1, "lower_bound": 0.05, "upper_bound": 0.2, "uncapped_target": 0.1},
                    "memory": {"target": 64 * 2**20, "lower_bound": 48 * 2**20, "upper_bound": 96 * 2**20,
                               "uncapped_target": 64 * 2**20}},
    }
    details = {"containers": {
        "app": {"cpu": {"request": 1.0, "predicted": 0.42}, "memory": {"request": 2**30, "predicted": 450 * 2**20}},
        "sidecar": {"cpu": {"request": 0.25, "predicted": 0.07}, "memory": {"request": 128 * 2**20,
                                                                          "predicted": 50 * 2**20}}}}
    out.append(DecisionRecord("shop/web/resources/1", "shop/web", t, "resources", "Recommend", False,
                              {"containers": containers}, "p90 of 8 days of use + 15 % margin", details))
    return out


def accuracy() -> list[AccuracyRecord]:
    return [AccuracyRecord(NASA_ID, ISSUED - pd.Timedelta(days=k), ISSUED - pd.Timedelta(days=k + 1),
                           ISSUED - pd.Timedelta(days=k), 288, 10.0 + k, {80: 0.8, 95: 0.94}, 9.0, False)
            for k in range(7)]


@dataclass(frozen=True)
class Seeded:
    store: InMemoryStore
    nasa_run: ForecastRun
    shop_run: ForecastRun
    actuals: pd.DataFrame


def seed(store: InMemoryStore, nasa: tuple[pd.DataFrame, pd.DataFrame]) -> Seeded:
    frame, actuals = nasa
    store.upsert_workload(Workload(NASA_ID, namespace="nasa", query="nasa_5min", labels={"source": "demo"}))
    store.upsert_workload(Workload("shop/web", namespace="shop"))
    store.upsert_workload(Workload("shop/cart", namespace="shop"))
    for i in range(7):
        store.upsert_workload(Workload(f"batch/w{i:02d}", namespace="batch"))
    nasa_run = ForecastRun("run-nasa-1", NASA_ID, ISSUED, MODEL_VERSION, (80, 95), frame, 12.5)
    shop_run = ForecastRun("run-shop-1", "shop/web", SHOP_ISSUED, "fixture-1", (80, 95), shop_forecast(), None)
    store.save_forecast(nasa_run)
    store.save_forecast(shop_run)
    store.save_actuals(NASA_ID, actuals)
    for d in decisions():
        store.record_decision(d)
    for a in accuracy():
        store.record_accuracy(a)
    return Seeded(store, store.latest_forecast(NASA_ID), store.latest_forecast("shop/web"), actuals)  # type: ignore[arg-type]


AppMaker = Callable[..., FastAPI]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a thread (``url``); ``stop()`` shuts it down."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
