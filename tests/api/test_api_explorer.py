"""The forecast explorer page in headless Chromium against a live uvicorn server over the seeded store.

Checks what the page drew from the JSON API: the workload list, the fan chart (two band paths, the ensemble line
with all 288 points, history and actual dots), the members, the decisions timeline and table, requested vs predicted
resources (bars); a screenshot that is a real image (PNG, non-uniform pixels); and, with anonymous reads off, that
the page asks for a token and then draws. Uses Debian's chromium (no browser download, no network).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from api_support import ISSUED, NOW, READ, TOKENS, LiveServer, Seeded
from support.binaries import require_binary

from forecaster.api import ApiSettings, create_app
from forecaster.contracts.ports import ForecastRun, Workload
from forecaster.datasets import NASA_ID
from forecaster.testing.store import InMemoryStore

pytestmark = pytest.mark.integration
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 90_000
"""Generous: under CPU load (CI beside benchmarks) the page once took over 30 s to become ready; a real failure
(a script error, a missing element) still fails, only later."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_binary("chromium", "/usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def live(seeded: Seeded, **settings: Any) -> LiveServer:
    app = create_app(seeded.store, None, ApiSettings(tokens=TOKENS, **settings), clock=lambda: NOW)
    return LiveServer(app).start()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.external = []
    pg.on("request", lambda r: pg.external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:"))
          else None)
    yield pg
    context.close()


def points(d: str) -> int:
    """Vertices of an SVG path drawn with M/L commands."""
    return len(re.findall(r"[ML]", d))


def test_page_draws_the_forecast_members_decisions(seeded: Seeded, page: Any, tmp_path: Path) -> None:
    server = live(seeded, anonymous_reads=True)
    try:
        page.goto(server.url + "/", timeout=TIMEOUT_MS)
        page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT_MS)
        page.wait_for_selector("#fan-chart[data-ready='1']", timeout=TIMEOUT_MS)
        ids = page.eval_on_selector_all("#workload-list button", "bs => bs.map(b => b.dataset.id)")
        assert sorted(ids) == sorted(seeded.store.list_workloads().items[i].id for i in range(10))
        assert page.inner_text("#workload-count") == "(10)"
        assert page.evaluate("location.hash") == "#nasa-http", "the first workload with a forecast is shown"
        assert page.get_attribute("#workload-list button[aria-current=true]", "data-id") == "nasa-http"

        bands = page.eval_on_selector_all("#fan-chart path.band",
                                          "ps => ps.map(p => [p.dataset.level, p.dataset.points, p.getAttribute('d')])")
        assert [b[0] for b in bands] == ["95", "80"], "widest band first, under the narrower one"
        for _, n, d in bands:
            assert n == "288" and points(d) == 2 * 288 and d.endswith("Z")
        ensemble = page.get_attribute("#fan-chart path[data-role=ensemble]", "d")
        assert points(ensemble) == 288
        actuals = seeded.actuals
        after = actuals[(actuals["ds"] > ISSUED) & (actuals["ds"] <= ISSUED + pd.Timedelta(minutes=5 * 287))]
        assert page.locator("#fan-chart circle.actual").count() == len(after) == 287
        before = actuals[actuals["ds"] <= ISSUED]
        assert page.get_attribute("#fan-chart path.history", "data-points") == str(len(before))
        assert "actual (287)" in legend_of(page, "#fan-chart") and page.locator("#fan-chart .no-actuals").count() == 0
        assert page.locator("#fan-chart line.origin").count() == 1

        members = page.eval_on_selector_all("#members-chart path.member",
                                            "ps => ps.map(p => [p.dataset.member, p.getAttribute('d')])")
        assert [m for m, _ in members] == ["seasonal", "events", "signals", "lgbm"]
        assert all(points(d) == 288 for _, d in members)
        assert page.locator("#decisions-chart .decision-replicas").count() == 4
        assert page.locator("#decisions-table tbody tr").count() == 4
        assert page.is_hidden("#resources-section"), "nasa-http has no containers"
        meta = page.inner_text("#forecast-meta")
        assert "test-nasa-1" in meta and "288 steps of 5min" in meta

        shot = page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
        from PIL import Image

        image = Image.open(io.BytesIO(shot)).convert("RGB")
        assert len(image.getcolors(maxcolors=1 << 20) or range(1000)) > 50, "a real drawing, not a blank page"

        page.click("#workload-list button[data-id='shop/web']")
        page.wait_for_selector("#resources-chart[data-ready='1']", timeout=TIMEOUT_MS)
        page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT_MS)
        assert page.evaluate("location.hash") == "#shop%2Fweb"
        bars = page.eval_on_selector_all("#resources-chart rect.bar",
                                         "rs => rs.map(r => [r.dataset.container, r.dataset.resource, r.classList[1]])")
        assert len(bars) == 12  # 2 containers x (cpu, memory) x (request, predicted, target)
        assert {b[2] for b in bars} == {"bar-request", "bar-predicted", "bar-target"}
        assert page.locator("#resources-chart line.bounds").count() == 4
        assert page.locator("#decisions-chart .decision-resources").count() == 1
        assert points(page.get_attribute("#fan-chart path[data-role=ensemble]", "d")) == 12
        page.screenshot(path=str(tmp_path / "explorer-shop.png"), full_page=True)
    finally:
        server.stop()
    assert page.errors == [], page.errors
    assert page.external == [], "the page loads nothing from outside the server"


def legend_of(page: Any, chart: str) -> list[str]:
    return list(page.eval_on_selector_all(f"{chart} .legend text", "ts => ts.map(t => t.textContent)"))


def test_page_shows_equal_members_units_and_only_the_actuals_it_draws(seeded: Seeded, nasa: Any, page: Any,
                                                                       tmp_path: Path) -> None:
    """The live case: actuals end at the forecast's origin (the service forecasts from its newest observation), two
    members are equal, and the workload has a demand unit."""
    frame, actuals = nasa
    frame = frame.assign(events=frame["seasonal"])
    store = InMemoryStore()
    store.upsert_workload(Workload(NASA_ID, labels={"unit": "requests per 5 min"}))
    store.save_forecast(ForecastRun("live", NASA_ID, ISSUED, "v", (80, 95), frame))
    store.save_actuals(NASA_ID, actuals[actuals["ds"] <= ISSUED])
    for decision in seeded.store.list_decisions(workload_id=NASA_ID).items:
        store.record_decision(decision)
    app = create_app(store, None, ApiSettings(tokens=TOKENS, anonymous_reads=True), clock=lambda: NOW)
    server = LiveServer(app).start()
    try:
        page.goto(server.url + "/", timeout=TIMEOUT_MS)
        page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT_MS)
        page.wait_for_selector("#members-chart[data-ready='1']", timeout=TIMEOUT_MS)
        fan = legend_of(page, "#fan-chart")
        assert page.locator("#fan-chart circle.actual").count() == 0
        assert not any(text.startswith("actual") for text in fan), "the legend lists only what is drawn"
        assert page.text_content("#fan-chart .no-actuals") == "no actuals after the forecast origin yet"
        members = page.eval_on_selector_all(
            "#members-chart path.member", "ps => ps.map(p => [p.dataset.label, p.getAttribute('stroke-dasharray')])")
        assert members[:2] == [["seasonal", None], ["events (= seasonal)", "6 4"]]
        assert "events (= seasonal)" in legend_of(page, "#members-chart")
        order = "(s, what) => [...s.children].findIndex(c => c.matches(what))"
        ensemble = page.eval_on_selector("#members-chart", order, "path.ensemble")
        first_member = page.eval_on_selector("#members-chart", order, "path.member")
        assert ensemble < first_member, "the ensemble is drawn underneath the members"
        for chart in ("#fan-chart", "#members-chart"):
            assert "demand (requests per 5 min)" in (page.text_content(f"{chart} .axis") or "")
        assert "replicas (pods)" in (page.text_content("#decisions-chart .axis") or "")
        page.screenshot(path=str(tmp_path / "explorer-live.png"), full_page=True)
    finally:
        server.stop()
    assert page.errors == [], page.errors


def test_page_asks_for_a_token_when_reads_need_one(seeded: Seeded, page: Any) -> None:
    server = live(seeded, anonymous_reads=False)
    try:
        page.goto(server.url + "/#shop%2Fweb", timeout=TIMEOUT_MS)
        page.wait_for_selector("#token-form:not([hidden])", timeout=TIMEOUT_MS)
        assert "token" in page.inner_text("#message")
        page.fill("#token", READ)
        page.click("#token-form button")
        page.wait_for_selector("#fan-chart[data-ready='1']", timeout=TIMEOUT_MS)
        page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT_MS)
        assert page.is_hidden("#token-form")
        assert page.get_attribute("#fan-chart path[data-role=ensemble]", "data-points") == "12"
        assert page.locator("#workload-list button").count() == 10
    finally:
        server.stop()
    assert page.errors == [], page.errors
