"""The deployed smoke checks themselves, run here against real things: stack outputs and an
API key in moto's CloudFormation and API Gateway, and a real `mlserve serve` HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlserve.cli import main
from tests.local_servers import free_port
from tests.smoke.deployed import (
    NOT_CONFIGURED,
    NotConfigured,
    SmokeTarget,
    check_bad_input,
    check_health,
    check_key_required,
    check_predict,
    target_from_environment,
)

MODEL = "demo-classifier"


def test_nothing_configured_is_a_clear_skip_reason() -> None:
    with pytest.raises(NotConfigured, match="set MLSERVE_SMOKE_STACK"):
        target_from_environment({})
    assert "docs/deploy.md" in NOT_CONFIGURED


def test_stack_without_credentials_is_not_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    with pytest.raises(NotConfigured, match="no AWS credentials"):
        target_from_environment({"MLSERVE_SMOKE_STACK": "Mlserve-dev"}, session=boto3.Session(region_name="us-east-1"))


def test_url_and_key_value_come_from_the_stack_outputs() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        key = session.client("apigateway").create_api_key(name="mlserve-demo", enabled=True)
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {
                "ApiUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/"},
                "ApiKeyId": {"Value": key["id"]},
            },
        }
        session.client("cloudformation").create_stack(StackName="Mlserve-dev", TemplateBody=json.dumps(template))
        target = target_from_environment(
            {"MLSERVE_SMOKE_STACK": "Mlserve-dev", "MLSERVE_SMOKE_MODEL_NAME": MODEL}, session=session
        )
    assert target.api == "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
    assert target.api_key == key["value"] and target.headers()["x-api-key"] == key["value"]
    assert "x-api-key" not in target.headers(with_key=False)
    assert target.expected_model == MODEL


def test_stack_without_api_url_output_fails_loudly() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Other": {"Value": "x"}}}
        session.client("cloudformation").create_stack(StackName="NotMlserve", TemplateBody=json.dumps(template))
        with pytest.raises(AssertionError, match="no ApiUrl output"):
            target_from_environment({"MLSERVE_SMOKE_STACK": "NotMlserve"}, session=session)


def serve(store: str) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "mlserve.cli", "serve", "--store", store, "--name", MODEL, "--port", str(port)]
    server = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/openapi.json", timeout=60):
                    break
            except urllib.error.HTTPError:
                break  # answering, whatever the status
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_registry: Any) -> Iterator[str]:
    store = (tmp_path_factory.mktemp("smoke") / "store").as_uri()
    assert main(["publish", str(demo_registry.classifier_dir), "--store", store, "--name", MODEL]) == 0
    yield from serve(store)


def test_checks_pass_against_a_real_server(served: str) -> None:
    target = SmokeTarget(api=served, expected_model=MODEL)
    identity = check_health(target)
    assert identity["name"] == MODEL and identity["version"]
    body = check_predict(target, identity)
    assert body["predictions"][0] in (0, 1)
    check_bad_input(target)


def test_wrong_model_is_caught(served: str) -> None:
    with pytest.raises(AssertionError, match="expects 'churn'"):
        check_health(SmokeTarget(api=served, expected_model="churn"))


def test_open_api_fails_the_key_check(served: str) -> None:
    """The local server enforces no key: the check that API Gateway does must fail there."""
    with pytest.raises(AssertionError, match="without the API key answered 422"):
        check_key_required(SmokeTarget(api=served, api_key="not-checked-here"))


def test_no_live_model_fails_health_with_a_hint(tmp_path: Path) -> None:
    for base in serve((tmp_path / "empty-store").as_uri()):
        with pytest.raises(AssertionError, match="is a model published and live"):
            check_health(SmokeTarget(api=base))


def run_smoke_module(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVE_SMOKE_")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rs",
        "tests/smoke/test_deployed_smoke.py",
    ]
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        command, cwd=root, env={**clean, **env}, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_pytest_module_runs_against_a_real_server(served: str) -> None:
    result = run_smoke_module(MLSERVE_SMOKE_API_URL=served, MLSERVE_SMOKE_MODEL_NAME=MODEL)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed, 1 skipped" in result.stdout, result.stdout[-3000:]
    assert "no ApiKeyId output" in result.stdout


def test_required_turns_the_skip_into_a_failure() -> None:
    result = run_smoke_module(MLSERVE_SMOKE_REQUIRED="1")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "MLSERVE_SMOKE_REQUIRED=1 but no deployed stack configured" in result.stdout
