#!/usr/bin/env bash
# The image phase of `make e2e` (tests/e2e/run.sh calls it; runs alone too): deploy the real
# CDK app with `-c packaging=image` to a MiniStack that runs PackageType Image functions
# through podman's Docker-compatible API, and run tests/e2e/test_image_packaging.py.
# No Docker, no registry: the image `make image` built is tagged with an ECR URI of the
# emulated account and deployed with -c image_uri=...; MiniStack finds it in podman's store
# (`images.get` before any pull). Skips with one line when podman or the image is missing.
#
# How MiniStack (1.5.33) is made to run image functions here, with configuration only:
#   - its own venv with the `docker` SDK (MiniStack imports it for every image function);
#   - DOCKER_HOST=unix://<private socket> of `podman system service` (stopped by PID);
#   - LAMBDA_DOCKER_FLAGS="--add-host host.docker.internal:<podman bridge gateway>": MiniStack
#     maps host.docker.internal to "host-gateway" unless the flags name it, and podman 4.3
#     refuses "host-gateway" (`invalid IP address in add-host: "host-gateway"`);
#   - BIND_HOST=0.0.0.0 so the containers reach MiniStack on that gateway address.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
E2E_DIR=${MLSERVE_E2E_DIR:-$ROOT/.e2e}
MINISTACK_PYTHON=${MINISTACK_PYTHON:-python3.11}
MINISTACK_VERSION=${MINISTACK_VERSION:-1.5.33}
HEALTH_TIMEOUT=${MLSERVE_E2E_HEALTH_TIMEOUT:-60}
IMAGE=${MLSERVE_IMAGE:-localhost/mlserve:latest}
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1

if ! command -v podman >/dev/null; then
  echo "mlserve e2e image: skipped: podman is not installed (make image installs it)"
  exit 0
fi
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/.cache/image/containers.conf}
if [[ ! -f $CONTAINERS_CONF ]]; then
  echo "mlserve e2e image: skipped: $CONTAINERS_CONF is missing (make image writes it)"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  # Rootless podman puts containers behind slirp4netns, where the bridge gateway below does not reach the host.
  echo "mlserve e2e image: skipped: needs rootful podman (containers reach MiniStack on the bridge gateway)"
  exit 0
fi
if ! podman image exists "$IMAGE"; then
  echo "mlserve e2e image: skipped: image $IMAGE is not built (run make image)"
  exit 0
fi

mkdir -p "$E2E_DIR"
# MiniStack for the image phase in its own venv: the same MiniStack plus the docker SDK, which
# the zip phase's MiniStack must not have (it would change nothing there, but stays minimal).
if ! "$E2E_DIR/venv-image/bin/python" -c 'import docker, ministack, boto3, snapshot_restore_py' 2>/dev/null; then
  rm -rf "$E2E_DIR/venv-image"
  "$MINISTACK_PYTHON" -m venv "$E2E_DIR/venv-image"
  "$E2E_DIR/venv-image/bin/pip" install --quiet --upgrade pip
  "$E2E_DIR/venv-image/bin/pip" install --quiet "ministack==$MINISTACK_VERSION" boto3 docker==7.1.0 snapshot-restore-py==1.0.0
fi
if [[ ! -d "$E2E_DIR/node/node_modules/@aws-sdk/client-s3" ]]; then
  npm install --no-audit --no-fund --loglevel=error --prefix "$E2E_DIR/node" @aws-sdk/client-s3
fi
FN_PYTHON=$("$E2E_DIR/venv-image/bin/python" -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')
case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) echo "unsupported CPU architecture $(uname -m)" >&2; exit 1 ;;
esac

PORT=${GATEWAY_PORT:-$("$E2E_DIR/venv-image/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
WORK="$E2E_DIR/image-$PORT"
LOG="$E2E_DIR/ministack-image-$PORT.log"
mkdir -p "$WORK"
SOCKET="$WORK/podman.sock"
# A tag per image id: MiniStack's warm pool and podman's store agree on exactly this build.
IMAGE_ID=$(podman image inspect "$IMAGE" --format '{{.Id}}')
IMAGE_URI="000000000000.dkr.ecr.us-east-1.amazonaws.com/mlserve:e2e-${IMAGE_ID:0:12}"
podman tag "$IMAGE" "$IMAGE_URI"

MINISTACK_PID=""
PODMAN_PID=""
stop() {
  if [[ -n $MINISTACK_PID ]] && kill -0 "$MINISTACK_PID" 2>/dev/null; then
    kill "$MINISTACK_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$MINISTACK_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$MINISTACK_PID" 2>/dev/null || true
  fi
  # The function containers MiniStack started from this run's image (it reaps its pool on a
  # clean stop, not after SIGKILL).
  for container in $(podman ps -aq --filter "ancestor=$IMAGE_URI" 2>/dev/null); do
    podman rm -f "$container" >/dev/null 2>&1 || true
  done
  if [[ -n $PODMAN_PID ]] && kill -0 "$PODMAN_PID" 2>/dev/null; then
    kill "$PODMAN_PID" 2>/dev/null || true
    wait "$PODMAN_PID" 2>/dev/null || true
  fi
  podman untag "$IMAGE" "$IMAGE_URI" >/dev/null 2>&1 || true
}
trap stop EXIT INT TERM

podman system service --time=0 "unix://$SOCKET" >"$WORK/podman-service.log" 2>&1 &
PODMAN_PID=$!
for i in $(seq 1 30); do
  if curl -sf --unix-socket "$SOCKET" http://podman/_ping >/dev/null 2>&1; then break; fi
  if [[ $i == 30 ]]; then echo "podman system service did not answer on $SOCKET" >&2; cat "$WORK/podman-service.log" >&2; exit 1; fi
  sleep 1
done
# The address the containers reach this host on: the default bridge network's gateway.
GATEWAY=$(podman network inspect podman --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null || true)
if [[ -z $GATEWAY ]]; then
  echo "mlserve e2e image: skipped: podman's default network has no gateway address (rootless podman?)"
  exit 0
fi

rm -rf /tmp/mlserve  # the webhook (zip) runs on the host: no stale model cache
echo "mlserve e2e image: MiniStack $MINISTACK_VERSION on 0.0.0.0:$PORT, image functions via podman ($SOCKET, host.docker.internal=$GATEWAY), image $IMAGE_URI, log $LOG"
(
  cd "$WORK"
  exec env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" \
    GATEWAY_PORT="$PORT" BIND_HOST=0.0.0.0 NODE_PATH="$E2E_DIR/node/node_modules" \
    DOCKER_HOST="unix://$SOCKET" LAMBDA_DOCKER_FLAGS="--add-host host.docker.internal:$GATEWAY" \
    POWERTOOLS_TRACE_DISABLED=true POWERTOOLS_METRICS_NAMESPACE=mlserve-e2e \
    "$E2E_DIR/venv-image/bin/ministack"
) >"$LOG" 2>&1 &
MINISTACK_PID=$!

ENDPOINT="http://127.0.0.1:$PORT"
for i in $(seq 1 "$HEALTH_TIMEOUT"); do
  if curl -sf "$ENDPOINT/_ministack/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$MINISTACK_PID" 2>/dev/null; then echo "MiniStack exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; fi
  if [[ $i == "$HEALTH_TIMEOUT" ]]; then echo "MiniStack not healthy after ${HEALTH_TIMEOUT}s" >&2; exit 1; fi
  sleep 1
done

export MLSERVE_E2E_ENDPOINT="$ENDPOINT"
# No `cdklocal destroy` (the zip phase covers it): this MiniStack, its state and its
# containers are thrown away at exit anyway, and destroy costs half a minute.
export MLSERVE_E2E_KEEP=1
# The webhook stays zip: its layer is built for MiniStack's interpreter, as in the zip phase.
export MLSERVE_E2E_CDK_CONTEXT="-c architecture=$ARCH -c layer_python_version=$FN_PYTHON -c refresh_seconds=2 -c packaging=image -c image_uri=$IMAGE_URI -c model_name=sales-forecast"
START=$(date +%s)
set +e
.venv/bin/python -m pytest -p no:cacheprovider -m e2e tests/e2e/test_image_packaging.py -v -rs "$@"
STATUS=$?
set -e
echo "mlserve e2e image: suite finished in $(( $(date +%s) - START ))s with status $STATUS"
exit $STATUS
