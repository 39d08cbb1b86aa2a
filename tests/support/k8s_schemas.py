"""Schema checks for Kubernetes objects: the manifest tests in ``tests/k8s/`` and the Kubernetes API test server
(which validates every body the controller sends) both call these.

- ``validate_builtin(obj, version="1.33")``: a built-in kind against the schemas bundled with
  ``kubernetes-validate`` (offline), strict by default (unknown fields are errors, as with ``kubectl apply``'s
  default ``--validate=strict``).
- ``load_crd(path, kind=None)`` and ``validate_custom(obj, crd)``: a custom object against its CRD's
  ``openAPIV3Schema`` the way the API server does it: structural defaults applied first (the defaulted copy is
  returned), ``nullable``, ``x-kubernetes-int-or-string``, ``x-kubernetes-preserve-unknown-fields``, list types
  ``set``/``map``, the ``date-time``/``int32``/``int64`` formats, and ``x-kubernetes-validations`` rules written in
  the small CEL subset below (``evaluate_rule``). Unknown fields are errors (``strict=True``).
- ``validate_object(obj, crds)``: either of the two, chosen by apiVersion and kind.
- ``load_manifests()``, ``kustomize_resources()`` (a Python reading of ``k8s/kustomization.yaml``) and
  ``render_kustomization()`` (``kubectl kustomize``) for the manifest tests.

Every failure raises ``SchemaViolation``, whose message names the object and each field path, e.g.
``PredictiveScalingPolicy "web" is invalid: spec.demand.capacityPerPod: Required value``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "k8s"
POLICY_CRD_PATH = K8S_DIR / "crd-predictivescalingpolicy.yaml"
VPA_CRD_PATH = ROOT / "tests" / "fixtures" / "k8s" / "vpa-v1-crd.yaml"
DEFAULT_VERSION = "1.33"
"""Kubernetes release the manifests must be valid for (kubernetes-validate bundles 1.25 and newer)."""

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""What ``metadata.name`` of most objects must match (RFC 1123 subdomain; at most 253 characters)."""
_NAME = DNS_SUBDOMAIN  # former private name, still imported by support.kube_store


# -- errors -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldError:
    """One violation: the field path (``spec.hpa.minReplicas``, ``status.conditions[0].type``) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


class SchemaViolation(ValueError):
    """An object does not match its schema; ``errors`` lists every field path with its message."""

    def __init__(self, kind: str, name: str, errors: Sequence[FieldError]) -> None:
        self.kind = kind
        self.name = name
        self.errors = list(errors)
        super().__init__(f'{kind} "{name}" is invalid: ' + "; ".join(str(e) for e in self.errors))

    @property
    def fields(self) -> list[str]:
        """The offending field paths, in order."""
        return [e.path for e in self.errors]


class UnknownKindError(LookupError):
    """No schema for this apiVersion/kind: not a built-in of that release and no CRD given for it."""


def _describe(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return str(obj.get("kind", "<no kind>")), str(meta.get("name") or meta.get("generateName") or "<no name>")


def format_path(parts: Iterable[str | int]) -> str:
    """``["spec", "containers", 0, "name"]`` -> ``spec.containers[0].name``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- loading ----------------------------------------------------------------------------------------------------
def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


@dataclass(frozen=True)
class Manifest:
    """One object of one manifest file (``index`` counts documents within the file)."""

    path: Path
    index: int
    obj: dict[str, Any]

    @property
    def id(self) -> str:
        """``deployment.yaml#0 Deployment/forecaster-controller``, for test ids and messages."""
        kind, name = _describe(self.obj)
        return f"{self.path.relative_to(K8S_DIR).as_posix()}#{self.index} {kind}/{name}"


def load_manifests(directory: Path = K8S_DIR) -> list[Manifest]:
    """Every object of every ``*.yaml`` under ``directory`` (recursively), Kustomization files excluded."""
    found = []
    for path in sorted(directory.rglob("*.yaml")):
        for i, obj in enumerate(load_documents(path)):
            if obj.get("kind") != "Kustomization":
                found.append(Manifest(path, i, obj))
    return found


_KUSTOMIZE_SUPPORTED = {"apiVersion", "kind", "resources"}


def kustomize_resources(directory: Path = K8S_DIR) -> list[dict[str, Any]]:
    """What ``kubectl kustomize directory`` renders, for a kustomization that only lists ``resources`` (files or
    directories with their own kustomization). Anything else (patches, namespace, labels...) raises
    ``NotImplementedError`` rather than silently rendering something kubectl would not."""
    kustomization = load_documents(directory / "kustomization.yaml")[0]
    unsupported = set(kustomization) - _KUSTOMIZE_SUPPORTED
    if unsupported:
        raise NotImplementedError(f"{directory}/kustomization.yaml uses {sorted(unsupported)}; only resources are read")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        target = directory / entry
        if target.is_dir():
            objects.extend(kustomize_resources(target))
        elif target.is_file():
            objects.extend(load_documents(target))
        else:
            raise FileNotFoundError(f"{directory}/kustomization.yaml lists {entry!r}, which does not exist")
    return objects


def render_kustomization(kubectl: str, directory: Path = K8S_DIR) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize directory`` renders (offline)."""
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)``: what identifies an object in a cluster."""
    meta = obj.get("metadata", {})
    return (obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


# -- built-in kinds ---------------------------------------------------------------------------------------------
def violations_of(check: Callable[..., object], *args: Any, **kwargs: Any) -> list[str]:
    """What ``check(*args, **kwargs)`` rejects: ``[message]`` for a ``SchemaViolation`` (naming each field) or an
    ``UnknownKindError``, ``[]`` when it passes."""
    try:
        check(*args, **kwargs)
    except (SchemaViolation, UnknownKindError) as exc:
        return [str(exc)]
    return []


def validate_builtin(obj: Mapping[str, Any], version: str = DEFAULT_VERSION, *, strict: bool = True) -> None:
    """Validate a built-in object with ``kubernetes-validate`` against Kubernetes ``version`` (e.g. "1.33").

    Raises ``SchemaViolation`` naming the field path, or ``UnknownKindError`` for a kind that release does not
    have (custom kinds: use ``validate_custom``)."""
    kind, name = _describe(obj)
    if not obj.get("apiVersion") or not obj.get("kind"):
        raise SchemaViolation(kind, name, [FieldError("apiVersion" if not obj.get("apiVersion") else "kind",
                                                      "Required value")])
    try:
        kubernetes_validate.validate(dict(obj), version, strict)
    except kubernetes_validate.ValidationError as exc:
        raise SchemaViolation(kind, name, [_field_error(exc)]) from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise UnknownKindError(f"{exc.message} (a custom kind? validate it with validate_custom)") from None


# -- custom kinds -----------------------------------------------------------------------------------------------
def load_crd(path: Path = POLICY_CRD_PATH, kind: str | None = None) -> dict[str, Any]:
    """The CustomResourceDefinition in ``path`` (the one for ``kind`` when the file holds several)."""
    crds = [d for d in load_documents(path) if d.get("kind") == "CustomResourceDefinition"]
    if kind is not None:
        crds = [c for c in crds if c["spec"]["names"]["kind"] == kind]
    if len(crds) != 1:
        names = [c["spec"]["names"]["kind"] for c in crds]
        raise LookupError(f"{path} holds {len(crds)} CRDs for kind={kind!r} ({names}); name the kind")
    return dict(crds[0])


def crd_schema(crd: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
    """``openAPIV3Schema`` of ``version`` (default: the storage version) of ``crd``."""
    versions = crd["spec"]["versions"]
    chosen = [v for v in versions if (v["name"] == version if version else v.get("storage"))]
    if not chosen:
        raise LookupError(f"CRD {crd['metadata']['name']} has no version {version!r}")
    return dict(chosen[0]["schema"]["openAPIV3Schema"])


def crd_matches(crd: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is of ``crd``'s group and kind (any served version)."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    spec = crd["spec"]
    return (group == spec["group"] and obj.get("kind") == spec["names"]["kind"]
            and any(v["name"] == version and v.get("served") for v in spec["versions"]))


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of ``value`` with the schema's ``default``s filled in where a field is absent (or null and not
    nullable), recursively, as the API server's structural defaulting does."""
    value = copy.deepcopy(value)
    _default_in_place(value, schema)
    return value


def _default_in_place(value: Any, schema: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if "default" in sub and (key not in value or (value[key] is None and not sub.get("nullable"))):
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default_in_place(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key in value:
                _default_in_place(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _default_in_place(item, schema["items"])


def to_json_schema(schema: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Translate a CRD's OpenAPI v3 schema into a Draft 4 JSON Schema: ``nullable`` admits null,
    ``x-kubernetes-int-or-string`` admits integers and strings, and with ``strict`` objects with ``properties``
    reject unknown fields unless ``x-kubernetes-preserve-unknown-fields`` is set."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v, strict=strict) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = to_json_schema(value, strict=strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(v, strict=strict) for v in value]
        elif not key.startswith("x-kubernetes-") and key not in ("nullable", "default", "description", "example"):
            out[key] = value
    if schema.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (strict and "properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if schema.get("nullable"):
        out = {"anyOf": [{"type": "null"}, out]}
    return out


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError("expected an RFC 3339 date-time such as 2024-03-04T05:06:07Z")
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


FORMATS = jsonschema.FormatChecker(formats=())
"""The formats the API server checks in CRD schemas that matter here (others are not checked)."""
FORMATS.checks("date-time", raises=ValueError)(_is_date_time)
FORMATS.checks("int32")(_is_int32)
FORMATS.checks("int64")(_is_int64)


def validate_custom(obj: Mapping[str, Any], crd: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Validate a custom object against ``crd`` as the API server would; return the defaulted copy.

    The object's apiVersion must be a served version of the CRD's group and its kind the CRD's kind;
    ``metadata.name`` (or ``generateName``) must be a DNS subdomain. Raises ``SchemaViolation`` listing every
    violation by field path."""
    kind, name = _describe(obj)
    if not crd_matches(crd, obj):
        spec = crd["spec"]
        raise SchemaViolation(kind, name, [FieldError(
            "apiVersion", f"{obj.get('apiVersion')}/{obj.get('kind')} is not served by CRD {crd['metadata']['name']} "
                          f"({spec['group']}, kind {spec['names']['kind']})")])
    schema = crd_schema(crd, str(obj["apiVersion"]).rpartition("/")[2])
    defaulted: dict[str, Any] = apply_defaults(obj, schema)
    errors = _metadata_errors(defaulted.get("metadata"))
    validator = jsonschema.Draft4Validator(to_json_schema(schema, strict=strict), format_checker=FORMATS)
    found = [_field_error(e) for e in sorted(validator.iter_errors(defaulted), key=lambda e: e.validator != "type")]
    errors += sorted({e.path: e for e in reversed(found)}.values(), key=lambda e: e.path)  # one per field
    if not errors:  # list types and rules assume the shapes above hold
        errors += list(_semantic_errors(defaulted, schema, []))
    if errors:
        raise SchemaViolation(kind, name, errors)
    return defaulted


def validate_object(obj: Mapping[str, Any], crds: Sequence[Mapping[str, Any]] = (),
                    version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """``validate_custom`` with the matching CRD of ``crds``, else ``validate_builtin``; returns the (defaulted)
    object."""
    for crd in crds:
        if crd_matches(crd, obj):
            return validate_custom(obj, crd)
    validate_builtin(obj, version)
    return dict(obj)


def _metadata_errors(meta: Any) -> list[FieldError]:
    if not isinstance(meta, Mapping):
        return [FieldError("metadata", "Required value: an object with a name")]
    field, name = ("name", meta.get("name")) if "name" in meta else ("generateName", meta.get("generateName"))
    if not isinstance(name, str) or not name:
        return [FieldError("metadata.name", "Required value")]
    checked = name.rstrip("-") if field == "generateName" else name
    if len(name) > 253 or not DNS_SUBDOMAIN.match(checked):
        return [FieldError(f"metadata.{field}",
                           f"Invalid value: {name!r}: must be a lowercase RFC 1123 subdomain")]
    return []


def _field_error(error: jsonschema.ValidationError) -> FieldError:
    """A jsonschema error as a field path plus message, naming the missing or unknown field itself."""
    path: list[str | int] = list(error.absolute_path)
    if error.validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        if match:
            return FieldError(format_path([*path, match.group(1)]), "Required value")
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        if unknown:
            return FieldError(format_path([*path, unknown[0]]), f"unknown field {unknown[0]!r}")
    if error.validator == "enum":
        return FieldError(format_path(path),
                          f"Unsupported value: {error.instance!r}: supported values: {error.validator_value}")
    return FieldError(format_path(path), error.message)


def _semantic_errors(value: Any, schema: Mapping[str, Any], path: list[str | int]) -> Iterator[FieldError]:
    """List-type uniqueness and ``x-kubernetes-validations`` rules, depth first."""
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value and value[key] is not None:
                yield from _semantic_errors(value[key], sub, [*path, key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, item in value.items():
                yield from _semantic_errors(item, extra, [*path, key])
    elif isinstance(value, list):
        yield from _list_type_errors(value, schema, path)
        if isinstance(schema.get("items"), Mapping):
            for i, item in enumerate(value):
                yield from _semantic_errors(item, schema["items"], [*path, i])
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            ok = evaluate_rule(rule["rule"], value)
        except CelError as exc:
            yield FieldError(format_path(path), f"rule {rule['rule']!r} could not be evaluated: {exc}")
            continue
        if ok is not True:
            field = format_path(path) + rule.get("fieldPath", "")
            yield FieldError(field, "Invalid value: " + rule.get("message", f"failed rule: {rule['rule']}"))


def _list_type_errors(value: list[Any], schema: Mapping[str, Any], path: list[str | int]) -> Iterator[FieldError]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                yield FieldError(format_path([*path, i]), f"Duplicate value: {item!r}")
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen_keys: set[tuple[Any, ...]] = set()
        for i, item in enumerate(value):
            key = tuple(item.get(k) for k in keys)
            if key in seen_keys:
                yield FieldError(format_path([*path, i]), f"Duplicate value: {dict(zip(keys, key, strict=True))}")
            seen_keys.add(key)


# -- structure of a CRD -----------------------------------------------------------------------------------------
def structural_problems(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Why ``schema`` is not a structural schema (empty when it is): every node needs a ``type`` unless it is
    ``x-kubernetes-int-or-string`` or preserves unknown fields, and ``properties`` and ``additionalProperties``
    never meet on one node."""
    problems = []
    here = path or "<root>"
    if "type" not in schema and not (schema.get("x-kubernetes-int-or-string")
                                     or schema.get("x-kubernetes-preserve-unknown-fields")):
        problems.append(f"{here}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{here}: both properties and additionalProperties")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{here}: array without items")
    for key, sub in schema.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            problems += structural_problems(schema[key], f"{path}.{key}")
    return problems


# -- a small CEL subset for x-kubernetes-validations ------------------------------------------------------------
class CelError(ValueError):
    """A rule outside the supported subset, or a runtime error of a rule (e.g. no such key)."""


_TOKEN = re.compile(r"\s*(?:(?P<num>\d+\.\d+|\d+)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>\|\||&&|==|!=|<=|>=|[<>!().,]))")
_COMPARE = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_LITERALS = {"true": True, "false": False, "null": None}


def evaluate_rule(rule: str, self_value: Any) -> Any:
    """Evaluate a CEL rule with ``self`` bound to ``self_value``.

    The subset: ``||``, ``&&``, ``!``, comparisons (``== != < <= > >=``), parentheses, ``self`` and field access
    (``self.a.b``), ``has(self.a.b)``, ``size(x)``, and int, float, quoted string, ``true``/``false``/``null``
    literals. ``||`` and ``&&`` absorb an error on one side when the other decides, as CEL does. Anything else
    raises ``CelError`` (so an unsupported rule is reported, never silently passed)."""
    return _eval(_parse(rule), self_value)


@functools.lru_cache(maxsize=256)
def _parse(rule: str) -> tuple[Any, ...]:
    text = rule.strip()
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise CelError(f"unsupported syntax at {text[pos:]!r} in rule {rule!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    parser = _Parser(tokens, rule)
    node = parser.disjunction()
    if parser.peek() is not None:
        raise CelError(f"unexpected {parser.peek()!r} in rule {rule!r}")
    return node


class _Parser:
    """Recursive descent over the tokens: ``||`` > ``&&`` > relation > unary > postfix > primary."""

    def __init__(self, tokens: list[tuple[str, str]], rule: str) -> None:
        self.tokens, self.rule, self.pos = tokens, rule, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens) or (expected is not None and self.tokens[self.pos][1] != expected):
            raise CelError(f"expected {expected or 'more'} at token {self.pos} of rule {self.rule!r}")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def disjunction(self, level: int = 0) -> tuple[Any, ...]:
        """``||`` (level 0) binds looser than ``&&`` (level 1), which binds looser than a relation."""
        if level == 2:
            return self.relation()
        op, tag = (("||", "or"), ("&&", "and"))[level]
        node = self.disjunction(level + 1)
        while self.peek() == op:
            self.take()
            node = (tag, node, self.disjunction(level + 1))
        return node

    def relation(self) -> tuple[Any, ...]:
        node = self.unary()
        op = self.peek()
        if op in _COMPARE:
            self.take()
            node = ("cmp", op, node, self.unary())
        return node

    def unary(self) -> tuple[Any, ...]:
        if self.peek() == "!":
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self) -> tuple[Any, ...]:
        node = self.primary()
        while self.peek() == ".":
            self.take()
            kind, name = self.take()
            if kind != "id":
                raise CelError(f"expected a field name after '.' in rule {self.rule!r}")
            node = ("field", node, name)
        return node

    def primary(self) -> tuple[Any, ...]:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return ("lit", text[1:-1])
        if text in _LITERALS:
            return ("lit", _LITERALS[text])
        if text == "self":
            return ("self",)
        if text in ("has", "size"):
            self.take("(")
            arg = self.postfix() if text == "has" else self.disjunction()
            self.take(")")
            if text == "size":
                return ("size", arg)
            if arg[0] != "field":
                raise CelError(f"has() needs a field selection in rule {self.rule!r}")
            return ("has", arg[1], arg[2])
        if text == "(":
            node = self.disjunction()
            self.take(")")
            return node
        raise CelError(f"unsupported token {text!r} in rule {self.rule!r}")


def _eval(node: tuple[Any, ...], self_value: Any) -> Any:
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "self":
        return self_value
    if tag in ("field", "has"):
        base = _eval(node[1], self_value)
        present = isinstance(base, Mapping) and node[2] in base
        if tag == "has":
            return present
        if not present:
            raise CelError(f"no such key: {node[2]}")
        return base[node[2]]
    if tag == "not":
        return not _bool(_eval(node[1], self_value))
    if tag == "size":
        return len(_eval(node[1], self_value))
    if tag == "cmp":
        left, right = _eval(node[2], self_value), _eval(node[3], self_value)
        try:
            return _COMPARE[node[1]](left, right)
        except TypeError as exc:
            raise CelError(f"no such overload: {left!r} {node[1]} {right!r}") from exc
    decisive = tag == "or"  # "or": True decides; "and": False decides
    results: list[Any] = []
    for side in node[1:]:
        try:
            results.append(_bool(_eval(side, self_value)))
        except CelError as exc:
            results.append(exc)
    if decisive in results:
        return decisive
    for result in results:
        if isinstance(result, CelError):
            raise result
    return not decisive


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CelError(f"no matching overload: expected a bool, got {value!r}")
    return value


def assert_pod_hardened(pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
    """The restricted-profile settings every pod of ours keeps: non-root, read-only root filesystem, no privilege
    escalation, no capabilities, RuntimeDefault seccomp, no host namespaces."""
    pod_sc, sc = pod_spec["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert pod_sc.get("runAsUser", 0) != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod_sc["seccompProfile"] == sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID") and not pod_spec.get("hostIPC")
