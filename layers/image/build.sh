#!/usr/bin/env bash
# `make image`: build mlserve's container image WITHOUT Docker (podman/buildah, rootful or
# rootless), on a Lambda-compatible Debian base made here from Debian packages:
#   1. base rootfs: mmdebstrap --variant=minbase (python3, ca-certificates, libgomp1 for
#      LightGBM) -> podman import -> + awslambdaric (pip --target on the host) + the local
#      runtime emulator + /lambda-entrypoint.sh  => localhost/mlserve-lambda-base:<suite>
#   2. context: python -m infra.image stage (site-packages for the base's Python, installed
#      on the host with pip --platform --only-binary; app code) => podman build (COPY only)
# Everything slow is cached under .cache/image/ (rootfs tar, wheels, site-packages).
#
# Env: MLSERVE_IMAGE (tag, default localhost/mlserve:latest), MLSERVE_IMAGE_EXTRA
# (image_extra_requirements: pins "a==1,b==2" or a requirements.txt path), DEBIAN_SUITE
# (default bookworm: python3.11), MLSERVE_IMAGE_CONTEXT (extra "-c key=value" words).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=$ROOT/.cache/image
SUITE=${DEBIAN_SUITE:-bookworm}
IMAGE=${MLSERVE_IMAGE:-localhost/mlserve:latest}
BASE=localhost/mlserve-lambda-base:$SUITE
PYTHON=${PYTHON:-python3}
mkdir -p "$CACHE"
for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "make image: needs $tool (apt-get install podman buildah skopeo mmdebstrap uidmap runc)" >&2; exit 1; }
done
case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) echo "unsupported CPU architecture $(uname -m)" >&2; exit 1 ;;
esac
# crun fails on setrlimit and hybrid cgroups in containers/VMs like this one.
if [[ -z "${CONTAINERS_CONF:-}" ]]; then
  export CONTAINERS_CONF=$CACHE/containers.conf
  cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
START=$(date +%s)
if ! podman image exists "$BASE"; then
  ROOTFS=$CACHE/base-$SUITE-$ARCH.tar
  if [[ ! -f $ROOTFS ]]; then
    echo "make image: debootstrapping $SUITE (minbase + python3, ca-certificates, libgomp1)"
    mmdebstrap --quiet --format=tar --variant=minbase --include=python3,ca-certificates,libgomp1 "$SUITE" "$ROOTFS.partial"
    mv "$ROOTFS.partial" "$ROOTFS"
  fi
  podman import --quiet "$ROOTFS" "localhost/mlserve-debian:$SUITE" >/dev/null
  BASE_PY=$(podman run --rm "localhost/mlserve-debian:$SUITE" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  BASE_CTX=$CACHE/base-context
  rm -rf "$BASE_CTX" && mkdir -p "$BASE_CTX"
  machine=$([[ $ARCH == arm64 ]] && echo aarch64 || echo x86_64)
  "$PYTHON" -m pip install --quiet --only-binary=:all: --target "$BASE_CTX/ric" --python-version "$BASE_PY" \
    --implementation cp --platform "manylinux2014_$machine" --platform "manylinux_2_28_$machine" \
    --platform "manylinux_2_17_$machine" awslambdaric==4.2.2
  cp layers/image/Containerfile.base layers/image/runtime_emulator.py layers/image/lambda-entrypoint.sh "$BASE_CTX/"
  podman build --quiet --build-arg "DEBIAN_IMAGE=localhost/mlserve-debian:$SUITE" -f "$BASE_CTX/Containerfile.base" \
    -t "$BASE" --label "mlserve.python=$BASE_PY" "$BASE_CTX" >/dev/null
fi
BASE_PY=$(podman image inspect "$BASE" --format '{{ index .Labels "mlserve.python" }}')
STAGE_ARGS=(-c "architecture=$ARCH" -c "layer_python_version=$BASE_PY" -c packaging=image -c "image_base=$BASE")
[[ -n "${MLSERVE_IMAGE_EXTRA:-}" ]] && STAGE_ARGS+=(-c "image_extra_requirements=$MLSERVE_IMAGE_EXTRA")
# shellcheck disable=SC2206
[[ -n "${MLSERVE_IMAGE_CONTEXT:-}" ]] && STAGE_ARGS+=(${MLSERVE_IMAGE_CONTEXT})
CONTEXT=$("$PYTHON" -m infra.image stage "${STAGE_ARGS[@]}")
podman build --quiet --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE" "$CONTEXT" >/dev/null
echo "make image: built $IMAGE on $BASE (python$BASE_PY/$ARCH) in $(( $(date +%s) - START ))s"
podman image inspect "$IMAGE" --format 'make image: {{ .Size }} bytes unpacked'
