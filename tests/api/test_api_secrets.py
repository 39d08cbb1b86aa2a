"""Secrets never leave the process (issue 22, item 7): not in ``repr``/``str`` of ``ServiceSettings`` and
``ApiSettings``, not in error bodies or headers, not in log records.

The settings come from ``FORECASTER_*`` variables and a mounted Secret directory, as in a cluster: two tokens, a
PostgreSQL URL with a password (also percent-encoded) and a Prometheus URL with one. The app runs over a store fake
whose errors echo the full store URL (as a careless driver might), and every request that can fail is made: a crash
(500), readiness and metrics with the store down, a temporary store error (503), unknown and wrong tokens (401/403),
a token in the query string. Then every response and every log record (formatted with its traceback) is searched for
each secret.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from api_support import NOW
from fastapi.testclient import TestClient

from forecaster.api import ApiSettings, api_settings, create_app, parse_tokens
from forecaster.contracts.errors import TemporaryError
from forecaster.contracts.ports import Workload
from forecaster.runtime.settings import ServiceSettings, mask_url, url_secrets
from forecaster.testing.store import InMemoryStore

READ_TOKEN = "read-S3CRET-token-aaaa1111"
WRITE_TOKEN = "write-S3CRET-token-bbbb2222"
PG_PASSWORD = "pg-S3CRET-pass@word"
PG_QUOTED = "pg-S3CRET-pass%40word"
PROM_PASSWORD = "prom-S3CRET-dddd4444"
SECRETS = (READ_TOKEN, WRITE_TOKEN, PG_PASSWORD, PG_QUOTED, PROM_PASSWORD, "S3CRET")
STORE_URL = f"postgresql+psycopg://forecaster:{PG_QUOTED}@db.internal:5432/forecaster"
PROM_URL = f"http://scraper:{PROM_PASSWORD}@prometheus:9090"


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "write_tokens").write_text(WRITE_TOKEN + "\n")
    (secrets_dir / "store_url").write_text(STORE_URL)
    env = {"FORECASTER_READ_TOKENS": READ_TOKEN, "FORECASTER_PROMETHEUS_URL": PROM_URL}
    return ServiceSettings.from_env(env, secrets_dir=secrets_dir)


def test_settings_hold_the_secrets(settings: ServiceSettings) -> None:
    """The masking is in the rendering only: the values themselves are intact."""
    assert settings.read_tokens == (READ_TOKEN,) and settings.write_tokens == (WRITE_TOKEN,)
    assert settings.store_url == STORE_URL and settings.prometheus_url == PROM_URL
    assert {READ_TOKEN, WRITE_TOKEN, PG_QUOTED, PG_PASSWORD, PROM_PASSWORD} <= settings.secret_values


def test_repr_and_str_of_the_settings_show_no_secret(settings: ServiceSettings) -> None:
    api = api_settings(settings)
    for text in (repr(settings), str(settings), f"{settings}", repr(api), str(api), f"{[api]}"):
        assert not leaked(text), text
    assert "postgresql+psycopg://forecaster:***@db.internal:5432/forecaster" in repr(settings)
    assert "http://scraper:***@prometheus:9090" in repr(settings)
    assert "read_tokens=<1 token>" in repr(settings) and "tokens=<2 tokens: read, read+write>" in repr(api)
    assert "refresh_interval_s=300.0" in repr(settings), "the other fields are still shown"


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql+psycopg://u:p%40ss@db/x?sslpassword=zz&a=1", "postgresql+psycopg://u:***@db/x?sslpassword=***&a=1"),
    ("http://a:b@prom:9090", "http://a:***@prom:9090"),
    ("sqlite:///forecaster.db", "sqlite:///forecaster.db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ("postgresql://u@h/d", "postgresql://u@h/d"),
], ids=["password-and-query", "short-password", "sqlite", "sqlite-absolute", "no-password"])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert all(s not in (mask_url(url) or "") for s in url_secrets(url) if len(s) > 1)


def test_a_bad_token_spec_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as info:
        parse_tokens(f"{READ_TOKEN}:read,{WRITE_TOKEN}")
    assert "entry 2" in str(info.value) and not leaked(str(info.value))


class LeakyStore(InMemoryStore):
    """A store whose errors carry the full connection URL (what must never reach a client or a log line)."""

    def list_workloads(self, **_: Any) -> Any:
        raise RuntimeError(f"cannot connect to {STORE_URL} (password {PG_PASSWORD})")

    def latest_forecast(self, workload_id: str) -> Any:
        raise ConnectionError(f"lost {STORE_URL}")

    def list_events(self, **_: Any) -> Any:
        raise TemporaryError(f"store {STORE_URL} is busy", 5.0)


def test_error_bodies_headers_and_logs_show_no_secret(settings: ServiceSettings,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = LeakyStore()
    store.upsert_workload(Workload("shop/web", namespace="shop"))
    app = create_app(store, None, api_settings(settings, anonymous_reads=False, forecast_cache_s=0),
                     clock=lambda: NOW)
    write = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    calls: list[tuple[str, str, dict[str, str], set[int]]] = [
        ("GET", "/v1/workloads", write, {500}),
        ("GET", "/readyz", {}, {503}),
        ("GET", "/v1/events", write, {503}),
        ("GET", "/v1/forecasts/shop/web", write, {500}),
        ("POST", "/v1/events", {"Authorization": f"Bearer {READ_TOKEN}"}, {403}),
        ("GET", "/v1/workloads", {"Authorization": f"Bearer {WRITE_TOKEN}x"}, {401}),
        ("GET", "/v1/workloads", {"Authorization": f"Bearer {WRITE_TOKEN[:-1]}"}, {401}),
        ("GET", f"/v1/actuals/shop/web?start={WRITE_TOKEN}", write, {422}),
        ("GET", f"/v1/forecasts/shop/web?access_token={WRITE_TOKEN}", write, {400}),
    ]
    with TestClient(app, raise_server_exceptions=False) as client:
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and not leaked(metrics.text)
        for method, path, headers, status in calls:
            response = client.request(method, path, headers=headers,
                                      json={"name": "x"} if method == "POST" else None)
            assert response.status_code in status, (path, response.status_code, response.text[:300])
            assert not leaked(response.text), (path, response.text)
            assert not leaked(str(dict(response.headers))), (path, response.headers)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [formatter.format(r) for r in caplog.records if not r.name.startswith("httpx")]  # the test's client
    assert any("unhandled error" in r and "RuntimeError" in r for r in records), "the crash is logged, with its type"
    assert any("readyz" in r for r in records) and any("metrics" in r for r in records)
    assert not [r for r in records if leaked(r)], [r for r in records if leaked(r)][:3]


def test_api_settings_scrub_their_own_secrets() -> None:
    api = ApiSettings(tokens=parse_tokens({WRITE_TOKEN: ["write"]}), secret_values=frozenset({PROM_PASSWORD}))
    assert api.scrub(f"a {WRITE_TOKEN} b {PROM_PASSWORD} c") == "a *** b *** c"
    assert api.scrub("short b stays") == "short b stays"
