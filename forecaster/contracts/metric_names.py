"""Names, types and labels of every Prometheus metric the service exports: the one list both sides read.

``forecaster.api`` builds its ``prometheus_client`` collectors from ``EXPORTED`` (never ad-hoc strings) and the
dashboard tests check that every Grafana query uses only these names, the standard kube-state-metrics and cAdvisor
names below, or PromQL functions. Histograms also expose ``_bucket``, ``_sum`` and ``_count`` series and counters
``_total``; ``series_names`` lists them.

Conventions (https://prometheus.io/docs/practices/naming/), checked by ``tests/test_metric_names.py``:

- base units in names (``_seconds``, ``_bytes``, ``_cores``), ``_ratio`` for a fraction in 0..1, ``_timestamp_seconds``
  for Unix times; counters are declared without ``_total`` (``prometheus_client`` appends it);
- no label collides with a target label Prometheus or the Prometheus Operator attaches at scrape time
  (``TARGET_LABELS``: ``job``, ``instance``, ``namespace``, ``pod``, ``container``, ``service``, ``endpoint``), so the
  ServiceMonitors keep ``honorLabels: false`` and no series gets an ``exported_`` label. What a metric says *about* a
  workload is labelled ``workload`` (``namespace/name``), ``workload_namespace``, ``workload_pod`` (the workload's pod
  name prefix) and ``workload_container``; scheduled jobs are ``job_name``;
- cardinality: per-workload series are bounded. The API exports at most ``ApiSettings.metrics_max_workloads``
  workloads (default ``MAX_EXPORTED_WORKLOADS``, 10,000; at about 20 series each, some 200,000 series); the workloads
  beyond it are skipped at each refresh and counted in ``forecaster_exporter_workloads_dropped_total``, never dropped
  silently. The controller exports one set per PredictiveScalingPolicy and the jobs one per configured workload.

Pure: standard library only (no ``prometheus_client`` here, so pure code and tests may import it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: Prometheus name (counters without ``_total``), kind, label names and help text."""

    name: str
    kind: str  # "gauge" | "counter" | "histogram"
    labels: tuple[str, ...]
    help: str


TARGET_LABELS: tuple[str, ...] = ("job", "instance", "namespace", "pod", "container", "service", "endpoint")
"""Labels Prometheus (``job``, ``instance``) and the Prometheus Operator's ServiceMonitor/PodMonitor relabelling
(``namespace``, ``pod``, ``container``, ``service``, ``endpoint``) attach to every scraped series: no exported metric
may use them."""
CONTAINER_LABELS: tuple[str, ...] = ("workload_namespace", "workload_pod", "workload_container")
"""Labels of the per-container right-sizing metrics: the workload's namespace, pod name prefix and container."""
MAX_EXPORTED_WORKLOADS = 10_000
"""Default cardinality limit of the API's per-workload gauges (module docstring)."""

EXPORTED: tuple[MetricSpec, ...] = (
    # -- forecasts (latest stored forecast per workload) --------------------------------------------------------
    MetricSpec("forecaster_forecast", "gauge", ("workload", "band"),
               "Latest forecast for the current time step; band is ensemble, lo-80, hi-80, lo-95, hi-95 or a member"),
    MetricSpec("forecaster_forecast_peak", "gauge", ("workload", "band"),
               "Largest forecast value over the stored horizon, per band"),
    MetricSpec("forecaster_forecast_issued_timestamp_seconds", "gauge", ("workload",),
               "Issue time of the latest stored forecast (Unix seconds)"),
    MetricSpec("forecaster_demand_actual", "gauge", ("workload",),
               "Latest observed demand of the workload, in the forecast's units"),
    # -- accuracy ------------------------------------------------------------------------------------------------
    MetricSpec("forecaster_accuracy_mae", "gauge", ("workload",),
               "Realised mean absolute error of stored forecasts over the last evaluation window"),
    MetricSpec("forecaster_accuracy_backtest_mae", "gauge", ("workload",),
               "Mean absolute error of the ensemble in its rolling-origin backtest"),
    MetricSpec("forecaster_accuracy_coverage_ratio", "gauge", ("workload", "level"),
               "Fraction of realised values inside the stored band of this level (0..1)"),
    MetricSpec("forecaster_drift", "gauge", ("workload",),
               "1 when recent error exceeds the drift multiple of the backtest error (fallback active), else 0"),
    # -- model rollout (champion vs shadow challenger, forecaster.cycle.rollout) -----------------------------------
    MetricSpec("forecaster_model_error_ratio", "gauge", ("model_key", "role", "score"),
               "Error of the serving champion and of the shadow challenger on the same scored points, over the mean "
               "actual: score wape (mean absolute error) or pinball (mean pinball loss of the stated quantiles)"),
    MetricSpec("forecaster_model_coverage_ratio", "gauge", ("model_key", "role", "level"),
               "Fraction of scored actuals inside the band of this level, champion and challenger on the same points "
               "(0..1)"),
    MetricSpec("forecaster_model_rollouts", "counter", ("model_key", "outcome"),
               "Model rollout events per model key (workload group or policy); outcome challenger|promoted|rejected|"
               "superseded|rolled_back"),
    # -- scaling decisions ---------------------------------------------------------------------------------------
    MetricSpec("forecaster_replicas_forecast", "gauge", ("workload",),
               "Replicas the forecast asks for over the lead window"),
    MetricSpec("forecaster_replicas_reactive", "gauge", ("workload",),
               "Replicas the reactive HPA rule wants now"),
    MetricSpec("forecaster_replicas_floor", "gauge", ("workload", "mode"),
               "HPA minReplicas recommended (Recommend) or written (Auto) by the policy"),
    MetricSpec("forecaster_decisions", "counter", ("workload", "kind", "mode", "outcome"),
               "Decisions recorded; kind replicas|resources, outcome changed|unchanged|dry_run|failed"),
    MetricSpec("forecaster_fallbacks", "counter", ("workload", "reason"),
               "Decisions that fell back to reactive behaviour; reason stale|uncovered|breaker_open|drift|error"),
    # -- resources (right-sizing) --------------------------------------------------------------------------------
    MetricSpec("forecaster_recommendation_cpu_cores", "gauge", (*CONTAINER_LABELS, "bound"),
               "Recommended CPU request (cores); bound is target, lower, upper or uncapped"),
    MetricSpec("forecaster_recommendation_memory_bytes", "gauge", (*CONTAINER_LABELS, "bound"),
               "Recommended memory request (bytes); bound is target, lower, upper or uncapped"),
    MetricSpec("forecaster_predicted_cpu_cores", "gauge", CONTAINER_LABELS,
               "Actual CPU use (p90, cores) over the next window: forecast under the forecaster policy, else the "
               "last window's"),
    MetricSpec("forecaster_predicted_memory_bytes", "gauge", CONTAINER_LABELS,
               "Actual memory peak (bytes) over the next window: forecast under the forecaster policy, else the "
               "last window's"),
    # -- jobs and controller -------------------------------------------------------------------------------------
    MetricSpec("forecaster_job_duration_seconds", "histogram", ("job_name",),
               "Duration of scheduled jobs (refresh, refit, accuracy, controller)"),
    MetricSpec("forecaster_job_runs", "counter", ("job_name", "outcome"),
               "Scheduled job runs by outcome success|failure"),
    MetricSpec("forecaster_job_last_success_timestamp_seconds", "gauge", ("job_name",),
               "Unix time of the job's last successful run"),
    MetricSpec("forecaster_model_age_seconds", "gauge", ("workload",),
               "Seconds since the newest fit covering the workload (its serving model, a challenger in shadow, or the "
               "refit job's); the daily refit keeps it under a day"),
    MetricSpec("forecaster_controller_leader", "gauge", ("identity",),
               "1 while this replica holds the controller Lease, else 0"),
    MetricSpec("forecaster_controller_step_duration_seconds", "histogram", ("step",),
               "Duration of each named step of a controller cycle"),
    MetricSpec("forecaster_controller_policy_errors", "counter", ("policy", "step"),
               "Policies whose cycle failed at a step (the others carry on)"),
    # -- exporter ------------------------------------------------------------------------------------------------
    MetricSpec("forecaster_exporter_workloads", "gauge", (),
               "Workloads whose per-workload gauges the API exported at its last refresh"),
    MetricSpec("forecaster_exporter_workloads_dropped", "counter", (),
               "Workloads left out of a refresh of the per-workload gauges by the cardinality limit (summed over "
               "refreshes)"),
    # -- KEDA external scaler ------------------------------------------------------------------------------------
    MetricSpec("forecaster_keda_requests", "counter", ("method", "outcome"),
               "KEDA external scaler calls by gRPC method and outcome ok|not_found|invalid|error"),
)
"""Every metric ``/metrics`` exports."""

KUBE_STATE_METRICS: tuple[str, ...] = (
    "kube_pod_container_resource_requests",
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_restarts_total",
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_deployment_status_replicas",
    "kube_deployment_status_replicas_ready",
    "kube_deployment_spec_replicas",
    "kube_node_status_allocatable",
)
"""Standard kube-state-metrics names the adapters and dashboards may use."""

CADVISOR: tuple[str, ...] = (
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_periods_total",
)
"""Standard cAdvisor (kubelet) names the adapters and dashboards may use."""


def series_names(spec: MetricSpec) -> tuple[str, ...]:
    """Names of the time series ``spec`` produces: ``x_total`` (and ``x_created``) for counters, ``x_bucket``,
    ``x_sum``, ``x_count`` for histograms, ``x`` for gauges."""
    if spec.kind == "counter":
        return (f"{spec.name}_total", f"{spec.name}_created")
    if spec.kind == "histogram":
        return (f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count", f"{spec.name}_created")
    return (spec.name,)


def allowed_series() -> frozenset[str]:
    """Every metric name a dashboard query may reference."""
    names = {n for spec in EXPORTED for n in series_names(spec)}
    return frozenset(names | set(KUBE_STATE_METRICS) | set(CADVISOR))
