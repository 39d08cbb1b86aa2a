"""Package-level contracts: signals never imports forecaster; pure modules import no outside-world client;
every module has a docstring; the public surface is locked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import signals

ROOT = Path(signals.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))
CLIENTS = {
    "kubernetes",
    "fastapi",
    "apscheduler",
    "httpx",
    "requests",
    "prometheus_client",
    "sqlalchemy",
    "urllib3",
}
CLIENTS |= {"typer", "rich", "socket", "http", "aiohttp"}
IMPURE = {"registry.py", "files.py", "__init__.py"}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_never_imports_forecaster(path: Path) -> None:
    assert not [m for m in _imports(path) if m.split(".")[0] == "forecaster"]


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_module_docstring_and_size(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    assert len(path.read_text().splitlines()) < 600


PURE = [p for p in MODULES if p.name not in IMPURE and "sources" not in p.parts]


@pytest.mark.parametrize("path", PURE, ids=[p.name for p in PURE])
def test_pure_modules_import_no_clients(path: Path) -> None:
    roots = {m.split(".")[0] for m in _imports(path)}
    assert not roots & CLIENTS
    assert (
        "signals.sources.files" not in _imports(path) or path.name == "events.py"
    )  # lazy, inside load_events


def test_public_surface() -> None:
    assert sorted(signals.__all__) == [
        "EVENT_KINDS",
        "EventSource",
        "EventsError",
        "LeakageError",
        "SignalSource",
        "SignalsError",
        "SourceRegistry",
        "assert_no_future",
        "check_lags",
        "event_features",
        "events_for",
        "holiday_events",
        "lagged_features",
        "load_events",
        "load_signals",
        "to_grid",
        "validate_events",
        "validate_signals",
    ]
    assert all(hasattr(signals, name) for name in signals.__all__)
    assert signals.EVENT_KINDS == ("campaign", "launch", "sale", "holiday", "custom")
