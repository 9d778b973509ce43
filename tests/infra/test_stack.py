"""Template assertions for every resource and setting of the stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Token
from aws_cdk.assertions import Match

from tests.infra.conftest import Synth, api_methods, render, synth

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
    # a deps layer per distinct function set (api; batch + redeploy; webhook) + the mlserve layer
    all_layers = default_synth.of_type("AWS::Lambda::LayerVersion")
    assert len(all_layers) == 4
    api_layers = {render(ref) for ref in api_function(default_synth)[1]["Properties"]["Layers"]}
    layers = {lid: layer for lid, layer in all_layers.items() if f"<{lid}>" in api_layers}
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
    # one per function (API, batch, redeploy, webhook, drift job, 4 fan-out steps) + API
    # access logs + the fan-out state machine's
    assert len(log_groups) == 11
    for log_group in log_groups.values():
        assert log_group["Properties"]["RetentionInDays"] == 30
        assert log_group["DeletionPolicy"] == "Delete"
    for log_group in prod_synth.of_type("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 365


# --- live alias and API Gateway ------------------------------------------------------


def test_live_alias_points_at_the_current_version(default_synth: Synth) -> None:
    function_id, _ = api_function(default_synth)
    alias = default_synth.resources[default_synth.logical_id(default_synth.stack.online_api.alias)]
    [version_id] = [
        logical_id
        for logical_id, v in default_synth.of_type("AWS::Lambda::Version").items()
        if v["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionName"] == {"Ref": function_id}


# Every method that reaches the API function (its live alias); POST /registry/events goes
# to the promotion webhook instead (test_wiring.py).
ALIAS_METHODS_API_KEY = {
    ("ANY", "/"),
    ("ANY", "/{proxy+}"),
    # the web page (auth=api_key only: explicit so its GETs can be key-free)
    ("GET", "/"),
    ("GET", "/ui"),
    ("GET", "/ui/static/{name}"),
    ("GET", "/ui/config"),
    ("GET", "/ui/example"),
    ("ANY", "/ui/{proxy+}"),
}
WEBHOOK_METHOD = ("POST", "/registry/events")


def test_api_proxies_every_path_to_the_live_alias(default_synth: Synth) -> None:
    alias_id = default_synth.logical_id(default_synth.stack.online_api.alias)
    methods = api_methods(default_synth)
    assert set(methods) == ALIAS_METHODS_API_KEY | {WEBHOOK_METHOD}
    for key in ALIAS_METHODS_API_KEY:
        props = methods[key]
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert f"<{alias_id}>" in render(props["Integration"]["Uri"]), key
    alias_permissions = [
        permission
        for permission in default_synth.of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == {"Ref": alias_id}
    ]
    # test-invoke + invoke, for each method
    assert len(alias_permissions) == 2 * len(ALIAS_METHODS_API_KEY)
    for permission in alias_permissions:
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_iam_and_none_auth_proxy_without_page_routes(iam_synth: Synth) -> None:
    assert set(api_methods(iam_synth)) == {("ANY", "/"), ("ANY", "/{proxy+}"), WEBHOOK_METHOD}


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
    [settings] = [s for s in props["MethodSettings"] if s["ResourcePath"] == "/*"]
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


PUBLIC_PAGE_METHODS = {("GET", "/"), ("GET", "/ui"), ("GET", "/ui/static/{name}"), ("GET", "/ui/config")}


def test_api_key_auth_by_default(default_synth: Synth) -> None:
    for route, props in api_methods(default_synth).items():
        # the page shell and the HMAC-authenticated webhook are key-free (test_wiring.py)
        assert props["ApiKeyRequired"] is (route not in PUBLIC_PAGE_METHODS | {WEBHOOK_METHOD}), route
        assert props["AuthorizationType"] == "NONE"
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
    for key, props in api_methods(iam_synth).items():
        # MLflow cannot SigV4-sign: the webhook authenticates with its HMAC signature
        assert props["AuthorizationType"] == ("NONE" if key == WEBHOOK_METHOD else "AWS_IAM"), key
        assert not props.get("ApiKeyRequired", False)
    assert not iam_synth.of_type("AWS::ApiGateway::ApiKey")
    assert not iam_synth.of_type("AWS::ApiGateway::UsagePlan")
    assert "ApiKeyId" not in iam_synth.template.to_json()["Outputs"]


def test_no_auth_for_local_emulators() -> None:
    result = synth(auth="none")
    for method in result.of_type("AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "NONE"
        assert not method["Properties"].get("ApiKeyRequired", False)
    assert not result.of_type("AWS::ApiGateway::ApiKey")


# --- batch scoring -------------------------------------------------------------------


def event_invoke_configs(result: Synth, function: Any) -> dict[str, Any]:
    function_ref = {"Ref": result.logical_id(function)}
    return {
        logical_id: config
        for logical_id, config in result.of_type("AWS::Lambda::EventInvokeConfig").items()
        if config["Properties"]["FunctionName"] == function_ref
    }


def batch_function(result: Synth) -> dict[str, Any]:
    return result.resources[result.logical_id(result.stack.batch.function)]


def test_batch_bucket_has_the_model_buckets_hardening(default_synth: Synth) -> None:
    store = default_synth.stack.model_store
    model = default_synth.resources[default_synth.logical_id(store.bucket)]["Properties"]
    batch_id = default_synth.logical_id(default_synth.stack.batch.bucket)
    batch = default_synth.resources[batch_id]["Properties"]
    for key in ("VersioningConfiguration", "BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls"):
        assert batch[key] == model[key], key
    assert batch["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": default_synth.logical_id(store.access_log_bucket)},
        "LogFilePrefix": "batch-bucket/",
    }
    rules = {rule["Id"]: rule for rule in batch["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    default_synth.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": batch_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_batch_function_is_built_like_the_api_function(default_synth: Synth) -> None:
    _, api = api_function(default_synth)
    props = batch_function(default_synth)["Properties"]
    assert props["Handler"] == "lambda_batch.handler.handler"
    for key in ("Runtime", "Architectures", "TracingConfig"):
        assert props[key] == api["Properties"][key], key
    # its own deps layer (its traced set) and the same mlserve layer
    common = {"Ref": default_synth.logical_id(default_synth.stack.common_layer)}
    assert common in props["Layers"] and common in api["Properties"]["Layers"]
    assert props["Layers"] != api["Properties"]["Layers"]
    assert props["Runtime"] == "python3.14"
    assert props["MemorySize"] == 3008
    assert props["Timeout"] == 900
    assert props["ReservedConcurrentExecutions"] == 2
    assert props["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": default_synth.logical_id(default_synth.stack.batch.log_group)},
    }
    env = props["Environment"]["Variables"]
    bucket_id = default_synth.logical_id(default_synth.stack.model_store.bucket)
    assert render(env["MLSERVE_STORE"]) == f"s3://<{bucket_id}>"
    assert env["MLSERVE_MODEL_NAME"] == "demo-classifier"
    assert env["MLSERVE_RESULTS_PREFIX"] == "results/"
    assert env["MLSERVE_BATCH_PROBABILITIES"] == "false"
    assert env["POWERTOOLS_SERVICE_NAME"] == "mlserve-batch"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "mlserve"


def test_batch_async_retries_and_dead_letter_queue(default_synth: Synth) -> None:
    batch = default_synth.stack.batch
    _, config = only(event_invoke_configs(default_synth, batch.function))
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": default_synth.logical_id(batch.function)}
    assert props["MaximumRetryAttempts"] == 2
    assert props["MaximumEventAgeInSeconds"] == 6 * 3600
    queue_id = default_synth.logical_id(batch.dead_letter_queue)
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}}
    queue = default_synth.resources[queue_id]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["DeletionPolicy"] == "Delete"


def test_batch_notifications_only_for_incoming_csv(default_synth: Synth) -> None:
    _, notifications = only(default_synth.of_type("Custom::S3BucketNotifications"))
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": default_synth.logical_id(default_synth.stack.batch.bucket)}
    configs = props["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    # the live alias (SnapStart applies to its published version, never to $LATEST)
    alias_id = default_synth.logical_id(default_synth.stack.batch.serving.invoke_target)
    assert all(c["LambdaFunctionArn"] == {"Ref": alias_id} for c in configs)
    assert sorted(
        tuple(sorted((r["Name"], r["Value"]) for r in c["Filter"]["Key"]["FilterRules"])) for c in configs
    ) == [
        (("prefix", "incoming/"), ("suffix", ".csv")),
        (("prefix", "incoming/"), ("suffix", ".csv.gz")),
    ]
    [permission] = [
        p
        for p in default_synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    ]
    assert permission["Properties"]["FunctionName"] == {"Ref": alias_id}


def test_batch_settings_follow_context() -> None:
    result = synth(
        batch_reserved_concurrency=5,
        batch_retry_attempts=1,
        batch_probabilities=True,
        functions={"batch": {"memory_mb": 4096, "timeout_seconds": 600}},
        architecture="x86_64",
    )
    props = batch_function(result)["Properties"]
    assert props["ReservedConcurrentExecutions"] == 5
    assert props["MemorySize"] == 4096 and props["Timeout"] == 600
    assert props["Architectures"] == ["x86_64"]
    assert props["Environment"]["Variables"]["MLSERVE_BATCH_PROBABILITIES"] == "true"
    _, config = only(event_invoke_configs(result, result.stack.batch.function))
    assert config["Properties"]["MaximumRetryAttempts"] == 1
    assert "ReservedConcurrentExecutions" not in batch_function(synth(batch_reserved_concurrency="none"))["Properties"]


def test_prod_retains_batch_bucket_and_queue(prod_synth: Synth) -> None:
    batch = prod_synth.stack.batch
    for construct in (batch.bucket, batch.dead_letter_queue, batch.log_group):
        assert prod_synth.resources[prod_synth.logical_id(construct)]["DeletionPolicy"] == "Retain"


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
    batch_bucket_id = default_synth.logical_id(default_synth.stack.batch.bucket)
    assert outputs["BatchBucketName"]["Value"] == {"Ref": batch_bucket_id}


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
