"""The three PATCH flavours of the Kubernetes API, as ``support.kube_apiserver`` applies them: JSON merge patch
(RFC 7386, ``merge_patch``), JSON patch (RFC 6902, ``json_patch``: add, remove, replace, move, copy, test; an
operation that does not apply or a failed test -> 422) and strategic merge patch (``strategic_merge``, driven by
the built-in kind's schema annotations ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``; the
directives are listed in ``support.kube_apiserver``'s docstring). Errors are ``support.kube_store.ApiError``s
with the Status body the real server would send. Pure functions over JSON documents.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from support.kube_store import SCHEMA_DIR, ApiError, bad_request

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


# -- patches ----------------------------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` removes a key, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {message}")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _index(container: list[Any], token: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not re.fullmatch(r"0|[1-9][0-9]*", token) or int(token) > len(container) - (0 if adding else 1):
        raise _unprocessable(f"index {token!r} is out of range for an array of {len(container)}")
    return int(token)


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, adding=False)]
        else:
            raise _unprocessable(f"path {path!r} does not exist (missing {token!r})")
    return node


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, adding=False)]
    raise _unprocessable(f"path {path!r} does not exist")


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise _unprocessable("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, adding=False))
    raise _unprocessable(f"remove: path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _unprocessable(f"replace: path {path!r} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, adding=False)] = value
        else:
            parent.insert(_index(parent, last, adding=True), value)
    else:
        raise _unprocessable(f"path {path!r}: the parent is not an object or an array")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 on a copy of ``doc``; ``ApiError`` 400 for a malformed document, 422 when an operation fails."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "path" not in op or op.get("op") not in (
                "add", "remove", "replace", "move", "copy", "test"):
            raise bad_request(f"invalid JSON patch operation {op!r}")
        name, path = op["op"], op["path"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"{name} operation at {path!r} has no value")
        if name in ("move", "copy") and "from" not in op:
            raise bad_request(f"{name} operation at {path!r} has no from")
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif name == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif name == "remove":
            _remove(doc, path)
        elif name == "move":
            if path.startswith(op["from"] + "/"):
                raise _unprocessable(f"move: {path!r} is inside {op['from']!r}")
            doc = _add(doc, path, _remove(doc, op["from"]))
        elif name == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif not _json_equal(_get(doc, path), op["value"]):
            raise _unprocessable(f"testing value {path} failed")
    return doc


@cache
def _definitions() -> dict[str, Any]:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_DIR
    defs: dict[str, Any] = json.loads((folder / "_definitions.json").read_text(encoding="utf-8"))["$defs"]
    return defs


@cache
def _kind_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The schema of a built-in kind, whose ``x-kubernetes-patch-*`` annotations drive strategic merge."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_DIR
    schema: dict[str, Any] = json.loads((folder / f"{kind.lower()}-{group_version}.json").read_text("utf-8"))
    return schema


def _resolve(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    while schema and "$ref" in schema:
        schema = _definitions().get(str(schema["$ref"]).rpartition("/")[2])
    return schema or {}


def _child(schema: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    node = _resolve(schema)
    sub = node.get("properties", {}).get(key)
    if sub is None and isinstance(node.get("additionalProperties"), Mapping):
        sub = node["additionalProperties"]
    return sub or {}


def _strip(value: Any) -> Any:
    """A patch value stored as is: its directives removed."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def strategic_merge(original: dict[str, Any], patch: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Kubernetes strategic merge patch of ``original`` by ``patch``, driven by the kind's ``schema`` (see the module
    docstring for what is supported)."""
    directive = patch.get("$patch")
    if directive == "replace":
        return dict(_strip(patch))
    if directive not in (None, "merge", "delete"):
        raise bad_request(f"unknown patch directive {directive!r}")
    result = copy.deepcopy(original)
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            target = key.partition("/")[2]
            result[target] = [x for x in result.get(target) or [] if x not in (value or [])]
            continue
        if key.startswith("$"):
            continue
        sub = _resolve(_child(schema, key))
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = strategic_merge(result[key], value, sub)
        elif isinstance(value, list) and isinstance(result.get(key), list) and "merge" in str(
                sub.get("x-kubernetes-patch-strategy", "")).split(","):
            result[key] = _merge_list(result[key], value, sub)
        else:
            result[key] = _strip(value)
    retained = patch.get("$retainKeys")
    if isinstance(retained, list):
        result = {k: v for k, v in result.items() if k in retained}
    return result


def _merge_list(original: list[Any], patch: list[Any], schema: Mapping[str, Any]) -> list[Any]:
    merge_key = schema.get("x-kubernetes-patch-merge-key")
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_strip(e) for e in patch if not (isinstance(e, dict) and e.get("$patch") == "replace")]
    if merge_key is None:
        return [*copy.deepcopy(original), *(x for x in patch if x not in original)]
    item_schema = _resolve(schema.get("items"))
    result = copy.deepcopy(original)
    for element in patch:
        if not isinstance(element, dict) or merge_key not in element:
            raise bad_request(f"map: {element!r} does not contain declared merge key: {merge_key}")
        at = next((i for i, e in enumerate(result) if isinstance(e, dict) and e.get(merge_key) == element[merge_key]),
                  None)
        if element.get("$patch") == "delete":
            if at is not None:
                result.pop(at)
        elif at is not None:
            result[at] = strategic_merge(result[at], element, item_schema)
        else:
            result.append(_strip(element))
    return result
