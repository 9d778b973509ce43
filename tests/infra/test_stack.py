"""Template assertions for every resource and setting of the stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Token
from aws_cdk.assertions import Match

from tests.infra.conftest import Synth, render, synth

MODEL_PREFIX = "models/demo-classifier/"


def only(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def api_function(result: Synth) -> tuple[str, dict[str, Any]]:
    return result.logical_id(result.stack.online_api.function), result.resources[
        result.logical_id(result.stack.online_api.function)
    ]


# --- model store ---------------------------------------------------------------------


def test_model_bucket_is_versioned_encrypted_private_and_logged(default_synth: Synth) -> None:
    store = default_synth.stack.model_store
    bucket = default_synth.resources[default_synth.logical_id(store.bucket)]["Properties"]
    log_bucket_id = default_synth.logical_id(store.access_log_bucket)
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket_id}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_both_buckets_deny_non_tls_requests(default_synth: Synth) -> None:
    store = default_synth.stack.model_store
    for bucket in (store.bucket, store.access_log_bucket):
        bucket_id = default_synth.logical_id(bucket)
        default_synth.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": bucket_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    "Principal": {"AWS": "*"},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_access_log_bucket_is_private_encrypted_and_receives_logs_by_policy(default_synth: Synth) -> None:
    store = default_synth.stack.model_store
    log_bucket = default_synth.resources[default_synth.logical_id(store.access_log_bucket)]["Properties"]
    assert log_bucket["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    assert "BucketEncryption" in log_bucket
    assert "AccessControl" not in log_bucket  # bucket policy, not the legacy ACL
    default_synth.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": default_synth.logical_id(store.access_log_bucket)},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Principal": {"Service": "logging.s3.amazonaws.com"}})]
                )
            },
        },
    )


def test_dev_buckets_are_destroyed_with_the_stack(default_synth: Synth) -> None:
    for bucket in default_synth.of_type("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert default_synth.of_type("Custom::S3AutoDeleteObjects")


def test_prod_buckets_and_logs_are_retained(prod_synth: Synth) -> None:
    for resource_type in ("AWS::S3::Bucket", "AWS::Logs::LogGroup"):
        for resource in prod_synth.of_type(resource_type).values():
            assert resource["DeletionPolicy"] == "Retain", resource_type
    assert not prod_synth.of_type("Custom::S3AutoDeleteObjects")


# --- layers --------------------------------------------------------------------------


def test_two_layers_for_the_configured_runtime_and_architecture(default_synth: Synth) -> None:
    layers = default_synth.of_type("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    _, function = api_function(default_synth)
    assert sorted(render(ref) for ref in function["Properties"]["Layers"]) == sorted(f"<{lid}>" for lid in layers)


def test_x86_follows_context() -> None:
    result = synth(architecture="x86_64")
    for layer in result.of_type("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    _, function = api_function(result)
    assert function["Properties"]["Architectures"] == ["x86_64"]


# --- API function --------------------------------------------------------------------


def test_api_function_settings(default_synth: Synth) -> None:
    _, function = api_function(default_synth)
    props = function["Properties"]
    assert props["Handler"] == "lambda_api.handler.handler"
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 2048
    assert props["Timeout"] == 29
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    log_group_id = default_synth.logical_id(default_synth.stack.online_api.serving.log_group)
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}


def test_api_function_environment(default_synth: Synth) -> None:
    _, function = api_function(default_synth)
    env = function["Properties"]["Environment"]["Variables"]
    bucket_id = default_synth.logical_id(default_synth.stack.model_store.bucket)
    assert render(env["MLSERVE_STORE"]) == f"s3://<{bucket_id}>"
    assert env["MLSERVE_MODEL_NAME"] == "demo-classifier"
    assert env["MLSERVE_REGISTRY_ALIAS"] == "champion"
    assert env["MLSERVE_REFRESH_SECONDS"] == "15"
    assert env["MLSERVE_ALLOW_PICKLE"] == "false"
    assert env["MLSERVE_MAX_ROWS"] == "10000"
    assert env["MLSERVE_MAX_BODY_BYTES"] == str(5 * 1024 * 1024)
    assert env["MLSERVE_CACHE_DIR"] == "/tmp/mlserve"
    assert env["POWERTOOLS_SERVICE_NAME"] == "mlserve-api"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "mlserve"


def test_context_overrides_reach_the_function() -> None:
    result = synth(model_name="churn", allow_pickle=True, refresh_seconds=60, functions={"api": {"memory_mb": 1024}})
    _, function = api_function(result)
    env = function["Properties"]["Environment"]["Variables"]
    assert env["MLSERVE_MODEL_NAME"] == "churn"
    assert env["MLSERVE_ALLOW_PICKLE"] == "true"
    assert env["MLSERVE_REFRESH_SECONDS"] == "60"
    assert function["Properties"]["MemorySize"] == 1024


def test_every_log_group_has_the_configured_retention(default_synth: Synth, prod_synth: Synth) -> None:
    log_groups = default_synth.of_type("AWS::Logs::LogGroup")
    assert len(log_groups) == 2  # function logs + API access logs
    for log_group in log_groups.values():
        assert log_group["Properties"]["RetentionInDays"] == 30
        assert log_group["DeletionPolicy"] == "Delete"
    for log_group in prod_synth.of_type("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 365


# --- live alias and API Gateway ------------------------------------------------------


def test_live_alias_points_at_the_current_version(default_synth: Synth) -> None:
    function_id, _ = api_function(default_synth)
    _, alias = only(default_synth.of_type("AWS::Lambda::Alias"))
    _, version = only(default_synth.of_type("AWS::Lambda::Version"))
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionName"] == {"Ref": function_id}
    assert version["Properties"]["FunctionName"] == {"Ref": function_id}


def test_api_proxies_every_path_to_the_live_alias(default_synth: Synth) -> None:
    alias_id, _ = only(default_synth.of_type("AWS::Lambda::Alias"))
    methods = default_synth.of_type("AWS::ApiGateway::Method")
    assert len(methods) == 2  # ANY / and ANY /{proxy+}
    for method in methods.values():
        props = method["Properties"]
        assert props["HttpMethod"] == "ANY"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert f"<{alias_id}>" in render(props["Integration"]["Uri"])
    resource = only(default_synth.of_type("AWS::ApiGateway::Resource"))[1]
    assert resource["Properties"]["PathPart"] == "{proxy+}"
    for permission in default_synth.of_type("AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] == {"Ref": alias_id}
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_api_is_regional(default_synth: Synth) -> None:
    _, api = only(default_synth.of_type("AWS::ApiGateway::RestApi"))
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_stage_has_tracing_access_logs_and_throttling(default_synth: Synth) -> None:
    access_logs_id = default_synth.logical_id(default_synth.stack.online_api.access_logs)
    _, stage = only(default_synth.of_type("AWS::ApiGateway::Stage"))
    props = stage["Properties"]
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    destination = render(props["AccessLogSetting"]["DestinationArn"])
    assert destination.startswith("arn:") and f":log-group:<{access_logs_id}>" in destination
    assert "$context.requestId" in props["AccessLogSetting"]["Format"]
    [settings] = props["MethodSettings"]
    assert settings["HttpMethod"] == "*" and settings["ResourcePath"] == "/*"
    assert settings["ThrottlingRateLimit"] == 50
    assert settings["ThrottlingBurstLimit"] == 100
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True


def test_account_cloudwatch_role_for_api_logging_is_retained(default_synth: Synth) -> None:
    _, account = only(default_synth.of_type("AWS::ApiGateway::Account"))
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert default_synth.resources[role_id]["DeletionPolicy"] == "Retain"


def test_api_key_auth_by_default(default_synth: Synth) -> None:
    for method in default_synth.of_type("AWS::ApiGateway::Method").values():
        assert method["Properties"]["ApiKeyRequired"] is True
        assert method["Properties"]["AuthorizationType"] == "NONE"
    stage_id, _ = only(default_synth.of_type("AWS::ApiGateway::Stage"))
    api_id, _ = only(default_synth.of_type("AWS::ApiGateway::RestApi"))
    key_id, key = only(default_synth.of_type("AWS::ApiGateway::ApiKey"))
    assert key["Properties"]["Enabled"] is True
    _, plan = only(default_synth.of_type("AWS::ApiGateway::UsagePlan"))
    assert plan["Properties"]["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    assert plan["Properties"]["Quota"] == {"Limit": 100000, "Period": "DAY"}
    [api_stage] = plan["Properties"]["ApiStages"]
    assert api_stage["ApiId"] == {"Ref": api_id} and api_stage["Stage"] == {"Ref": stage_id}
    _, plan_key = only(default_synth.of_type("AWS::ApiGateway::UsagePlanKey"))
    assert plan_key["Properties"]["KeyId"] == {"Ref": key_id}
    assert plan_key["Properties"]["KeyType"] == "API_KEY"


def test_throttle_and_quota_follow_context() -> None:
    result = synth(throttle_rate_limit=5, throttle_burst_limit=10, quota_requests_per_day=1000)
    _, plan = only(result.of_type("AWS::ApiGateway::UsagePlan"))
    assert plan["Properties"]["Throttle"] == {"RateLimit": 5, "BurstLimit": 10}
    assert plan["Properties"]["Quota"]["Limit"] == 1000


def test_iam_auth_alternative(iam_synth: Synth) -> None:
    for method in iam_synth.of_type("AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert not method["Properties"].get("ApiKeyRequired", False)
    assert not iam_synth.of_type("AWS::ApiGateway::ApiKey")
    assert not iam_synth.of_type("AWS::ApiGateway::UsagePlan")
    assert "ApiKeyId" not in iam_synth.template.to_json()["Outputs"]


def test_no_auth_for_local_emulators() -> None:
    result = synth(auth="none")
    for method in result.of_type("AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "NONE"
        assert not method["Properties"].get("ApiKeyRequired", False)
    assert not result.of_type("AWS::ApiGateway::ApiKey")


# --- outputs -------------------------------------------------------------------------


def test_outputs(default_synth: Synth) -> None:
    outputs = default_synth.template.to_json()["Outputs"]
    stage_id, _ = only(default_synth.of_type("AWS::ApiGateway::Stage"))
    assert render(outputs["ApiUrl"]["Value"]).startswith("https://")
    assert f"<{stage_id}>" in render(outputs["ApiUrl"]["Value"])
    key_id, _ = only(default_synth.of_type("AWS::ApiGateway::ApiKey"))
    assert outputs["ApiKeyId"]["Value"] == {"Ref": key_id}
    bucket_id = default_synth.logical_id(default_synth.stack.model_store.bucket)
    assert outputs["ModelBucketName"]["Value"] == {"Ref": bucket_id}


def test_environment_agnostic_without_lookups(default_synth: Synth) -> None:
    # No account/region/context lookups: synth works offline without AWS credentials.
    assert Token.is_unresolved(default_synth.stack.account)
    assert Token.is_unresolved(default_synth.stack.region)
    manifest = Path(default_synth.app.synth().directory) / "manifest.json"
    assert not json.loads(manifest.read_text()).get("missing")


def test_every_allowed_retention_maps_to_the_same_number_of_days() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_logs as logs
    from aws_cdk.assertions import Template

    from infra.config import LOG_RETENTION_DAYS
    from infra.functions import log_retention

    stack = Stack(App(), "Retention")
    for days in LOG_RETENTION_DAYS:
        logs.LogGroup(stack, f"Days{days}", retention=log_retention(days))
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    assert sorted(group["Properties"]["RetentionInDays"] for group in groups.values()) == sorted(LOG_RETENTION_DAYS)
