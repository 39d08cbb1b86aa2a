"""Server-side apply and managed fields for the Kubernetes API test server (``support.kube_apiserver``).

What the kube-apiserver does, reduced to what forecaster and GitOps tools rely on:

- every write records who owns which fields in ``metadata.managedFields`` (``manager``, ``operation`` ``Apply`` or
  ``Update``, ``apiVersion``, ``time``, ``fieldsType: FieldsV1``, ``fieldsV1``, ``subresource`` for ``/status``);
  the manager is the ``fieldManager`` query parameter, else the client's User-Agent up to its first ``/`` (the
  official Python client: ``OpenAPI-Generator``);
- ``Update`` writes (PUT, merge/JSON/strategic patches, create) take every field whose value they changed, silently
  (a field they removed is owned by nobody);
- ``application/apply-patch+yaml`` (``apply``): ``fieldManager`` is required (400 without); the configuration's
  fields are merged into the live object; a field another manager owns with a *different* value is a conflict: 409
  ``Conflict`` naming each field and manager, unless ``force=true``, which takes the field over; an equal value is
  shared; fields the manager applied before and leaves out now are removed unless another manager owns them; a
  ``metadata.resourceVersion`` in the configuration is a precondition (409 when stale); an absent object is created.

Field paths are tuples of keys (``("spec", "minReplicas")``, ``("metadata", "annotations", "x")``). Lists are atomic
(one field), as for lists without ``x-kubernetes-list-type`` (the HPA and VPA fields forecaster writes). Only
``metadata.labels`` and ``metadata.annotations`` are tracked under ``metadata``. ``/status`` writes own ``status.*``
paths (entries with ``subresource: status``); main-resource writes of a kind with a status subresource never touch
``status``.

Not pure (builds the ``managedFields`` the store keeps). Used by ``support.kube_apiserver``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from support.kube_store import ApiError, ResourceType, bad_request

APPLY_PATCH = "application/apply-patch+yaml"
Path = tuple[str, ...]
_META_TRACKED = ("labels", "annotations")


def manager_of(query: dict[str, str], user_agent: str) -> str:
    """The field manager of a request: ``fieldManager``, else the User-Agent's product token."""
    return query.get("fieldManager") or (user_agent.split("/", 1)[0].strip() or "unknown")


def leaf_paths(obj: Any, prefix: Path = ()) -> set[Path]:
    """Every leaf field of ``obj`` (a dict): scalars, lists (atomic) and empty objects."""
    if not isinstance(obj, dict) or (not obj and prefix):
        return {prefix}
    out: set[Path] = set()
    for key, value in obj.items():
        out |= leaf_paths(value, (*prefix, str(key)))
    return out


def tracked(obj: dict[str, Any], rt: ResourceType, subresource: str) -> set[Path]:
    """The fields of ``obj`` a write to ``subresource`` may own (module docstring)."""
    paths: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            for part in _META_TRACKED:
                if isinstance(value, dict) and value.get(part):
                    paths |= leaf_paths(value[part], ("metadata", part))
            continue
        if rt.status_subresource and (key == "status") != (subresource == "status"):
            continue
        paths |= leaf_paths(value, (key,))
    return paths


def get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def set_path(obj: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        child = obj.get(key)
        if not isinstance(child, dict):
            child = obj[key] = {}
        obj = child
    obj[path[-1]] = copy.deepcopy(value)


def delete_path(obj: dict[str, Any], path: Path) -> None:
    """Remove ``path`` and then every parent object it leaves empty (``metadata`` itself is kept)."""
    parents = [obj]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth] or path[:depth] == ("metadata",):
            break
        parents[depth - 1].pop(path[depth - 1], None)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


# -- fieldsV1 encoding -------------------------------------------------------------------------------------------
def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """``{"f:spec": {"f:minReplicas": {}}}`` for ``{("spec", "minReplicas")}``."""
    out: dict[str, Any] = {}
    for path in sorted(paths):
        node = out
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return out


def from_fields_v1(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in fields.items():
        if not key.startswith("f:"):
            continue  # k:/v:/i: members of set/map lists are not produced here
        path = (*prefix, key[2:])
        out |= from_fields_v1(child, path) if child else {path}
    return out


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(e) for e in (obj.get("metadata") or {}).get("managedFields") or []]


def _owned(entry: dict[str, Any]) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def _scope(entry: dict[str, Any]) -> str:
    return str(entry.get("subresource") or "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _put_entry(entries: list[dict[str, Any]], manager: str, operation: str, subresource: str, api_version: str,
               paths: set[Path]) -> list[dict[str, Any]]:
    """``entries`` with the entry of (manager, operation, subresource) set to ``paths`` (dropped when empty)."""
    kept = [e for e in entries if (e.get("manager"), e.get("operation"), _scope(e)) != (manager, operation,
                                                                                       subresource)]
    if paths:
        entry: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version,
                                 "time": _now(), "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
        if subresource:
            entry["subresource"] = subresource
        kept.append(entry)
    return [e for e in kept if _owned(e)]


def _overlaps(a: Path, b: Path) -> bool:
    return a[:len(b)] == b or b[:len(a)] == a


def record_update(rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                  subresource: str) -> dict[str, Any]:
    """``new`` with the managed fields of an ``Update`` write by ``manager`` (module docstring)."""
    before = {} if old is None else old
    scope_paths = tracked(new, rt, subresource) | tracked(before, rt, subresource)
    changed = {p for p in scope_paths if get_path(new, p) != get_path(before, p)}
    if not changed and old is not None:  # a no-op write leaves the managed fields (and resourceVersion) alone
        out = copy.deepcopy(new)
        out.setdefault("metadata", {})["managedFields"] = copy.deepcopy(_entries(old))
        return out
    present = {p for p in changed if get_path(new, p) is not _MISSING}
    entries = []
    for entry in _entries(before):
        owned = {p for p in _owned(entry) if not any(_overlaps(p, c) for c in changed)}
        entries.append({**entry, "fieldsV1": to_fields_v1(owned)})
    mine = next((e for e in entries if (e["manager"], e["operation"], _scope(e)) == (manager, "Update", subresource)),
                None)
    paths = (set() if mine is None else _owned(mine)) | present
    entries = _put_entry([e for e in entries if _owned(e)], manager, "Update", subresource, rt.api_version, paths)
    out = copy.deepcopy(new)
    out.setdefault("metadata", {})["managedFields"] = entries
    return out


def apply(rt: ResourceType, live: dict[str, Any], config: Any, manager: str, *, force: bool,
          subresource: str) -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` to ``live`` (module docstring); raises the 409 of a conflict."""
    if not isinstance(config, dict):
        raise bad_request("the apply configuration must be an object")
    for key, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
        if config.get(key) != expected:
            raise bad_request(f"apply configuration: {key} must be {expected!r}, got {config.get(key)!r}")
    applied = tracked(config, rt, subresource)
    entries = _entries(live)
    conflicts: list[tuple[Path, str]] = []
    for entry in entries:
        if entry.get("manager") == manager or _scope(entry) != subresource:
            continue
        for owned in _owned(entry):
            for path in applied:
                if _overlaps(owned, path) and get_path(live, path) != get_path(config, path):
                    conflicts.append((path, str(entry.get("manager"))))
    if conflicts and not force:
        fields = sorted({("." + ".".join(p), m) for p, m in conflicts})
        causes = [{"type": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": f} for f, m in fields]
        raise ApiError(409, "Conflict", f"Apply failed with {len(fields)} conflict(s): "
                       + "; ".join(f'conflict with "{m}": {f}' for f, m in fields),
                       {"name": (live.get("metadata") or {}).get("name"), "group": rt.group, "kind": rt.kind,
                        "causes": causes})
    out = copy.deepcopy(live)
    taken = {p for p, _ in conflicts}
    others: set[Path] = set()
    kept_entries = []
    for entry in entries:
        owned = _owned(entry)
        if entry.get("manager") != manager and _scope(entry) == subresource:
            owned = {p for p in owned if not any(_overlaps(p, t) for t in taken)}
            others |= owned
        kept_entries.append({**entry, "fieldsV1": to_fields_v1(owned)})
    previous = next((e for e in entries if (e.get("manager"), e.get("operation"), _scope(e)) ==
                     (manager, "Apply", subresource)), None)
    for path in (set() if previous is None else _owned(previous)) - applied:
        if not any(_overlaps(path, o) for o in others):
            delete_path(out, path)
    for path in applied:
        set_path(out, path, get_path(config, path))
    meta = out.setdefault("metadata", {})
    wanted = (config.get("metadata") or {}).get("resourceVersion")
    if wanted:
        meta["resourceVersion"] = wanted  # the store's update() checks it against the stored one
    unchanged = {k: v for k, v in out.items() if k != "metadata"} == {k: v for k, v in live.items() if k != "metadata"}
    same_meta = all(get_path(out, ("metadata", k)) == get_path(live, ("metadata", k)) for k in _META_TRACKED)
    if unchanged and same_meta and not taken and previous is not None and _owned(previous) == applied:
        return out  # a no-op apply: nothing written, the managed fields stay as they are
    meta["managedFields"] = _put_entry([e for e in kept_entries if _owned(e)], manager, "Apply", subresource,
                                       rt.api_version, applied)
    return out
