"""Deployed with the DEFAULT context (issue 12): SnapStart on published versions behind the
`live` alias for the API, batch and redeploy functions (MiniStack publishes them Pending ->
Active and runs the runtime hooks), none on the webhook, and API keys enforced.

The promotion after publish is test_deployed_stack.py's ModelPromoted test: with this
context the redeploy and the API it switches both run as published SnapStart versions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import STACK, Deployed, http

pytestmark = pytest.mark.e2e

SNAP_START_FUNCTIONS = ("OnlineApiFunction", "BatchScoringFunction", "PromotionRedeploy")


def stack_functions(deployed: Deployed) -> dict[str, str]:
    """Logical id -> physical function name of the stack's Lambda functions."""
    cloudformation = deployed.client("cloudformation")
    found: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] == "AWS::Lambda::Function":
                found[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    return found


def function_named(functions: dict[str, str], prefix: str) -> str:
    matches = [name for logical_id, name in functions.items() if logical_id.startswith(prefix)]
    matches = [name for name in matches if "DeadLetter" not in name and "Logs" not in name]
    assert len(matches) == 1, (prefix, sorted(functions))
    return matches[0]


def wait_active(lambda_client: Any, name: str, version: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        config: dict[str, Any] = lambda_client.get_function_configuration(FunctionName=name, Qualifier=version)
        if config.get("State") != "Pending" or time.monotonic() > deadline:
            return config
        time.sleep(1)


@pytest.mark.parametrize("prefix", SNAP_START_FUNCTIONS)
def test_the_live_alias_runs_a_published_snap_start_version(deployed: Deployed, prefix: str) -> None:
    lambda_client = deployed.client("lambda")
    name = function_named(stack_functions(deployed), prefix)
    alias = lambda_client.get_alias(FunctionName=name, Name="live")
    version = alias["FunctionVersion"]
    assert version != "$LATEST"
    config = wait_active(lambda_client, name, version)
    assert config["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    # Active: the init, including the before-snapshot/after-restore hooks, succeeded
    # (a raising hook leaves the version Failed, as on AWS).
    assert config["State"] == "Active", config.get("StateReason")
    assert config.get("EphemeralStorage", {"Size": 512})["Size"] <= 512


def test_the_webhook_has_no_snap_start(deployed: Deployed) -> None:
    name = function_named(stack_functions(deployed), "PromotionWebhook")
    config = deployed.client("lambda").get_function_configuration(FunctionName=name)
    assert (config.get("SnapStart") or {}).get("ApplyOn", "None") == "None"


def test_the_default_stack_refuses_requests_without_the_api_key(deployed: Deployed) -> None:
    assert deployed.api_key  # auth=api_key: the suite authenticates with the stack's key
    status, _ = http("GET", f"{deployed.api}/health", api_key=False)
    assert status == 403
    status, _ = http("POST", f"{deployed.api}/predict", b'{"instances": []}', api_key=False)
    assert status == 403
    status, _ = http("GET", f"{deployed.api}/health")
    assert status in (200, 503)  # the key passes the gateway (503 until a model is live)
