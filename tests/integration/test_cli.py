"""`mlserve publish` from a real MLflow registry, then `mlserve serve` over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlserve.cli import main
from tests.local_servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_publish_resolves_alias_and_version_uris(
    tmp_path: Path, demo_registry: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = (tmp_path / "store").as_uri()
    assert main(["publish", "models:/demo-classifier@champion", "--store", store]) == 0
    published = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert published["name"] == "demo-classifier" and published["live"] == "1"
    assert main(["publish", "models:/demo-regressor/1", "--store", store, "--name", "diabetes"]) == 0
    pointer = json.loads((tmp_path / "store/models/diabetes/live.json").read_text())
    assert pointer["version"] == "1" and pointer["source"] == "models:/demo-regressor/1" and pointer["run_id"]


def test_publish_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = (tmp_path / "store").as_uri()
    assert main(["publish", str(tmp_path / "nowhere"), "--store", store]) == 2
    assert "is not a directory or an MLflow model URI" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["publish", str(tmp_path / "empty"), "--store", store, "--name", "x"]) == 2
    assert "no MLmodel file" in capsys.readouterr().err
    assert main(["publish", "hdfs://x/y", "--store", store, "--name", "x"]) == 2
    assert "unsupported model URI" in capsys.readouterr().err


def test_serve_answers_over_http(tmp_path: Path, demo_registry: Any, breast_cancer: Any) -> None:
    store = (tmp_path / "store").as_uri()
    assert main(["publish", str(demo_registry.classifier_dir), "--store", store, "--name", "demo-classifier"]) == 0
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mlserve.cli", "serve", "--store", store, "--name", "demo-classifier"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=60) as response:
                    assert json.loads(response.read())["status"] == "ok"
                    break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        body = json.dumps({"instances": breast_cancer.head(3).to_dict(orient="records")}).encode()
        request = urllib.request.Request(f"{base}/predict", body, {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert len(json.loads(response.read())["predictions"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=10)
