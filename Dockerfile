# x86 image: docker build -t edge . ; the hardened multi-stage image (non-root, healthcheck,
# Jetson variant) is the deployment issue's work. Weights and clips are mounted, never copied.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY edge ./edge
COPY models/manifest.yaml ./models/manifest.yaml
COPY policies ./policies
COPY examples ./examples
RUN python3 -m venv /opt/edge && /opt/edge/bin/pip install --no-cache-dir . \
    && useradd --system --uid 10001 edge
USER edge
ENV EDGE_MODEL_DIR=/models PATH=/opt/edge/bin:$PATH
ENTRYPOINT ["edge"]
CMD ["--help"]
