# The edge counter's image. Weights, clips and the configuration are mounted at run time, never
# copied in: the image holds no model and no pixel (.dockerignore keeps them out of the context).
#
#   x86:       docker build -t edge .
#   dashboard: docker build -t edge-dashboard --build-arg EXTRAS=dashboard .
#   Jetson:    docker build -t edge:jetson \
#                --build-arg BASE_IMAGE=nvcr.io/nvidia/l4t-jetpack:r36.4.0 \
#                --build-arg PIP_EXTRA_INDEX_URL=https://pypi.jetson-ai-lab.io/jp6/cu126 \
#                --build-arg ORT_PACKAGE=onnxruntime-gpu .
#
# Runs as a fixed non-root uid with a read-only root filesystem: everything written goes under
# the /var/lib/edge volume (spool, audit log, heartbeat, TensorRT engine cache); /tmp should be a
# tmpfs. docs/deployment.md has the run commands; scripts/image-test.sh builds and checks it.

# Debian's (or JetPack's Ubuntu's) own Python, so the Jetson variant is this same file.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
# Versions are not pinned: BASE_IMAGE is Debian or Ubuntu (JetPack), so no pin fits both; pin
# the base image by digest for a reproducible build.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# Every dependency is a binary wheel: no compiler is needed, in this stage either.
ARG EXTRAS=""
ARG ORT_PACKAGE=onnxruntime
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge ./edge
# A registry behind a TLS-intercepting proxy, or one that needs credentials, is reached with
# build secrets (pip_ca: a CA bundle, pip_conf: a pip.conf), which never land in a layer.
# onnxruntime-gpu provides the same module as the onnxruntime the project depends on: the two
# must not be installed together, so the GPU wheel replaces the CPU one.
RUN --mount=type=secret,id=pip_ca --mount=type=secret,id=pip_conf \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && if [ -z "$PIP_EXTRA_INDEX_URL" ]; then unset PIP_EXTRA_INDEX_URL; fi \
    && python3 -m venv /opt/edge \
    && /opt/edge/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
    && if [ "$ORT_PACKAGE" != onnxruntime ]; then \
        /opt/edge/bin/pip uninstall -y onnxruntime \
        && /opt/edge/bin/pip install --no-cache-dir "$ORT_PACKAGE"; \
    fi \
    && /opt/edge/bin/pip uninstall -y pip setuptools
# The shipped policies and model manifest go beside the installed package, the only place the
# gate reads them from (never the working directory: edge.config.PACKAGE_ROOT).
COPY policies ./policies
COPY models/manifest.yaml ./models/manifest.yaml
RUN root=$(/opt/edge/bin/python -P -c 'import edge.config as c; print(c.PACKAGE_ROOT)') \
    && cp -r policies models "$root"/
# The image holds no model and no picture: onnxruntime's wheel ships three toy models as
# examples, which go (nothing imports them).
RUN find /opt/edge -type f \( -name '*.onnx' -o -name '*.png' -o -name '*.jpg' \) -delete

FROM ${BASE_IMAGE}
# python3 only: the opencv-python-headless and onnxruntime wheels carry their own libraries.
# apt-get clean: not every base image drops the package cache by itself (80 MB and more).
# No picture in the image, not even the distribution's logo (scripts/image-test.sh checks).
# A fixed uid so that volumes and bind mounts can be given to it on the host.
# /app/var points into the volume: the default relative paths (--audit-log var/audit.jsonl,
# the configuration's var/spool.sqlite) land there instead of on the read-only root.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/pixmaps \
    && groupadd --system --gid 10001 edge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/edge --no-create-home \
        --shell /usr/sbin/nologin edge \
    && mkdir -p /var/lib/edge /app \
    && chown 10001:10001 /var/lib/edge \
    && chmod 0750 /var/lib/edge \
    && ln -s /var/lib/edge /app/var
COPY --from=builder /opt/edge /opt/edge
WORKDIR /app
# ORT_DISABLE_TELEMETRY: onnxruntime >= 1.29 otherwise keeps a device id and event cache in
# $HOME and uploads them to Microsoft; nothing but the closed schema leaves a box.
ENV PATH=/opt/edge/bin:$PATH \
    ORT_DISABLE_TELEMETRY=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EDGE_MODEL_DIR=/models \
    EDGE_HEALTH_FILE=/var/lib/edge/health.json
# /models and /config are bind mounts, not volumes: an empty anonymous volume would only turn a
# forgotten mount into a less clear error.
VOLUME ["/var/lib/edge"]
USER 10001:10001
# edge run rewrites the heartbeat every 5 s; edge health checks it is fresh and its pid alive.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["edge", "health"]
ENTRYPOINT ["edge"]
CMD ["--audit-log", "/var/lib/edge/audit.jsonl", "run", "-c", "/config/edge.yaml"]
