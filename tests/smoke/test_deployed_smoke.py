"""Deployed smoke tests: the real API Gateway URL and API key of a deployed stack.

Run after every deploy (``.github/workflows/deploy.yml``, the CDK Pipelines smoke step) or by
hand: ``MLSERVE_SMOKE_STACK=Mlserve-dev .venv/bin/python -m pytest tests/smoke``. Skipped,
with the reason, when no stack or credentials are configured (``make test`` here); with
``MLSERVE_SMOKE_REQUIRED=1`` that is a failure instead. Settings: tests/smoke/deployed.py.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.smoke.deployed import (
    NotConfigured,
    SmokeTarget,
    check_bad_input,
    check_health,
    check_key_required,
    check_predict,
    target_from_environment,
)


@pytest.fixture(scope="module")
def target() -> SmokeTarget:
    try:
        return target_from_environment()
    except NotConfigured as reason:
        if os.environ.get("MLSERVE_SMOKE_REQUIRED") == "1":
            pytest.fail(f"MLSERVE_SMOKE_REQUIRED=1 but {reason}")
        pytest.skip(str(reason))


@pytest.fixture(scope="module")
def live_identity(target: SmokeTarget) -> dict[str, Any]:
    return check_health(target)


def test_health_names_the_live_model(live_identity: dict[str, Any]) -> None:
    assert live_identity["name"] and live_identity["version"]


def test_predict_answers_with_the_live_model(target: SmokeTarget, live_identity: dict[str, Any]) -> None:
    check_predict(target, live_identity)


def test_bad_input_gets_a_4xx_json_error(target: SmokeTarget) -> None:
    check_bad_input(target)


def test_api_key_is_enforced(target: SmokeTarget) -> None:
    if target.api_key is None:
        pytest.skip("the stack has no ApiKeyId output (auth iam or none)")
    check_key_required(target)
