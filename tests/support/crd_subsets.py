"""The parts of two third-party CRDs our manifests use, for the strict manifest validation of ``tests/k8s``:

- KEDA's ``ScaledObject`` (``keda.sh/v1alpha1``, ``config/crd/bases/keda.sh_scaledobjects.yaml`` of KEDA 2.x):
  ``spec.scaleTargetRef``, the replica counts and intervals, ``fallback``, ``advanced`` (HPA name and behavior),
  and ``triggers`` (``type``, ``name``, ``metadata`` as a string map, ``metricType``, ``useCachedMetrics``,
  ``authenticationRef``);
- the Prometheus Operator's ``PrometheusRule`` (``monitoring.coreos.com/v1``,
  ``monitoring.coreos.com_prometheusrules.yaml``): ``spec.groups`` (``name``, ``interval``, ``limit``,
  ``query_offset``, ``labels``, ``rules``) and each rule (``alert`` or ``record``, ``expr``, ``for``,
  ``keep_firing_for``, ``labels``, ``annotations``).

Field names, types, required fields, enums and patterns are upstream's (checked by hand against the published CRDs;
neither is vendored: no package registry this project uses ships them). As with the ServiceMonitor subset in
``tests/k8s/test_k8s_manifests.py``, unknown fields are errors, so a typo (``triger``, ``scalerAdress`` at the
wrong level, ``for: 5 minutes``) fails the manifest tests.
"""

from __future__ import annotations

from typing import Any

_STRINGS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_INT32: dict[str, Any] = {"type": "integer", "format": "int32"}
PROM_DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
"""The Prometheus Operator's ``Duration`` pattern."""
PROM_NON_EMPTY_DURATION = "^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"


def _crd(group: str, version: str, kind: str, plural: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [{"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "required": ["spec"],
                "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                               "metadata": {"type": "object"}, "spec": spec}}}}],
        },
    }


_HPA_RULES: dict[str, Any] = {"type": "object", "properties": {
    "policies": {"type": "array", "items": {"type": "object", "required": ["periodSeconds", "type", "value"],
                                            "properties": {"periodSeconds": _INT32, "type": {"type": "string"},
                                                           "value": _INT32}}},
    "selectPolicy": {"type": "string"},
    "stabilizationWindowSeconds": _INT32,
}}

SCALED_OBJECT_CRD = _crd("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", {
    "type": "object", "required": ["scaleTargetRef", "triggers"],
    "properties": {
        "scaleTargetRef": {"type": "object", "required": ["name"], "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
            "envSourceContainerName": {"type": "string"}}},
        "pollingInterval": _INT32,
        "cooldownPeriod": _INT32,
        "initialCooldownPeriod": _INT32,
        "idleReplicaCount": _INT32,
        "minReplicaCount": _INT32,
        "maxReplicaCount": _INT32,
        "fallback": {"type": "object", "required": ["failureThreshold", "replicas"], "properties": {
            "failureThreshold": _INT32, "replicas": _INT32,
            "behavior": {"type": "string", "enum": ["static", "currentReplicas", "currentReplicasIfHigher",
                                                   "currentReplicasIfLower"]}}},
        "advanced": {"type": "object", "properties": {
            "restoreToOriginalReplicaCount": {"type": "boolean"},
            "horizontalPodAutoscalerConfig": {"type": "object", "properties": {
                "name": {"type": "string"},
                "behavior": {"type": "object", "properties": {"scaleUp": _HPA_RULES, "scaleDown": _HPA_RULES}}}}}},
        "triggers": {"type": "array", "items": {"type": "object", "required": ["metadata", "type"], "properties": {
            "type": {"type": "string"},
            "name": {"type": "string"},
            "metadata": _STRINGS,
            "metricType": {"type": "string", "enum": ["AverageValue", "Value", "Utilization"]},
            "useCachedMetrics": {"type": "boolean"},
            "authenticationRef": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "kind": {"type": "string"}}},
        }}},
    },
})

PROMETHEUS_RULE_CRD = _crd("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", {
    "type": "object",
    "properties": {"groups": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1},
        "interval": {"type": "string", "pattern": PROM_DURATION},
        "query_offset": {"type": "string", "pattern": PROM_DURATION},
        "limit": {"type": "integer"},
        "partial_response_strategy": {"type": "string"},
        "labels": _STRINGS,
        "rules": {"type": "array", "items": {"type": "object", "required": ["expr"], "properties": {
            "alert": {"type": "string"},
            "record": {"type": "string"},
            "expr": {"x-kubernetes-int-or-string": True},
            "for": {"type": "string", "pattern": PROM_DURATION},
            "keep_firing_for": {"type": "string", "minLength": 1, "pattern": PROM_NON_EMPTY_DURATION},
            "labels": _STRINGS,
            "annotations": _STRINGS,
        }}},
    }}}},
})
