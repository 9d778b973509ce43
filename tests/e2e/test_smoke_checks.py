"""The deployed smoke checks (tests/smoke/deployed.py) against the stack on the emulator: the
same code the deploy workflow and the CDK Pipelines smoke step run against AWS, here with the
stack outputs read from the emulator's CloudFormation."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import publish
from tests.e2e.conftest import STACK, Deployed
from tests.smoke.deployed import (
    SmokeTarget,
    check_bad_input,
    check_health,
    check_predict,
    target_from_environment,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
MODEL = "demo-classifier"


def serving(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=30) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def smoke_target(deployed: Deployed, demo_registry: Any, monkeypatch_module: pytest.MonkeyPatch) -> SmokeTarget:
    if not serving(deployed.api):  # run on its own: nothing published yet
        from mlserve.store import open_store

        store = open_store(f"s3://{deployed.model_bucket}", s3_client=deployed.client("s3"))
        publish(store, demo_registry.classifier_dir, name=MODEL, version="1", run_id=demo_registry.classifier_run_id)
    # Resolve exactly as in CI (outputs from CloudFormation via boto3), pointed at the emulator.
    monkeypatch_module.setenv("AWS_ENDPOINT_URL", deployed.endpoint)
    resolved = target_from_environment(
        {"MLSERVE_SMOKE_STACK": STACK, "MLSERVE_SMOKE_MODEL_NAME": MODEL}, session=deployed.session
    )
    assert resolved.api == deployed.outputs["ApiUrl"].rstrip("/")
    # The output names AWS's execute-api host; the emulator serves the same stage elsewhere.
    return SmokeTarget(api=deployed.api, api_key=resolved.api_key, expected_model=resolved.expected_model)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_smoke_checks_pass_on_the_deployed_stack(smoke_target: SmokeTarget) -> None:
    identity = check_health(smoke_target)
    check_predict(smoke_target, identity)
    check_bad_input(smoke_target)
