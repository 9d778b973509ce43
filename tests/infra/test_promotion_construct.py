"""The Promotion construct in a tiny stack of its own: resources, wiring, least privilege."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from infra.config import ServingConfig
from infra.functions import FunctionFactory
from infra.model_store import ModelStore, ModelStoreProps
from infra.online_api import ApiRoutes
from infra.promotion import Promotion, PromotionProps
from tests.infra.conftest import CDK_JSON_CONTEXT

# cdk.json's feature flags; bundling skipped (the function code asset is the real one).
FEATURE_FLAGS = {
    **{key: value for key, value in CDK_JSON_CONTEXT.items() if key.startswith("@")},
    "aws:cdk:bundling-stacks": [],
}
MODEL = "demo-classifier"


def parts(stack: Stack, **context: Any) -> tuple[ServingConfig, FunctionFactory, ModelStore]:
    """What the real stack hands the construct: validated config, the function factory,
    the model store."""
    config = ServingConfig.from_mapping({"model_name": MODEL, **context})
    model_store = ModelStore(stack, "ModelStore", props=ModelStoreProps.from_config(config))
    layer = lambda_.LayerVersion.from_layer_version_arn(
        stack, "Common", "arn:aws:lambda:us-east-1:123456789012:layer:mlserve-common:1"
    )
    functions = FunctionFactory(config=config, layers=[layer], store_uri=model_store.store_uri)
    return config, functions, model_store


def build(**context: Any) -> tuple[Stack, Promotion]:
    app = App(context=FEATURE_FLAGS)
    stack = Stack(app, "PromotionTest")
    config, functions, model_store = parts(stack, mlflow_tracking_uri="https://mlflow.example.com", **context)
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET", apigw.MockIntegration())
    promotion = Promotion(
        stack,
        "Promotion",
        props=PromotionProps.from_config(config),
        functions=functions,
        model_store=model_store,
        api=ApiRoutes(api),
    )
    return stack, promotion


@pytest.fixture(scope="module")
def template() -> Template:
    stack, _ = build(sagemaker_model_package_group="mlserve-demo-group")
    return Template.from_stack(stack)


def test_bus_rules_and_targets(template: Template) -> None:
    template.resource_count_is("AWS::Events::EventBus", 1)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": Match.any_value(),
            "EventPattern": {"source": ["mlserve.registry"], "detail-type": ["ModelPromoted", "ModelPromotionForced"]},
            "Targets": [
                Match.object_like(
                    {
                        "DeadLetterConfig": Match.any_value(),
                        "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200},
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {"ModelPackageGroupName": ["mlserve-demo-group"], "ModelApprovalStatus": ["Approved"]},
            },
            "EventBusName": Match.absent(),  # SageMaker publishes on the default bus
        },
    )


def test_redeploy_function(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambda_promote.redeploy.handler",
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "ReservedConcurrentExecutions": 1,
            "MemorySize": 2048,  # functions.promote
            "Timeout": 300,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            "Layers": Match.any_value(),
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MLSERVE_MODEL_NAME": MODEL,
                        "MLSERVE_REGISTRY_ALIAS": "champion",
                        "MLSERVE_MLFLOW_TRACKING_URI": "https://mlflow.example.com",
                        "MLSERVE_SAGEMAKER_PACKAGE_GROUP": "mlserve-demo-group",
                        "MLSERVE_STORE": Match.any_value(),
                        "MLSERVE_EVENT_BUS": Match.any_value(),
                    }
                )
            },
        },
    )
    # async failures (after Lambda's retries) go to the on-failure SQS destination
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 7200,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue", {"MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": True}
    )


def test_webhook_route_and_function(template: Template) -> None:
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "registry"})
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "events"})
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "AuthorizationType": "NONE",
            "Integration": Match.object_like({"Type": "AWS_PROXY"}),
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambda_promote.webhook.handler",
            "MemorySize": 256,  # functions.webhook
            "Timeout": 10,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MLSERVE_WEBHOOK_SECRET_ID": Match.any_value(),
                        "MLSERVE_WEBHOOK_DELIVERIES_TABLE": Match.any_value(),
                    }
                )
            },
        },
    )
    template.resource_count_is("AWS::SecretsManager::Secret", 1)
    template.has_resource_properties(
        "AWS::DynamoDB::Table", {"TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}}
    )


def _policies(template: Template) -> dict[str, list[dict[str, Any]]]:
    """role logical id -> statements"""
    out: dict[str, list[dict[str, Any]]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        props = policy["Properties"]
        for role in props["Roles"]:
            out.setdefault(role["Ref"], []).extend(props["PolicyDocument"]["Statement"])
    return out


def _role_of(template: Template, handler: str) -> str:
    for function in template.find_resources("AWS::Lambda::Function").values():
        if function["Properties"].get("Handler") == handler:
            return str(function["Properties"]["Role"]["Fn::GetAtt"][0])
    raise AssertionError(handler)


def test_redeploy_writes_only_its_model_prefix(template: Template) -> None:
    statements = _policies(template)[_role_of(template, "lambda_promote.redeploy.handler")]
    s3_statements = [s for s in statements if any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    writes = [
        s for s in s3_statements if any(a in ("s3:PutObject", "s3:DeleteObject", "s3:*") for a in _list(s["Action"]))
    ]
    assert writes, s3_statements
    for statement in writes:
        resources = json.dumps(statement["Resource"])
        assert f"/models/{MODEL}/*" in resources, resources
        assert "s3:DeleteObject" not in _list(statement["Action"])
    listing = [s for s in s3_statements if "s3:ListBucket" in _list(s["Action"])]
    assert listing and all(s["Condition"]["StringLike"]["s3:prefix"] == [f"models/{MODEL}/*"] for s in listing)
    assert not any(a == "*" for s in statements for a in _list(s["Action"]))


def test_webhook_cannot_touch_models(template: Template) -> None:
    statements = _policies(template)[_role_of(template, "lambda_promote.webhook.handler")]
    actions = {a for s in statements for a in _list(s["Action"])}
    assert not any(a.startswith("s3:") for a in actions), actions
    assert {"events:PutEvents", "dynamodb:PutItem", "secretsmanager:GetSecretValue"} <= actions


def test_roles_have_no_managed_policies_and_scoped_logs(template: Template) -> None:
    for handler in ("lambda_promote.redeploy.handler", "lambda_promote.webhook.handler"):
        role = template.find_resources("AWS::IAM::Role")[_role_of(template, handler)]["Properties"]
        assert not role.get("ManagedPolicyArns")
        statements = _policies(template)[_role_of(template, handler)]
        logs = [s for s in statements if "logs:PutLogEvents" in _list(s["Action"])]
        assert logs and all(s["Resource"] != "*" for s in logs)


def test_without_sagemaker_there_is_one_rule() -> None:
    stack, promotion = build()
    assert promotion.sagemaker_rule is None
    Template.from_stack(stack).resource_count_is("AWS::Events::Rule", 1)


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_cdk_nag_findings_of_the_construct_are_all_acknowledged(tmp_path: Any) -> None:
    """Synth with the project's nag packs: the test stack's own scaffolding (API, bucket) is
    acknowledged here; everything under Promotion/ must be acknowledged by the construct."""
    from infra.nag import acknowledge, register_nag

    app = App(outdir=str(tmp_path), context=FEATURE_FLAGS)
    stack = Stack(app, "PromotionNag")
    config, functions, model_store = parts(stack)
    api = apigw.RestApi(stack, "Api", cloud_watch_role=False)
    api.root.add_method("GET", apigw.MockIntegration())
    Promotion(
        stack,
        "Promotion",
        props=PromotionProps.from_config(config),
        functions=functions,
        model_store=model_store,
        api=ApiRoutes(api),
    )
    scaffolding = "test scaffolding owned by other constructs in the real stack"
    for rule in ("AwsSolutions-APIG2",):
        acknowledge(api, "AwsSolutions", rule, scaffolding)
    for rule in ("AwsSolutions-APIG1", "AwsSolutions-APIG3", "AwsSolutions-APIG6"):
        acknowledge(api.deployment_stage, "AwsSolutions", rule, scaffolding)
    for rule in ("Serverless-APIGWAccessLogging", "Serverless-APIGWDefaultThrottling", "Serverless-APIGWXrayEnabled"):
        acknowledge(api.deployment_stage, "Serverless", rule, scaffolding)
    get = api.root.node.find_child("GET")
    for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
        acknowledge(get, "AwsSolutions", rule, scaffolding)
    register_nag(app)
    assembly = app.synth()  # raises on any unacknowledged finding
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    suppressed = {
        (finding["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for finding in plugin.get("suppressedViolations", [])
        for construct in finding["violatingConstructs"]
    }
    ours = {rule for rule, path in suppressed if "/Promotion/" in path}
    assert {
        "AwsSolutions-SMG4",
        "Serverless-LambdaDLQ",
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-SQS3",
        "Serverless-SQSRedrivePolicy",
    } <= ours, ours
    webhook_route = {rule for rule, path in suppressed if "/registry/events/POST" in path}
    assert webhook_route == {"AwsSolutions-APIG4", "AwsSolutions-COG4"}
