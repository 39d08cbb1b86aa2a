"""The object store behind the Kubernetes API test server (``support.kube_apiserver``): the kube-apiserver's write
semantics for the resources forecaster uses, without HTTP. Used by the server and by its unit tests; not pure (it
holds the objects, under one lock).

What it does like the kube-apiserver (and where it is simpler):

- one global ``resourceVersion`` counter (etcd's revision): every write that changes an object stores it with the
  next value; a write that changes nothing is not stored and keeps the old value, as etcd3 storage does;
- ``metadata.resourceVersion`` in a PUT or in a patched object is a precondition: stale -> 409 Conflict;
- ``generation``: 1 on create; +1 when the spec changes (HPA) or anything but metadata and status changes
  (custom resources); Leases and Events have none;
- status subresource (HPA, CRDs with ``subresources.status``): create and main-resource writes keep the stored
  status; ``/status`` writes change only status;
- ``uid``, ``creationTimestamp``, ``generation`` are the server's; ``generateName`` makes a name;
- every stored object is validated: built-ins against kubernetes-validate's strict schemas of ``K8S_VERSION``
  plus the apiserver's own checks that a schema cannot state (HPA ``minReplicas >= 1`` and ``maxReplicas >=
  minReplicas``, Lease durations, events.k8s.io/v1 required fields and lengths, ``MicroTime`` with exactly six
  fractional digits); custom resources against their CRD (defaults applied, CEL subset) with
  ``support.k8s_schemas``. Violations -> 422 Invalid naming each field; unknown fields -> 400 BadRequest
  ``strict decoding error`` (the server behaves as with ``fieldValidation=Strict``: the real default silently drops
  them, which would hide a typo in what the controller sends);
- lists sorted by namespace/name, ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``),
  ``limit`` + ``continue`` (the continuation is not a consistent snapshot); items of built-in lists carry no
  ``apiVersion``/``kind``, items of custom lists do.

Namespaces need not exist, there is no admission, no managedFields, no deletion, no watch.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate.utils
import yaml

from support import k8s_schemas

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = ".".join(kubernetes_validate.utils.latest_version().split(".")[:2])
"""The Kubernetes release whose schemas validate built-in objects: the newest kubernetes-validate bundles."""
SCHEMA_DIR = f"v{kubernetes_validate.utils.latest_version()}-local"
"""kubernetes-validate's folder of that release's (non-strict) schemas, whose patch annotations drive strategic
merge patches."""
VPA_CRD_PATH = ROOT / "tests" / "fixtures" / "k8s" / "vpa-v1-crd.yaml"

_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


# -- errors: the Status bodies of the real API ------------------------------------------------------------------
@dataclass(frozen=True)
class Cause:
    """One ``details.causes[]`` entry of a Status."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


class ApiError(Exception):
    """An error answer: HTTP ``code`` and the ``Status`` body the kube-apiserver would send."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# -- resource types ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives, how writes treat it and how its objects are validated."""

    group: str
    version: str
    plural: str
    kind: str
    status_subresource: bool = False
    generation: str = "none"
    """``none`` (no generation), ``spec`` (bumped when ``spec`` changes), ``custom`` (anything but metadata and,
    with a status subresource, status)."""
    crd: Mapping[str, Any] | None = None
    """The CRD of a custom resource (``None``: a built-in, validated with kubernetes-validate)."""
    micro_time_fields: tuple[str, ...] = ()
    checks: Callable[[dict[str, Any]], list[Cause]] | None = None
    """The apiserver's own validation beyond the schema (built-ins)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``horizontalpodautoscalers.autoscaling``: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        return self.crd is not None


def _hpa_checks(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = []
    low = spec.get("minReplicas")
    high = spec.get("maxReplicas")
    if isinstance(low, int) and low < 1:
        causes.append(Cause("spec.minReplicas", f"Invalid value: {low}: must be greater than or equal to 1"))
    if isinstance(high, int) and high < 1:
        causes.append(Cause("spec.maxReplicas", f"Invalid value: {high}: must be greater than 0"))
    elif isinstance(high, int) and isinstance(low, int) and high < low:
        causes.append(Cause("spec.maxReplicas",
                            f"Invalid value: {high}: must be greater than or equal to `minReplicas`"))
    return causes


def _lease_checks(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(Cause("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(Cause("spec.leaseTransitions", f"Invalid value: {transitions}: must be greater than or "
                                                     "equal to 0"))
    return causes


_EVENT_LIMITS = {"reportingController": 128, "reportingInstance": 128, "action": 128, "reason": 128}


def _event_checks(obj: dict[str, Any]) -> list[Cause]:
    causes = [Cause(name, "Required value", "FieldValueRequired")
              for name in ("eventTime", *_EVENT_LIMITS) if not obj.get(name)]
    causes += [Cause(name, f"Too long: may not be longer than {limit}", "FieldValueTooLong")
               for name, limit in _EVENT_LIMITS.items() if len(str(obj.get(name) or "")) > limit]
    if len(str(obj.get("note") or "").encode("utf-8")) > 1024:
        causes.append(Cause("note", "Too long: may not be longer than 1024", "FieldValueTooLong"))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(Cause("type", f"Unsupported value: {obj.get('type')!r}: supported values: \"Normal\", "
                                    "\"Warning\"", "FieldValueNotSupported"))
    namespace = (obj.get("regarding") or {}).get("namespace")
    if namespace and namespace != obj["metadata"].get("namespace"):
        causes.append(Cause("regarding.namespace", f"Invalid value: {namespace!r}: does not match event.namespace"))
    return causes


def builtin_types() -> list[ResourceType]:
    """The built-in resources served: HPA ``autoscaling/v2``, Lease, Event ``events.k8s.io/v1``."""
    return [
        ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
                     status_subresource=True, generation="spec", checks=_hpa_checks),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease",
                     micro_time_fields=("spec.acquireTime", "spec.renewTime"), checks=_lease_checks),
        ResourceType("events.k8s.io", "v1", "events", "Event",
                     micro_time_fields=("eventTime", "series.lastObservedTime"), checks=_event_checks),
    ]


def custom_types(crds: Iterable[Mapping[str, Any]]) -> list[ResourceType]:
    """One type per served version of each CRD (namespaced CRDs only)."""
    types = []
    for crd in crds:
        spec = crd["spec"]
        if spec.get("scope", "Namespaced") != "Namespaced":
            continue
        for version in spec["versions"]:
            if version.get("served"):
                types.append(ResourceType(
                    spec["group"], version["name"], spec["names"]["plural"], spec["names"]["kind"],
                    status_subresource="status" in (version.get("subresources") or {}),
                    generation="custom", crd=crd))
    return types


def discover_crds(paths: Sequence[Path] | None = None) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in ``paths`` (default: every ``k8s/**/*.yaml`` and the vendored VPA CRD)."""
    if paths is None:
        paths = [*sorted((ROOT / "k8s").rglob("*.yaml")), VPA_CRD_PATH]
    crds = []
    for path in paths:
        if path.is_file():
            with path.open(encoding="utf-8") as fh:
                crds += [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)
                         and d.get("kind") == "CustomResourceDefinition"]
    return crds


# -- validation -------------------------------------------------------------------------------------------------
def _get_path(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def validate(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The object to store (with CRD defaults applied) or ``ApiError`` 400 (undecodable: unknown field, bad
    ``MicroTime``) / 422 Invalid (every violated field as a cause)."""
    name = str(obj.get("metadata", {}).get("name", ""))
    for dotted in rt.micro_time_fields:
        value = _get_path(obj, dotted)
        if value is not None and not (isinstance(value, str) and _MICRO_TIME.match(value)):
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: parsing time '
                              f'{json.dumps(value)} as "2006-01-02T15:04:05.000000Z07:00": {dotted} must be a '
                              "MicroTime with six fractional digits")
    try:
        if rt.crd is not None:
            obj = k8s_schemas.validate_custom(obj, rt.crd)
        else:
            k8s_schemas.validate_builtin(obj, K8S_VERSION)
        errors: list[k8s_schemas.FieldError] = []
    except k8s_schemas.SchemaViolation as exc:
        errors = exc.errors
    unknown = [e.path for e in errors if e.message.startswith("unknown field")]
    if unknown:
        raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{path}"' for path in unknown))
    causes = [_cause(e) for e in errors]
    causes += _metadata_checks(obj, check_name=rt.crd is None)  # validate_custom checks a custom object's name
    if not causes and rt.checks is not None:
        causes = rt.checks(obj)
    if causes:
        raise invalid(rt, name, causes)
    return obj


def _cause(error: k8s_schemas.FieldError) -> Cause:
    if error.message.startswith("Required value"):
        return Cause(error.path, error.message, "FieldValueRequired")
    if error.message.startswith("Unsupported value"):
        return Cause(error.path, error.message, "FieldValueNotSupported")
    return Cause(error.path, error.message)


def _metadata_checks(obj: Mapping[str, Any], *, check_name: bool) -> list[Cause]:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    causes = []
    if not check_name:
        pass
    elif not isinstance(name, str) or not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required",
                            "FieldValueRequired"))
    elif len(name) > 253 or not _NAME.match(name):
        causes.append(Cause("metadata.name", f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must "
                                             "consist of lower case alphanumeric characters, '-' or '.'"))
    for key, value in (meta.get("labels") or {}).items():
        if not _LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
            causes.append(Cause("metadata.labels", f"Invalid value: {key!r}: not a valid label key"))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(Cause("metadata.labels", f"Invalid value: {value!r}: a valid label value must be 63 "
                                                   "characters or less, alphanumeric, '-', '_' or '.'"))
    return causes


def invalid(rt: ResourceType, name: str, causes: Sequence[Cause]) -> ApiError:
    """422 Invalid, worded like the apiserver: ``Kind.group "name" is invalid: field: message``."""
    listed = [f"{c.field}: {c.message}" for c in causes]
    summary = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
    qualified = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', {
        "name": name, "group": rt.group, "kind": rt.kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]})


# -- label selectors --------------------------------------------------------------------------------------------
def parse_selector(text: str) -> list[tuple[str, str, frozenset[str]]]:
    """``app=web,tier in (a, b),!legacy`` -> ``[(key, op, values)]``; ``ApiError`` 400 when unparsable."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    requirements = []
    for raw in (t.strip() for t in terms):
        if not raw:
            continue
        match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^()]*)\)", raw)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
        elif m := re.fullmatch(r"([^=!\s]+)\s*(==|!=|=)\s*([^=!\s,]*)", raw):
            key, op, values = m.group(1), {"==": "=", "=": "=", "!=": "!="}[m.group(2)], {m.group(3)}
        elif m := re.fullmatch(r"(!?)\s*([^=!\s]+)", raw):
            key, op, values = m.group(2), "!" if m.group(1) else "exists", set()
        else:
            raise bad_request(f"unable to parse requirement: {raw!r}")
        if not _LABEL_KEY.match(key):
            raise bad_request(f"unable to parse requirement: invalid label key {key!r}")
        requirements.append((key, op, frozenset(values)))
    return requirements


def selector_matches(requirements: Iterable[tuple[str, str, frozenset[str]]], labels: Mapping[str, str]) -> bool:
    for key, op, values in requirements:
        present, value = key in labels, labels.get(key)
        ok = {"=": present and value in values, "in": present and value in values,
              "!=": not present or value not in values, "notin": not present or value not in values,
              "exists": present, "!": not present}[op]
        if not ok:
            return False
    return True


# -- the store --------------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _without(obj: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _spec_changed(rt: ResourceType, new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    if rt.generation == "spec":
        return new.get("spec") != old.get("spec")
    ignored = ("metadata", "status") if rt.status_subresource else ("metadata",)
    return _without(new, *ignored) != _without(old, *ignored)


@dataclass
class ObjectStore:
    """Objects by ``(plural, namespace, name)``; every method is atomic under one lock and returns copies."""

    types: list[ResourceType]
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    revision: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def type_for(self, group: str, version: str, plural: str) -> ResourceType | None:
        return next((t for t in self.types if (t.group, t.version, t.plural) == (group, version, plural)), None)

    def type_of(self, obj: Mapping[str, Any]) -> ResourceType:
        found = [t for t in self.types if (t.api_version, t.kind) == (obj.get("apiVersion"), obj.get("kind"))]
        if not found:
            raise LookupError(f"the test server does not serve {obj.get('apiVersion')} {obj.get('kind')}")
        return found[0]

    def _next_version(self) -> str:
        self.revision += 1
        return str(self.revision)

    def _stored(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((rt.plural, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found',
                           {"name": name, "group": rt.group, "kind": rt.plural})
        return obj

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._stored(rt, namespace, name))

    def list(self, rt: ResourceType, namespace: str | None, *, label_selector: str = "", limit: int = 0,
             continue_token: str = "") -> dict[str, Any]:
        """A ``<Kind>List`` of the matching objects, sorted by namespace/name, one page of ``limit`` items."""
        requirements = parse_selector(label_selector) if label_selector else []
        after = ""
        if continue_token:
            try:
                after = json.loads(base64.urlsafe_b64decode(continue_token))["after"]
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(f"continue key is not valid: {exc}") from exc
        with self.lock:
            keys = sorted(k for k in self.objects if k[0] == rt.plural and namespace in (None, k[1]))
            matching = [self.objects[k] for k in keys if f"{k[1]}/{k[2]}" > after
                        and selector_matches(requirements, self.objects[k]["metadata"].get("labels") or {})]
            page = matching[:limit] if limit > 0 else matching
            metadata: dict[str, Any] = {"resourceVersion": str(self.revision)}
            if limit > 0 and len(matching) > limit:
                last = page[-1]["metadata"]
                token = json.dumps({"after": f"{last['namespace']}/{last['name']}"}).encode()
                metadata["continue"] = base64.urlsafe_b64encode(token).decode()
                metadata["remainingItemCount"] = len(matching) - limit
            items = [copy.deepcopy(o) if rt.custom else _without(copy.deepcopy(o), "apiVersion", "kind")
                     for o in page]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}

    def seed(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as it is (status included), filling in the server's metadata; validated like a write."""
        rt = self.type_of(obj)
        new = copy.deepcopy(dict(obj))
        meta = _meta(new)
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        if rt.generation != "none":
            meta.setdefault("generation", 1)
        with self.lock:
            meta["resourceVersion"] = self._next_version()
            new = validate(rt, new)
            self.objects[(rt.plural, meta["namespace"], meta["name"])] = new
            return copy.deepcopy(new)

    def create(self, rt: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        new = self._typed(rt, body)
        meta = _meta(new)
        if meta.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError",
                           "Internal error occurred: resourceVersion should not be set on objects to be created")
        meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + uuid.uuid4().hex[:5]
        if rt.status_subresource:
            new.pop("status", None)
        for system in ("uid", "creationTimestamp", "generation"):
            meta.pop(system, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
        if rt.generation != "none":
            meta["generation"] = 1
        with self.lock:
            new = validate(rt, new)  # undecodable (400) and invalid (422) come before AlreadyExists
            name = str(new["metadata"]["name"])
            if (rt.plural, namespace, name) in self.objects:
                raise ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists',
                               {"name": name, "group": rt.group, "kind": rt.plural})
            new["metadata"]["resourceVersion"] = self._next_version()
            self.objects[(rt.plural, namespace, name)] = new
            return copy.deepcopy(new)

    def update(self, rt: ResourceType, namespace: str, name: str,
               change: Callable[[dict[str, Any]], dict[str, Any]], *, subresource: str = "") -> dict[str, Any]:
        """Replace the stored object with ``change(copy of it)`` (a PUT body or a patched copy), as one atomic
        step; the apiserver's update rules apply (see the module docstring)."""
        with self.lock:
            old = self._stored(rt, namespace, name)
            new = self._typed(rt, change(copy.deepcopy(old)))
            meta = _meta(new)
            managed = meta.get("managedFields")  # recorded by support.kube_apply for this write
            if meta.get("name", name) != name:
                raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                                  f"({name})")
            if meta.get("namespace", namespace) != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            wanted = meta.get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_resource} "{name}": '
                               "the object has been modified; please apply your changes to the latest version "
                               "and try again", {"name": name, "group": rt.group, "kind": rt.plural})
            if subresource == "status":
                status = new.get("status")
                new = copy.deepcopy(old)
                if status is None:
                    new.pop("status", None)
                else:
                    new["status"] = status
            elif rt.status_subresource:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            meta = _meta(new)
            if managed is not None:
                meta["managedFields"] = managed
            meta.update(name=name, namespace=namespace, resourceVersion=old["metadata"]["resourceVersion"])
            for system in ("uid", "creationTimestamp", "generation"):
                if system in old["metadata"]:
                    meta[system] = old["metadata"][system]
                else:
                    meta.pop(system, None)
            new = validate(rt, new)
            if new == old:
                return copy.deepcopy(old)
            if rt.generation != "none" and _spec_changed(rt, new, old):
                new["metadata"]["generation"] = int(old["metadata"].get("generation", 0)) + 1
            new["metadata"]["resourceVersion"] = self._next_version()
            self.objects[(rt.plural, namespace, name)] = new
            return copy.deepcopy(new)

    def _typed(self, rt: ResourceType, body: Any) -> dict[str, Any]:
        """The body with ``apiVersion``/``kind`` checked (built-ins may leave them out, as the decoder allows)."""
        if not isinstance(body, dict):
            raise bad_request(f"the body must be a JSON object, got {type(body).__name__}")
        body = copy.deepcopy(body)
        for key, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
            given = body.get(key)
            if not given and rt.custom:
                raise bad_request(f"Object '{key}' is missing in the body")
            if given and given != expected:
                raise bad_request(f"the {key} in the data ({given}) does not match the expected {key} ({expected})")
            body[key] = expected
        return body
