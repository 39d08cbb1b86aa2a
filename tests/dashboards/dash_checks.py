"""Checks of a Grafana dashboard document for the dashboard tests; each returns a list of problems (empty = fine),
so the tests can show that a broken dashboard is caught as well as that the committed ones pass."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from dash_promql import PromQLError, metric_names, variable_query_metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
REQUIRED_KEYS = ("__inputs", "__requires", "annotations", "editable", "panels", "schemaVersion", "tags",
                 "templating", "time", "timezone", "title", "uid", "version")  # fmt: skip
PANEL_TYPES = frozenset({"timeseries", "stat", "table", "bargauge", "gauge", "state-timeline"})
GRID_WIDTH = 24
BUILTIN_VARIABLES = frozenset({"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                               "__range_ms", "__dashboard", "__from", "__to", "__name", "__org", "__user",
                               "timeFilter", "__timeFilter"})  # fmt: skip
IMPORT_INPUTS = frozenset({"DS_PROMETHEUS"})
"""``${DS_PROMETHEUS}`` is an ``__inputs`` placeholder filled in by Grafana's import, not a template variable."""
_VARIABLE = re.compile(
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}"  # ${name} or ${name:format}
    r"|\$([A-Za-z_][A-Za-z0-9_]*)"  # $name
    r"|\[\[([A-Za-z_][A-Za-z0-9_]*)"  # [[name]] (deprecated syntax)
)


def load_generator() -> ModuleType:
    """``dashboards/generate.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def all_panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` of every panel target."""
    for panel in all_panels(doc):
        for t in panel.get("targets", []):
            yield f"panel {panel.get('id')} {panel.get('title')!r} target {t.get('refId')}", str(t.get("expr", ""))


def structure_problems(doc: dict[str, Any]) -> list[str]:
    """Required keys, schema version, import input, unique panel ids, datasource and targets on every panel."""
    problems = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in doc]
    if doc.get("schemaVersion") != 39:
        problems.append(f"schemaVersion is {doc.get('schemaVersion')!r}, expected 39")
    if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in doc.get("__inputs", [])):
        problems.append("__inputs lacks the DS_PROMETHEUS datasource input")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(doc.get("uid", ""))):
        problems.append(f"uid {doc.get('uid')!r} is not 1-40 characters of [A-Za-z0-9_-]")
    ids = [p.get("id") for p in all_panels(doc)]
    dupes = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dupes or None in ids:
        problems.append(f"panel ids must be unique and set: duplicates {dupes}, missing {ids.count(None)}")
    required_types = {r["id"] for r in doc.get("__requires", []) if r.get("type") == "panel"}
    for panel in all_panels(doc):
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("type") == "row":
            if panel.get("targets"):
                problems.append(f"{name}: a row has no queries")
            continue
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{name}: type {panel.get('type')!r} is not one of {sorted(PANEL_TYPES)}")
        elif panel["type"] not in required_types:
            problems.append(f"{name}: type {panel['type']!r} missing from __requires")
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"{name}: datasource {panel.get('datasource')!r} is not {DATASOURCE}")
        if not str(panel.get("title", "")).strip() or not str(panel.get("description", "")).strip():
            problems.append(f"{name}: needs a title and a description (what to read in it)")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{name}: no target")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.append(f"{name}: refIds {refs} must be unique and set")
        for t in targets:
            if not str(t.get("expr", "")).strip():
                problems.append(f"{name} target {t.get('refId')}: empty expr")
            if t.get("datasource") != DATASOURCE:
                problems.append(f"{name} target {t.get('refId')}: datasource {t.get('datasource')!r}")
    return problems


def grid_problems(doc: dict[str, Any]) -> list[str]:
    """Every top-level panel has an integer gridPos inside the 24-column grid, and no two overlap."""
    problems, boxes = [], []
    for panel in doc.get("panels", []):
        g = panel.get("gridPos", {})
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")):
            problems.append(f"{name}: gridPos {g} needs integer x, y, w, h")
            continue
        if g["x"] < 0 or g["y"] < 0 or g["w"] < 1 or g["h"] < 1 or g["x"] + g["w"] > GRID_WIDTH:
            problems.append(f"{name}: gridPos {g} is outside the {GRID_WIDTH}-column grid")
        for other, o in boxes:
            apart_x = g["x"] + g["w"] <= o["x"] or o["x"] + o["w"] <= g["x"]
            apart_y = g["y"] + g["h"] <= o["y"] or o["y"] + o["h"] <= g["y"]
            if not (apart_x or apart_y):
                problems.append(f"{name} overlaps {other}")
        boxes.append((name, g))
    return problems


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def referenced_variables(value: Any) -> set[str]:
    """Template variables referenced anywhere in ``value`` (``$x``, ``${x}``, ``${x:format}``, ``[[x]]``)."""
    found = set()
    for text in _strings(value):
        for match in _VARIABLE.finditer(text):
            found.add(next(g for g in match.groups() if g))
    return found - BUILTIN_VARIABLES - IMPORT_INPUTS


def variable_problems(doc: dict[str, Any]) -> list[str]:
    """A Prometheus ``datasource`` variable; unique names; every referenced variable defined and every defined one
    used (panels, or another variable's query)."""
    variables = doc.get("templating", {}).get("list", [])
    names = [v.get("name") for v in variables]
    problems = []
    if len(set(names)) != len(names):
        problems.append(f"variable names repeat: {names}")
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problems.append("no 'datasource' variable of type datasource for prometheus")
    used = referenced_variables(doc.get("panels", [])) | referenced_variables(variables)
    problems += [f"variable ${n} is referenced but not defined" for n in sorted(used - set(names))]
    problems += [f"variable ${n} is defined but never used" for n in sorted(set(names) - used)]
    return problems


def metric_problems(doc: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    """Every panel query and variable query reads at least one metric, and only ``allowed`` ones."""
    problems = []
    checks = list(queries(doc))
    checks += [(f"variable ${v.get('name')}", str(v.get("query"))) for v in doc.get("templating", {}).get("list", [])
               if v.get("type") == "query"]  # fmt: skip
    for where, expr in checks:
        try:
            names = variable_query_metrics(expr) if where.startswith("variable") else metric_names(expr)
        except PromQLError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not names:
            problems.append(f"{where}: reads no metric: {expr!r}")
        unknown = sorted(names - allowed)
        if unknown:
            problems.append(f"{where}: metric(s) {unknown} are not exported by the service nor standard "
                            f"kube-state-metrics/cAdvisor names (contracts.metric_names): {expr!r}")  # fmt: skip
    return problems


def all_problems(doc: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    return structure_problems(doc) + grid_problems(doc) + variable_problems(doc) + metric_problems(doc, allowed)
