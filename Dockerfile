# syntax=docker/dockerfile:1
# The forecaster image: `forecaster controller`, `forecaster serve`, `forecaster keda-scaler`, `forecaster db upgrade`.
#
#   docker build -t forecaster:0.1.0 .
#   docker/build-offline.sh                    # no registry: Debian base from mmdebstrap, built and smoke-tested
#                                              # with podman (Debian packages), see docker/README.md
#
# Two stages. `build` installs the package the way the README does, against the tested versions in constraints.txt
# (`pip install -c constraints.txt .`: the README's command without `-e`, since an image keeps no source tree),
# into a virtual environment. The final stage adds only the OpenMP runtime LightGBM needs and copies that
# environment: no compiler, no pip cache, no source.
# It runs as the non-root user 65532 (the Deployments' runAsUser) and never writes below / at run time, so
# `readOnlyRootFilesystem: true` holds: bytecode is compiled at build time and HOME / MPLCONFIGDIR point to /tmp,
# the one writable emptyDir the Deployments mount.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python3 -m venv /opt/forecaster
COPY pyproject.toml constraints.txt README.md ./
COPY signals ./signals
COPY forecaster ./forecaster
RUN /opt/forecaster/bin/pip install --no-cache-dir -c constraints.txt . \
    && /opt/forecaster/bin/python -m compileall -q /opt/forecaster \
    && /opt/forecaster/bin/forecaster --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="forecaster" \
      org.opencontainers.image.description="Predictive autoscaling and resource prediction for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# LightGBM's wheel links the OpenMP runtime, which slim Debian images leave out (libgomp.so.1). Not pinned: the
# version is Debian's, and bookworm's security updates replace it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/forecaster /opt/forecaster
ENV PATH=/opt/forecaster/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    MPLBACKEND=Agg \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081 6000
ENTRYPOINT ["forecaster"]
CMD ["--help"]
