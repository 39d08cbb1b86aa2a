"""A real HTTP server on 127.0.0.1 that answers like the kube-apiserver for the resources forecaster uses, so the
official ``kubernetes`` client is exercised over its real wire protocol. Used by ``tests/kube`` (fixtures in
``tests/kube/conftest.py``) and by any test that wants a cluster; not pure (threads, sockets, state).

    with KubeApiServer() as server:               # free port; CRDs from k8s/ and the vendored VPA CRD
        server.put_object(hpa)                    # seed (status kept, metadata filled in, validated)
        cluster = KubeCluster(server.api_client())
        server.inject("PATCH", r"/horizontalpodautoscalers/web$", status=500)   # next matching request fails
        server.writes()                           # what was sent: method, path, content type, parsed body
        server.request("PATCH", path, body, content_type)   # raw HTTP, for tests of the server itself

Paths (``{ns}`` a namespace; lists also across namespaces without ``namespaces/{ns}``):
``/apis/forecaster.io/v1alpha1/[namespaces/{ns}/]predictivescalingpolicies[/{name}[/status]]``,
``/apis/autoscaling/v2/[namespaces/{ns}/]horizontalpodautoscalers[/{name}[/status]]``,
``/apis/autoscaling.k8s.io/v1/[namespaces/{ns}/]verticalpodautoscalers[/{name}[/status]]``,
``/apis/events.k8s.io/v1/[namespaces/{ns}/]events[/{name}]``,
``/apis/coordination.k8s.io/v1/[namespaces/{ns}/]leases[/{name}]`` (any other CRD found is served the same way).

Verbs: GET (object; list with ``labelSelector``, ``limit``, ``continue``), POST (201; 409 AlreadyExists), PUT
(replace; stale ``resourceVersion`` -> 409), PATCH with

- ``application/merge-patch+json`` (RFC 7386);
- ``application/json-patch+json`` (RFC 6902: add, remove, replace, move, copy, test; a malformed document -> 400,
  an operation that does not apply or a failed test -> 422);
- ``application/strategic-merge-patch+json`` for built-ins only (custom resources answer 415, as the real API
  does): maps merge, ``null`` deletes, a list merges only where the schema says ``x-kubernetes-patch-strategy:
  merge`` (by ``x-kubernetes-patch-merge-key`` for lists of objects, as a set union for lists of scalars, e.g.
  ``metadata.finalizers``, ``status.conditions`` by ``type``) and is replaced otherwise; directives ``$patch:
  replace|delete|merge``, ``$retainKeys``, ``$deleteFromPrimitiveList/<field>``; ``$setElementOrder`` is accepted
  and ignored (merged lists keep stored order, new elements appended);
- ``application/apply-patch+yaml``: server-side apply with ``fieldManager`` and ``force``, for every kind;
- anything else -> 415.

Every write records ``metadata.managedFields`` (manager from ``fieldManager``, else the User-Agent), and apply
detects field-ownership conflicts, as the real API server does (``support.kube_apply``).

Write semantics, validation and Status bodies are ``support.kube_store``'s; the patches ``support.kube_patch``'s.
Faults for tests: ``inject`` makes the next ``times`` requests matching (method, path regex) answer an error status,
wait ``delay_s`` first (a client timeout), or drop the connection without an answer.
``requests`` logs every request.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.kube_apply import APPLY_PATCH, apply, manager_of, record_update
from support.kube_patch import (  # re-exported: tests import the patch helpers from here too
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    _kind_schema,
    json_patch,
    merge_patch,
    strategic_merge,
)
from support.kube_store import (
    ApiError,
    ObjectStore,
    ResourceType,
    bad_request,
    builtin_types,
    custom_types,
    discover_crds,
)

_ROUTE = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
                    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?/?$")
_FAULT_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                  410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                  503: "ServiceUnavailable", 504: "Timeout"}


# -- the server -------------------------------------------------------------------------------------------------
@dataclass
class LoggedRequest:
    """One request as the server received it; ``status`` is the answer's code (0: dropped, None: not yet sent)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    status: int | None = None
    fault: bool = False


@dataclass
class Fault:
    """What ``inject`` arms: the next ``times`` requests matching ``method`` (or ``*``) and ``path`` (a regex,
    searched) wait ``delay_s``, then drop the connection, answer ``status``, or (neither) are served normally."""

    method: str
    path: re.Pattern[str]
    times: int = 1
    status: int | None = None
    delay_s: float = 0.0
    drop: bool = False
    retry_after_s: int | None = None
    message: str = "injected fault"
    used: int = 0


@dataclass
class KubeApiServer:
    """The test API server; ``start``/``stop`` or use it as a context manager. ``crds`` default to
    ``kube_store.discover_crds()`` (every CRD under ``k8s/`` plus the vendored VPA CRD)."""

    crds: Sequence[Mapping[str, Any]] | None = None
    store: ObjectStore = field(init=False)
    _requests: list[LoggedRequest] = field(default_factory=list, init=False)
    _faults: list[Fault] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _httpd: ThreadingHTTPServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        crds = discover_crds() if self.crds is None else self.crds
        self.store = ObjectStore(builtin_types() + custom_types(crds))

    # lifecycle
    def start(self) -> KubeApiServer:
        handler = type("Handler", (_Handler,), {"api": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kube-apiserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this server (the client's default configuration otherwise)."""
        from kubernetes import client

        return client.ApiClient(client.Configuration(host=self.url))

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json"
                ) -> tuple[int, dict[str, Any]]:
        """One raw HTTP request to this server (``body`` JSON-encoded unless bytes): the status code and the decoded
        answer. For tests of the server itself; the adapter's tests go through the official client."""
        connection = http.client.HTTPConnection(urlsplit(self.url).netloc, timeout=10)
        try:
            raw = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
            connection.request(method, path, body=raw, headers={"Content-Type": content_type} if raw else {})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    # objects
    def put_object(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Seed ``obj`` (status kept; uid, creationTimestamp, resourceVersion, generation filled in; validated)."""
        return self.store.seed(obj)

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.store.lock:
            found = self.store.objects.get((plural, namespace, name))
            return copy.deepcopy(found)

    def objects(self, plural: str) -> list[dict[str, Any]]:
        with self.store.lock:
            return [copy.deepcopy(o) for k, o in sorted(self.store.objects.items()) if k[0] == plural]

    # faults and the log
    def inject(self, method: str, path: str, *, status: int | None = None, delay_s: float = 0.0, drop: bool = False,
               times: int = 1, retry_after_s: int | None = None, message: str = "injected fault") -> Fault:
        fault = Fault(method.upper(), re.compile(path), times, status, delay_s, drop, retry_after_s, message)
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.used < fault.times and fault.method in ("*", method) and fault.path.search(path):
                    fault.used += 1
                    return fault
        return None

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._requests)

    def writes(self) -> list[LoggedRequest]:
        """The logged POST, PUT, PATCH and DELETE requests, in order."""
        return [r for r in self.requests if r.method != "GET"]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def _log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    # dispatch
    def handle(self, method: str, path: str, query: dict[str, str], content_type: str, body: Any,
               user_agent: str = "") -> tuple[int, dict[str, Any]]:
        """One API request -> ``(code, JSON body)``; raises ``ApiError`` for error answers."""
        manager = manager_of(query, user_agent)
        match = _ROUTE.match(path)
        rt = match and self.store.type_for(match["group"], match["version"], match["plural"])
        if not match or not rt:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        namespace, name, sub = match["ns"], match["name"], match["sub"] or ""
        if (sub and (sub != "status" or not rt.status_subresource)) or (name and not namespace):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if query.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the test server")
        if name is None and method == "GET":
            return 200, self.store.list(rt, namespace, label_selector=query.get("labelSelector", ""),
                                        limit=int(query.get("limit") or 0), continue_token=query.get("continue", ""))
        if name is None and method == "POST" and namespace:
            created = _object_body(content_type, body)
            return 201, self.store.create(rt, namespace, record_update(rt, None, created, manager, "")
                                          if isinstance(created, dict) else created)
        if name is not None and namespace and method == "GET":
            return 200, self.store.get(rt, namespace, name)
        if name is not None and namespace and method == "PUT":
            replacement = _object_body(content_type, body)
            return 200, self.store.update(rt, namespace, name, lambda old: record_update(
                rt, old, self.store._typed(rt, replacement), manager, sub), subresource=sub)
        if name is not None and namespace and method == "PATCH" and content_type == APPLY_PATCH:
            return self._apply(rt, namespace, name, sub, query, body)
        if name is not None and namespace and method == "PATCH":
            change = _patcher(rt, content_type, body)
            return 200, self.store.update(rt, namespace, name, lambda old: record_update(
                rt, old, self.store._typed(rt, change(old)), manager, sub), subresource=sub)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _apply(self, rt: Any, namespace: str, name: str, sub: str, query: dict[str, str], body: Any
               ) -> tuple[int, dict[str, Any]]:
        """Server-side apply (``support.kube_apply``): 201 when it created the object, else 200."""
        if isinstance(body, _Undecodable):
            raise bad_request(f"error decoding YAML: {body.error}")
        manager = query.get("fieldManager", "")
        if not manager:
            raise bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        force = query.get("force") in ("true", "1")
        try:
            self.store.get(rt, namespace, name)
        except ApiError as exc:
            if exc.code != 404 or sub:
                raise
            config = copy.deepcopy(body) if isinstance(body, dict) else body
            if isinstance(config, dict):
                config.get("metadata", {}).pop("resourceVersion", None)
            created = apply(rt, {"metadata": {}}, config, manager, force=force, subresource="")
            created.update(apiVersion=rt.api_version, kind=rt.kind)
            created["metadata"].update(name=name, namespace=namespace)
            return 201, self.store.create(rt, namespace, created)
        return 200, self.store.update(rt, namespace, name, lambda old: apply(rt, old, body, manager, force=force,
                                                                              subresource=sub), subresource=sub)


def _object_body(content_type: str, body: Any) -> Any:
    if content_type not in ("", "application/json"):
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                                                    f"media types include: application/json (got {content_type!r})")
    if isinstance(body, _Undecodable):
        raise bad_request(f"couldn't get version/kind; json parse error: {body.error}")
    return body


def _patcher(rt: ResourceType, content_type: str, patch: Any) -> Any:
    accepted = [JSON_PATCH, MERGE_PATCH] + ([] if rt.custom else [STRATEGIC_MERGE_PATCH])
    if content_type not in accepted:
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                                                    "media types include: " + ", ".join(accepted))
    if isinstance(patch, _Undecodable):
        raise bad_request(f"error decoding patch: {patch.error}")
    if content_type == JSON_PATCH:
        return lambda old: json_patch(old, patch)
    if not isinstance(patch, dict):
        raise bad_request("the patch must be a JSON object")
    if content_type == MERGE_PATCH:
        return lambda old: merge_patch(old, patch)
    return lambda old: strategic_merge(old, patch, _kind_schema(rt.api_version, rt.kind))


@dataclass(frozen=True)
class _Undecodable:
    text: str
    error: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: KubeApiServer

    def setup(self) -> None:
        """Disable Nagle: headers and body go out in separate writes, and with the client's delayed ACK each
        keep-alive request otherwise waited ~40 ms for the second write."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                body = _Undecodable(raw.decode("utf-8", "replace"), str(exc))
        entry = LoggedRequest(self.command, url.path, query, content_type, body)
        self.api._log(entry)
        fault = self.api._take_fault(self.command, url.path)
        entry.fault = fault is not None
        if fault is not None and fault.delay_s:
            self.api._stopping.wait(fault.delay_s)
        if fault is not None and fault.drop:
            entry.status = 0
            self.close_connection = True
            return
        headers: dict[str, str] = {}
        try:
            if fault is not None and fault.status:
                reason = _FAULT_REASONS.get(fault.status, "Unknown")
                retry = {"retryAfterSeconds": fault.retry_after_s} if fault.retry_after_s else {}
                headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s else {}
                raise ApiError(fault.status, reason, fault.message, {"causes": [], **retry}, headers)
            code, payload = self.api.handle(self.command, url.path, query, content_type, body,
                                            self.headers.get("User-Agent") or "")
        except ApiError as exc:
            code, payload, headers = exc.code, exc.status(), exc.headers
        entry.status = code
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
