"""Generate the Grafana dashboards in this folder from code: ``python dashboards/generate.py`` (``--check`` only
compares and exits 1 when a committed JSON file differs from what this script generates).

Four dashboards (Grafana schemaVersion 39, time-series panels, a ``${datasource}`` Prometheus variable and an
``__inputs`` entry for the UI import):

- ``forecaster-demand.json``      forecast vs actual with bands, forecast age, accuracy and band coverage, drift,
                                  model rollout (champion vs shadow challenger error on the same points, events);
- ``forecaster-scaling.json``     replicas wanted by the forecast vs the reactive rule vs the floor vs what runs
                                  (kube-state-metrics Deployment and HPA series), decisions and fallbacks;
- ``forecaster-resources.json``   requested (kube-state-metrics) vs predicted vs recommended vs used (cAdvisor)
                                  CPU and memory per container, throttling, OOM kills, slack and savings;
- ``forecaster-operations.json``  scheduled jobs (durations, outcomes, last success), controller leadership,
                                  cycle step durations and per-policy errors.

Queries use only the metric names of ``forecaster/contracts/metric_names.py`` (``allowed_series()``): the service's own
series and the standard kube-state-metrics and cAdvisor names listed there; ``tests/dashboards`` checks that.
Label conventions: the service's ``workload`` label is ``namespace/name`` (``contracts.ports.Workload.id``); the
kube-state-metrics series are joined to it with ``label_join`` (the HPA is assumed to be named like its
workload). The service's own labels never collide with scrape target labels (``forecaster.contracts.metric_names``:
``workload_namespace``, ``workload_pod``, ``workload_container``, ``job_name``), so the ServiceMonitors keep
``honorLabels: false``; panels that put the service's per-container series next to kube-state-metrics and cAdvisor
ones copy them to ``namespace``/``pod``/``container`` with ``label_replace`` (``as_target_labels``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
GRAFANA_VERSION = "10.4.0"
DS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24
"""Grafana's grid is 24 columns wide."""
WORKLOAD = 'workload=~"$workload"'
MODEL_KEY = 'model_key=~"$model_key"'
"""A model key: what one model serves (the service's frequency group ``freq/5min``, a controller policy)."""
CONTAINER = 'namespace=~"$namespace", pod=~"$pod", container=~"$container"'
OWN_CONTAINER = 'workload_namespace=~"$namespace", workload_pod=~"$pod", workload_container=~"$container"'
"""The same selection on the service's per-container series (``metric_names.CONTAINER_LABELS``)."""
RATE = "[$__rate_interval]"
"""Range of ``rate``/``increase`` in time-series panels: Grafana's safe window for the scrape interval."""
Panel = dict[str, Any]


# -- building blocks -------------------------------------------------------------------------------------------
def as_target_labels(expr: str) -> str:
    """``expr`` (a series of the service's per-container metrics) with ``workload_namespace``, ``workload_pod`` and
    ``workload_container`` copied to ``namespace``, ``pod`` and ``container``, the labels kube-state-metrics and
    cAdvisor series carry, so the two can be joined or aggregated together."""
    for label in ("namespace", "pod", "container"):
        expr = f'label_replace({expr}, "{label}", "$1", "workload_{label}", "(.*)")'
    return expr


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict[str, Any]:
    """One Prometheus query of a panel (``refId`` is filled in by ``_panel``)."""
    out: dict[str, Any] = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend or "__auto",
                           "range": not instant, "instant": instant}  # fmt: skip
    if table:
        out["format"] = "table"
    return out


def _panel(kind: str, title: str, description: str, targets: list[dict[str, Any]], **extra: Any) -> Panel:
    refs = [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)]
    return {"type": kind, "title": title, "description": description, "datasource": DS, "targets": refs, **extra}


def timeseries(title: str, description: str, targets: list[dict[str, Any]], unit: str = "short", *,
               bars: bool = False, soft_min: float | None = 0, max_value: float | None = None,
               overrides: list[dict[str, Any]] | None = None, thresholds: list[tuple[float, str]] | None = None,
               below: str = "transparent", stepped: bool = False) -> Panel:  # fmt: skip
    """A time-series panel: lines (or bars), legend as a table at the bottom, shared tooltip; ``thresholds``
    ``(value, colour)`` are drawn as lines and areas, ``below`` colours the area under the first one."""
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 60 if bars else 0,
        "showPoints": "never", "spanNulls": False, "lineInterpolation": "stepAfter" if stepped else "linear",
        "axisSoftMin": soft_min, "stacking": {"mode": "normal" if bars else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line+area" if thresholds else "off"},
    }  # fmt: skip
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}, "custom": custom, "unit": unit}
    if max_value is not None:
        defaults["max"] = max_value
    steps = [{"color": below, "value": None}] + [{"color": c, "value": v} for v, c in (thresholds or [])]
    defaults["thresholds"] = {"mode": "absolute", "steps": steps}
    options = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull",
               "max"]}, "tooltip": {"mode": "multi", "sort": "desc"}}  # fmt: skip
    return _panel("timeseries", title, description, targets, options=options,
                  fieldConfig={"defaults": defaults, "overrides": overrides or []})  # fmt: skip


def stat(title: str, description: str, targets: list[dict[str, Any]], unit: str = "short",
         thresholds: list[tuple[float, str]] | None = None, decimals: int | None = None,
         base: str = "green") -> Panel:  # fmt: skip
    """A single-value panel (last value), coloured by ``thresholds`` ``(value, colour)`` above a ``base`` colour."""
    steps = [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in (thresholds or [])]
    defaults: dict[str, Any] = {"color": {"mode": "thresholds"}, "unit": unit,
                                "thresholds": {"mode": "absolute", "steps": steps}}  # fmt: skip
    if decimals is not None:
        defaults["decimals"] = decimals
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value",
               "graphMode": "area", "justifyMode": "auto", "orientation": "auto", "textMode": "auto"}  # fmt: skip
    return _panel("stat", title, description, targets, options=options,
                  fieldConfig={"defaults": defaults, "overrides": []})  # fmt: skip


def table(title: str, description: str, targets: list[dict[str, Any]], unit: str = "short") -> Panel:
    """An instant-query table (one row per series, labels as columns)."""
    return _panel("table", title, description, targets, options={"showHeader": True, "cellHeight": "sm"},
                  fieldConfig={"defaults": {"unit": unit}, "overrides": []},
                  transformations=[{"id": "merge", "options": {}}])  # fmt: skip


def dashed(pattern: str, dash: str = "dash") -> dict[str, Any]:
    """Override: series whose display name matches the regex ``pattern`` are drawn dashed (or dotted)."""
    style = {"fill": "dash", "dash": [10, 10]} if dash == "dash" else {"fill": "dot", "dash": [0, 10]}
    return {"matcher": {"id": "byRegexp", "options": pattern},
            "properties": [{"id": "custom.lineStyle", "value": style}]}  # fmt: skip


def layout(rows: Iterable[tuple[str, list[tuple[Panel, int, int]]]]) -> list[Panel]:
    """Rows of ``(panel, width, height)``: a row header, then the panels left to right, wrapping at 24 columns.

    Ids are assigned in order, so every panel id is unique and grid positions never overlap by construction.
    """
    panels: list[Panel] = []
    y, next_id = 0, 1
    for title, items in rows:
        panels.append({"type": "row", "title": title, "collapsed": False, "id": next_id, "panels": [],
                       "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}})  # fmt: skip
        next_id, y = next_id + 1, y + 1
        x, row_h = 0, 0
        for panel, w, h in items:
            if x + w > WIDTH:
                x, y, row_h = 0, y + row_h, 0
            panels.append({**panel, "id": next_id, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
            next_id, x, row_h = next_id + 1, x + w, max(row_h, h)
        y += row_h
    return panels


def datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {"selected": False, "text": "Prometheus", "value": "${DS_PROMETHEUS}"}, "hide": 0,
            "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": "",
            "skipUrlSync": False}  # fmt: skip


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    """A variable filled from ``label_values(...)``; multi-valued ones offer *All* (``.*``)."""
    return {"name": name, "label": label, "type": "query", "datasource": DS, "definition": query, "query": query,
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": multi, "allValue": ".*" if multi else None,
            "current": {}, "options": [], "hide": 0, "regex": "", "skipUrlSync": False}  # fmt: skip


def dashboard(uid: str, title: str, description: str, variables: list[dict[str, Any]], panels: list[Panel],
              time_from: str = "now-24h") -> dict[str, Any]:  # fmt: skip
    kinds = sorted({p["type"] for p in panels if p["type"] != "row"})
    names = {"timeseries": "Time series", "stat": "Stat", "table": "Table"}
    requires = [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
                {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}]
    requires += [{"type": "panel", "id": k, "name": names[k], "version": ""} for k in kinds]
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "The Prometheus that scrapes "
                      "the forecaster, kube-state-metrics and the kubelets (cAdvisor)", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__elements": {},
        "__requires": requires,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": True, "icon": "external link", "includeVars": False, "keepTime": True,
                   "tags": ["forecaster"], "targetBlank": False, "title": "Forecaster dashboards", "tooltip": "",
                   "type": "dashboards", "url": ""}],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["forecaster", "kubernetes", "autoscaling"],
        "templating": {"list": variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }  # fmt: skip


# -- the dashboards --------------------------------------------------------------------------------------------
def demand_dashboard() -> dict[str, Any]:
    variables = [datasource_variable(),
                 query_variable("workload", "Workload", "label_values(forecaster_forecast, workload)"),
                 query_variable("model_key", "Model key", "label_values(forecaster_model_rollouts_total, model_key)")]
    band = f'forecaster_forecast{{{WORKLOAD}, band=~"lo-.*|hi-.*"}}'
    rows = [
        ("Forecast vs actual", [
            (timeseries("Demand: forecast vs actual, with bands",
                        "The latest forecast for each time step (solid), its 80 % band (dashed) and 95 % band "
                        "(dotted), and the observed demand. The actual should stay inside the 80 % band about 80 % "
                        "of the time; long runs above the upper edge mean demand the forecast did not expect.",
                        [target(f'forecaster_demand_actual{{{WORKLOAD}}}', "{{workload}} actual"),
                         target(f'forecaster_forecast{{{WORKLOAD}, band="ensemble"}}', "{{workload}} forecast"),
                         target(band, "{{workload}} {{band}}")],
                        overrides=[dashed(".*(lo|hi)-80$"), dashed(".*(lo|hi)-95$", "dot")]), 16, 10),
            (stat("Forecast age",
                  "Time since the latest stored forecast was issued. Older than a few refresh intervals means the "
                  "refresh job is failing and the scaling policy falls back to reactive (reason stale).",
                  [target(f"time() - forecaster_forecast_issued_timestamp_seconds{{{WORKLOAD}}}", "{{workload}}")],
                  "s", [(900, "orange"), (3600, "red")]), 8, 5),
            (stat("Actual above the upper 95 % band",
                  "Observed demand minus the forecast's hi-95 edge now; positive values mean demand is above "
                  "what the forecast thought possible (an unexpected event, or a drifted model).",
                  [target(f'forecaster_demand_actual{{{WORKLOAD}}} - on (workload) '
                          f'forecaster_forecast{{{WORKLOAD}, band="hi-95"}}', "{{workload}}")],
                  "short", [(0, "red")]), 8, 5),
            (timeseries("Forecast peak over the horizon",
                        "The largest forecast value over the stored horizon, point and upper 95 % band: the "
                        "capacity the policies are preparing for.",
                        [target(f'forecaster_forecast_peak{{{WORKLOAD}, band=~"ensemble|hi-95"}}',
                                "{{workload}} {{band}}")]), 24, 8),
        ]),
        ("Accuracy and coverage", [
            (timeseries("Realised vs backtest error (MAE)",
                        "Mean absolute error of the stored forecasts over the last evaluation window, next to the "
                        "ensemble's error in its rolling-origin backtest. Realised error well above the backtest's "
                        "is drift.",
                        [target(f"forecaster_accuracy_mae{{{WORKLOAD}}}", "{{workload}} realised"),
                         target(f"forecaster_accuracy_backtest_mae{{{WORKLOAD}}}", "{{workload}} backtest")],
                        overrides=[dashed(".*backtest$")]), 12, 8),
            (timeseries("Error ratio: realised / backtest MAE",
                        "Above the policy's drift multiple (the red line marks 2) the controller stops trusting the "
                        "forecast and falls back to reactive scaling (forecaster_drift = 1).",
                        [target(f"forecaster_accuracy_mae{{{WORKLOAD}}} / "
                                f"forecaster_accuracy_backtest_mae{{{WORKLOAD}}}", "{{workload}}")],
                        "none", thresholds=[(2, "red")]), 12, 8),
            (timeseries("Band coverage",
                        "Share of realised values inside the stored band of each level. Calibrated bands sit near "
                        "their level (0.8, 0.95); well below means bands too narrow (risky floors), well above "
                        "means too wide (costly floors).",
                        [target(f"forecaster_accuracy_coverage_ratio{{{WORKLOAD}}}", "{{workload}} {{level}} %")],
                        "percentunit", max_value=1, thresholds=[(0.8, "orange"), (0.95, "green")]), 16, 8),
            (timeseries("Drift fallback active",
                        "1 while recent error exceeds the drift multiple of the backtest error: the workload is "
                        "scaled reactively until the error recovers or the model is refitted.",
                        [target(f"max by (workload) (forecaster_drift{{{WORKLOAD}}})", "{{workload}}")], "none",
                        max_value=1, stepped=True), 8, 8),
        ]),
        ("Model rollout: champion vs challenger", [
            (timeseries("Champion vs challenger error (same points)",
                        "While a refit runs in shadow, the serving champion and the challenger are scored on the "
                        "same actuals: mean absolute error (wape) and mean pinball loss of the bands (pinball), each "
                        "over the mean demand. The challenger is promoted only when its loss is lower by the margin "
                        "on a paired test, and kept out when it is worse (a refit on a bad day of data).",
                        [target(f'forecaster_model_error_ratio{{{MODEL_KEY}, role="champion"}}',
                                "{{model_key}} champion {{score}}"),
                         target(f'forecaster_model_error_ratio{{{MODEL_KEY}, role="challenger"}}',
                                "{{model_key}} challenger {{score}}")],
                        "percentunit", overrides=[dashed(".*challenger.*")]), 12, 8),
            (timeseries("Champion vs challenger band coverage",
                        "Share of the scored actuals inside each model's band: calibrated bands sit near their "
                        "level.",
                        [target(f"forecaster_model_coverage_ratio{{{MODEL_KEY}}}",
                                "{{model_key}} {{role}} {{level}} %")],
                        "percentunit", max_value=1, overrides=[dashed(".*challenger.*")]), 6, 8),
            (timeseries("Rollout events",
                        "Refits fitted into shadow (challenger), promoted, kept out (rejected), superseded by a "
                        "newer refit before a verdict, and operator rollbacks (forecaster model rollback). The "
                        "model history with the reasons is at GET /v1/models and on the explorer page.",
                        [target(f"sum by (model_key, outcome) (increase(forecaster_model_rollouts_total"
                                f"{{{MODEL_KEY}}}{RATE}))", "{{model_key}} {{outcome}}")],
                        bars=True), 6, 8),
        ]),
    ]  # fmt: skip
    return dashboard("forecaster-demand", "Forecaster / Demand: forecast vs actual",
                     "Per workload: the latest forecast and its bands against observed demand, forecast age, "
                     "accuracy, band coverage and drift.", variables, layout(rows))  # fmt: skip


def _kube(metric: str, name_label: str) -> str:
    """A kube-state-metrics series for the selected workloads, given a ``workload`` label = ``namespace/name``.

    Parenthesised because ``and`` has the lowest precedence of PromQL's binary operators: ``x and on (workload) y - z``
    would subtract ``z`` from ``y``, not from the filtered ``x``."""
    joined = f'label_join({metric}{{namespace=~"$namespace"}}, "workload", "/", "namespace", "{name_label}")'
    return f"({joined} and on (workload) forecaster_replicas_forecast{{{WORKLOAD}}})"  # parenthesised: `and` binds last


def scaling_dashboard() -> dict[str, Any]:
    variables = [datasource_variable(),
                 query_variable("namespace", "Namespace", "label_values(kube_deployment_status_replicas, namespace)"),
                 query_variable("workload", "Workload",
                                'label_values(forecaster_replicas_forecast{workload=~"($namespace)/.*"}, workload)')]
    rows = [
        ("Replicas", [
            (timeseries("Replicas: forecast vs reactive vs floor vs running",
                        "What the forecast asks for over the lead window, what the reactive HPA rule wants for "
                        "current demand, the minReplicas floor the policy recommends (Recommend) or writes (Auto), "
                        "and the Deployment's replicas (kube-state-metrics). Running replicas should follow the "
                        "higher of floor and reactive; a floor far above reactive for long stretches is cost.",
                        [target(f"forecaster_replicas_forecast{{{WORKLOAD}}}", "{{workload}} forecast"),
                         target(f"forecaster_replicas_reactive{{{WORKLOAD}}}", "{{workload}} reactive rule"),
                         target(f"forecaster_replicas_floor{{{WORKLOAD}}}", "{{workload}} floor ({{mode}})"),
                         target(_kube("kube_deployment_status_replicas", "deployment"), "{{workload}} running"),
                         target(_kube("kube_deployment_status_replicas_ready", "deployment"), "{{workload}} ready")],
                        overrides=[dashed(".*floor.*"), dashed(".*reactive rule$", "dot")], stepped=True), 24, 10),
            (timeseries("HPA: min, desired, current and max replicas",
                        "The HPA's own view (kube-state-metrics; the HPA is assumed to be named like its workload). "
                        "minReplicas moves with the floor in Auto mode; desired pinned at max means the workload "
                        "needs a higher maxReplicas.",
                        [target(_kube("kube_horizontalpodautoscaler_spec_min_replicas", "horizontalpodautoscaler"),
                                "{{workload}} min"),
                         target(_kube("kube_horizontalpodautoscaler_status_desired_replicas",
                                      "horizontalpodautoscaler"), "{{workload}} desired"),
                         target(_kube("kube_horizontalpodautoscaler_status_current_replicas",
                                      "horizontalpodautoscaler"), "{{workload}} current"),
                         target(_kube("kube_horizontalpodautoscaler_spec_max_replicas", "horizontalpodautoscaler"),
                                "{{workload}} max")],
                        overrides=[dashed(".* (min|max)$")], stepped=True), 12, 9),
            (timeseries("Ready replicas minus what the reactive rule wants",
                        "Below zero, fewer pods are ready than current demand needs at the HPA target: "
                        "under-provisioned (pods still starting, or a floor that came too late).",
                        [target(f'{_kube("kube_deployment_status_replicas_ready", "deployment")} - on (workload) '
                                f"forecaster_replicas_reactive{{{WORKLOAD}}}", "{{workload}}")],
                        soft_min=None, thresholds=[(0, "transparent")], below="red", stepped=True), 12, 9),
        ]),
        ("Decisions and fallbacks", [
            (timeseries("Decisions by outcome",
                        "Scaling decisions recorded per interval: changed (a new floor written), unchanged, dry_run "
                        "(Recommend mode) or failed (the write was refused; see the operations dashboard).",
                        [target(f'sum by (outcome) (increase(forecaster_decisions_total{{{WORKLOAD}, kind="replicas"}}'
                                "[$__rate_interval]))", "{{outcome}}")], bars=True), 12, 8),
            (timeseries("Fallbacks to reactive by reason",
                        "Decisions that fell back to reactive behaviour: stale (no fresh forecast), uncovered "
                        "(horizon too short for the lead time), breaker_open, drift or error. Any sustained rate "
                        "means the predictive floor is not in force.",
                        [target(f"sum by (workload, reason) (increase(forecaster_fallbacks_total{{{WORKLOAD}}}"
                                "[$__rate_interval]))", "{{workload}} {{reason}}")], bars=True), 12, 8),
            (stat("Decisions in the time range",
                  "Replica decisions per mode over the dashboard's time range.",
                  [target(f'sum by (mode) (increase(forecaster_decisions_total{{{WORKLOAD}, kind="replicas"}}'
                          "[$__range]))", "{{mode}}", instant=True)], decimals=0), 12, 5),
            (stat("Fallbacks in the time range",
                  "All fallbacks to reactive scaling over the dashboard's time range; should be 0 in steady state.",
                  [target(f"sum(increase(forecaster_fallbacks_total{{{WORKLOAD}}}[$__range]))", "fallbacks",
                          instant=True)], thresholds=[(1, "orange"), (10, "red")], decimals=0), 12, 5),
        ]),
    ]  # fmt: skip
    return dashboard("forecaster-scaling", "Forecaster / Replicas: forecast vs reactive vs running",
                     "Per workload: replicas the forecast wants, the reactive rule, the HPA floor and bounds, what "
                     "runs, and the decisions and fallbacks behind them.", variables, layout(rows))  # fmt: skip


def resources_dashboard() -> dict[str, Any]:
    variables = [datasource_variable(),
                 query_variable("namespace", "Namespace",
                                "label_values(forecaster_predicted_cpu_cores, workload_namespace)"),
                 query_variable("pod", "Pod", 'label_values(forecaster_predicted_cpu_cores'
                                '{workload_namespace=~"$namespace"}, workload_pod)'),
                 query_variable("container", "Container", 'label_values(forecaster_predicted_cpu_cores'
                                '{workload_namespace=~"$namespace", workload_pod=~"$pod"}, '
                                'workload_container)')]  # fmt: skip
    by = "sum by (namespace, pod, container)"
    legend = "{{pod}}/{{container}}"

    def resource_panel(resource: str, unit: str, predicted: str, recommended: str, used: str) -> Panel:
        return timeseries(
            f"{resource.upper() if resource == 'cpu' else 'Memory'}: requested vs predicted vs recommended vs used",
            f"Per container: the {resource} request in force (kube-state-metrics), the forecaster's predicted use "
            "for the next window, its recommended target with lower and upper bounds, and the actual use "
            "(cAdvisor). The gap between request and use is slack paid for; use above the recommended target "
            + ("would be throttled." if resource == "cpu" else "would risk an OOM kill."),
            [target(f'{by} (kube_pod_container_resource_requests{{{CONTAINER}, resource="{resource}"}})',
                    f"{legend} request"),
             target(as_target_labels(f"{predicted}{{{OWN_CONTAINER}}}"), f"{legend} predicted"),
             target(as_target_labels(f'{recommended}{{{OWN_CONTAINER}, bound="target"}}'), f"{legend} target"),
             target(as_target_labels(f'{recommended}{{{OWN_CONTAINER}, bound=~"lower|upper"}}'),
                    f"{legend} {{{{bound}}}}"),
             target(used, f"{legend} used")],
            unit, overrides=[dashed(".*(lower|upper)$", "dot"), dashed(".*predicted$")])

    real = 'container!="", container!="POD"'  # not the pod-level cgroup ("") nor the pause container
    cpu_used = f"{by} (rate(container_cpu_usage_seconds_total{{{CONTAINER}, {real}}}{RATE}))"
    mem_used = f"max by (namespace, pod, container) (container_memory_working_set_bytes{{{CONTAINER}, {real}}})"
    ns = 'namespace=~"$namespace"'
    own_ns = 'workload_namespace=~"$namespace"'

    def recommended_target(metric: str, selector: str = own_ns) -> str:
        return as_target_labels(f'{metric}{{{selector}, bound="target"}}')
    requests = {r: f'sum(kube_pod_container_resource_requests{{{ns}, resource="{r}"}})' for r in ("cpu", "memory")}
    rows = [
        ("CPU", [
            (resource_panel("cpu", "short", "forecaster_predicted_cpu_cores", "forecaster_recommendation_cpu_cores",
                            cpu_used), 16, 10),
            (timeseries("CPU throttling",
                        "Share of CFS periods in which the container was throttled (cAdvisor). Sustained throttling "
                        "after a request or limit cut means the cut went too far.",
                        [target(f"{by} (rate(container_cpu_cfs_throttled_periods_total{{{CONTAINER}}}{RATE})) "
                                f"/ {by} (rate(container_cpu_cfs_periods_total{{{CONTAINER}}}{RATE}))", legend)],
                        "percentunit", max_value=1, thresholds=[(0.25, "red")]), 8, 10),
        ]),
        ("Memory", [
            (resource_panel("memory", "bytes", "forecaster_predicted_memory_bytes",
                            "forecaster_recommendation_memory_bytes", mem_used), 16, 10),
            (timeseries("Restarts and OOM kills",
                        "Container restarts per interval, and 1 while the last termination reason is OOMKilled "
                        "(kube-state-metrics keeps only the last reason). An OOM kill after a memory cut is the "
                        "signal to restore the request (the recommender's OOM bump does this).",
                        [target(f"{by} (increase(kube_pod_container_status_restarts_total{{{CONTAINER}}}{RATE}))",
                                f"{legend} restarts"),
                         target("max by (namespace, pod, container) (kube_pod_container_status_last_terminated_reason"
                                f'{{{CONTAINER}, reason="OOMKilled"}})', f"{legend} last OOMKilled")],
                        bars=True), 8, 10),
        ]),
        ("Slack and savings (selected namespaces)", [
            (stat("CPU slack now", "1 - used / requested CPU over all containers of the selected namespaces: the "
                  "share of requested CPU nobody uses.",
                  [target(f"1 - sum(rate(container_cpu_usage_seconds_total{{{ns}, {real}}}{RATE})) "
                          f"/ {requests['cpu']}", "CPU slack")],
                  "percentunit", [(0.5, "orange"), (0.8, "red")]), 6, 6),
            (stat("Memory slack now", "1 - working set / requested memory over the selected namespaces.",
                  [target(f"1 - sum(container_memory_working_set_bytes{{{ns}, {real}}}) / {requests['memory']}",
                          "memory slack")],
                  "percentunit", [(0.5, "orange"), (0.8, "red")]), 6, 6),
            (stat("CPU the recommendations would free",
                  "Requested minus recommended CPU (target) over the containers that have a recommendation; "
                  "negative means they need more.",
                  [target(f'sum(kube_pod_container_resource_requests{{{ns}, resource="cpu"}} and on (namespace, pod, '
                          f'container) {recommended_target("forecaster_recommendation_cpu_cores")}) - '
                          f'sum(forecaster_recommendation_cpu_cores{{{own_ns}, bound="target"}})', "cores")],
                  "short", decimals=2), 6, 6),
            (stat("Memory the recommendations would free",
                  "Requested minus recommended memory (target) over the containers that have a recommendation.",
                  [target(f'sum(kube_pod_container_resource_requests{{{ns}, resource="memory"}} and on (namespace, '
                          f'pod, container) {recommended_target("forecaster_recommendation_memory_bytes")}) - '
                          f'sum(forecaster_recommendation_memory_bytes{{{own_ns}, bound="target"}})', "bytes")],
                  "bytes"), 6, 6),
            (table("Requested vs recommended per namespace",
                   "Per namespace: requested CPU (cores) and memory (bytes) against the sum of the recommended "
                   "targets.",
                   [target(f'sum by (namespace) (kube_pod_container_resource_requests{{{ns}, resource="cpu"}})',
                           "requested cores", instant=True, table=True),
                    target(f'sum by (namespace) ({recommended_target("forecaster_recommendation_cpu_cores")})',
                           "recommended cores", instant=True, table=True),
                    target(f'sum by (namespace) (kube_pod_container_resource_requests{{{ns}, resource="memory"}})',
                           "requested bytes", instant=True, table=True),
                    target(f'sum by (namespace) ({recommended_target("forecaster_recommendation_memory_bytes")})',
                           "recommended bytes", instant=True, table=True)]), 24, 8),
        ]),
    ]  # fmt: skip
    return dashboard("forecaster-resources", "Forecaster / Resources: requested vs predicted vs used",
                     "Per container: requests, the forecaster's predicted use and recommendations, actual use "
                     "(cAdvisor), throttling and OOM kills; slack and savings per namespace.", variables,
                     layout(rows))  # fmt: skip


def operations_dashboard() -> dict[str, Any]:
    variables = [datasource_variable(),
                 query_variable("job", "Job", "label_values(forecaster_job_runs_total, job_name)")]
    job = 'job_name=~"$job"'
    rows = [
        ("Scheduled jobs", [
            (timeseries("Job duration p50 / p95",
                        "Duration quantiles of each scheduled job (refresh, refit, accuracy, controller) from the "
                        "duration histogram. A refresh that takes longer than its interval makes forecasts stale.",
                        [target(f"histogram_quantile({q}, sum by (le, job_name) "
                                f"(rate(forecaster_job_duration_seconds_bucket{{{job}}}{RATE})))",
                                f"{{{{job_name}}}} p{p}")
                         for q, p in ((0.95, 95), (0.5, 50))], "s", overrides=[dashed(".*p50$")]), 12, 8),
            (timeseries("Job runs by outcome",
                        "Runs per interval by outcome; any failure bar deserves a look at the service's logs.",
                        [target(f"sum by (job_name, outcome) (increase(forecaster_job_runs_total{{{job}}}{RATE}))",
                                "{{job_name}} {{outcome}}")], bars=True), 12, 8),
            (stat("Time since last success",
                  "Per job, time since its last successful run. Older than two intervals: the job is failing or "
                  "not scheduled (is this replica the leader?).",
                  [target(f"time() - forecaster_job_last_success_timestamp_seconds{{{job}}}", "{{job_name}}")],
                  "s", [(1800, "orange"), (7200, "red")]), 12, 6),
            (stat("Failure ratio in the time range",
                  "Failed runs / all runs per job over the dashboard's time range.",
                  [target(f'sum by (job_name) (increase(forecaster_job_runs_total{{{job}, outcome="failure"}}'
                          f'[$__range])) / '
                          f"sum by (job_name) (increase(forecaster_job_runs_total{{{job}}}[$__range]))", "{{job_name}}",
                          instant=True)], "percentunit", [(0.01, "orange"), (0.1, "red")]), 12, 6),
            (timeseries("Model age per workload",
                        "Time since the newest fit covering each workload (its serving model or a challenger in "
                        "shadow). The daily refit keeps it under a day; a missed or failed refit runs again at once, "
                        "so a line past 36 h (the ForecasterModelStale alert) means the refit job is not working.",
                        [target("max by (workload) (forecaster_model_age_seconds)", "{{workload}}")], "s"), 24, 8),
        ]),
        ("Controller", [
            (stat("Leaders now",
                  "Replicas holding the controller Lease: exactly 1 is healthy; 0 means nobody acts (policies "
                  "frozen), more than 1 should never happen.",
                  [target("sum(forecaster_controller_leader)", "leaders")], "none",
                  [(1, "green"), (2, "red")], decimals=0, base="red"), 6, 6),
            (timeseries("Leader by replica",
                        "1 while a replica holds the Lease. Frequent hand-overs point to Lease renewal failures "
                        "(API server latency, CPU starvation).",
                        [target("max by (identity) (forecaster_controller_leader)", "{{identity}}")], "none",
                        max_value=1, stepped=True), 18, 6),
            (timeseries("Cycle step duration p95",
                        "95th percentile duration of each named step of a controller cycle (read metrics, "
                        "forecast, decide, write, record).",
                        [target("histogram_quantile(0.95, sum by (le, step) "
                                "(rate(forecaster_controller_step_duration_seconds_bucket[$__rate_interval])))",
                                "{{step}}")], "s"), 12, 8),
            (timeseries("Mean cycle step duration",
                        "Mean duration of each step over the interval (sum / count of the histogram).",
                        [target(f"sum by (step) (rate(forecaster_controller_step_duration_seconds_sum{RATE})) / "
                                f"sum by (step) (rate(forecaster_controller_step_duration_seconds_count{RATE}))",
                                "{{step}}")], "s"), 12, 8),
            (timeseries("Policy errors by policy and step",
                        "Policies whose cycle failed at a step; the other policies carry on. A policy that fails "
                        "every cycle is stuck (check its PredictiveScalingPolicy status and events).",
                        [target("sum by (policy, step) (increase(forecaster_controller_policy_errors_total"
                                "[$__rate_interval]))", "{{policy}} at {{step}}")], bars=True), 12, 8),
            (table("Policy errors and failed decisions in the time range",
                   "Errors per policy and step, and failed decision writes per workload, over the time range.",
                   [target("sort_desc(sum by (policy, step) (increase(forecaster_controller_policy_errors_total"
                           "[$__range])) > 0)", "errors", instant=True, table=True),
                    target('sort_desc(sum by (workload, kind) (increase(forecaster_decisions_total{outcome="failed"}'
                           "[$__range])) > 0)", "failed decisions", instant=True, table=True)]), 12, 8),
        ]),
        ("Exporter cardinality and KEDA scaler", [
            (stat("Workloads exported",
                  "Workloads whose per-workload gauges /metrics exported at its last refresh (at most "
                  "metrics_max_workloads, 10,000 by default).",
                  [target("max(forecaster_exporter_workloads)", "exported", instant=True)], "none", decimals=0),
             12, 6),
            (stat("Workloads dropped by the limit",
                  "Workloads left out of /metrics refreshes by the cardinality limit over the time range; anything "
                  "above 0 means some workloads have no forecast or accuracy series: raise metrics_max_workloads or "
                  "split the fleet.",
                  [target("sum(increase(forecaster_exporter_workloads_dropped_total[$__range]))", "dropped",
                          instant=True)], "none", [(1, "red")], decimals=0), 12, 6),
            (timeseries("KEDA external scaler calls",
                        "gRPC calls of KEDA's external scaler protocol by method and outcome (ok, not_found: the "
                        "ScaledObject names no known policy, invalid, error). KEDA polls GetMetrics every "
                        "pollingInterval per ScaledObject; errors make KEDA fall back to its other triggers.",
                        [target(f"sum by (method, outcome) (increase(forecaster_keda_requests_total{RATE}))",
                                "{{method}} {{outcome}}")], bars=True), 24, 8),
        ]),
    ]  # fmt: skip
    return dashboard("forecaster-operations", "Forecaster / Jobs and controller",
                     "Health of the forecaster service: scheduled jobs, controller leadership, cycle step "
                     "durations and per-policy errors.", variables, layout(rows), "now-6h")  # fmt: skip


DASHBOARDS = {
    "forecaster-demand.json": demand_dashboard,
    "forecaster-scaling.json": scaling_dashboard,
    "forecaster-resources.json": resources_dashboard,
    "forecaster-operations.json": operations_dashboard,
}
"""File name -> builder."""


def render(doc: dict[str, Any]) -> str:
    """The JSON text written to disk (2-space indent, trailing newline)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a file is out of date")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = args.out / name, render(build())
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
