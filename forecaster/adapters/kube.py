"""Kubernetes adapter: ``ClusterApi`` and ``LeaseApi`` (``contracts.ports``) over the official ``kubernetes`` client.

Called by the controller (reconcile, leader election) and by the CLI's cluster commands. Not pure: every method is
one HTTP request (or one paginated list) to the kube-apiserver. It holds no policy: it reads and writes exactly
what it is given and translates the wire format and the errors.

Objects in and out are the API's own JSON (camelCase dicts, as ``kubectl get -o json`` shows them): every call uses
``_preload_content=False`` and decodes the body itself, so no field is lost or reformatted by the client's models.

| resource | API | writes |
| --- | --- | --- |
| PredictiveScalingPolicy | ``forecaster.io/v1alpha1`` | merge patch of ``/status`` |
| HorizontalPodAutoscaler | ``autoscaling/v2`` | server-side apply of ``spec.minReplicas`` + annotations, guarded (1) |
| VerticalPodAutoscaler | ``autoscaling.k8s.io/v1`` | server-side apply of ``/status``, guarded (1) |
| Event | ``events.k8s.io/v1`` (the objects ``kubectl describe`` shows) | create |
| Lease | ``coordination.k8s.io/v1`` | create; replace, guarded (1) |

(1) by ``metadata.resourceVersion``: the server answers 409 when the object changed since it was read.

Every write names the field manager ``forecaster`` (``FIELD_MANAGER``), so ``metadata.managedFields`` says which
fields are ours. The two writes to objects users own are server-side apply (``application/apply-patch+yaml``,
``force=true``): the HPA's ``spec.minReplicas`` and our two annotations, and the VPA's ``status``. The applied
configuration holds exactly the fields we want to own: a GitOps tool (Argo CD, Flux) told to ignore fields managed
by ``forecaster`` then ignores exactly those, and a field we stop applying (our annotations, when the HPA's own
floor is restored) is removed by the server unless another manager owns it. ``force`` takes ``minReplicas`` over
from whoever applied it before (the GitOps tool's manifest): raising the floor is the policy's job while it is
Auto; the HPA's own value is kept in the ``forecaster.io/original-min-replicas`` annotation and restored. Keys
asked to be removed that another manager still owns (annotations written by an older release through a merge
patch, before field managers) are removed by a follow-up merge patch, guarded by the new ``resourceVersion``.

Other patches are sent as ``application/merge-patch+json`` (RFC 7386) explicitly: for a dict body the client would
otherwise pick strategic merge for built-ins, which custom resources do not support.

Lease and Event writes go through ``ApiClient.call_api`` with the JSON body as given rather than through
``CoordinationV1Api``/``EventsV1Api``: those validate a dict into the client's pydantic models, which re-serialise
``MicroTime`` fields with ``datetime.isoformat()``. That drops the fraction when the microseconds are zero, and the
kube-apiserver rejects a ``MicroTime`` without its six fractional digits. Reads use the typed APIs.

Errors (``contracts.errors``): 404 -> ``NotFoundError``; 409 -> ``ConflictError`` (re-read and retry); 400, 401,
403, 405, 415, 422 -> ``PermanentError`` with the server's Status message and its field causes; 410, 429, 5xx,
timeouts and connection errors -> ``TemporaryError`` (``delay_s`` from ``Retry-After`` when the server sends one).
Every call has a client-side ``(connect, read)`` timeout. The client's own urllib3 retries (``Configuration.retries``)
are left as configured: by default urllib3 retries idempotent requests (GET, PUT) up to 3 times on connection errors
and read timeouts, and sleeps for ``Retry-After`` before retrying one answered 429 or 503 with that header.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from forecaster.contracts.errors import ConflictError, NotFoundError, PermanentError, TemporaryError

if TYPE_CHECKING:
    from forecaster.contracts.ports import ClusterApi, LeaseApi

__all__ = [
    "APPLY_PATCH",
    "EVENT_NOTE_MAX_BYTES",
    "FIELD_MANAGER",
    "MERGE_PATCH",
    "POLICY_GROUP",
    "POLICY_PLURAL",
    "POLICY_VERSION",
    "REPORTING_CONTROLLER",
    "VPA_GROUP",
    "VPA_PLURAL",
    "VPA_VERSION",
    "KubeCluster",
    "micro_time",
]

POLICY_GROUP = "forecaster.io"
POLICY_VERSION = "v1alpha1"
POLICY_PLURAL = "predictivescalingpolicies"
VPA_GROUP = "autoscaling.k8s.io"
VPA_VERSION = "v1"
VPA_PLURAL = "verticalpodautoscalers"
REPORTING_CONTROLLER = "forecaster.io/controller"
"""``reportingController`` of every Event this adapter creates."""
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
"""Server-side apply (a JSON body is valid YAML)."""
FIELD_MANAGER = "forecaster"
"""``fieldManager`` of every write: the name ``metadata.managedFields`` shows, and GitOps tools can ignore."""
EVENT_NOTE_MAX_BYTES = 1024
"""The kube-apiserver rejects an ``events.k8s.io/v1`` note longer than this (UTF-8 bytes); longer notes are cut."""
_FIELD_MAX = 128
"""Limit of ``reportingInstance``, ``action`` and ``reason`` of an Event."""
_TEMPORARY_STATUSES = frozenset({0, 408, 410, 429})
_DEFAULT_DELAY_S = 5.0


def micro_time(value: datetime | None = None) -> str:
    """A ``metav1.MicroTime`` string: UTC, always six fractional digits (``2024-03-04T05:06:07.000000Z``).

    ``value`` defaults to now; a naive datetime is taken as UTC. Lease times and ``eventTime`` need this form."""
    moment = datetime.now(UTC) if value is None else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubeCluster:
    """The cluster as the controller sees it (``ClusterApi`` + ``LeaseApi``), over one ``ApiClient``.

    ``connect_timeout_s`` / ``read_timeout_s`` bound every request (seconds); ``page_size`` is the ``limit`` of each
    list page; ``reporting_instance`` names this replica in Events (default ``$POD_NAME``, else the host name);
    ``clock`` gives the ``eventTime`` of Events (default: now, UTC)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        page_size: int = 250,
        reporting_instance: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api_client = api_client
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._page_size = page_size
        instance = reporting_instance or os.environ.get("POD_NAME") or socket.gethostname() or "forecaster"
        self.reporting_instance = instance[:_FIELD_MAX]
        self._clock = clock or (lambda: datetime.now(UTC))
        self._custom = client.CustomObjectsApi(api_client)
        self._autoscaling = client.AutoscalingV2Api(api_client)
        self._coordination = client.CoordinationV1Api(api_client)

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None, **options: Any) -> KubeCluster:
        """Connect with the in-cluster service account when running in a pod (and neither argument is given),
        else with ``kubeconfig`` (default ``$KUBECONFIG`` or ``~/.kube/config``) and its ``context``.

        ``options`` go to the constructor. Raises ``PermanentError`` when no configuration can be loaded."""
        configuration = client.Configuration()
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config(client_configuration=configuration)
                return cls(client.ApiClient(configuration), **options)
            except config.ConfigException:
                pass
        try:
            config.load_kube_config(  # $KUBECONFIG read now: the client reads it once, when it is imported
                config_file=kubeconfig or os.environ.get("KUBECONFIG"), context=context,
                client_configuration=configuration, persist_config=False,
            )
        except (config.ConfigException, OSError, ValueError) as exc:
            raise PermanentError(f"no Kubernetes configuration: not in a cluster and kubeconfig failed: {exc}") from exc
        return cls(client.ApiClient(configuration), **options)

    # -- PredictiveScalingPolicy --------------------------------------------------------------------------------
    def list_policies(self) -> list[dict[str, Any]]:
        """Every ``PredictiveScalingPolicy`` in every namespace (all pages)."""
        return self._list_all(
            f"list {POLICY_PLURAL}", self._custom.list_cluster_custom_object, POLICY_GROUP, POLICY_VERSION,
            POLICY_PLURAL,
        )

    def get_policy(self, namespace: str, name: str) -> dict[str, Any]:
        """One ``PredictiveScalingPolicy`` (``NotFoundError`` when absent); the KEDA scaler reads its status."""
        return self._call(
            f"get {POLICY_PLURAL} {namespace}/{name}", self._custom.get_namespaced_custom_object,
            POLICY_GROUP, POLICY_VERSION, namespace, POLICY_PLURAL, name,
        )

    def patch_policy_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the policy's ``status`` subresource (keys of ``status`` replace, ``None`` removes)."""
        return self._call(
            f"patch {POLICY_PLURAL} {namespace}/{name}/status", self._custom.patch_namespaced_custom_object_status,
            POLICY_GROUP, POLICY_VERSION, namespace, POLICY_PLURAL, name, {"status": status},
            field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH,
        )

    # -- HorizontalPodAutoscaler --------------------------------------------------------------------------------
    def get_hpa(self, namespace: str, name: str) -> dict[str, Any]:
        hpa = self._call(
            f"get horizontalpodautoscalers {namespace}/{name}",
            self._autoscaling.read_namespaced_horizontal_pod_autoscaler, name, namespace,
        )
        return _with_type(hpa, "autoscaling/v2", "HorizontalPodAutoscaler")

    def list_hpas(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        """HPAs of every namespace matching ``label_selector`` (all when ``None``), with ``apiVersion``/``kind``
        filled in (the API leaves them out of list items of built-in types)."""
        items = self._list_all(
            "list horizontalpodautoscalers", self._autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
            label_selector=label_selector,
        )
        return [_with_type(item, "autoscaling/v2", "HorizontalPodAutoscaler") for item in items]

    def patch_hpa(
        self, namespace: str, name: str, *, min_replicas: int | None, annotations: dict[str, str | None],
        resource_version: str, metrics: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Set ``spec.minReplicas`` and ``annotations`` (``None`` removes one), guarded by ``resource_version``:
        ``ConflictError`` when the HPA changed since it was read.

        Server-side apply by ``forecaster`` (module docstring): the configuration holds ``minReplicas`` and the
        annotations with a value, so the ones given ``None`` are dropped by the server when we owned them alone, and
        by a follow-up merge patch when another manager owns them too. With ``min_replicas=None`` nothing is applied
        (omitting a field we own would delete it): the annotations alone are merge-patched. ``metrics``: the whole
        ``spec.metrics`` list with the joint policy's target utilisation (``cycle.hpa_target``); the list is atomic,
        so a change with ``metrics`` is one merge patch of the floor, the annotations and the list (applying the list
        would make ``forecaster`` own the user's metrics and delete them from the HPA when a later apply leaves them
        out)."""
        what = f"patch horizontalpodautoscalers {namespace}/{name}"
        method = self._autoscaling.patch_namespaced_horizontal_pod_autoscaler
        if min_replicas is None or metrics is not None:
            body: dict[str, Any] = {"metadata": {"resourceVersion": resource_version,
                                                 "annotations": dict(annotations)}}
            if min_replicas is not None:
                body["spec"] = {"minReplicas": int(min_replicas)}
            if metrics is not None:
                body.setdefault("spec", {})["metrics"] = metrics
            hpa = self._call(what, method, name, namespace, body, field_manager=FIELD_MANAGER,
                             _content_type=MERGE_PATCH)
            return _with_type(hpa, "autoscaling/v2", "HorizontalPodAutoscaler")
        kept = {key: value for key, value in annotations.items() if value is not None}
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": resource_version}
        if kept:
            metadata["annotations"] = kept
        config = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": metadata,
                  "spec": {"minReplicas": int(min_replicas)}}
        hpa = self._call(what, method, name, namespace, config, field_manager=FIELD_MANAGER, force=True,
                         _content_type=APPLY_PATCH)
        left = {key: None for key, value in annotations.items()
                if value is None and key in ((hpa.get("metadata") or {}).get("annotations") or {})}
        if left:  # owned by another manager as well (e.g. an older release's merge patch): remove them explicitly
            body = {"metadata": {"resourceVersion": str((hpa.get("metadata") or {}).get("resourceVersion") or ""),
                                 "annotations": left}}
            hpa = self._call(what, method, name, namespace, body, field_manager=FIELD_MANAGER,
                             _content_type=MERGE_PATCH)
        return _with_type(hpa, "autoscaling/v2", "HorizontalPodAutoscaler")

    # -- VerticalPodAutoscaler ----------------------------------------------------------------------------------
    def get_vpa(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call(
            f"get {VPA_PLURAL} {namespace}/{name}", self._custom.get_namespaced_custom_object,
            VPA_GROUP, VPA_VERSION, namespace, VPA_PLURAL, name,
        )

    def patch_vpa_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """Apply the VPA's ``status`` subresource (e.g. ``recommendation`` and ``conditions``; each key given
        replaces the stored one whole: their lists are atomic), guarded by ``resource_version``. Server-side apply by
        ``forecaster`` (module docstring): a status field we applied before and leave out now is removed."""
        config = {"apiVersion": f"{VPA_GROUP}/{VPA_VERSION}", "kind": "VerticalPodAutoscaler",
                  "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
                  "status": status}
        return self._call(
            f"patch {VPA_PLURAL} {namespace}/{name}/status", self._custom.patch_namespaced_custom_object_status,
            VPA_GROUP, VPA_VERSION, namespace, VPA_PLURAL, name, config, field_manager=FIELD_MANAGER, force=True,
            _content_type=APPLY_PATCH,
        )

    # -- Event --------------------------------------------------------------------------------------------------
    def create_event(
        self, namespace: str, involved: dict[str, Any], *, reason: str, message: str, type_: str = "Normal",
        action: str | None = None,
    ) -> None:
        """Create an ``events.k8s.io/v1`` Event about ``involved`` (a whole object or an object reference).

        ``reason`` is the short CamelCase cause, ``message`` the note (cut to 1024 bytes), ``type_`` ``Normal`` or
        ``Warning``, ``action`` what was done (default: ``reason``). The name is generated by the server."""
        regarding = object_reference(involved)
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": f"{regarding.get('name') or 'forecaster'}.", "namespace": namespace},
            "eventTime": micro_time(self._clock()),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.reporting_instance,
            "action": action or reason,
            "reason": reason,
            "note": _cut_utf8(message, EVENT_NOTE_MAX_BYTES),
            "type": type_,
            "regarding": regarding,
        }
        self._send(f"create events {namespace}", "POST", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)

    # -- Lease --------------------------------------------------------------------------------------------------
    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease, or ``None`` when it does not exist."""
        try:
            lease = self._call(
                f"get leases {namespace}/{name}", self._coordination.read_namespaced_lease, name, namespace
            )
        except NotFoundError:
            return None
        return _with_type(lease, "coordination.k8s.io/v1", "Lease")

    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease with ``spec``; ``ConflictError`` when it already exists (someone else won)."""
        body = _lease(namespace, name, spec, resource_version=None)
        return self._send(
            f"create leases {namespace}/{name}", "POST", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
            body,
        )

    def replace_lease(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """Replace the Lease's spec (renew or take over), guarded by ``resource_version``: ``ConflictError`` when
        another replica wrote it since it was read. Labels and annotations of the Lease are not kept."""
        body = _lease(namespace, name, spec, resource_version=resource_version)
        return self._send(
            f"replace leases {namespace}/{name}", "PUT",
            f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}", body,
        )

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One typed-API call with ``_preload_content=False``: the response body as JSON, errors translated."""
        try:
            response = method(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            return _decode(what, _read(response))
        except ApiException as exc:
            raise translate_api_exception(exc, what) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TemporaryError(f"{what}: no answer from the Kubernetes API: {exc}") from exc

    def _send(self, what: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request with a JSON body sent exactly as given (see the module docstring for why)."""
        try:
            request = self.api_client.param_serialize(
                method=method, resource_path=path, query_params=[("fieldManager", FIELD_MANAGER)],
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body, auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*request, _request_timeout=self._timeout)
            data = response.read()
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return _decode(what, data)
        except ApiException as exc:
            raise translate_api_exception(exc, what) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TemporaryError(f"{what}: no answer from the Kubernetes API: {exc}") from exc

    def _list_all(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a list, page by page (``limit`` + ``continue``), with ``apiVersion``/``kind`` set."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._call(what, method, *args, limit=self._page_size, _continue=token, **kwargs)
            kind = str(page.get("kind", ""))
            api_version = str(page.get("apiVersion", ""))
            item_kind = kind[: -len("List")] if kind.endswith("List") else kind
            items.extend(_with_type(item, api_version, item_kind) for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return items


def translate_api_exception(exc: ApiException, what: str) -> Exception:
    """The ``forecaster.contracts.errors`` exception for an ``ApiException`` (see the module docstring for the mapping).

    The message names the call, the HTTP status, the Status ``reason`` and ``message`` and each field cause."""
    code = int(exc.status or 0)
    status = _status_body(exc.body)
    reason = str(status.get("reason") or exc.reason or "")
    message = str(status.get("message") or "").strip()
    found = status.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    causes = [
        f"{cause.get('field') or '<object>'}: {cause.get('message') or cause.get('reason') or ''}".strip()
        for cause in (details.get("causes") or [])
        if isinstance(cause, dict)
    ]
    text = f"{what}: HTTP {code} {reason}".rstrip()
    if message:
        text += f": {message}"
    if causes and not all(cause in message for cause in causes):
        text += " (causes: " + "; ".join(causes) + ")"
    if code == 404:
        return NotFoundError(text)
    if code == 409:
        return ConflictError(text)
    if code in _TEMPORARY_STATUSES or code >= 500:
        return TemporaryError(text, delay_s=_retry_after_s(exc, details))
    return PermanentError(text)


def object_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An ``ObjectReference`` (``apiVersion``, ``kind``, ``name``, ``namespace``, ``uid``, ``resourceVersion``) for a
    whole object (with ``metadata``) or an existing reference; empty fields are left out."""
    meta = obj.get("metadata")
    source: Mapping[str, Any] = meta if isinstance(meta, Mapping) else obj
    reference = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": source.get("name"),
        "namespace": source.get("namespace"),
        "uid": source.get("uid"),
        "resourceVersion": source.get("resourceVersion"),
    }
    return {key: value for key, value in reference.items() if value}


def _lease(namespace: str, name: str, spec: Mapping[str, Any], *, resource_version: str | None) -> dict[str, Any]:
    """A whole Lease object; ``datetime`` values in ``spec`` (acquire/renew times) become ``MicroTime`` strings."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    wire = {key: micro_time(value) if isinstance(value, datetime) else value for key, value in spec.items()}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": wire}


def _with_type(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    if api_version and "apiVersion" not in obj:
        obj["apiVersion"] = api_version
    if kind and "kind" not in obj:
        obj["kind"] = kind
    return obj


def _read(response: Any) -> bytes:
    """The whole body of a raw urllib3 response (``_preload_content=False``), returning the connection to the pool."""
    try:
        return bytes(response.data)
    finally:
        response.release_conn()


def _decode(what: str, data: bytes | None) -> dict[str, Any]:
    try:
        decoded = json.loads(data or b"{}")
    except ValueError as exc:
        raise TemporaryError(f"{what}: the Kubernetes API answered with a body that is not JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise PermanentError(f"{what}: expected a JSON object, got {type(decoded).__name__}")
    return decoded


def _status_body(body: str | bytes | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        decoded = json.loads(body)
    except ValueError:
        return {"message": (body.decode("utf-8", "replace") if isinstance(body, bytes) else body)[:500]}
    return decoded if isinstance(decoded, dict) else {}


def _retry_after_s(exc: ApiException, details: Mapping[str, Any]) -> float:
    headers = exc.headers or {}
    for raw in (headers.get("Retry-After"), details.get("retryAfterSeconds")):
        try:
            if raw is not None and float(raw) > 0:
                return float(raw)
        except (TypeError, ValueError):
            continue
    return _DEFAULT_DELAY_S


def _cut_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - 3].decode("utf-8", "ignore") + "..."


if TYPE_CHECKING:

    def _implements_the_ports(cluster: KubeCluster) -> tuple[ClusterApi, LeaseApi]:
        """Never called: makes mypy check that ``KubeCluster`` satisfies both protocols."""
        return cluster, cluster
