#!/usr/bin/env bash
# Build and smoke-test the forecaster image on a machine that reaches no container registry, only Debian's package
# archive and PyPI. Root and Debian packages only: mmdebstrap, podman (buildah's build engine), runc, uidmap.
#
#   docker/build-offline.sh [TAG]         # default TAG forecaster:dev; logs in ${WORKDIR:-/tmp/forecaster-image}
#
# 1. base:   mmdebstrap makes a Debian bookworm root file system with python3 and python3-venv (Python 3.11, what
#            the python:3.11-slim-bookworm base of the Dockerfile carries) and podman imports it as
#            localhost/forecaster-base:bookworm.
# 2. build:  podman builds the repository's Dockerfile unchanged, with --build-arg PYTHON_IMAGE pointing at that
#            base (pip still installs from PyPI, as in any build).
# 3. smoke:  the image runs the way k8s/deployment.yaml runs it: read-only root file system, user 65532, no
#            capabilities, only /tmp writable. It must print its help, answer `keda-scaler --help` and
#            `db upgrade` on a fresh SQLite file in /tmp, and run `forecaster demo` end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-forecaster:dev}"
WORKDIR="${WORKDIR:-/tmp/forecaster-image}"
BASE=localhost/forecaster-base:bookworm
mkdir -p "$WORKDIR"
for tool in mmdebstrap podman runc; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install -y mmdebstrap podman runc uidmap" >&2; exit 3; }
done
# This machine's OCI runtime setup: crun refuses cgroups in hybrid mode, so runc; podman's default rlimits are
# above this sandbox's hard limits, so explicit ones (overridable).
RUNTIME=(--runtime "${OCI_RUNTIME:-runc}")
LIMITS=(--ulimit "nofile=${NOFILE:-4096}:${NOFILE:-4096}" --ulimit "nproc=${NPROC:-4096}:${NPROC:-4096}")
if ! podman image exists "$BASE"; then
  echo "== base: mmdebstrap bookworm + python3 -> $BASE"
  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$WORKDIR/base.tar" \
    > "$WORKDIR/mmdebstrap.log" 2>&1
  podman import --change 'CMD ["/bin/bash"]' "$WORKDIR/base.tar" "$BASE-root"
  # pip in the build stage must trust what this host trusts (a TLS-inspecting proxy's CA, if any): the host's CA
  # bundle goes into the local base image and PIP_CERT names it. The Dockerfile itself is not changed.
  mkdir -p "$WORKDIR/base-ca"
  cp /etc/ssl/certs/ca-certificates.crt "$WORKDIR/base-ca/"
  printf 'FROM %s\nCOPY ca-certificates.crt /usr/local/share/host-ca/ca-certificates.crt\nENV PIP_CERT=%s\n' \
    "$BASE-root" /usr/local/share/host-ca/ca-certificates.crt > "$WORKDIR/base-ca/Containerfile"
  podman "${RUNTIME[@]}" build --pull=never -t "$BASE" "$WORKDIR/base-ca"
fi
echo "== build: podman build -t $TAG --build-arg PYTHON_IMAGE=$BASE"
podman "${RUNTIME[@]}" build --format docker --pull=never "${LIMITS[@]}" --build-arg "PYTHON_IMAGE=$BASE" -t "$TAG" . \
  2>&1 | tee "$WORKDIR/build.log"
run() {
  podman "${RUNTIME[@]}" run --rm "${LIMITS[@]}" --read-only --user 65532:65532 --cap-drop ALL \
    --security-opt no-new-privileges --tmpfs /tmp:rw,size=256m,mode=1777 "$TAG" "$@"
}
echo "== smoke: read-only root, user 65532" | tee "$WORKDIR/smoke.log"
run --help | tee -a "$WORKDIR/smoke.log" | head -5
run keda-scaler --help | tee -a "$WORKDIR/smoke.log" | head -3
run db upgrade --store-url sqlite:////tmp/smoke.db | tee -a "$WORKDIR/smoke.log"
run demo | tee -a "$WORKDIR/smoke.log" | tail -5
podman image inspect "$TAG" --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} size={{.Size}}' \
  | tee -a "$WORKDIR/smoke.log"
echo "== ok: $TAG" | tee -a "$WORKDIR/smoke.log"
