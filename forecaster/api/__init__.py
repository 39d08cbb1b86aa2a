"""The forecast HTTP API (FastAPI) and its explorer page: ``create_app(store, telemetry, settings)``.

Modules: ``app`` (factory), ``config`` (``ApiSettings``), ``context`` (per-app state), ``auth`` (bearer tokens and
scopes), ``problems`` (RFC 9457 errors), ``limits`` (body size), ``schemas`` / ``schemas_whatif`` (bodies),
``convert`` (records <-> bodies), ``params`` (shared parameters), ``gauges`` (``/metrics`` values from the store),
``whatif`` (scenario replay), ``routes_*`` (one group of endpoints each), ``static/`` (the page).

Not pure (FastAPI). Called by ``forecaster serve`` (``forecaster.cli.serve``), tests and ``benchmarks/api_load.py``.
"""

from forecaster.api.app import create_app
from forecaster.api.config import ApiSettings, api_settings, parse_tokens

__all__ = ["ApiSettings", "api_settings", "create_app", "parse_tokens"]
