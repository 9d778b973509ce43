"""CDK assertions for the BatchScoring construct, in a tiny stack of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from infra.batch import BatchScoring, BatchScoringProps
from infra.config import ServingConfig
from infra.functions import FunctionFactory
from infra.model_store import ModelStore, ModelStoreProps
from tests.infra.conftest import CDK_JSON_CONTEXT


def build(results_prefix: str = "results/", **context: Any) -> tuple[App, Stack, BatchScoring]:
    """The construct in a stack of its own, wired the way MlserveStack wires it."""
    app = App(context={**CDK_JSON_CONTEXT, "aws:cdk:bundling-stacks": [], "aws:cdk:enable-asset-metadata": True})
    stack = Stack(app, "BatchTest")
    config = ServingConfig.from_mapping({**CDK_JSON_CONTEXT, "batch_reserved_concurrency": 3, **context})
    store = ModelStore(stack, "ModelStore", props=ModelStoreProps.from_config(config))
    layer = lambda_.LayerVersion.from_layer_version_arn(
        stack, "Deps", "arn:aws:lambda:us-east-1:123456789012:layer:deps:1"
    )
    functions = FunctionFactory(config=config, layers=[layer], store_uri=store.store_uri)
    batch = BatchScoring(
        stack,
        "Batch",
        props=BatchScoringProps.from_config(config),
        functions=functions,
        model_store=store,
        results_prefix=results_prefix,
    )
    return app, stack, batch


@pytest.fixture(scope="module")
def template() -> Template:
    _, stack, _ = build()
    return Template.from_stack(stack)


def statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_bucket_is_hardened(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "batch-bucket/"},
        },
    )
    ssl_only = [
        s
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(ssl_only) >= 3  # batch, models and logs buckets


def test_function(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambda_batch.handler.handler",
            "Runtime": "python3.14",  # the configured runtime, from the factory
            "Architectures": ["arm64"],
            "Timeout": 900,
            "MemorySize": 3008,
            "ReservedConcurrentExecutions": 3,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MLSERVE_MODEL_NAME": "demo-classifier",
                        "MLSERVE_RESULTS_PREFIX": "results/",
                        "MLSERVE_BATCH_PROBABILITIES": "false",
                        "MLSERVE_STORE": Match.any_value(),
                        "POWERTOOLS_SERVICE_NAME": "mlserve-batch",
                    }
                )
            },
        },
    )


def test_failure_destination_and_retries(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 6 * 3600,
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [Match.string_like_regexp("DeadLetterQueue"), "Arn"]}}
            },
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})


def test_notifications_only_for_incoming_csv(template: Template) -> None:
    notifications = template.find_resources("Custom::S3BucketNotifications")
    assert len(notifications) == 1
    configs = next(iter(notifications.values()))["Properties"]["NotificationConfiguration"][
        "LambdaFunctionConfigurations"
    ]
    filters = sorted(tuple(sorted((r["Name"], r["Value"]) for r in c["Filter"]["Key"]["FilterRules"])) for c in configs)
    assert filters == [(("prefix", "incoming/"), ("suffix", ".csv")), (("prefix", "incoming/"), ("suffix", ".csv.gz"))]
    assert all(c["Events"] == ["s3:ObjectCreated:*"] for c in configs)


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"]
    return [json.dumps(r) for r in (resources if isinstance(resources, list) else [resources])]


def test_role_reads_incoming_and_model_writes_only_results(template: Template) -> None:
    s3_statements = [
        s
        for s in statements(template)
        if any(str(a).startswith("s3:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    ]
    writes = [s for s in s3_statements if any(a.startswith("s3:Put") for a in s["Action"])]
    assert writes, "the role must be able to write results"
    for statement in writes:
        for resource in _resources(statement):
            assert "/results/*" in resource, resource
    object_reads = [
        r
        for s in s3_statements
        if {"s3:GetObject*", "s3:GetObject"} & set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        for r in _resources(s)
        if "/" in r
    ]
    assert any("/incoming/*" in r for r in object_reads)
    assert any("/models/demo-classifier/*" in r for r in object_reads)
    assert any("/results/.markers/*" in r for r in object_reads)
    # Issue 11: the job markers (one object per web-page job id) are read back too.
    readable = ("/incoming/*", "/models/demo-classifier/*", "/results/.markers/*", "/results/.jobs/*")
    for resource in object_reads:
        assert any(p in resource for p in readable), resource
    actions = [a for s in s3_statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert not any(a.startswith("s3:Delete") or a == "s3:*" for a in actions)


def test_results_prefix_under_incoming_is_refused() -> None:
    with pytest.raises(ValueError, match="results_prefix"):
        build(results_prefix="incoming/results/")


def test_config_drives_probabilities_retries_and_concurrency() -> None:
    _, stack, _ = build(batch_probabilities=True, batch_retry_attempts=0, batch_reserved_concurrency="none")
    template = Template.from_stack(stack)
    [function] = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "lambda_batch.handler.handler"
    ]
    assert function["Properties"]["Environment"]["Variables"]["MLSERVE_BATCH_PROBABILITIES"] == "true"
    assert "ReservedConcurrentExecutions" not in function["Properties"]
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 0})


def test_code_asset_is_the_lambda_batch_package(tmp_path: Path) -> None:
    app = App(context={**CDK_JSON_CONTEXT, "aws:cdk:enable-asset-metadata": True}, outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "BatchAsset")
    config = ServingConfig.from_mapping(CDK_JSON_CONTEXT)
    store = ModelStore(stack, "ModelStore", props=ModelStoreProps.from_config(config))
    functions = FunctionFactory(config=config, layers=[], store_uri=store.store_uri)
    BatchScoring(stack, "Batch", props=BatchScoringProps.from_config(config), functions=functions, model_store=store)
    assembly = app.synth()
    template = Template.from_stack(stack).to_json()
    function = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == "lambda_batch.handler.handler"
    )
    asset_path = function["Metadata"]["aws:asset:path"] if "Metadata" in function else None
    assert asset_path, "expected asset metadata on the function"
    asset_dir = Path(assembly.directory) / asset_path
    files = sorted(p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file())
    assert "lambda_batch/handler.py" in files
    assert all(f.startswith("lambda_batch/") for f in files), files
