"""Property-based acceptance test of the whole API against its own OpenAPI document (schemathesis, in-process ASGI).

Every operation gets generated requests, positive and negative (``generation.mode = all``), sent with a write token
(so the handlers, not only the auth layer, see them). Checks on every response: no server error, the status is
declared for the operation, the content type is declared for that status, the body matches the declared schema
(problems included). ``test_zz_enough_cases_and_no_server_errors`` then requires at least 1,000 cases in total and no
5xx among them (``/healthz``, ``/readyz`` and ``/metrics`` take no input, so the other eight operations carry the
count). Hypothesis runs derandomized: the same cases on every run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import pytest
import schemathesis
from api_support import NOW, TOKENS, WRITE, auth, seed
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from forecaster.api import ApiSettings, create_app
from forecaster.testing.store import InMemoryStore

EXAMPLES = 80
CONFIG = SchemathesisConfig.from_dict({"generation": {"mode": "all", "deterministic": True}})
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEEN: Counter[str] = Counter()
SERVER_ERRORS: list[str] = []


@pytest.fixture(scope="module")
def api_schema(nasa: tuple[pd.DataFrame, pd.DataFrame]) -> Any:
    store = seed(InMemoryStore(), nasa).store  # its own store: generated events must not leak into other tests
    app = create_app(store, None, ApiSettings(tokens=TOKENS), clock=lambda: NOW)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any) -> None:
    SEEN[case.operation.label] += 1
    response = case.call(headers=auth(WRITE))
    if response.status_code >= 500:
        SERVER_ERRORS.append(f"{case.operation.label}: {response.status_code} {response.text[:200]}")
    case.validate_response(response, checks=CHECKS)  # raises schemathesis's report of each failed check
    if response.status_code >= 400:  # a problem document (RFC 9457) that repeats its own status code
        assert response.json()["status"] == response.status_code, response.text[:200]


def test_zz_enough_cases_and_no_server_errors() -> None:
    if not SEEN:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    assert not SERVER_ERRORS, SERVER_ERRORS[:5]
    assert len(SEEN) == 12, sorted(SEEN)
    assert sum(SEEN.values()) >= 1000, dict(SEEN)
    print(f"schemathesis: {sum(SEEN.values())} cases: {dict(SEEN)}")
