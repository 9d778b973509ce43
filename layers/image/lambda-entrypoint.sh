#!/bin/sh
# The contract of AWS's Lambda base images, on mlserve's Debian base: inside Lambda
# (AWS_LAMBDA_RUNTIME_API set) run the runtime interface client on the handler (CMD);
# anywhere else start the local runtime emulator around it (invoke on port 8080).
if [ -n "$AWS_LAMBDA_RUNTIME_API" ]; then
  exec python3 -m awslambdaric "$@"
fi
exec python3 /opt/mlserve/runtime_emulator.py "$@"
