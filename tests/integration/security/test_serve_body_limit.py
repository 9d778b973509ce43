"""Issue 11, Medium 7: `mlserve serve` enforces the body limit while reading.

Against a real uvicorn server on 127.0.0.1: a chunked body (no Content-Length) far over
MLSERVE_MAX_BODY_BYTES used to be buffered whole before the 413 (a 400 MiB body grew the
server by 750 MiB). Now the 413 comes once the limit is passed and the server's memory stays
flat. And a /invocations CSV of millions of tiny rows is refused on its row count before
millions of dicts are built.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlserve.cli import main
from tests.local_servers import free_port

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_registry: Any) -> Iterator[tuple[str, int, int]]:
    store = (tmp_path_factory.mktemp("serve") / "store").as_uri()
    assert main(["publish", str(demo_registry.classifier_dir), "--store", store, "--name", "demo-classifier"]) == 0
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MLSERVE_MAX_BODY_BYTES": str(LIMIT),
        "MLSERVE_MAX_ROWS": "1000",
    }
    command = [sys.executable, "-m", "mlserve.cli", "serve", "--store", store, "--name", "demo-classifier"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=60) as response:
                    assert json.loads(response.read())["status"] == "ok"
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        yield base, port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def send_chunked(port: int, path: str, total: int, chunk: bytes) -> tuple[int, dict[str, Any], int]:
    """POST `total` bytes as HTTP/1.1 chunked transfer encoding, stopping early when the
    server answers or closes; returns (status, JSON body, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
    sock.sendall((request + "Transfer-Encoding: chunked\r\n\r\n").encode())
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break  # the answer is there: stop sending
            if writable:
                sock.sendall(framed)
                sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = b""
    while b"\r\n\r\n" not in response or len(response) < response.index(b"\r\n\r\n") + 4 + _length(response):
        data = sock.recv(65536)
        if not data:
            break
        response += data
    sock.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body[: _length(response)]), sent


def _length(response: bytes) -> int:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 1 << 30


def test_chunked_body_over_the_limit_is_refused_while_reading(server: tuple[str, int, int]) -> None:
    _, port, pid = server
    process = psutil.Process(pid)
    before = process.memory_info().rss
    # 200 MiB offered; the server must answer after ~LIMIT and not hold the rest.
    status, body, sent = send_chunked(port, "/invocations", 200 * 1024 * 1024, b"1" * (64 * 1024))
    after = process.memory_info().rss
    assert status == 413
    assert body["error"]["code"] == "body_too_large"
    assert sent < 100 * 1024 * 1024, f"the server kept reading: {sent} bytes sent"
    growth_mb = (after - before) / 1024 / 1024
    assert growth_mb < 50, f"server RSS grew {growth_mb:.0f} MB on a refused body"


def test_declared_length_over_the_limit_is_refused_before_reading(server: tuple[str, int, int]) -> None:
    base, _, _ = server
    request = urllib.request.Request(
        f"{base}/invocations", b"x" * (LIMIT + 1), {"content-type": "text/csv"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["code"] == "body_too_large"


def test_small_body_still_scores(server: tuple[str, int, int], breast_cancer: Any) -> None:
    base, _, _ = server
    body = breast_cancer.head(3).to_csv(index=False).encode()
    request = urllib.request.Request(f"{base}/invocations", body, {"content-type": "text/csv"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert len(json.loads(response.read())["predictions"]) == 3
