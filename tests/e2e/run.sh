#!/usr/bin/env bash
# `make e2e`: deploy the real CDK app to MiniStack (no Docker, no AWS account) and run the
# deployed end-to-end suite against it; stop MiniStack by PID whatever happens.
#
# MiniStack runs every Lambda function as a subprocess of ITS OWN Python interpreter
# (whatever the function's declared runtime), so the dependency layer is built for that
# interpreter's version and this machine's CPU architecture (see docs/e2e.md).
#
# Already have an emulator (e.g. LocalStack)? Skip all this. LocalStack's free edition has no
# Lambda layers, so bundle the deps into each function and declare the host's architecture
# (LocalStack Pro: leave bundle_deps at its default, layer; see docs/e2e.md, "Which context
# options where"):
#   MLSERVE_E2E_ENDPOINT=http://127.0.0.1:4566 \
#   MLSERVE_E2E_CDK_CONTEXT="-c auth=none -c bundle_deps=function -c architecture=x86_64" \
#     .venv/bin/python -m pytest -m e2e tests/e2e
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
E2E_DIR=${MLSERVE_E2E_DIR:-$ROOT/.e2e}
MINISTACK_PYTHON=${MINISTACK_PYTHON:-python3.11}
MINISTACK_VERSION=${MINISTACK_VERSION:-1.5.33}
HEALTH_TIMEOUT=${MLSERVE_E2E_HEALTH_TIMEOUT:-60}
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1

mkdir -p "$E2E_DIR"
# MiniStack in its own venv, with boto3 there too: functions run with this interpreter and
# import boto3 from it, exactly like the Lambda runtime's bundled boto3.
if [[ ! -x "$E2E_DIR/venv/bin/ministack" ]]; then
  "$MINISTACK_PYTHON" -m venv "$E2E_DIR/venv"
  "$E2E_DIR/venv/bin/pip" install --quiet --upgrade pip
  "$E2E_DIR/venv/bin/pip" install --quiet "ministack==$MINISTACK_VERSION" boto3
fi
# The SnapStart hook module every Lambda Python runtime (3.12+) ships: with it, MiniStack
# runs the functions' before-snapshot/after-restore hooks when it publishes a version.
if ! "$E2E_DIR/venv/bin/python" -c 'import snapshot_restore_py' 2>/dev/null; then
  "$E2E_DIR/venv/bin/pip" install --quiet "snapshot-restore-py==1.0.0"
fi
# CDK's Node.js custom resources (S3 autoDeleteObjects, bucket notifications' handler is
# Python) require the AWS SDK v3, which MiniStack's local Node executor does not provide:
# install the client they need and hand it to the functions through NODE_PATH.
if [[ ! -d "$E2E_DIR/node/node_modules/@aws-sdk/client-s3" ]]; then
  npm install --no-audit --no-fund --loglevel=error --prefix "$E2E_DIR/node" @aws-sdk/client-s3
fi
FN_PYTHON=$("$E2E_DIR/venv/bin/python" -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')
case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) echo "unsupported CPU architecture $(uname -m)" >&2; exit 1 ;;
esac

PORT=${GATEWAY_PORT:-$("$E2E_DIR/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
LOG="$E2E_DIR/ministack-$PORT.log"
WORK="$E2E_DIR/state-$PORT"
mkdir -p "$WORK"
# MiniStack runs every function as a process on this host, so they share the host's /tmp:
# clear the functions' model cache (MLSERVE_CACHE_DIR=/tmp/mlserve) so no directory from an
# earlier run (possibly written by older code) is taken for this run's download.
rm -rf /tmp/mlserve
echo "mlserve e2e: MiniStack $MINISTACK_VERSION on 127.0.0.1:$PORT (functions run on python$FN_PYTHON/$ARCH), log $LOG"
# A clean environment for MiniStack: every function it spawns inherits it.
(
  cd "$WORK"
  exec env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" \
    GATEWAY_PORT="$PORT" BIND_HOST=127.0.0.1 NODE_PATH="$E2E_DIR/node/node_modules" \
    POWERTOOLS_TRACE_DISABLED=true POWERTOOLS_METRICS_NAMESPACE=mlserve-e2e \
    "$E2E_DIR/venv/bin/ministack"
) >"$LOG" 2>&1 &
MINISTACK_PID=$!
stop() {
  if kill -0 "$MINISTACK_PID" 2>/dev/null; then
    kill "$MINISTACK_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$MINISTACK_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$MINISTACK_PID" 2>/dev/null || true
  fi
}
trap stop EXIT INT TERM

ENDPOINT="http://127.0.0.1:$PORT"
for i in $(seq 1 "$HEALTH_TIMEOUT"); do
  if curl -sf "$ENDPOINT/_ministack/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$MINISTACK_PID" 2>/dev/null; then echo "MiniStack exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; fi
  if [[ $i == "$HEALTH_TIMEOUT" ]]; then echo "MiniStack not healthy after ${HEALTH_TIMEOUT}s" >&2; exit 1; fi
  sleep 1
done

export MLSERVE_E2E_ENDPOINT="$ENDPOINT"
# Declared runtime stays the default (MiniStack ignores it); the layer is built for the
# interpreter MiniStack runs functions with. Everything else is the default context: API keys
# and usage plans (MiniStack enforces them; the suite sends the key from ApiKeyId) and
# SnapStart on published versions (MiniStack publishes Pending -> Active and runs the hooks).
# The optional features the suite also exercises: the Kinesis stream (a long consumer
# timeout: a cold start on MiniStack can take over a minute, and a timed-out batch is
# retried forever), a schedule that fires every minute (tests/e2e/test_streaming.py) and a
# fan-out threshold small enough that a test-sized file goes through the Distributed Map
# (tests/e2e/test_fanout.py).
E2E_FEATURES=$(cat <<'FEATURES'
-c stream=true -c stream_batching_window_seconds=0 -c functions='{"stream":{"timeout_seconds":300}}' -c schedules='[{"name":"e2e","cron":"* * * * ? *","input_prefix":"scheduled/e2e/"}]' -c fanout_threshold_bytes=1048576 -c fanout_range_bytes=8388608
FEATURES
)
export MLSERVE_E2E_CDK_CONTEXT="${MLSERVE_E2E_CDK_CONTEXT:--c architecture=$ARCH -c layer_python_version=$FN_PYTHON -c refresh_seconds=2 $E2E_FEATURES}"
START=$(date +%s)
set +e
.venv/bin/python -m pytest -p no:cacheprovider -m e2e tests/e2e -v -rs "$@"
STATUS=$?
set -e
echo "mlserve e2e: suite finished in $(( $(date +%s) - START ))s with status $STATUS"
# The image phase (docs/e2e.md): the stack again with -c packaging=image, on a second MiniStack
# that runs the image functions through podman's Docker API (tests/e2e/run_image.sh; it skips
# with one line without podman or `make image`). Not when iterating (pytest args, DEPLOY=0) or
# with MLSERVE_E2E_IMAGE=0.
if [[ $# -eq 0 && ${MLSERVE_E2E_DEPLOY:-1} != 0 && ${MLSERVE_E2E_IMAGE:-1} != 0 ]]; then
  stop
  set +e
  tests/e2e/run_image.sh
  IMAGE_STATUS=$?
  set -e
  if [[ $STATUS == 0 ]]; then STATUS=$IMAGE_STATUS; fi
fi
exit $STATUS
