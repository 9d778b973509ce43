"""A small emulator of the Lambda Runtime API, for images on a non-Lambda base.

AWS's base images start their Runtime Interface Emulator when no ``AWS_LAMBDA_RUNTIME_API``
is set; this does the same for mlserve's Debian base (which cannot install AWS's RIE here):

* the **invoke endpoint** callers use, on ``0.0.0.0:$MLSERVE_RIE_PORT`` (default 8080):
  ``POST /2015-03-31/functions/function/invocations`` with the event as the body; the
  answer is the handler's result (or its error, with ``X-Amz-Function-Error: Unhandled``).
  MiniStack and ``docker run -p 9000:8080 …`` users call exactly this;
* the **Runtime API** the runtime interface client (``awslambdaric``) polls, on
  ``127.0.0.1:$MLSERVE_RUNTIME_API_PORT`` (default 9001): ``GET
  /2018-06-01/runtime/invocation/next``, ``POST …/invocation/<id>/response`` and
  ``…/error``, ``POST /2018-06-01/runtime/init/error``.

``python3 runtime_emulator.py HANDLER`` serves both and runs ``python3 -m awslambdaric HANDLER``
against it. Standard library only. One invocation at a time, as in one Lambda sandbox.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
RUNTIME_PREFIX = "/2018-06-01/runtime"


class Invocation:
    def __init__(self, payload: bytes) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.done = threading.Event()
        self.result = b""
        self.error = False


class Emulator:
    def __init__(self, timeout_seconds: float) -> None:
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.one_at_a_time = threading.Lock()
        self.timeout_seconds = timeout_seconds
        self.init_error: bytes | None = None

    def invoke(self, payload: bytes) -> Invocation:
        with self.one_at_a_time:
            invocation = Invocation(payload)
            self.in_flight[invocation.request_id] = invocation
            self.pending.put(invocation)
            if not invocation.done.wait(self.timeout_seconds):
                invocation.error = True
                invocation.result = json.dumps(
                    {
                        "errorMessage": f"Task timed out after {self.timeout_seconds:.2f} seconds",
                        "errorType": "Sandbox.Timedout",
                    }
                ).encode()
            self.in_flight.pop(invocation.request_id, None)
            return invocation

    def finish(self, request_id: str, body: bytes, *, error: bool) -> bool:
        invocation = self.in_flight.get(request_id)
        if invocation is None:
            return False
        invocation.result, invocation.error = body, error
        invocation.done.set()
        return True


def handler_class(emulator: Emulator, function_arn: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # the function's own logs are what matter

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                self.reply(404, b'{"errorMessage": "not found"}')
                return
            invocation = emulator.pending.get()
            deadline_ms = int((time.time() + emulator.timeout_seconds) * 1000)
            self.reply(
                200,
                invocation.payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": function_arn,
                },
            )

        def do_POST(self) -> None:
            body = self.body()
            if self.path == INVOKE_PATH:
                invocation = emulator.invoke(body or b"{}")
                headers = {"X-Amz-Function-Error": "Unhandled"} if invocation.error else {}
                self.reply(200, invocation.result, headers)
                return
            if self.path == f"{RUNTIME_PREFIX}/init/error":
                emulator.init_error = body
                self.reply(202, b'{"status": "OK"}')
                return
            parts = self.path.removeprefix(f"{RUNTIME_PREFIX}/invocation/").split("/")
            if self.path.startswith(f"{RUNTIME_PREFIX}/invocation/") and len(parts) == 2:
                request_id, outcome = parts
                if outcome in ("response", "error") and emulator.finish(request_id, body, error=outcome == "error"):
                    self.reply(202, b'{"status": "OK"}')
                    return
            self.reply(404, b'{"errorMessage": "unknown invocation"}')

    return Handler


def serve(handler: str) -> int:
    invoke_port = int(os.environ.get("MLSERVE_RIE_PORT", "8080"))
    runtime_port = int(os.environ.get("MLSERVE_RUNTIME_API_PORT", "9001"))
    timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "300"))
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    arn = os.environ.get("_LAMBDA_FUNCTION_ARN") or f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    emulator = Emulator(timeout)
    handler_type = handler_class(emulator, arn)
    runtime_server = ThreadingHTTPServer(("127.0.0.1", runtime_port), handler_type)
    invoke_server = ThreadingHTTPServer(("0.0.0.0", invoke_port), handler_type)
    for server in (runtime_server, invoke_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    environment = {**os.environ, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}"}
    environment.setdefault("AWS_LAMBDA_FUNCTION_NAME", name)
    environment.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    environment.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    print(f"mlserve runtime emulator: invoke on :{invoke_port}, runtime API on :{runtime_port}", flush=True)
    client = subprocess.Popen([sys.executable, "-m", "awslambdaric", handler], env=environment)
    return client.wait()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: runtime_emulator.py HANDLER (e.g. lambda_api.handler.handler)", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(sys.argv[1]))
