"""The forecast service's pods (``k8s/service/``) are wired to the real program: their arguments parse with the
real ``forecaster serve`` command, every ``FORECASTER_*`` variable and Secret key is a ``ServiceSettings`` field,
the mounted Secret and ConfigMap yield working settings and a loadable workloads file, the probes and the scrape
path are routes the app serves; the pods run hardened, and Services, ServiceMonitor and PodDisruptionBudget select
the pods they are meant to (the API Service the API replicas only, the scrape the jobs pod only)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.k8s_schemas import K8S_DIR, assert_pod_hardened, load_documents, load_manifests

from forecaster.contracts.errors import InputError
from forecaster.contracts.quantity import parse_quantity as quantity
from forecaster.runtime.service.registry import load_workloads
from forecaster.runtime.settings import ENV_PREFIX, SECRETS_DIR_ENV, ServiceSettings

SERVICE_DIR = K8S_DIR / "service"


def _one(name: str) -> dict[str, Any]:
    (obj,) = load_documents(SERVICE_DIR / name)
    return obj


JOBS = _one("deployment-jobs.yaml")
API = _one("deployment-api.yaml")
DEPLOYMENTS = {"jobs": JOBS, "api": API}
SECRET = _one("secret.example.yaml")
CONFIGMAP = _one("configmap-workloads.yaml")
PVC = _one("pvc.yaml")
ACCOUNT = _one("serviceaccount.yaml")
API_SERVICE = _one("service-api.yaml")
JOBS_SERVICE = _one("service-jobs.yaml")
MONITOR = _one("servicemonitor.yaml")
PDB = _one("poddisruptionbudget.yaml")
FIELDS = {f.name for f in dataclasses.fields(ServiceSettings)}
README = (K8S_DIR / "README.md").read_text(encoding="utf-8")



def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod(deployment)["containers"]
    return dict(only)


def env(deployment: dict[str, Any]) -> dict[str, str]:
    """The container's environment (plain values only: the service reads no valueFrom variable)."""
    items = container(deployment).get("env", [])
    assert all("valueFrom" not in e for e in items), "settings come from values and the mounted Secret"
    return {e["name"]: e["value"] for e in items}


def mounts(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume mounted there (with the mount's readOnly flag)."""
    volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
    return {m["mountPath"]: {**volumes[m["name"]], "readOnly": m.get("readOnly", False)}
            for m in container(deployment)["volumeMounts"]}


def mount_of(deployment: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """The mount holding ``path`` (the longest mountPath that is a parent of it, or the path itself)."""
    found = [(m, v) for m, v in mounts(deployment).items() if Path(path) == Path(m) or Path(m) in Path(path).parents]
    assert found, f"{path} is on the read-only root filesystem: no volume is mounted there"
    return max(found, key=lambda mv: len(mv[0]))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


# -- the real CLI -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serve_command() -> Any:
    typer_main = pytest.importorskip("typer.main")
    from forecaster.cli import app

    command = getattr(typer_main.get_command(app), "commands", {}).get("serve")
    assert command is not None, "`forecaster serve` is not registered on forecaster.cli.app"
    return command


def parse_serve(command: Any, args: list[str]) -> dict[str, Any]:
    """``forecaster serve`` options parsed by the real click command (never run)."""
    assert args[0] == "serve"
    context: Any = command.make_context("serve", list(args[1:]))
    return dict(context.params)


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_args_are_accepted_by_forecaster_serve(serve_command: Any, name: str) -> None:
    c = container(DEPLOYMENTS[name])
    assert c["command"] == ["forecaster"]
    assert c["image"] == "ghcr.io/forecaster/forecaster:0.1.0"
    options = {opt for param in serve_command.params for opt in (*param.opts, *param.secondary_opts)}
    given = [item.partition("=")[0] for item in c["args"][1:]]
    assert set(given) <= options, f"unknown to the CLI: {sorted(set(given) - options)}"
    parsed = parse_serve(serve_command, c["args"])
    assert parsed["host"] == "0.0.0.0", "listen on the pod's address, not loopback (anonymous reads stay off too)"
    assert parsed["port"] == c["ports"][0]["containerPort"] == 8000
    assert parsed["no_scheduler"] is (name == "api")
    assert parsed["demo"] is False and parsed["anonymous"] is None and parsed["store_url"] is None, \
        "the store URL comes from the Secret, never from the command line"


def test_the_parse_would_catch_a_wrong_flag(serve_command: Any) -> None:
    with pytest.raises(Exception, match="No such option: --no-schedulr") as caught:  # typer's (vendored) click
        parse_serve(serve_command, ["serve", "--no-schedulr"])
    assert "UsageError" in {cls.__name__ for cls in type(caught.value).__mro__}


# -- settings: FORECASTER_* variables, the Secret, the ConfigMap -----------------------------------------------
@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_forecaster_variable_is_a_settings_field(name: str) -> None:
    variables = [v for v in env(DEPLOYMENTS[name]) if v.startswith(ENV_PREFIX)]
    assert SECRETS_DIR_ENV in variables
    unknown = [v for v in variables if v != SECRETS_DIR_ENV and v.removeprefix(ENV_PREFIX).lower() not in FIELDS]
    assert unknown == [], f"not ServiceSettings fields: {unknown}"
    assert env(DEPLOYMENTS[name])["HOME"] == "/tmp"


def test_the_field_check_would_catch_a_misspelt_variable() -> None:
    assert "artefact_dir" in FIELDS and "artifact_dir" not in FIELDS
    assert "prometheus_url" in FIELDS and "workloads_file" in FIELDS and "store_url" in FIELDS


def test_secret_template_keys_are_settings_fields() -> None:
    assert SECRET["type"] == "Opaque" and "data" not in SECRET
    keys = set(SECRET["stringData"])
    assert {"store_url", "read_tokens", "write_tokens"} <= keys <= FIELDS
    assert SECRET["stringData"]["store_url"].startswith("postgresql+psycopg://")


def test_readme_creates_the_secret_the_pods_mount_with_real_fields() -> None:
    commands = re.findall(r"kubectl[^\n]*create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)", README)
    assert commands, "k8s/README.md shows how to create the Secret"
    for name, rest in commands:
        assert name == SECRET["metadata"]["name"]
        keys = re.findall(r"--from-literal=(\w+)=", rest)
        assert keys and set(keys) <= FIELDS, keys
        assert "store_url" in keys


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_secret_is_mounted_read_only_where_the_settings_look(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    folder = env(deployment)[SECRETS_DIR_ENV]
    volume = mounts(deployment)[folder]
    assert volume["secret"]["secretName"] == SECRET["metadata"]["name"]
    assert volume["readOnly"] is True
    assert "items" not in volume["secret"], "every key becomes the file of the same name"
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "not readable by other users"
    assert pod(deployment)["securityContext"]["fsGroup"] == pod(deployment)["securityContext"]["runAsGroup"]


def test_workloads_file_is_the_configmap_key() -> None:
    folder, volume = mount_of(JOBS, env(JOBS)["FORECASTER_WORKLOADS_FILE"])
    assert volume["configMap"]["name"] == CONFIGMAP["metadata"]["name"] and volume["readOnly"] is True
    key = Path(env(JOBS)["FORECASTER_WORKLOADS_FILE"]).relative_to(folder).as_posix()
    assert key in CONFIGMAP["data"]


@pytest.fixture()
def pod_filesystem(tmp_path: Path) -> Iterator[Any]:
    """A function building a deployment's mounts under ``tmp_path`` (ConfigMap and Secret files as the kubelet
    writes them, empty writable folders for emptyDir and PVC) and returning its environment with the paths
    moved there."""

    def build(deployment: dict[str, Any]) -> dict[str, str]:
        root = tmp_path / deployment["metadata"]["name"]
        for path, volume in mounts(deployment).items():
            folder = root / path.lstrip("/")
            folder.mkdir(parents=True)
            if "configMap" in volume:
                assert volume["configMap"]["name"] == CONFIGMAP["metadata"]["name"]
                for key, text in CONFIGMAP["data"].items():
                    (folder / key).write_text(text, encoding="utf-8")
            elif "secret" in volume:
                for key, text in SECRET["stringData"].items():
                    (folder / key).write_text(text, encoding="utf-8")
        return {k: str(root / v.lstrip("/")) if v.startswith("/") and k != "HOME" else v
                for k, v in env(deployment).items()}

    yield build


def test_jobs_pod_settings_from_its_mounts(pod_filesystem: Any) -> None:
    environ = pod_filesystem(JOBS)
    settings = ServiceSettings.from_env(environ)
    assert settings.store_url == SECRET["stringData"]["store_url"]
    assert settings.read_tokens == tuple(SECRET["stringData"]["read_tokens"].split(","))
    assert settings.write_tokens == (SECRET["stringData"]["write_tokens"],)
    assert settings.prometheus_url and settings.prometheus_url.startswith("http"), \
        "forecaster serve exits 2 without a Prometheus URL when it runs the scheduler"
    assert settings.workloads_file is not None
    registry = load_workloads(settings.workloads_file)
    assert "shop/web" in registry
    web = registry["shop/web"]
    assert web.capacity_per_pod and [c.name for c in web.containers] == ["app"]


def test_api_pod_settings_from_its_mounts(pod_filesystem: Any) -> None:
    settings = ServiceSettings.from_env(pod_filesystem(API))
    assert settings.store_url == SECRET["stringData"]["store_url"]
    assert settings.write_tokens and settings.read_tokens
    assert settings.workloads_file is None and settings.prometheus_url is None, "API replicas only read the store"


def test_workloads_check_would_catch_a_broken_file(tmp_path: Path) -> None:
    broken = CONFIGMAP["data"]["workloads.yaml"].replace("capacity_per_pod", "capacity_per_pods")
    (tmp_path / "workloads.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(InputError, match="capacity_per_pods"):
        load_workloads(tmp_path / "workloads.yaml")


def test_artefacts_go_to_the_jobs_volume() -> None:
    artefacts = env(JOBS)["FORECASTER_ARTEFACT_DIR"]
    _, volume = mount_of(JOBS, artefacts)
    assert volume["persistentVolumeClaim"]["claimName"] == PVC["metadata"]["name"]
    assert volume["readOnly"] is False
    assert PVC["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "FORECASTER_ARTEFACT_DIR" not in env(API)
    assert not any("persistentVolumeClaim" in v for v in pod(API)["volumes"]), "API replicas need no volume"


# -- the two Deployments ----------------------------------------------------------------------------------------
def test_one_scheduler_and_two_api_replicas() -> None:
    assert JOBS["spec"]["replicas"] == 1
    assert JOBS["spec"]["strategy"] == {"type": "Recreate"}, "never two schedulers, never two RWO mounts"
    assert API["spec"]["replicas"] == 2
    assert API["spec"]["strategy"]["type"] == "RollingUpdate"


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_pod_runs_hardened(name: str) -> None:
    p, c = pod(DEPLOYMENTS[name]), container(DEPLOYMENTS[name])
    assert_pod_hardened(p, c)
    assert "emptyDir" in mounts(DEPLOYMENTS[name])["/tmp"]
    allowed = {"emptyDir", "configMap", "secret", "persistentVolumeClaim"}
    assert all(set(v) - {"name"} <= allowed for v in p["volumes"]), "no hostPath or other volume types"


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_no_kubernetes_api_access(name: str) -> None:
    p = pod(DEPLOYMENTS[name])
    assert p["automountServiceAccountToken"] is False
    assert p["serviceAccountName"] == ACCOUNT["metadata"]["name"]
    assert ACCOUNT["automountServiceAccountToken"] is False
    bindings = [m.obj for m in load_manifests() if m.obj["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    assert not any(s.get("name") == ACCOUNT["metadata"]["name"] for b in bindings for s in b.get("subjects", []))


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_resources_have_requests_within_limits(name: str) -> None:
    resources = container(DEPLOYMENTS[name])["resources"]
    for kind in ("cpu", "memory"):
        request, limit = quantity(resources["requests"][kind]), quantity(resources["limits"][kind])
        assert 0 < request <= limit, kind


# -- probes and the scrape hit routes the app serves -----------------------------------------------------------
@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    """A client of the real app over an empty in-memory store (what an API replica serves)."""
    testclient = pytest.importorskip("fastapi.testclient")
    from forecaster.adapters.store import SqlStore
    from forecaster.api import api_settings, create_app
    from forecaster.runtime.telemetry import Telemetry

    with testclient.TestClient(create_app(SqlStore("sqlite://"), Telemetry(), api_settings())) as client:
        yield client


@pytest.mark.parametrize("name", DEPLOYMENTS)
@pytest.mark.parametrize("probe,path", [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                                        ("readinessProbe", "/readyz")])
def test_probes_hit_served_paths_on_the_http_port(served: Any, name: str, probe: str, path: str) -> None:
    c = container(DEPLOYMENTS[name])
    get = c[probe]["httpGet"]
    assert get["path"] == path and get["port"] == "http"
    assert [p["name"] for p in c["ports"]] == ["http"]
    status = served.get(path).status_code
    assert status in (200, 503), f"{path} answered {status}"  # /readyz: 503 until a forecast cycle exists
    assert served.get("/no-such-path").status_code == 404


def test_liveness_does_not_depend_on_the_store(served: Any) -> None:
    """Liveness must not restart pods for a stale forecast or a database outage: that is readiness' job."""
    assert served.get("/healthz").status_code == 200
    assert served.get("/readyz").status_code == 503


# -- Services, ServiceMonitor, PodDisruptionBudget --------------------------------------------------------------
@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployment_selector_matches_its_template_only(name: str) -> None:
    selector = DEPLOYMENTS[name]["spec"]["selector"]["matchLabels"]
    assert selects(selector, pod_labels(DEPLOYMENTS[name]))
    others = [d for d in (*DEPLOYMENTS.values(), *[m.obj for m in load_manifests() if m.obj["kind"] == "Deployment"])
              if d["metadata"]["name"] != DEPLOYMENTS[name]["metadata"]["name"]]
    assert not any(selects(selector, pod_labels(d)) for d in others), "selectors of Deployments must not overlap"


def test_api_service_selects_the_api_replicas_only() -> None:
    selector = API_SERVICE["spec"]["selector"]
    assert selects(selector, pod_labels(API)) and not selects(selector, pod_labels(JOBS))
    (port,) = API_SERVICE["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")


def test_jobs_service_selects_the_jobs_pod_only() -> None:
    selector = JOBS_SERVICE["spec"]["selector"]
    assert selects(selector, pod_labels(JOBS)) and not selects(selector, pod_labels(API))
    (port,) = JOBS_SERVICE["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")


def test_service_monitor_scrapes_the_jobs_pod_only(served: Any) -> None:
    spec = MONITOR["spec"]
    services = [m.obj for m in load_manifests() if m.obj["kind"] == "Service"]
    scraped = [s for s in services if selects(spec["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert scraped == [JOBS_SERVICE], "exactly the jobs Service (API replicas would double the store gauges)"
    assert spec["namespaceSelector"]["matchNames"] == [JOBS_SERVICE["metadata"]["namespace"]]
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in JOBS_SERVICE["spec"]["ports"]}
    assert endpoint["path"] == "/metrics" and endpoint["honorLabels"] is False
    response = served.get("/metrics")
    assert response.status_code == 200 and "forecaster_job_runs" in response.text


def test_the_controller_monitor_does_not_scrape_the_service() -> None:
    (controller_monitor,) = load_documents(K8S_DIR / "servicemonitor.yaml")
    selector = controller_monitor["spec"]["selector"]["matchLabels"]
    assert not selects(selector, API_SERVICE["metadata"]["labels"])
    assert not selects(selector, JOBS_SERVICE["metadata"]["labels"])


def test_disruption_budget_keeps_one_api_replica() -> None:
    selector = PDB["spec"]["selector"]["matchLabels"]
    assert selects(selector, pod_labels(API)) and not selects(selector, pod_labels(JOBS))
    assert PDB["spec"]["minAvailable"] == 1 < API["spec"]["replicas"]
    assert PDB["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# -- k8s/README.md -----------------------------------------------------------------------------------------------
def test_readme_section_names_real_files_and_commands() -> None:
    section = README[README.index("## Forecast service"):]
    named = set(re.findall(r"k8s/service/([\w.-]+\.yaml)", section))
    assert named, "the section names the files it applies"
    assert all((SERVICE_DIR / n).is_file() for n in named), sorted(n for n in named if not (SERVICE_DIR / n).is_file())
    assert "kubectl apply -k k8s/service/" in section
    assert "port-forward svc/forecaster-api 8000:80" in section
    for path in re.findall(r"sqlite:///(/\S+\.db)", section):  # the trial's SQLite file lives on the jobs volume
        _, volume = mount_of(JOBS, path)
        assert "persistentVolumeClaim" in volume


def test_readme_trial_applies_the_jobs_pod_without_the_api() -> None:
    section = README[README.index("## Forecast service"):]
    trial = re.search(r"kubectl apply((?:\s+-f\s+k8s/service/[\w.-]+\.yaml)+)", section.replace("\\\n", " "))
    assert trial, "the single-node trial applies a list of files"
    files = set(re.findall(r"k8s/service/([\w.-]+\.yaml)", trial.group(1)))
    assert {"deployment-jobs.yaml", "pvc.yaml", "configmap-workloads.yaml", "service-jobs.yaml"} <= files
    assert not files & {"deployment-api.yaml", "secret.example.yaml"}
