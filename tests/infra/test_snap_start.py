"""SnapStart, provisioned concurrency and the per-function startup context (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, FunctionStartup, ServingConfig
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, synth

SNAP_START = {"ApplyOn": "PublishedVersions"}


def config(**overrides: Any) -> ServingConfig:
    return ServingConfig.from_mapping({**CDK_JSON_CONTEXT, **overrides})


def functions_by_kind(result: Synth) -> dict[str, dict[str, Any]]:
    stack = result.stack
    constructs = {
        "api": stack.online_api.function,
        "batch": stack.batch.function,
        "promote": stack.promotion.redeploy_function,
        "webhook": stack.promotion.webhook_function,
    }
    return {kind: result.resources[result.logical_id(function)]["Properties"] for kind, function in constructs.items()}


def aliases_by_function(result: Synth) -> dict[str, dict[str, Any]]:
    return {
        alias["Properties"]["FunctionName"]["Ref"]: alias["Properties"]
        for alias in result.of_type("AWS::Lambda::Alias").values()
    }


def test_snap_start_on_api_batch_and_redeploy_by_default_never_on_the_webhook(default_synth: Synth) -> None:
    functions = functions_by_kind(default_synth)
    for kind in ("api", "batch", "promote"):
        assert functions[kind]["SnapStart"] == SNAP_START, kind
        # Lambda refuses SnapStart with more than 512 MB of /tmp
        assert functions[kind]["EphemeralStorage"] == {"Size": 512}, kind
    assert "SnapStart" not in functions["webhook"]


def test_every_snap_start_function_is_invoked_through_live_on_its_published_version(default_synth: Synth) -> None:
    aliases = aliases_by_function(default_synth)
    versions = {
        logical_id: version["Properties"]["FunctionName"]["Ref"]
        for logical_id, version in default_synth.of_type("AWS::Lambda::Version").items()
    }
    stack = default_synth.stack
    for function in (stack.online_api.function, stack.batch.function, stack.promotion.redeploy_function):
        function_id = default_synth.logical_id(function)
        alias = aliases[function_id]
        assert alias["Name"] == "live"
        version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
        assert versions[version_id] == function_id  # the published version, not $LATEST
        assert "ProvisionedConcurrencyConfig" not in alias
    assert default_synth.logical_id(stack.promotion.webhook_function) not in aliases


def test_snap_start_false_turns_it_off_everywhere() -> None:
    result = synth(snap_start="false")
    for kind, properties in functions_by_kind(result).items():
        assert "SnapStart" not in properties, kind


def test_provisioned_concurrency_goes_on_the_api_alias_when_snap_start_is_off() -> None:
    result = synth(snap_start="false", provisioned_concurrency="2")
    api_id = result.logical_id(result.stack.online_api.function)
    alias = aliases_by_function(result)[api_id]
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}


def test_snap_start_and_provisioned_concurrency_together_are_a_clear_synth_error() -> None:
    with pytest.raises(ConfigError, match="'provisioned_concurrency' \\(2\\) and SnapStart .* are exclusive"):
        synth(provisioned_concurrency="2")
    # the API's own switch is enough to allow it
    cfg = config(provisioned_concurrency=2, functions={"api": {"snap_start": False}})
    assert cfg.startup["api"] == FunctionStartup(snap_start=False, provisioned_concurrency=2)
    assert cfg.startup["batch"].snap_start is True


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"functions": {"batch": {"ephemeral_storage_mb": 1024}}},
            "'functions.batch.ephemeral_storage_mb' must be <= 512",
        ),
        ({"functions": {"api": {"ephemeral_storage_mb": 100}}}, "'functions.api.ephemeral_storage_mb' must be between"),
        ({"functions": {"webhook": {"snap_start": True}}}, "'functions.webhook.snap_start' must be false"),
        ({"functions": {"api": {"snap_start": "maybe"}}}, "'functions.api.snap_start' must be true or false"),
        ({"functions": {"api": {"reserved_concurrency": 0}}}, "'functions.api.reserved_concurrency' must be between 1"),
        ({"snap_start": "yes"}, "context 'snap_start' must be true or false"),
        ({"provisioned_concurrency": -1}, "context 'provisioned_concurrency' must be between 0"),
        ({"python_runtime": "python3.11"}, "context 'snap_start' needs python_runtime python3.12"),
        (
            {"snap_start": False, "provisioned_concurrency": 5, "functions": {"api": {"reserved_concurrency": 2}}},
            "'provisioned_concurrency' \\(5\\) cannot exceed 'functions.api.reserved_concurrency' \\(2\\)",
        ),
    ],
)
def test_bad_startup_context_names_the_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**context)


def test_more_tmp_is_allowed_once_snap_start_is_off_for_that_function() -> None:
    cfg = config(functions={"batch": {"ephemeral_storage_mb": 2048, "snap_start": False}})
    assert cfg.startup["batch"].ephemeral_storage_mb == 2048 and not cfg.startup["batch"].snap_start


def test_per_function_reserved_concurrency_memory_and_timeout_reach_the_functions() -> None:
    result = synth(
        functions='{"api": {"reserved_concurrency": 20, "memory_mb": 1024}, "webhook": {"reserved_concurrency": 3},'
        ' "batch": {"timeout_seconds": 600}}'
    )
    functions = functions_by_kind(result)
    assert functions["api"]["ReservedConcurrentExecutions"] == 20
    assert functions["api"]["MemorySize"] == 1024
    assert functions["webhook"]["ReservedConcurrentExecutions"] == 3
    assert functions["batch"]["Timeout"] == 600
    # batch without its own key keeps batch_reserved_concurrency (2 by default)
    assert functions["batch"]["ReservedConcurrentExecutions"] == 2
